"""The engine layer: choosing an engine, its settings, and the lake's raw views on each engine."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from justice.cli import app
from justice.engine import engine_for
from justice.engine.duckdb import DuckDBEngine
from justice.engine.spark import spark_settings
from justice.errors import ConfigError
from justice.ingest import landing
from justice.settings import Settings
from justice.sources.spec import parse_spec

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
import fake_reader

SPEC = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
    {"name": "items", "record_key": ["key"], "fields": [
        {"source": "key", "name": "key", "required": True},
        {"source": "value", "name": "value", "type": "integer"}]}]}, "lines.yaml")


def test_the_default_engine_is_duckdb_and_an_unknown_one_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JUSTICE_ENGINE", raising=False)
    assert isinstance(engine_for(Settings.from_env(home=tmp_path)), DuckDBEngine)
    with pytest.raises(ConfigError, match=r"engine 'oracle': choose one of duckdb, spark \(JUSTICE_ENGINE\)"):
        Settings(home=tmp_path, engine="oracle")
    monkeypatch.setenv("JUSTICE_ENGINE", "sparky")
    with pytest.raises(ConfigError, match="engine 'sparky'"):
        Settings.from_env(home=tmp_path)


def test_the_cli_engine_option_reaches_every_step(tmp_path, monkeypatch):
    monkeypatch.delenv("JUSTICE_ENGINE", raising=False)
    result = CliRunner().invoke(app, ["--engine", "oracle", "build", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "engine 'oracle': choose one of duckdb, spark" in result.output
    # With the default engine the step runs, and says what is missing on that engine.
    result = CliRunner().invoke(app, ["--engine", "duckdb", "build", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "nothing staged on duckdb" in result.output


def test_spark_settings_file_adds_and_overrides_and_a_bad_line_names_its_place(tmp_path):
    conf = tmp_path / "spark.conf"
    conf.write_text("# a cluster\nspark.executor.memory 8g\nspark.sql.shuffle.partitions=400\n\n")
    settings = Settings(home=tmp_path, engine="spark", spark_master="spark://head:7077",
                        spark_conf=str(conf))
    got = spark_settings(settings)
    assert got["spark.master"] == "spark://head:7077"
    assert got["spark.executor.memory"] == "8g"
    assert got["spark.sql.shuffle.partitions"] == "400"  # the file wins over the engine's own
    assert got["spark.sql.warehouse.dir"] == str((tmp_path / "spark" / "warehouse").resolve())
    assert got["spark.jars"].endswith(".jar") and Path(got["spark.jars"]).exists()
    # A cluster detects lost executors as Spark does; local mode's one executor is in the driver,
    # so a driver starved of CPU waits rather than removing it.
    assert "spark.network.timeout" not in got and "spark.executor.heartbeatInterval" not in got
    local = spark_settings(Settings(home=tmp_path, engine="spark", spark_master="local[2]"))
    assert (local["spark.network.timeout"], local["spark.executor.heartbeatInterval"]) == ("1800s", "300s")
    conf.write_text("spark.executor.memory 8g\nexecutor.cores 4\n")
    with pytest.raises(ConfigError, match=r"spark.conf:2: not a Spark setting"):
        spark_settings(settings)
    missing = Settings(home=tmp_path, engine="spark", spark_conf=str(tmp_path / "nope.conf"))
    with pytest.raises(ConfigError, match=r"nope.conf does not exist \(JUSTICE_SPARK_CONF\)"):
        spark_settings(missing)


def _landed_home(root: Path, engine: str) -> Settings:
    """A home with two loads of `lines` landed, the second from a spec with one more field, and a
    file of a third load that never completed (a run killed part-way)."""
    home = Settings(home=root / engine, engine=engine)
    (home.legacy_dir / "lines").mkdir(parents=True)
    (home.legacy_dir / "lines" / "a.txt").write_text("1,10\n2,20\n")
    landing.land_system(SPEC, home)
    (home.legacy_dir / "lines" / "b.txt").write_text("3,30\n")
    landing.land_system(SPEC, home)
    table = home.lake_dir / "raw" / "lines__items"
    first = min(table.glob("*.parquet"))
    shutil.copy(first, table / "9999999999.1234567.0.parquet")  # no completed load has this id
    return home


@pytest.mark.spark
def test_raw_views_are_the_same_on_both_engines(tmp_path, monkeypatch):
    """Only completed loads are visible, a declared column no file holds is null, and the load
    ledger is audit.loads: the same rows on DuckDB and on Spark."""
    monkeypatch.setattr(landing, "reader_for", lambda spec: fake_reader.read)
    newer = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
        {"name": "items", "record_key": ["key"], "fields": [
            {"source": "key", "name": "key", "required": True},
            {"source": "value", "name": "value", "type": "integer"},
            {"source": "colour", "name": "colour"}]}]}, "lines.yaml")
    seen = {}
    for name in ("duckdb", "spark"):
        home = _landed_home(tmp_path, name)
        with engine_for(home) as engine:
            assert engine.refresh_raw_views([newer]) == ["lines__items", "lines__loads"]
            items = engine.read_table("raw", "lines__items")
            loads = engine.read_table("audit", "loads")
        rows = sorted(zip(items["key"].to_pylist(), items["value"].to_pylist(), items["colour"].to_pylist()))
        seen[name] = (rows, loads.num_rows, sorted(items.column_names))
    assert seen["duckdb"][0] == [("1", "10", None), ("2", "20", None), ("3", "30", None)]
    assert seen["spark"] == seen["duckdb"]
    assert seen["duckdb"][1] == 2


@pytest.mark.spark
def test_spark_tables_round_trip_and_are_served_to_the_warehouse(tmp_path):
    home = Settings(home=tmp_path, engine="spark")
    data = pa.table({"person_id": ["P1", "P2"], "records": pa.array([3, 1], pa.int64())})
    with engine_for(home) as engine:
        engine.write_table("marts", "people", data)
        engine.write_table("marts", "nobody", data.slice(0, 0))
        engine.spark.sql("create view marts.many as select * from marts.people where records > 1")
        assert engine.tables("marts") == ["many", "nobody", "people"]
        assert engine.read_table("marts", "people").sort_by("person_id").equals(data)
        # A Parquet table is served from the files Spark keeps; a view has none to read.
        folder = engine._parquet_folder("marts", "people")
        assert folder is not None and any(folder.glob("*.parquet"))
        assert engine._parquet_folder("marts", "many") is None
        assert sorted(engine.serve(["marts"])) == ["marts.many", "marts.nobody", "marts.people"]
    served = DuckDBEngine(Settings(home=tmp_path))
    assert served.read_table("marts", "people").sort_by("person_id").to_pylist() == data.to_pylist()
    assert served.read_table("marts", "nobody").schema.names == ["person_id", "records"]
    assert served.read_table("marts", "many").to_pylist() == [{"person_id": "P1", "records": 3}]


def test_spark_without_java_is_a_clear_error(tmp_path):
    """No Java on the PATH: one line saying Spark did not start and what it needs."""
    import subprocess

    script = ("from justice.engine import engine_for\nfrom justice.errors import ConfigError\n"
              "from justice.settings import Settings\n"
              f"engine = engine_for(Settings(home={str(tmp_path)!r}, engine='spark'))\n"
              "try:\n    engine.tables('raw')\nexcept ConfigError as exc:\n    print(exc)\n")
    env = {"PATH": str(tmp_path / "nothing"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False,
                          timeout=120)
    assert "Spark did not start (master local[*]; the spark engine needs Java 17" in done.stdout, done.stderr


@pytest.mark.spark
def test_spark_starts_and_runs_without_log_noise_on_stderr(tmp_path):
    """Starting Spark and running a query writes nothing to stderr but the JVM's own note on the
    vector module: no log4j profile, level or loopback lines, no native-library warning."""
    import subprocess

    script = ("from justice.settings import Settings\nfrom justice.engine import spark\n"
              f"s = spark.session(Settings(home={str(tmp_path)!r}, engine='spark'))\n"
              "print(s.sql('select count(*) as n from range(1000)').collect()[0].n)\n"
              "spark.stop()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=300, env={k: v for k, v in os.environ.items()
                                                         if k != "SPARK_LOCAL_IP"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1000"
    noise = [line for line in done.stderr.splitlines()
             if line.strip() and not line.startswith("WARNING: Using incubator modules")]
    assert noise == [], noise


@pytest.mark.spark
def test_quarantine_failures_are_json_in_the_warehouse_whichever_engine_built_them(tmp_path):
    """Spark has no JSON type: its quarantine model's `failures` is a string until `serve` copies
    it; readers of the warehouse see DuckDB's JSON type (and the same documents) from both."""
    import re

    import duckdb

    from justice.engine.duckdb import DUCKDB_SQL
    from justice.engine.spark import SparkSQL
    from justice.sources.spec import LINEAGE_COLUMNS
    from justice.transform.staging import checked_sql, quarantined_sql

    spec = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
        {"name": "items", "record_key": ["key"], "fields": [
            {"source": "key", "name": "key", "required": True},
            {"source": "value", "name": "value", "type": "integer"}]}]}, "lines.yaml")
    columns = ["key", "value", *LINEAGE_COLUMNS]
    rows = [("1", "ten", "lines", "items", "a.txt", "line 1", "1", "2020-01-01"),
            ("", "2", "lines", "items", "a.txt", "line 2", "1", "2020-01-01")]

    def model(sql: str) -> str:
        """The generated model with dbt's source() and ref() replaced by the test's relations."""
        names = {"lines__items": "raw_items", "lines__items__checked": "checked"}
        sql = re.sub(r"\{\{ config\(.*\) \}\}\n", "", sql)  # how dbt materializes it
        return re.sub(r"\{\{ (?:source\('raw', |ref\()'([a-z_]+)'\) \}\}", lambda m: names[m.group(1)], sql)

    table = spec.tables[0]
    duck_home = Settings(home=tmp_path / "duckdb")
    duck_home.home.mkdir()
    con = duckdb.connect(str(duck_home.warehouse_path))
    con.execute(f"create table raw_items ({', '.join(c + ' varchar' for c in columns)})")
    con.executemany(f"insert into raw_items values ({', '.join('?' * len(columns))})", rows)
    con.execute(f"create view checked as {model(checked_sql(spec, table, DUCKDB_SQL))}")
    con.execute("create schema quarantine")
    con.execute(f"create table quarantine.lines__items as {model(quarantined_sql(spec, table, DUCKDB_SQL))}")
    con.close()

    spark_home = Settings(home=tmp_path / "spark", engine="spark")
    with engine_for(spark_home) as engine:
        spark = engine.spark
        spark.createDataFrame(rows, columns).createOrReplaceTempView("raw_items")
        spark.sql(f"create or replace temp view checked as {model(checked_sql(spec, table, SparkSQL()))}")
        spark.sql("create database if not exists quarantine")
        spark.sql(model(quarantined_sql(spec, table, SparkSQL()))).write.format("parquet").saveAsTable(
            "quarantine.lines__items")
        for view in ("checked", "raw_items"):  # the catalog lists temporary views in every schema
            spark.catalog.dropTempView(view)
        assert engine.serve(["quarantine"]) == ["quarantine.lines__items"]

    seen = {}
    for home in (duck_home, spark_home):
        con = duckdb.connect(str(home.warehouse_path), read_only=True)
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 'lines__items'").fetchall())
        docs = con.execute("select _locator, failures->>'$[0].rule', json_array_length(failures) "
                           "from quarantine.lines__items order by _locator").fetchall()
        con.close()
        seen[home.engine] = (types["failures"], docs)
    assert seen["duckdb"] == ("JSON", [("line 1", "invalid_integer", 1), ("line 2", "missing_required", 1)])
    assert seen["spark"] == seen["duckdb"]


