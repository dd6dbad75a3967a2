"""Spark, for data that outgrows one machine: local mode (`local[*]`) by default, a cluster by
setting the master (JUSTICE_SPARK_MASTER) and extra Spark settings (JUSTICE_SPARK_CONF).

State lives under HOME/spark: a Hive metastore (embedded Derby, one process at a time; a cluster
points `spark.hadoop.javax.jdo.option.ConnectionURL` at a shared one) and the table files
(`spark.sql.warehouse.dir`). dbt-spark's `session` method runs in this process and shares the
session made here, so every step runs in one Spark application. After each step the tables the
readers need are copied into the serving warehouse, HOME/warehouse.duckdb (`serve`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa

from justice import warehouse
from justice.engine import lake
from justice.engine.base import Engine, LinkageSQL, Progress, SQLDialect
from justice.engine.dbt import run_dbt_here
from justice.errors import ConfigError, TransformError
from justice.settings import Settings
from justice.similarity import jaro_winkler

# One Spark application per process: the settings it was made for, and the session.
_running: dict[str, object] = {}

# Columns the serving warehouse holds as JSON, by schema: the quarantine models' `failures`
# (justice.transform.staging.quarantined_sql, to_json of the rules a row broke). DuckDB's to_json
# gives its JSON type; Spark has none (a string), so `serve` casts them back and a reader sees one
# type whichever engine built the table.
SERVED_AS_JSON = {"quarantine": frozenset({"failures"})}

# Spark's logging: errors only, without the start-up and code-generation notes (see the file).
LOG4J_FILE = Path(__file__).with_name("spark-log4j2.properties").resolve()


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
            f"-Dderby.system.home={state} -Dderby.stream.error.file={state / 'derby.log'} "
            f"-Dlog4j2.configurationFile={LOG4J_FILE}",
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
        # Inferring constraints through the generated staging views' many case expressions took
        # minutes to plan one view (probation's latest versions); the models do not need it.
        "spark.sql.constraintPropagation.enabled": "false",
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
    if settings.spark_master.startswith("local"):
        # The executor runs inside the driver's JVM, so it cannot be lost; but on a busy machine
        # a JVM starved of CPU for a few minutes missed its own heartbeats (120 s by default),
        # removed its only executor and failed the run.
        conf["spark.network.timeout"] = "1800s"
        conf["spark.executor.heartbeatInterval"] = "300s"
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


def session(settings: Settings, conf: dict[str, str] | None = None):
    """The process's SparkSession for these settings (started on first use; a session started
    for other settings, another home say, is stopped first). `conf`: spark_settings(settings),
    when the caller has it already."""
    from pyspark.sql import SparkSession

    conf = conf if conf is not None else spark_settings(settings)
    current = _running.get("session")
    if current is not None and _running.get("conf") == conf:
        return current
    if current is not None:
        current.stop()
        _running.clear()
    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    # Python functions (linkage's Jaro-Winkler) run in this interpreter, with its packages, unless
    # PYSPARK_PYTHON names another (a cluster's executors').
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if conf["spark.master"].startswith("local"):
        # Local mode talks to itself: bind to the loopback address rather than look for another.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.enableHiveSupport().getOrCreate()
    except Exception as exc:  # py4j's errors: no Java, a master that does not answer, ...
        raise ConfigError(f"Spark did not start (master {conf['spark.master']}; the spark engine "
                          f"needs Java 17 on the PATH): {str(exc).splitlines()[0]}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    _running.update(session=spark, conf=conf)
    return spark


# strftime directives a spec may use, with the Spark datetime pattern letters for each: the
# lenient form (one letter: one or more digits, as DuckDB's strptime reads) and the fixed-width
# form, needed when another number follows with no separator (yyyyMMdd), where Spark cannot tell
# where a variable-width number ends.
_SPARK_DIRECTIVES = {
    "Y": ("y", "yyyy"),
    "m": ("M", "MM"),
    "d": ("d", "dd"),
    "H": ("H", "HH"),
    "M": ("m", "mm"),
    "S": ("s", "ss"),
    "B": ("MMMM", "MMMM"),
    "b": ("MMM", "MMM"),
}
_NUMERIC = frozenset("YmdHMS")
# A one-letter year in a Spark pattern (a y inside quoted literal text may match too: that only
# adds the five-digit guard, which no value of such a format needs to pass).
_LENIENT_YEAR = re.compile(r"(?<![y'])y(?![y'])")
_DIRECTIVE = re.compile(r"%(.)|[^%]+|%$")


def spark_datetime_pattern(fmt: str) -> str:
    """The Spark datetime pattern that parses what DuckDB's strptime parses with `fmt`.

    >>> spark_datetime_pattern("%d/%m/%Y")
    'd/M/y'

    Raises ValueError naming the directive when `fmt` uses one without a Spark equivalent here
    (%y: DuckDB and Spark read two-digit years into different centuries)."""
    parts = [(m.group(1), m.group(0)) for m in _DIRECTIVE.finditer(fmt)]
    out = []
    for i, (directive, text) in enumerate(parts):
        if directive is None:
            if text == "%":
                raise ValueError(f"format {fmt!r} ends with a lone %")
            out.append(_spark_literal_text(text))
        elif directive == "%":
            out.append(_spark_literal_text("%"))
        elif directive in _SPARK_DIRECTIVES:
            lenient, fixed = _SPARK_DIRECTIVES[directive]
            neighbours = [parts[j][0] for j in (i - 1, i + 1) if 0 <= j < len(parts)]
            adjacent = directive in _NUMERIC and any(n in _NUMERIC for n in neighbours if n)
            out.append(fixed if adjacent else lenient)
        else:
            usable = " ".join(f"%{d}" for d in _SPARK_DIRECTIVES)
            raise ValueError(f"format {fmt!r}: %{directive} has no Spark equivalent here "
                             f"(usable: {usable}, and literal text)")
    return "".join(out)


def _spark_literal_text(text: str) -> str:
    """Literal text in a Spark datetime pattern: letters and quotes must be quoted."""
    if not re.search(r"[A-Za-z'\[\]#{}]", text):
        return text
    return "'" + text.replace("'", "''") + "'"


class SparkSQL(SQLDialect):
    """Spark SQL: backslash-escaped literals, Java datetime patterns, arrays and arrow lambdas."""

    name = "spark"
    # Every read of a view re-runs its query: as a view, the checked model parsed every raw row
    # again for each staged, latest and quarantine view, test and copy, and each core model.
    checked_as_table = True

    def literal(self, text: str) -> str:
        """Spark reads backslash escapes in literals, and 'a''b' as two literals joined."""
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def parse_timestamp(self, value: str, formats: tuple[str, ...]) -> str:
        parsed = []
        for fmt in formats:
            pattern = spark_datetime_pattern(fmt)
            parse = f"try_to_timestamp({value}, {self.literal(pattern)})"
            if _LENIENT_YEAR.search(pattern):
                # try_to_timestamp raises, not nulls, on a year past 9999 read by a lenient `y`
                # (05/03/20200); no value of such a format holds five digits in a row.
                parse = f"case when {value} rlike '[0-9]{{5}}' then null else {parse} end"
            parsed.append(parse)
        return parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"

    def as_date(self, timestamp: str) -> str:
        return f"cast({timestamp} as date)"

    def full_match(self, text: str, pattern: str) -> str:
        return f"({text} rlike {self.literal('^(?:' + pattern + ')$')})"

    def failure(self, rule: str, field: str, reason: str) -> str:
        return (f"named_struct('rule', {self.literal(rule)}, 'field', {self.literal(field)}, "
                f"'reason', {reason})")

    def failures(self, items: list[str]) -> str:
        if not items:  # an empty array must still say its element type
            return "cast(array() as array<struct<rule: string, field: string, reason: string>>)"
        body = ",\n".join(items)
        return f"filter(array(\n{body}\n    ), x -> x is not null)"

    def count(self, failures: str) -> str:
        return f"size({failures})"

    def first_rule(self, failures: str) -> str:
        return f"try_element_at({failures}, 1).rule"

    def reasons(self, failures: str) -> str:
        return f"array_join(transform({failures}, x -> x.reason), '; ')"


def jaro_winkler_best(values: list[str | None] | None, b: str | None) -> float | None:
    """The highest Jaro-Winkler similarity of `b` to any of `values`: DuckDB's
    `list_max(list_transform(values, lambda x: jaro_winkler_similarity(x, b)))`."""
    if values is None or b is None:
        return None
    scores = [jaro_winkler(v, b) for v in values if v is not None]
    return max(scores) if scores else None


def jaro_winkler_batch(a, b):
    """`jaro_winkler` over a batch (two pandas Series of strings): Spark's pandas UDF, which takes
    an Arrow batch of rows per call where a row-at-a-time UDF pays Python's per-call overhead on
    every row (docs/engines.md, "Linkage on Spark")."""
    import pandas as pd

    return pd.Series([jaro_winkler(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)],
                     dtype="float64")


def jaro_winkler_best_batch(values, b):
    """`jaro_winkler_best` over a batch (a Series of string arrays, a Series of strings)."""
    import pandas as pd

    return pd.Series([jaro_winkler_best(None if xs is None else list(xs), y)
                      for xs, y in zip(values.tolist(), b.tolist(), strict=True)], dtype="float64")


class SparkLinkageSQL(LinkageSQL):
    """Linkage's DuckDB conditions translated by sqlglot, and what sqlglot leaves in DuckDB's
    spelling or meaning written as Spark has it:

    * Jaro-Winkler is `jaro_winkler`, the name Splink's Spark levels call. Splink's jar (in
      `spark.jars`) defines it, but scores some pairs differently from DuckDB (`finntan` and
      `fintan`: DuckDB 0.928, above the 0.92 level; the jar below it), so the engine registers
      DuckDB's arithmetic under that name (`jaro_winkler`, with jellyfish, which agrees with
      DuckDB to the last bit); a Python function cannot run inside a Spark lambda, so the best
      similarity over a list (`list_max(list_transform(xs, lambda x: jaro_winkler_similarity(x,
      y)))`) is one function, `jaro_winkler_best(xs, y)`;
    * two arrays overlap by `arrays_overlap`;
    * a list element (`names[1]`, null past the end on DuckDB) is `try_element_at(names, 1)`,
      since `names[0]` raises on an empty array under Spark's ANSI mode."""

    splink_dialect = "spark"

    def translate(self, sql: str) -> str:
        import sqlglot
        from sqlglot import exp

        if sql.strip().upper() == "ELSE":
            return sql

        def best_over_list(node: exp.Expression) -> exp.Expression | None:
            """jaro_winkler_best(xs, y) for list_max(list_transform(xs, x -> jw(x, y)))."""
            if not (isinstance(node, exp.ArrayMax) and isinstance(node.this, exp.Transform)):
                return None
            lam = node.this.expression
            if not (isinstance(lam, exp.Lambda) and isinstance(lam.this, exp.JarowinklerSimilarity)
                    and len(lam.expressions) == 1):
                return None
            var = lam.expressions[0].name
            a, b = lam.this.this, lam.this.expression
            for mine, other in ((a, b), (b, a)):
                if mine.name == var and not any(i.name == var for i in other.find_all(exp.Identifier)):
                    return exp.Anonymous(this="jaro_winkler_best", expressions=[node.this.this, other])
            return None

        def spark_names(node: exp.Expression) -> exp.Expression:
            best = best_over_list(node)
            if best is not None:
                return best
            if isinstance(node, exp.JarowinklerSimilarity):
                if node.find_ancestor(exp.Lambda):
                    raise ConfigError(f"linkage SQL {sql!r}: Jaro-Winkler in a lambda runs on Spark only "
                                      "as the best over a list: list_max(list_transform(xs, lambda x: "
                                      "jaro_winkler_similarity(x, y)))")
                return exp.Anonymous(this="jaro_winkler", expressions=[node.this, node.expression])
            if isinstance(node, exp.ArrayOverlaps):
                return exp.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
            if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
                # sqlglot holds the index from 0 whatever the dialect; try_element_at counts from 1.
                index = node.expressions[0]
                one_based = (exp.Literal.number(int(index.this) + 1) if index.is_int
                             else exp.Add(this=index, expression=exp.Literal.number(1)))
                return exp.Anonymous(this="try_element_at", expressions=[node.this, one_based])
            return node

        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise ConfigError(f"linkage SQL does not parse as DuckDB SQL: {sql!r}: {exc}") from exc
        return tree.transform(spark_names).sql(dialect="spark")


