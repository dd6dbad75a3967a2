"""The embedded default: DuckDB, in the file HOME/warehouse.duckdb. Its tables are the serving
warehouse itself, so nothing is copied after a step."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from justice import warehouse
from justice.engine import lake
from justice.engine.base import Engine, Progress
from justice.engine.dbt import run_dbt_process


class DuckDBEngine(Engine):
    """DuckDB: dbt-duckdb in a child process, Splink's DuckDB API, views over the lake."""

    name = "duckdb"

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
        return {"type": "duckdb", "path": str(self.settings.warehouse_path.resolve()),
                "schema": "main", "threads": 2}

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