def test_spark_jaro_winkler_batches_score_as_duckdb():
    """The pandas UDFs Spark's linkage scores with (a batch of rows per call) give DuckDB's
    jaro_winkler_similarity to the last bit, null where either side is null, and the best over a
    list as DuckDB's list_max(list_transform(...)) (a null element skipped, an empty or null list
    null); finntan/fintan is the pair on which Splink's own jar differs."""
    import duckdb
    import pandas as pd

    from justice.engine.spark import jaro_winkler_batch, jaro_winkler_best_batch

    names = ["finntan", "fintan", "martha", "marhta", "dwayne", "duane", "", "a", "jo", "joe",
             "o'neill", "oneill", "siân", "sian", "mcdonald", "macdonald", None]
    pairs = [(a, b) for a in names for b in names]
    got = jaro_winkler_batch(pd.Series([a for a, _ in pairs]), pd.Series([b for _, b in pairs])).tolist()
    con = duckdb.connect()
    want = [r[0] for r in con.execute(
        "select jaro_winkler_similarity(a, b) from (select unnest(?) as a, unnest(?) as b)",
        [[a for a, _ in pairs], [b for _, b in pairs]]).fetchall()]
    assert len(got) == len(want) == len(names) ** 2
    assert [None if pd.isna(g) else g for g in got] == want
    assert got[names.index("finntan") * len(names) + names.index("fintan")] > 0.92

    lists = [["finn", None, "fintan"], ["marta"], [], None, [None], ["d", "dwane"]]
    probes = ["fintan", "martha", "x", "y", "z", None]
    got = jaro_winkler_best_batch(pd.Series(lists), pd.Series(probes)).tolist()
    want = [con.execute("select list_max(list_transform(?::varchar[], lambda x: jaro_winkler_similarity(x, ?)))",
                        [xs, y]).fetchall()[0][0] for xs, y in zip(lists, probes)]
    assert [None if pd.isna(g) else g for g in got] == want
    assert got[0] == 1.0
