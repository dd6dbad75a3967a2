"""The serving warehouse, HOME/warehouse.duckdb: what every reader (status, quarantine, publish,
charts, the explorer, projections, the web app) opens.

On the DuckDB engine the steps build their tables in this file; on Spark they are built in Spark
and copied here after each step (justice.engine). The lake's raw views are the engine's
(justice.engine), so this module only reads.
"""

from __future__ import annotations

import duckdb

from justice.settings import Settings


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open HOME/warehouse.duckdb (with the settings' memory limit, see `limit_memory`)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return limit_memory(duckdb.connect(str(settings.warehouse_path), read_only=read_only), settings)


def memory_settings(settings: Settings) -> dict[str, str]:
    """DuckDB settings for JUSTICE_DUCKDB_MEMORY: the memory limit and the folder to spill to past
    it, made if missing (none when the setting is empty: DuckDB's defaults)."""
    if not settings.duckdb_memory:
        return {}
    settings.duckdb_spill_dir.mkdir(parents=True, exist_ok=True)
    return {"memory_limit": settings.duckdb_memory, "temp_directory": str(settings.duckdb_spill_dir)}


def limit_memory(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    """`con` with the settings' memory limit and spill folder applied; returns `con`."""
    for key, value in memory_settings(settings).items():
        con.execute(f"set {key} = '{value}'")
    return con


def has_table(settings: Settings, schema: str, name: str | None = None) -> bool:
    """Whether HOME/warehouse.duckdb exists and holds `schema`.`name` (any table of `schema`
    when name is None). Read-only: never creates the warehouse."""
    path = settings.warehouse_path
    if not path.exists():
        return False
    con = duckdb.connect(str(path), read_only=True)
    try:
        sql = "select count(*) from information_schema.tables where table_schema = ?"
        args = [schema]
        if name is not None:
            sql += " and table_name = ?"
            args.append(name)
        return con.execute(sql, args).fetchall()[0][0] > 0
    finally:
        con.close()


def load_history(settings: Settings) -> list[dict]:
    """Every completed load of every system, newest first (empty before the first ingest)."""
    if not has_table(settings, "audit", "loads"):
        return []
    con = connect(settings, read_only=True)
    try:
        cur = con.execute("SELECT * FROM audit.loads ORDER BY started_at DESC, load_id DESC")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        con.close()


def rejects(settings: Settings, system: str | None = None, limit: int = 50) -> list[dict]:
    """Rows set aside, at read time or by a staging rule, with rule and reason (newest first).

    Reads every view in the `quarantine` schema once staging has been built, else the raw
    read-time rejects.
    """
    if not (settings.warehouse_path).exists():
        return []
    con = connect(settings, read_only=True)
    try:
        views = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'quarantine' "
            "order by 1").fetchall()]
        if views:
            sources = [f"quarantine.{v}" for v in views]
        else:
            # Before staging is built: the read-time rejects, as the raw views show them.
            sources = [f"raw.{r[0]}" for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "and table_name like '%\\_\\_rejects' escape '\\' order by 1").fetchall()]
        if system is not None:
            sources = [s for s in sources if s.split(".", 1)[1].startswith(f"{system}__")]
        if not sources:
            return []
        union = " UNION ALL ".join(
            f"SELECT _system, _file, _locator, rule, reason, _load_id, '{s}' AS quarantine_table FROM {s}"
            for s in sources)
        cur = con.execute(f"SELECT * FROM ({union}) ORDER BY _load_id DESC, _file, _locator LIMIT {int(limit)}")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        con.close()
