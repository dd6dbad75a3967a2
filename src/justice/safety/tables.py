"""The serving-store tables the safety package reads, declared by the modules that own them.

The mirror of the prison database (``nomis_<table>``), ``person_resolution`` and
``linked_history`` belong to the sync (``justice.web.mirror``); this package declares only its own
``move_checks`` tables (in ``cell_moves``). Looking a table up here, rather than holding a copy of
its declaration, keeps one definition of each column.
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa

from justice.errors import ConfigError
from justice.web.store import metadata


def table(name: str) -> sa.Table:
    """The serving-store table `name` as declared by its owner module."""
    if name not in metadata.tables:
        importlib.import_module("justice.web.mirror")
    try:
        return metadata.tables[name]
    except KeyError:
        raise ConfigError(f"the serving store declares no table {name!r}: is justice.web.mirror "
                          f"up to date?") from None
