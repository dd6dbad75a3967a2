"""The serving store: one SQLAlchemy database the web app reads and the sync writes.

SQLite by default (``HOME/serving/safety.sqlite``, WAL mode, one process), PostgreSQL for several
web workers (``JUSTICE_SERVING_DB=postgresql+psycopg://...``). Every table is declared on the one
``metadata`` below by the module that owns it (the mirror of the prison database and the sync's
cursors in ``justice.serving.mirror``; users, sessions and the audit log in ``justice.web.auth`` and
``justice.web.audit``; cell-move checks in ``justice.safety``); ``open_store`` imports them all and
creates what is missing, so a new table is a declaration in its owner's module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlalchemy as sa

from justice.errors import ConfigError
from justice.settings import Settings

metadata = sa.MetaData()

# Modules that declare tables on `metadata`; imported before create_all.
TABLE_MODULES = ("justice.serving.mirror", "justice.web.auth", "justice.web.audit",
                 "justice.safety.cell_moves", "justice.web.portal_store")


def _declare_tables() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")      # readers do not block the sync's writes
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def create_store_engine(url: str) -> sa.Engine:
    """An engine for the serving store at `url` (SQLite pragmas set on every connection)."""
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise ConfigError(f"serving store URL {url!r} is not usable: {exc} (JUSTICE_SERVING_DB)") from None
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_store(settings: Settings) -> sa.Engine:
    """The serving store's engine, with every declared table created if missing."""
    engine = create_store_engine(settings.serving_db_url)
    _declare_tables()
    try:
        metadata.create_all(engine)
    except sa.exc.DatabaseError as exc:
        # Also a file that is there but is not a database (a wrong path, a damaged file).
        raise ConfigError(f"cannot open the serving store {engine.url.render_as_string(hide_password=True)}: "
                          f"{exc.orig}") from None
    return engine
