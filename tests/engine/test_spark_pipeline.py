"""The whole pipeline on Spark gives the answers it gives on DuckDB.

`built_home` is a 3,000-person world ingested, linked and built on DuckDB. A second home holds a
copy of its lake and runs every step on Spark: raw views, staging, link, build and publish. Every
table the readers see (the serving warehouse: staging, quarantine, audit, core, marts) must hold
the same rows on both, the person links must be the same partition of records (person ids may be
named differently), and the published files the same.

Linkage on Spark (Splink scoring the pairs there) trains the same model, scores the same pairs with
the same match weights, explains one record alike, and then (last: it changes the Spark home)
runs incrementally and honours clerical decisions."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest
from homes import warehouse_rows as _q

from justice.engine import engine_for, spark
from justice.link import run as link_run
from justice.link.clerical import record_decision
from justice.link.explain import Scorer
from justice.link.run import link
from justice.link.store import open_warehouse
from justice.settings import Settings
from justice.sources.spec import specs_for
from justice.transform.build import build, docs, stage

pytestmark = pytest.mark.spark

COMPARED_SCHEMAS = ("staging", "quarantine", "audit", "core", "marts")

# Columns that record when something ran, not what it found: they differ run to run.
# The candidate pairs a full link run on Spark handed Splink (the spark_home fixture's run).
HANDED: dict[str, int] = {}

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
    # What Splink on Spark is handed to score: the block-key pairs the bound keeps.
    real = link_run.build_blocked_pairs

    def spy(*args, **kwargs):
        HANDED["pairs"] = real(*args, **kwargs)
        return HANDED["pairs"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(link_run, "build_blocked_pairs", spy)
        assert link(settings).mode == "full"
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


def _both(built_home, spark_home) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"attach '{built_home.warehouse_path}' as d (read_only)")
    con.execute(f"attach '{spark_home.warehouse_path}' as s (read_only)")
    return con


def _model(settings) -> dict:
    folder = settings.home / "linkage" / "models"
    return json.loads((folder / json.loads((folder / "current.json").read_text())["model"]).read_text())


def test_spark_trains_the_same_model(built_home, spark_home):
    # To 1e-12: EM's sums on DuckDB's threads may add in another order from one run to the next
    # (0.6012953356735695 and 0.60129533567357 for one m, measured).
    d, s = _model(built_home), _model(spark_home)
    assert s["probability_two_random_records_match"] == pytest.approx(d["probability_two_random_records_match"],
                                                                      rel=1e-12)
    for cd, cs in zip(d["comparisons"], s["comparisons"], strict=True):
        for ld, ls in zip(cd["comparison_levels"], cs["comparison_levels"], strict=True):
            where = (cd["output_column_name"], ld["label_for_charts"])
            for key in ("m_probability", "u_probability"):
                assert (ls.get(key) is None) == (ld.get(key) is None), where
                if ld.get(key) is not None:
                    assert ls[key] == pytest.approx(ld[key], rel=1e-12), where
    assert s["justice"]["sql"] == d["justice"]["sql"]


def test_spark_scores_the_same_pairs_with_the_same_weights(built_home, spark_home):
    con = _both(built_home, spark_home)
    weights = [r[0] for r in con.execute("describe d.linkage.pairs").fetchall() if r[0].startswith("mw_")]
    # A weight per comparison, the event days' among them (the list columns went to Spark).
    assert len(weights) == 10 and "mw_event_dates" in weights
    diff = ", ".join(f"max(abs(d.{w} - s.{w}))" for w in ["match_weight", *weights])
    both, only_d, only_s, *worst = con.execute(f"""
        select count(d.unique_id_l) filter (where s.unique_id_l is not null),
               count(*) filter (where s.unique_id_l is null), count(*) filter (where d.unique_id_l is null),
               {diff}
        from d.linkage.pairs d full join s.linkage.pairs s using (unique_id_l, unique_id_r)""").fetchall()[0]
    assert both > 1000 and only_d == only_s == 0
    assert max(worst) < 1e-9


def test_spark_scores_only_the_pairs_the_bound_keeps(built_home, spark_home):
    """Splink on Spark is handed the block-key pairs whose weight bound reaches keep_weight, as on
    DuckDB, rather than every candidate pair of its own blocking: fewer than the candidates, no
    fewer than the pairs kept."""
    from justice.link.blocking import build_blocked_pairs

    con = open_warehouse(built_home, read_only=True)
    try:
        candidates = build_blocked_pairs(con, _model(built_home), "wh.linkage.records", "memory.main.all_pairs")
    finally:
        con.close()
    kept = _q(spark_home, "select count(*) from linkage.pairs")[0][0]
    assert kept <= HANDED.get("pairs", -1) < candidates


def test_the_review_queue_is_the_same_and_the_index_is_in_spark(built_home, spark_home):
    con = _both(built_home, spark_home)
    queue = "select unique_id_l, unique_id_r, reason from {}.linkage.clerical_review"
    assert con.execute(f"select count(*) from ({queue.format('d')} except {queue.format('s')})").fetchall()[0][0] == 0
    assert con.execute(f"select count(*) from ({queue.format('s')} except {queue.format('d')})").fetchall()[0][0] == 0
    records = con.execute("select count(*) from s.linkage.person_links").fetchall()[0][0]
    assert spark.session(spark_home).table("linkage.person_links").count() == records > 0


def test_explain_on_spark_scores_as_on_duckdb(built_home, spark_home):
    probes = [r[0] for r in _q(built_home, "select unique_id from linkage.records order by hash(unique_id) limit 10")]
    with Scorer(built_home) as d, Scorer(spark_home) as s:
        for probe in probes:
            ours, theirs = d.score(probe, top=20), s.score(probe, top=20)
            assert [(c.unique_id, round(c.match_weight, 9)) for c in theirs.candidates] == \
                   [(c.unique_id, round(c.match_weight, 9)) for c in ours.candidates], probe
    # Against the pairs Spark scored: the one-record scorer uses the same model definitions.
    left, right, weight = _q(spark_home, "select unique_id_l, unique_id_r, match_weight from linkage.pairs "
                                         "order by match_weight desc limit 1")[0]
    with Scorer(spark_home) as s:
        found = [c for c in s.score(right, top=500).candidates if c.unique_id == left]
    assert found and found[0].match_weight == pytest.approx(weight, abs=1e-9)


# Last in the file (tests run in file order, one file to a worker): it changes the Spark home.
def test_incremental_run_and_clerical_decisions_on_spark(spark_home):
    before = set(_q(spark_home, "select unique_id_l, unique_id_r, round(match_weight, 9) from linkage.pairs"))
    people = _q(spark_home, "select unique_id, person_id from linkage.person_links")
    # As if 60 records had changed since the last run: they are scored again, on Spark, against
    # the others (predict_between) and among themselves (predict_within).
    con = open_warehouse(spark_home)
    try:
        con.execute("""update linkage.index_records set fingerprint = 'changed'
                       where unique_id in (select unique_id from linkage.records order by hash(unique_id) limit 60)""")
    finally:
        con.close()
    result = link(spark_home)
    assert (result.mode, result.changed_records) == ("incremental", 60)
    assert result.pairs_scored > 0
    after = set(_q(spark_home, "select unique_id_l, unique_id_r, round(match_weight, 9) from linkage.pairs"))
    assert after == before
    assert sorted(_q(spark_home, "select unique_id, person_id from linkage.person_links")) == sorted(people)

    a, b = _q(spark_home, """
        select p.unique_id_l, p.unique_id_r from linkage.pairs p
        join linkage.person_links l on l.unique_id = p.unique_id_l
        join linkage.person_links r on r.unique_id = p.unique_id_r
        where l.person_id = r.person_id and l.cluster_size = 2 and p.match_weight >= 6
        order by p.unique_id_l limit 1""")[0]
    # Two people alone, with no identifiers that would keep them apart whatever a reviewer says.
    c, d = _q(spark_home, """
        select l.unique_id, r.unique_id from linkage.person_links l, linkage.person_links r,
             linkage.records lr, linkage.records rr
        where l.cluster_size = 1 and r.cluster_size = 1 and l.unique_id < r.unique_id
          and lr.unique_id = l.unique_id and rr.unique_id = r.unique_id
          and (lr.pnc_core is null or rr.pnc_core is null) and (lr.cro_core is null or rr.cro_core is null)
        order by l.unique_id, r.unique_id limit 1""")[0]
    record_decision(spark_home, a, b, "non_match", "tester", "different people")
    record_decision(spark_home, d, c, "match", "tester")
    assert link(spark_home).mode == "incremental"
    ids = dict(_q(spark_home, "select unique_id, person_id from linkage.person_links "
                              "where unique_id in (?, ?, ?, ?)", [a, b, c, d]))
    assert ids[a] != ids[b]
    assert ids[c] == ids[d]
    # The index in Spark, which the dbt models read, holds the decisions too.
    rows = spark.session(spark_home).sql(
        f"select unique_id, person_id from linkage.person_links where unique_id in ('{a}', '{b}')").collect()
    assert len({r.person_id for r in rows}) == 2
