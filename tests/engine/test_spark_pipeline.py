"""The whole pipeline on Spark gives the answers it gives on DuckDB.

`built_home` is a 3,000-person world ingested, linked and built on DuckDB. A second home holds a
copy of its lake and runs every step on Spark: raw views, staging, link, build and publish. Every
table the readers see (the serving warehouse: staging, quarantine, audit, core, marts) must hold
the same rows on both, the person links must be the same partition of records (person ids may be
named differently), and the published files the same."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from justice.engine import engine_for, spark
from justice.link.run import link
from justice.settings import Settings
from justice.sources.spec import specs_for
from justice.transform.build import build, docs, stage

pytestmark = pytest.mark.spark

COMPARED_SCHEMAS = ("staging", "quarantine", "audit", "core", "marts")

# Columns that record when something ran, not what it found: they differ run to run.
RUN_TIME_COLUMNS = {"built_at", "_built_at", "finished_at", "started_at", "loaded_at"}


@pytest.fixture(scope="module")
def spark_home(built_home, tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("spark-home"), engine="spark")
    shutil.copytree(built_home.lake_dir, settings.lake_dir)
    shutil.copytree(built_home.truth_dir, settings.truth_dir)
    # The same deployment's pseudonym key, so person-level files name people alike.
    shutil.copytree(built_home.secrets_dir, settings.secrets_dir)
    specs = specs_for(settings)
    with engine_for(settings) as engine:
        stage(settings, specs, engine.refresh_raw_views(specs), engine=engine)
    link(settings)
    build(settings)
    yield settings
    spark.stop()


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[tuple[str, str]]:
    return set(con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = ? "
        f"and table_schema in {COMPARED_SCHEMAS}", [catalog]).fetchall())


def _comparable(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> str:
    """The table's rows with run times left out and doubles rounded (Spark and DuckDB may sum in
    another order: the last bits of a double differ, the figure does not)."""
    cols = con.execute("select column_name, data_type from information_schema.columns where "
                       "table_catalog = ? and table_schema = ? and table_name = ? order by column_name",
                       [catalog, schema, table]).fetchall()
    shown = [f"round({c}, 9) as {c}" if kind in ("DOUBLE", "FLOAT") else c
             for c, kind in cols if c not in RUN_TIME_COLUMNS]
    return f"select {', '.join(shown)} from {catalog}.{schema}.{table}"


def test_every_served_table_holds_the_same_rows_on_both_engines(built_home, spark_home):
    con = duckdb.connect()
    con.execute(f"attach '{built_home.warehouse_path}' as d (read_only)")
    con.execute(f"attach '{spark_home.warehouse_path}' as s (read_only)")
    ours, theirs = _tables(con, "d"), _tables(con, "s")
    assert ours == theirs
    assert {s for s, _ in ours} == set(COMPARED_SCHEMAS)
    differing = []
    for schema, table in sorted(ours):
        d, s = _comparable(con, "d", schema, table), _comparable(con, "s", schema, table)
        columns = [r[0] for r in con.execute(f"describe {d}").fetchall()]
        assert columns == [r[0] for r in con.execute(f"describe {s}").fetchall()], (schema, table)
        only_d = con.execute(f"select count(*) from ({d} except all {s})").fetchall()[0][0]
        only_s = con.execute(f"select count(*) from ({s} except all {d})").fetchall()[0][0]
        if only_d or only_s:
            differing.append(f"{schema}.{table}: {only_d} rows only on duckdb, {only_s} only on spark")
    assert differing == []


def test_the_same_people_are_linked(built_home, spark_home):
    con = duckdb.connect()
    con.execute(f"attach '{built_home.warehouse_path}' as d (read_only)")
    con.execute(f"attach '{spark_home.warehouse_path}' as s (read_only)")
    pairs, ours, theirs, records = con.execute("""
        select count(distinct (d.person_id, s.person_id)), count(distinct d.person_id),
               count(distinct s.person_id), count(*)
        from d.linkage.person_links d join s.linkage.person_links s using (system, record_id)""").fetchall()[0]
    both = con.execute("select count(*) from d.linkage.person_links").fetchall()[0][0]
    assert records == both > 0
    # One-to-one between the two namings of persons: the same partition of records.
    assert pairs == ours == theirs


def test_the_published_files_are_the_same(built_home, spark_home):
    def manifest(settings: Settings) -> dict:
        return json.loads((settings.reports_dir / "data" / "manifest.json").read_text())["files"]

    ours = manifest(built_home)
    assert ours and manifest(spark_home) == ours
    for name in ours:
        d = pq.read_table(built_home.reports_dir / "data" / f"{name}.parquet")
        s = pq.read_table(spark_home.reports_dir / "data" / f"{name}.parquet")
        assert s.schema == d.schema, name
        assert sorted(s.to_pylist(), key=repr) == sorted(d.to_pylist(), key=repr), name


def test_dbt_docs_are_generated_from_spark(spark_home):
    out = docs(spark_home)
    catalog = json.loads((out / "catalog.json").read_text())
    built = {node["metadata"]["schema"] + "." + node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"core.person", "marts.proven_reoffending", "staging.prison__offenders"} <= built
    assert (out / "index.html").stat().st_size > 0
