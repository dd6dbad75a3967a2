"""The embedded default: DuckDB, in the file HOME/warehouse.duckdb. Its tables are the serving
warehouse itself, so nothing is copied after a step."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from justice import warehouse
from justice.engine import lake
from justice.engine.base import Engine, Progress, SQLDialect
from justice.engine.dbt import run_dbt_process


class DuckDBSQL(SQLDialect):
    """DuckDB's SQL: list literals and lambdas, strptime formats as the specs write them."""

    name = "duckdb"

    # Tables, as on Spark: at 1,062,984 linkage records (the 440,000-person world) staging took
    # 30.3 s instead of 22.0, but reading the magistrates' latest identities for linkage 3.2 s
    # instead of 9.3 and `justice build` 41.8 s instead of 51.3, as every view, test and core
    # model reading a `__checked` view parsed every raw row again (docs/engines.md).
    checked_as_table = True

    def literal(self, text: str) -> str:
        """A string literal: quotes doubled, backslashes as they are."""
        return "'" + text.replace("'", "''") + "'"

    def parse_timestamp(self, value: str, formats: tuple[str, ...]) -> str:
        """The timestamp `value` holds in the first of `formats` it matches, else null."""
        if len(formats) == 1:
            return f"try_strptime({value}, {self.literal(formats[0])})"
        return f"try_strptime({value}, [{', '.join(self.literal(x) for x in formats)}])"

    def as_date(self, timestamp: str) -> str:
        return f"{timestamp}::date"

    def full_match(self, text: str, pattern: str) -> str:
        return f"regexp_full_match({text}, {self.literal(pattern)})"

    def failure(self, rule: str, field: str, reason: str) -> str:
        """One broken rule (rule, field, reason SQL) as a struct."""
        return f"{{'rule': {self.literal(rule)}, 'field': {self.literal(field)}, 'reason': {reason}}}"

    def failures(self, items: list[str]) -> str:
        """The broken rules of a row: the non-null items (each a struct or null)."""
        body = ",\n".join(items) if items else "        null"
        return f"list_filter([\n{body}\n    ], lambda x: x is not null)"

    def count(self, failures: str) -> str:
        return f"len({failures})"

    def first_rule(self, failures: str) -> str:
        return f"{failures}[1].rule"

    def reasons(self, failures: str) -> str:
        """Every reason of the list, joined by '; '."""
        return f"array_to_string(list_transform({failures}, lambda x: x.reason), '; ')"


DUCKDB_SQL = DuckDBSQL()


class DuckDBEngine(Engine):
    """DuckDB: dbt-duckdb in a child process, Splink's DuckDB API, views over the lake."""

    name = "duckdb"
    sql_dialect = DUCKDB_SQL

    def refresh_raw_views(self, specs: Iterable) -> list[str]:
        declared = lake.declared_columns(specs)
        raw = lake.raw_dir(self.settings)
        tables = lake.raw_tables(self.settings)
        loads = lake.completed_loads(self.settings)
        completed = "(" + ", ".join(f"'{load}'" for load in loads) + ")" if loads else "(SELECT NULL)"
        con = warehouse.connect(self.settings)
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS raw")
            con.execute("CREATE SCHEMA IF NOT EXISTS audit")
            for name in tables:
                files = str(raw / name / "*.parquet")
                source = f"read_parquet('{files}', union_by_name = true, filename = true)"
                landed = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
                missing = "".join(f", NULL::VARCHAR AS {c}" for c in declared.get(name, ()) if c not in landed)
                con.execute(f"""
                    CREATE OR REPLACE VIEW raw.{name} AS
                    SELECT * EXCLUDE (filename){missing} FROM {source}
                    WHERE regexp_extract(filename, '{lake.LOAD_ID_IN_FILE}', 1) IN {completed}
                """)
            ledgers = [t for t in tables if t.endswith("__loads")]
            if ledgers:
                union = " UNION ALL BY NAME ".join(f"SELECT * FROM raw.{t}" for t in ledgers)
                con.execute(f"CREATE OR REPLACE VIEW audit.loads AS {union}")
        finally:
            con.close()
        return tables

    def dbt_profile(self) -> dict:
        profile = {"type": "duckdb", "path": str(self.settings.warehouse_path.resolve()),
                   "schema": "main", "threads": 2}
        limits = warehouse.memory_settings(self.settings)
        if limits:
            profile["settings"] = limits
        return profile

    def run_dbt(self, project: Path, *args: str, progress: Progress | None = None) -> None:
        # A child process keeps dbt's global state and dbt-duckdb's open file out of ours.
        run_dbt_process(project, *args, progress=progress)

    def tables(self, schema: str) -> list[str]:
        if not self.settings.warehouse_path.exists():
            return []
        con = warehouse.connect(self.settings, read_only=True)
        try:
            return [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "ORDER BY 1", [schema]).fetchall()]
        finally:
            con.close()

    def read_table(self, schema: str, name: str) -> pa.Table:
        con = warehouse.connect(self.settings, read_only=True)
        try:
            return con.sql(f'SELECT * FROM "{schema}"."{name}"').to_arrow_table()
        finally:
            con.close()

    def write_table(self, schema: str, name: str, data: pa.Table) -> None:
        con = warehouse.connect(self.settings)
        try:
            con.register("_incoming", data)
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(f'CREATE OR REPLACE TABLE "{schema}"."{name}" AS SELECT * FROM _incoming')
        finally:
            con.close()

    def splink_api(self, con):
        """Splink's DuckDB API on a cursor of linkage's connection: its working tables stay in
        memory, beside the attached warehouse."""
        from splink import DuckDBAPI

        return DuckDBAPI(connection=con.cursor())

    def splink_input(self, db_api, con, name, query, table_name=None):
        # A view on Splink's own cursor (temporary views belong to one connection); Splink looks
        # tables up by bare name.
        db_api.duckdb_con.execute(f"create or replace temp view {name} as {query}").fetchall()
        return db_api.register(name, table_name=table_name)

    def splink_output(self, frame, con, table):
        db_api_con = frame.db_api.duckdb_con
        db_api_con.execute(f"create or replace table {table} as select * from {frame.physical_name}").fetchall()
        frame.drop_table_from_database_and_remove_from_cache()
