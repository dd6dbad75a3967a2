"""The linkage store: the serving warehouse as linkage opens it, and the checks that the linkage
tables are there. (Not justice.warehouse, the serving readers' connection.)

Unlike justice.warehouse.connect, linkage attaches the file to an in-memory DuckDB, so that
Splink's working tables never land in the warehouse."""

from __future__ import annotations

import duckdb

from justice.errors import ConfigError, TransformError
from justice.settings import Settings
from justice.warehouse import limit_memory


def open_warehouse(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the warehouse attached as `wh` and in use.

    Splink's working tables then live in memory, not in the warehouse file."""
    path = settings.warehouse_path
    if not path.exists():
        raise ConfigError(f"no warehouse at {path}: run `justice ingest` first")
    con = limit_memory(duckdb.connect(), settings)
    con.execute(f"attach '{path}' as wh {'(read_only)' if read_only else ''}").fetchall()
    con.execute("use wh").fetchall()
    return con


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether the database in use (the warehouse, `wh`, on `open_warehouse`'s connections) holds
    `schema`.`table`."""
    return con.execute("select count(*) from information_schema.tables where table_catalog = current_database() "
                       "and table_schema = ? and table_name = ?", [schema, table]).fetchall()[0][0] > 0


def shared_days_sql(con: duckdb.DuckDBPyConnection, left: str = "l", right: str = "r") -> str:
    """SQL for the days of events two records of different systems share (their `event_dates`
    in common, a DATE[]), for a clerk to see beside the names; null for one system's records,
    and always null for an index standardised before records carried event days."""
    held = con.execute("select count(*) from information_schema.columns where table_catalog = current_database() "
                       "and table_schema = 'linkage' and table_name = 'records' and column_name = 'event_dates'"
                       ).fetchall()[0][0]
    if not held:
        return "null::date[]"
    return (f"case when {left}.system <> {right}.system "
            f"then nullif(list_intersect({left}.event_dates, {right}.event_dates), []) end")


def require_links(con: duckdb.DuckDBPyConnection) -> None:
    """Raise a clear error when the warehouse holds no linkage yet."""
    if not table_exists(con, "linkage", "person_links"):
        raise TransformError("no linkage yet: run `justice link` first")
