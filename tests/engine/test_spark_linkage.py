"""Linkage on Spark gives the answers it gives on DuckDB.

A 600-person world is ingested and linked on DuckDB; a copy of its home (without the trained
model) is linked again with the Spark engine, where Splink scores the pairs on Spark. The model,
every scored pair's match weight and the partition of records into persons must be the same;
then on the Spark home an incremental run (records whose fingerprint changed, scored on Spark
against the rest), clerical decisions and one-record scoring (explain) must work as they do on
DuckDB."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from homes import copy_home

from justice.engine import spark
from justice.link.clerical import record_decision
from justice.link.explain import Scorer
from justice.link.run import link
from justice.link.warehouse import open_warehouse
from justice.settings import Settings

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def duckdb_home(tmp_path_factory):
    from justice.ingest.run import ingest
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = tmp_path_factory.mktemp("link-duckdb")
    simulate_to(SimulationParams(persons=600, seed=23), out)
    settings = Settings(home=out)
    ingest(settings)
    link(settings)
    return settings


@pytest.fixture(scope="module")
def spark_home(duckdb_home, tmp_path_factory):
    copied = copy_home(duckdb_home, tmp_path_factory.mktemp("link-spark"))
    # Spark trains its own model (from the same records: see docs/engines.md).
    shutil.rmtree(copied.home / "linkage" / "models")
    settings = Settings(home=copied.home, engine="spark")
    result = link(settings)
    assert result.mode == "full"
    yield settings
    spark.stop()


def _both(duckdb_home, spark_home) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"attach '{duckdb_home.warehouse_path}' as d (read_only)")
    con.execute(f"attach '{spark_home.warehouse_path}' as s (read_only)")
    return con


def _q(settings, sql: str, params=None) -> list[tuple]:
    con = open_warehouse(settings, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _model(settings) -> dict:
    folder = settings.home / "linkage" / "models"
    return json.loads((folder / json.loads((folder / "current.json").read_text())["model"]).read_text())


def test_spark_trains_the_same_model(duckdb_home, spark_home):
    d, s = _model(duckdb_home), _model(spark_home)
    assert s["probability_two_random_records_match"] == d["probability_two_random_records_match"]
    for cd, cs in zip(d["comparisons"], s["comparisons"], strict=True):
        for ld, ls in zip(cd["comparison_levels"], cs["comparison_levels"], strict=True):
            assert (ls.get("m_probability"), ls.get("u_probability")) == \
                   (ld.get("m_probability"), ld.get("u_probability")), (cd["output_column_name"], ld["label_for_charts"])
    assert s["justice"]["sql"] == d["justice"]["sql"]


def test_spark_scores_the_same_pairs_with_the_same_weights(duckdb_home, spark_home):
    con = _both(duckdb_home, spark_home)
    weights = [r[0] for r in con.execute("describe d.linkage.pairs").fetchall() if r[0].startswith("mw_")]
    assert len(weights) == 9
    diff = ", ".join(f"max(abs(d.{w} - s.{w}))" for w in ["match_weight", *weights])
    both, only_d, only_s, *worst = con.execute(f"""
        select count(d.unique_id_l) filter (where s.unique_id_l is not null),
               count(*) filter (where s.unique_id_l is null), count(*) filter (where d.unique_id_l is null),
               {diff}
        from d.linkage.pairs d full join s.linkage.pairs s using (unique_id_l, unique_id_r)""").fetchall()[0]
    assert both > 1000 and only_d == only_s == 0
    assert max(worst) < 1e-9


def test_spark_links_the_same_people(duckdb_home, spark_home):
    con = _both(duckdb_home, spark_home)
    pairs, ours, theirs, records = con.execute("""
        select count(distinct (d.person_id, s.person_id)), count(distinct d.person_id),
               count(distinct s.person_id), count(*)
        from d.linkage.person_links d join s.linkage.person_links s using (system, record_id)""").fetchall()[0]
    assert records == con.execute("select count(*) from d.linkage.person_links").fetchall()[0][0] > 0
    assert pairs == ours == theirs
    # The review queue too, and the index the dbt models read is in Spark.
    assert con.execute("select count(*) from (select unique_id_l, unique_id_r from d.linkage.clerical_review "
                       "except select unique_id_l, unique_id_r from s.linkage.clerical_review)").fetchall()[0][0] == 0
    session = spark.session(spark_home)
    assert session.table("linkage.person_links").count() == records


def test_explain_on_spark_scores_as_on_duckdb(duckdb_home, spark_home):
    probes = [r[0] for r in _q(duckdb_home, "select unique_id from linkage.records order by hash(unique_id) limit 10")]
    with Scorer(duckdb_home) as d, Scorer(spark_home) as s:
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