class SparkEngine(Engine):
    """Spark: dbt-spark (session method) in this process, Splink's Spark API, views over the lake."""

    name = "spark"
    sql_dialect = SparkSQL()
    linkage_sql = SparkLinkageSQL()

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # Read once per engine (the settings file too), not on every call that needs the session.
        self._conf = spark_settings(settings)
        self._linkage_views: list[str] = []

    @property
    def spark(self):
        return session(self.settings, self._conf)

    def refresh_raw_views(self, specs: Iterable) -> list[str]:
        spark = self.spark
        declared = lake.declared_columns(specs)
        raw = lake.raw_dir(self.settings)
        tables = lake.raw_tables(self.settings)
        loads = lake.completed_loads(self.settings)
        completed = ", ".join(self.sql_dialect.literal(load) for load in loads)
        keep = (f"regexp_extract(_metadata.file_path, {self.sql_dialect.literal(lake.LOAD_ID_IN_FILE)}, 1) "
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
        # Temporary views (a session's, Splink's working tables among them) belong to no schema,
        # though Spark lists them with every one.
        return sorted(t.name for t in spark.catalog.listTables(schema) if not t.isTemporary)

    def read_table(self, schema: str, name: str) -> pa.Table:
        return self.spark.table(f"`{schema}`.`{name}`").toArrow()

    def write_table(self, schema: str, name: str, data: pa.Table) -> None:
        spark = self.spark
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        spark.createDataFrame(data).write.mode("overwrite").format("parquet").saveAsTable(f"`{schema}`.`{name}`")

    def load_from_warehouse(self, schema: str, names: Iterable[str]) -> list[str]:
        spark = self.spark
        incoming = self.settings.spark_dir.resolve() / "incoming"
        out = incoming / schema
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
        shutil.rmtree(incoming, ignore_errors=True)
        return [f"{schema}.{n}" for n in names]

    def serve(self, schemas: Iterable[str]) -> list[str]:
        """Write each table of `schemas` to Parquet, then replace those schemas in the serving
        warehouse in one transaction: a reader sees the previous step's tables or this one's."""
        spark = self.spark
        out = self.settings.spark_dir.resolve() / "serve"
        shutil.rmtree(out, ignore_errors=True)
        copied: dict[str, list[str]] = {}
        selects: dict[tuple[str, str], str] = {}
        files: dict[tuple[str, str], str] = {}
        for schema in schemas:
            copied[schema] = []
            for name in self.tables(schema):
                table = spark.table(f"`{schema}`.`{name}`")
                # A table stored as unpartitioned Parquet files is read where Spark keeps it;
                # anything else (a view, another format) is written out as Parquet first.
                folder = self._parquet_folder(schema, name)
                if folder is None:
                    folder = out / schema / name
                    table.write.mode("overwrite").parquet(str(folder))
                files[schema, name] = f"{folder}/*.parquet"
                copied[schema].append(name)
                as_json = [c for c in table.columns if c in SERVED_AS_JSON.get(schema, ())]
                selects[schema, name] = "*" + (" REPLACE (" + ", ".join(
                    f'CAST("{c}" AS JSON) AS "{c}"' for c in as_json) + ")" if as_json else "")
        con = warehouse.connect(self.settings)
        try:
            con.execute("BEGIN TRANSACTION")
            for schema, names in copied.items():
                con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                con.execute(f'CREATE SCHEMA "{schema}"')
                for name in names:
                    con.execute(f'CREATE TABLE "{schema}"."{name}" AS SELECT {selects[schema, name]} '
                                f"FROM read_parquet('{files[schema, name]}')")
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise TransformError(f"copying {', '.join(copied)} from Spark into "
                                 f"{self.settings.warehouse_path} failed: {exc}") from exc
        finally:
            con.close()
        shutil.rmtree(out, ignore_errors=True)
        return [f"{s}.{n}" for s, names in copied.items() for n in names]

    def _parquet_folder(self, schema: str, name: str) -> Path | None:
        """The local folder holding `schema`.`name`'s data when it is a table stored as
        unpartitioned Parquet files with at least one file (what dbt's Spark tables are here), so
        that serving can read the files Spark wrote instead of having Spark write them again;
        None otherwise."""
        info: dict[str, str] = {}
        for row in self.spark.sql(f"DESCRIBE TABLE EXTENDED `{schema}`.`{name}`").collect():
            info.setdefault(str(row[0]).strip(), str(row[1] or "").strip())
        if (info.get("Type", "").upper() == "VIEW" or info.get("Provider", "").lower() != "parquet"
                or "# Partition Information" in info or not info.get("Location", "").startswith("file:")):
            return None
        folder = Path(unquote(urlparse(info["Location"]).path))
        return folder if any(folder.glob("*.parquet")) else None

    def splink_api(self, con):
        """Splink's Spark API on the engine's session (its UDFs, Jaro-Winkler among them, come
        from the jar in `spark.jars`)."""
        from pyspark.sql.functions import pandas_udf
        from pyspark.sql.types import DoubleType
        from splink import SparkAPI

        spark = self.spark
        # Splink writes its intermediate tables as Parquet under the checkpoint folder.
        spark.sparkContext.setCheckpointDir(str(self._linkage_dir() / "checkpoints"))
        api = SparkAPI(spark_session=spark)
        # After Splink registers its jar's functions: DuckDB's Jaro-Winkler replaces the jar's
        # (SparkLinkageSQL says why).
        spark.udf.register("jaro_winkler", pandas_udf(jaro_winkler_batch, DoubleType()))
        spark.udf.register("jaro_winkler_best", pandas_udf(jaro_winkler_best_batch, DoubleType()))
        return api

    def _linkage_dir(self) -> Path:
        return self.settings.spark_dir.resolve() / "linkage"

    def splink_input(self, db_api, con, name, query, table_name=None):
        # Through Parquet, in DuckDB's own writer: Spark reads lists as arrays, dates as dates.
        path = self._linkage_dir() / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy ({query}) to '{path}' (format parquet)").fetchall()
        # Splink makes it a temporary view of the session, which outlives this run.
        self._linkage_views.append(table_name or name)
        return db_api.register(self.spark.read.parquet(str(path)), table_name=table_name or name)

    def splink_output(self, frame, con, table):
        path = self._linkage_dir() / "out" / table.replace(".", "_")
        frame.as_spark_dataframe().write.mode("overwrite").parquet(str(path))
        con.execute(f"create or replace table {table} as select * from read_parquet('{path}/*.parquet')").fetchall()
        frame.drop_table_from_database_and_remove_from_cache()
        shutil.rmtree(path, ignore_errors=True)

    def drop_linkage_inputs(self) -> None:
        """Remove the views and Parquet files linkage handed to Splink (after a run)."""
        if "session" in _running:
            spark = self.spark
            splinks = [t.name for t in spark.catalog.listTables() if t.isTemporary and t.name.startswith("__splink__")]
            for view in [*self._linkage_views, *splinks]:
                spark.catalog.dropTempView(view)
        self._linkage_views.clear()
        shutil.rmtree(self._linkage_dir(), ignore_errors=True)


def stop() -> None:
    """Stop the process's Spark application, if one is running (tests; the end of a run)."""
    current = _running.pop("session", None)
    _running.clear()
    if current is not None:
        current.stop()
