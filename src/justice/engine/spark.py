"""Spark, for data that outgrows one machine: local mode (`local[*]`) by default, a cluster by
setting the master (JUSTICE_SPARK_MASTER) and extra Spark settings (JUSTICE_SPARK_CONF).

State lives under HOME/spark: a Hive metastore (embedded Derby, one process at a time; a cluster
points `spark.hadoop.javax.jdo.option.ConnectionURL` at a shared one) and the table files
(`spark.sql.warehouse.dir`). dbt-spark's `session` method runs in this process and shares the
session made here, so every step runs in one Spark application. After each step the tables the
readers need are copied into the serving warehouse, HOME/warehouse.duckdb (`serve`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from justice import warehouse
from justice.engine import lake
from justice.engine.base import Engine, Progress
from justice.engine.dbt import run_dbt_here
from justice.errors import ConfigError, TransformError
from justice.settings import Settings

# One Spark application per process: the settings it was made for, and the session.
_running: dict[str, object] = {}


def spark_settings(settings: Settings) -> dict[str, str]:
    """Every Spark setting the engine starts with: its own, then JUSTICE_SPARK_CONF's."""
    from splink.backends.spark import similarity_jar_location

    state = settings.spark_dir.resolve()
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "justice",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions":
            f"-Dderby.system.home={state} -Dderby.stream.error.file={state / 'derby.log'}",
        # Splink's Jaro-Winkler and friends are Scala UDFs in this jar; without it they are
        # unresolved functions.
        "spark.jars": similarity_jar_location(),
        # Dates and times mean what the registers wrote, with no time zone, as on DuckDB.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # A field added to a spec after earlier loads: files of one table differ in columns.
        "spark.sql.parquet.mergeSchema": "true",
        "spark.sql.sources.default": "parquet",
        "spark.sql.legacy.createHiveTableByDefault": "false",
        # Local mode's default of 200 shuffle partitions is for clusters; a cluster's conf file
        # sets its own.
        "spark.sql.shuffle.partitions": "8",
        # Local mode runs everything in the driver, whose default heap (1 GB) runs out copying a
        # 100,000-person world's staging; a cluster's conf file sizes its own.
        "spark.driver.memory": "4g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    conf.update(_conf_file(settings))
    return conf


def _conf_file(settings: Settings) -> dict[str, str]:
    """JUSTICE_SPARK_CONF: spark-defaults.conf lines, `key value` or `key=value`, # comments."""
    if not settings.spark_conf:
        return {}
    path = Path(settings.spark_conf).expanduser()
    if not path.is_file():
        raise ConfigError(f"spark settings file {path} does not exist (JUSTICE_SPARK_CONF)")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = (re.split(r"\s*=\s*|\s+", line, maxsplit=1) + [""])[:2]
        if not key.startswith("spark.") or not value:
            raise ConfigError(f"{path}:{n}: not a Spark setting ('spark.key value'): {line!r}")
        out[key] = value
    return out


def session(settings: Settings):
    """The process's SparkSession for these settings (started on first use; a session started
    for other settings, another home say, is stopped first)."""
    from pyspark.sql import SparkSession

    conf = spark_settings(settings)
    current = _running.get("session")
    if current is not None and _running.get("conf") == conf:
        return current
    if current is not None:
        current.stop()
        _running.clear()
    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    _running.update(session=spark, conf=conf)
    return spark


