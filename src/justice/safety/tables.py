"""The serving-store tables the safety package reads, declared by the modules that own them.

The mirror of the prison database (``nomis_<table>``), ``person_resolution`` and
``linked_history`` belong to the sync (``justice.serving.mirror``); this package declares only its own
``move_checks`` tables (in ``cell_moves``). Looking a table up here, rather than holding a copy of
its declaration, keeps one definition of each column.
"""

from __future__ import annotations

import importlib
import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from justice.errors import ConfigError
from justice.serving.store import metadata


def table(name: str) -> sa.Table:
    """The serving-store table `name` as declared by its owner module."""
    if name not in metadata.tables:
        importlib.import_module("justice.serving.mirror")
    try:
        return metadata.tables[name]
    except KeyError:
        raise ConfigError(
            f"the serving store declares no table {name!r}: is justice.serving.mirror up to date?"
        ) from None


def in_values(column: sa.ColumnElement, values: list, dialect: str) -> sa.ColumnElement[bool]:
    """`column IN values` with the values sent as ONE parameter (a JSON array on SQLite, an
    array on PostgreSQL). An ordinary expanding IN renders a bind parameter per value, which for
    the roll of a large establishment (thousands of ids) cost more than the queries themselves.
    The one place the safety package differs by database."""
    if dialect == "postgresql":
        return column == sa.func.any(sa.literal(list(values), postgresql.ARRAY(column.type)))
    if dialect == "sqlite":
        ids = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.literal(json.dumps(list(values)), sa.String))
        )
        return column.in_(ids)
    return column.in_(list(values))
