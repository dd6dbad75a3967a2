"""The warehouse's view of the lake: `raw.<table>` views over landed Parquet, and `audit` views.

The views read only files of completed dlt loads (listed in `_dlt_loads`), so data from a run that
was killed part-way is never visible. DuckDB is the embedded default; the same Parquet files are
Spark's input at scale.
"""

from __future__ import annotations

import re

import duckdb

from justice.settings import Settings

_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open HOME/warehouse.duckdb."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=read_only)


def has_table(settings: Settings, schema: str, name: str | None = None) -> bool:
    """Whether HOME/warehouse.duckdb exists and holds `schema`.`name` (any table of `schema`
    when name is None). Read-only: never creates the warehouse."""
    path = settings.home / "warehouse.duckdb"
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


def raw_tables(settings: Settings) -> list[str]:
    """Raw tables present in the lake (dlt's own bookkeeping tables excluded)."""
    raw = settings.home / "lake" / "raw"
    if not raw.is_dir():
        return []
    return sorted(p.name for p in raw.iterdir() if p.is_dir() and _TABLE.match(p.name) and any(p.glob("*.parquet")))


def _declared_columns(specs) -> dict[str, list[str]]:
    """raw table name -> the columns its spec declares (parent keys and fields)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        for table in spec.tables:
            names = [k for k in table.parent_key if k not in {f.name for f in table.fields}]
            out[f"{spec.system}__{table.name}"] = [*names, *(f.name for f in table.fields)]
    return out


def refresh_views(settings: Settings, specs=()) -> list[str]:
    """(Re)create `raw.<table>` for every landed table and `audit.loads`; returns the raw tables.

    A column a source spec declares but no landed file holds (a field added to the spec after
    those loads: older extracts did not carry it) is in the view as null, so staging generated
    from the current spec reads a lake landed under an earlier one."""
    declared = _declared_columns(specs)
    raw = (settings.home / "lake" / "raw").resolve()
    tables = raw_tables(settings)
    con = connect(settings)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        loads_glob = str(raw / "_dlt_loads" / "*.jsonl")
        has_loads = any((raw / "_dlt_loads").glob("*.jsonl")) if (raw / "_dlt_loads").is_dir() else False
        completed = (f"(SELECT load_id FROM read_json('{loads_glob}', format='newline_delimited', "
                     "columns={load_id: 'VARCHAR', status: 'BIGINT'}) WHERE status = 0)") if has_loads else "(SELECT NULL)"
        for name in tables:
            files = str(raw / name / "*.parquet")
            source = f"read_parquet('{files}', union_by_name = true, filename = true)"
            landed = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            missing = "".join(f", NULL::VARCHAR AS {c}" for c in declared.get(name, ()) if c not in landed)
            con.execute(f"""
                CREATE OR REPLACE VIEW raw.{name} AS
                SELECT * EXCLUDE (filename){missing} FROM {source}
                WHERE regexp_extract(filename, '/([0-9]+\\.[0-9]+)\\.[^/]*$', 1) IN {completed}
            """)
        loads = [t for t in tables if t.endswith("__loads")]
        if loads:
            union = " UNION ALL BY NAME ".join(f"SELECT * FROM raw.{t}" for t in loads)
            con.execute(f"CREATE OR REPLACE VIEW audit.loads AS {union}")
    finally:
        con.close()
    return tables


def load_history(settings: Settings) -> list[dict]:
    """Every completed load of every system, newest first (empty before the first ingest)."""
    if not (settings.home / "warehouse.duckdb").exists():
        return []
    con = connect(settings, read_only=True)
    try:
        exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'audit' "
                             "AND view_name = 'loads'").fetchone()[0]
        if not exists:
            return []
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
    if not (settings.home / "warehouse.duckdb").exists():
        return []
    con = connect(settings, read_only=True)
    try:
        views = [r[0] for r in con.execute(
            "select view_name from duckdb_views() where schema_name = 'quarantine' order by 1").fetchall()]
        if views:
            sources = [f"quarantine.{v}" for v in views]
        else:
            sources = [f"raw.{t}" for t in raw_tables(settings) if t.endswith("__rejects")]
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