def _string(value: str) -> str:
    """A Spark SQL string literal (Spark reads backslash escapes inside quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkEngine(Engine):
    """Spark: dbt-spark (session method) in this process, Splink's Spark API, views over the lake."""

    name = "spark"

    @property
    def spark(self):
        return session(self.settings)

    def refresh_raw_views(self, specs: Iterable) -> list[str]:
        spark = self.spark
        declared = lake.declared_columns(specs)
        raw = lake.raw_dir(self.settings)
        tables = lake.raw_tables(self.settings)
        loads = lake.completed_loads(self.settings)
        completed = ", ".join(_string(load) for load in loads)
        keep = (f"regexp_extract(_metadata.file_path, {_string(lake.LOAD_ID_IN_FILE)}, 1) "
                f"IN ({completed})") if loads else "false"
        spark.sql("CREATE DATABASE IF NOT EXISTS raw")
        spark.sql("CREATE DATABASE IF NOT EXISTS audit")
        schemas: dict[str, pa.Schema] = {}
        for name in tables:
            files = f"{raw / name}/*.parquet"
            landed = spark.read.parquet(files).schema
            schemas[name] = landed
            cols = [f"`{f.name}`" for f in landed.fields]
            cols += [f"CAST(NULL AS STRING) AS `{c}`" for c in declared.get(name, ())
                     if c not in landed.fieldNames()]
            spark.sql(f"CREATE OR REPLACE VIEW raw.{name} AS SELECT {', '.join(cols)} "
                      f"FROM parquet.`{files}` WHERE {keep}")
        ledgers = [t for t in tables if t.endswith("__loads")]
        if ledgers:
            # Systems' load ledgers differ in columns: union by name, a missing column as null.
            types: dict[str, str] = {}
            for t in ledgers:
                for f in schemas[t].fields:
                    types.setdefault(f.name, f.dataType.simpleString())
            union = " UNION ALL ".join(
                "SELECT " + ", ".join(f"`{c}`" if c in schemas[t].fieldNames() else
                                      f"CAST(NULL AS {kind}) AS `{c}`" for c, kind in types.items())
                + f" FROM raw.{t}" for t in ledgers)
            spark.sql(f"CREATE OR REPLACE VIEW audit.loads AS {union}")
        return tables

    def dbt_profile(self) -> dict:
        # `session`: dbt-spark asks SparkSession.builder.getOrCreate(), which is this process's
        # session (run_dbt starts it first), so dbt sees the raw views and the linkage tables.
        return {"type": "spark", "method": "session", "host": "NA", "schema": "main", "threads": 1}

    def run_dbt(self, project: Path, *args: str, progress: Progress | None = None) -> None:
        self.spark  # noqa: B018 - dbt's session method must find this session, not make its own
        run_dbt_here(project, *args, progress=progress)

    def tables(self, schema: str) -> list[str]:
        spark = self.spark
        if not spark.catalog.databaseExists(schema):
            return []
        return sorted(t.name for t in spark.catalog.listTables(schema))

    def read_table(self, schema: str, name: str) -> pa.Table:
        return self.spark.table(f"`{schema}`.`{name}`").toArrow()

    def write_table(self, schema: str, name: str, data: pa.Table) -> None:
        spark = self.spark
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        spark.createDataFrame(data).write.mode("overwrite").format("parquet").saveAsTable(f"`{schema}`.`{name}`")

    def load_from_warehouse(self, schema: str, names: Iterable[str]) -> list[str]:
        spark = self.spark
        out = self.settings.spark_dir.resolve() / "incoming" / schema
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        con = warehouse.connect(self.settings, read_only=True)
        try:
            names = [n for n in names if con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                "AND table_name = ?", [schema, n]).fetchall()[0][0]]
            for name in names:
                con.execute(f"COPY \"{schema}\".\"{name}\" TO '{out / name}.parquet' (FORMAT parquet)")
        finally:
            con.close()
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        for name in names:
            spark.sql(f"DROP TABLE IF EXISTS `{schema}`.`{name}`")
            spark.sql(f"CREATE TABLE `{schema}`.`{name}` USING parquet AS "
                      f"SELECT * FROM parquet.`{out / name}.parquet`")
        shutil.rmtree(out, ignore_errors=True)
        return [f"{schema}.{n}" for n in names]

    def serve(self, schemas: Iterable[str]) -> list[str]:
        """Write each table of `schemas` to Parquet, then replace those schemas in the serving
        warehouse in one transaction: a reader sees the previous step's tables or this one's."""
        spark = self.spark
        out = self.settings.spark_dir.resolve() / "serve"
        shutil.rmtree(out, ignore_errors=True)
        copied: dict[str, list[str]] = {}
        for schema in schemas:
            copied[schema] = []
            for name in self.tables(schema):
                spark.table(f"`{schema}`.`{name}`").write.mode("overwrite").parquet(
                    str(out / schema / name))
                copied[schema].append(name)
        con = warehouse.connect(self.settings)
        try:
            con.execute("BEGIN TRANSACTION")
            for schema, names in copied.items():
                con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                con.execute(f'CREATE SCHEMA "{schema}"')
                for name in names:
                    con.execute(f'CREATE TABLE "{schema}"."{name}" AS SELECT * FROM '
                                f"read_parquet('{out / schema / name}/*.parquet')")
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise TransformError(f"copying {', '.join(copied)} from Spark into "
                                 f"{self.settings.warehouse_path} failed: {exc}") from exc
        finally:
            con.close()
        shutil.rmtree(out, ignore_errors=True)
        return [f"{s}.{n}" for s, names in copied.items() for n in names]


def stop() -> None:
    """Stop the process's Spark application, if one is running (tests; the end of a run)."""
    current = _running.pop("session", None)
    _running.clear()
    if current is not None:
        current.stop()
