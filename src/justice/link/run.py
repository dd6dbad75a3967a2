"""`justice link`: standardise, (train,) predict, cluster and write the master person index.

Tables written in the warehouse's `linkage` schema, all in one transaction (a failure leaves the
previous run's tables whole):

* `records`: every person-bearing record, standardised (see standardise.py);
* `pairs`: scored candidate pairs at or above the model's `keep_weight`, with each comparison's
  weight in the score (mw_<comparison>, term-frequency adjustment included);
* `person_links`: one row per record: `system`, `record_id` (the keys of truth/records.parquet),
  `person_id`, and the cluster's evidence;
* `clerical_review`: pairs with no decision yet, side by side: those in the uncertainty band, and
  those with a linking weight that a hard negative, the clustering rules or a later step put in
  two people;
* `clerical_decisions`: reviewers' decisions (never rebuilt; honoured on every run);
* `person_id_changes`: ids merged into or split from others, per run;
* `runs`: one row per run (mode, model version, counts, seconds);
* `block_keys`: each record's key per blocking rule, for scoring one record fast (blocking.py).

The first run, a `--full` run, and a run after the model spec changed score every candidate pair.
Otherwise a run is incremental: only records that are new or whose linkage fields changed are
scored, against the existing index (`predict_between`) and among themselves (`predict_within`),
with no retraining; pairs between unchanged records are kept from the last run.

Splink scores the pairs on the engine in use (Splink's DuckDB or Spark API: `Engine.splink_api`);
everything else runs on DuckDB over the serving warehouse on every engine, where the state lives
(docs/linkage.md, "On either engine"), and the tables the dbt models read are then copied into
the engine.

This module runs the steps; the pieces it calls are: standardise.py (records), model.py (train,
load, score), persons.py (clustering under constraints, then histories.py: people matched by their
histories, then corroborate.py: people sharing an identifier that their records corroborate, then
cluster.rejoin_holders: a record to the person who holds its identifier, then corroborate.py
again, then strangers.py: a record only its name holds among another's identifiers; stable person
ids), clerical.py (decisions and the review queue), blocking.py (block keys),
ledger.py (`runs`) and store.py (opening the warehouse for linkage).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from justice.engine import Engine, LinkageSQL, engine_for
from justice.link import model as mdl
from justice.link.blocking import BlockKeysInBackground, all_rules_keyed, build_blocked_pairs
from justice.link.clerical import ensure_decisions_table, write_review_queue
from justice.link.explain import weight_bound_tightening, weight_upper_bound
from justice.link.ledger import last_run, record_run
from justice.link.persons import constraints, hard_negative_sql, scalar_columns, write_person_links
from justice.link.standardise import standardise
from justice.link.store import open_warehouse, table_exists
from justice.settings import Settings

# The linkage tables the dbt models read (transform/models/linkage_sources.yml).
LINKAGE_TABLES_READ_BY_MODELS = ("person_links", "records")


@dataclass
class LinkResult:
    run_id: str
    mode: str
    model_version: int
    model_path: Path
    records: int
    changed_records: int
    pairs_scored: int
    links: int
    persons: int
    review_pairs: int
    seconds: dict[str, float] = field(default_factory=dict)


UNSEEN_ELSE_M = 1e-4


def _untrained_to_neutral(model: dict) -> list[str]:
    """Levels training never saw: an ELSE level never seen among matches gets m = 1 in 10,000
    (disagreement is rare among matches, which is why none was seen); any other gets m = u
    (weight 0) rather than Splink's arbitrary default. Returns the levels so set."""
    neutral = []
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if m is None and u is not None and level["sql_condition"].strip().upper() == "ELSE":
                level["m_probability"] = UNSEEN_ELSE_M
            elif m is None and u is None:
                level["m_probability"] = level["u_probability"] = 1e-6
            elif m is None:
                level["m_probability"] = u
            elif u is None:
                level["u_probability"] = m
            else:
                continue
            neutral.append(f"{comp['output_column_name']}: {level['label_for_charts']}")
    return neutral


def _weight_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Per comparison, its weight in the pair's score (term-frequency adjustment included)."""
    cols = {r[0] for r in con.execute(f"describe {table}").fetchall()}
    names = sorted(c[3:] for c in cols if c.startswith("mw_") and not c.startswith("mw_tf_adj_"))
    return [f"mw_{n} + coalesce(mw_tf_adj_{n}, 0) as mw_{n}" if f"mw_tf_adj_{n}" in cols else f"mw_{n}"
            for n in names]


def link(settings: Settings, *, retrain: bool = False, full: bool = False,
         progress: Callable[[str], None] = lambda _: None, sources: dict | None = None,
         spec: dict | None = None) -> LinkResult:
    """Link every person-bearing record in the warehouse to a person.

    `sources` (default link/sources.yaml) says where the records are; `spec` (default
    link/model.yaml) is the model. Both exist as arguments for other datasets (the FEBRL
    benchmark); the pipeline uses the defaults."""
    spec = spec if spec is not None else mdl.load_model_spec()
    with engine_for(settings) as engine:
        try:
            return _link(engine, settings, spec, retrain=retrain, full=full, progress=progress,
                         sources=sources)
        finally:
            engine.drop_linkage_inputs()


def _link(engine: Engine, settings: Settings, spec: dict, *, retrain: bool, full: bool,
          progress: Callable[[str], None], sources: dict | None) -> LinkResult:
    """link(), on `engine`."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    run_id = dt.datetime.now(dt.UTC).strftime("link-%Y%m%dT%H%M%S%f")
    con = open_warehouse(settings)
    try:
        progress("standardising records")
        t = time.perf_counter()
        con.execute("create schema if not exists linkage")
        n = standardise(con, sources)
        timings["standardise"] = time.perf_counter() - t
        ensure_decisions_table(con)

        loaded = None if retrain else mdl.load_model(settings.home)
        if loaded is not None and loaded[0]["justice"].get("spec_digest") != mdl.spec_digest(spec):
            progress("the model spec changed: retraining")
            loaded = None
        t = time.perf_counter()
        tf_done = False
        if loaded is None:
            mdl.compute_tf_tables(con, "linkage.records", mdl.tf_columns(spec))
            tf_done = True
            model = mdl.train(con, spec, "wh.linkage.records", progress=progress)
            model["justice"]["neutral_levels"] = _untrained_to_neutral(model)
            model_path = mdl.save_model(settings.home, model)
            full = True
        else:
            model, model_path = loaded
        timings["train"] = time.perf_counter() - t
        # The thresholds belong to the model version: set label-free when it was trained, or from
        # a clerical sample by `justice link calibrate` (a new version); never from the spec alone.
        thresholds = model["justice"]["thresholds"]

        tf_cols = mdl.tf_columns(model)
        incremental = (not full and table_exists(con, "linkage", "index_records")
                       and table_exists(con, "linkage", "pairs")
                       and all(table_exists(con, "linkage", f"tf_{c}") for c in tf_cols))
        if not incremental and not (tf_done and tf_cols == mdl.tf_columns(spec)):
            # (Not again when training has just computed them from these records.)
            mdl.compute_tf_tables(con, "linkage.records", tf_cols)
        con.execute("""create or replace table memory.main.link_changed_ids as
                       select unique_id from linkage.records""" + ("" if not incremental else """
                       where (unique_id, fingerprint) not in (select unique_id, fingerprint from linkage.index_records)"""))
        changed = con.execute("select count(*) from memory.main.link_changed_ids").fetchall()[0][0]
        if incremental:
            removed = con.execute("select count(*) from linkage.index_records where unique_id not in "
                                  "(select unique_id from linkage.records)").fetchall()[0][0]
            mode = "incremental"
        else:
            removed = 0
            mode = "full"

        decisions = con.execute("select count(*), max(decided_at) from linkage.clerical_decisions").fetchall()[0]
        last = last_run(con)
        if (incremental and changed == 0 and removed == 0 and last is not None
                and last["model_version"] == model["justice"]["version"]
                and (last.get("decisions"), last.get("decisions_at")) == (decisions[0], decisions[1])):
            # Nothing the index depends on has changed: keep it, record the run, and stop.
            progress("nothing changed since the last run")
            con.execute("create index if not exists link_records_record_no on linkage.records (record_no)")
            timings["total"] = time.perf_counter() - started
            record_run(con, run_id, "unchanged", model, n, 0, 0, 0, last["links"], last["persons"],
                       last["review_pairs"], timings["total"], decisions)
            return LinkResult(run_id, "unchanged", model["justice"]["version"], model_path, n, 0, 0,
                              last["links"], last["persons"], last["review_pairs"], timings)

        progress(f"scoring candidate pairs ({mode}, {changed:,} new or changed records)")
        t = time.perf_counter()
        if incremental and changed == 0:
            # Nothing new to score: an empty table shaped like the pairs.
            con.execute("create or replace table memory.main.link_predictions as "
                        "select * from linkage.pairs limit 0")
            predictions = "memory.main.link_predictions"
        else:
            predictions = _predict(engine, con, model, incremental, keep=float(thresholds["keep_weight"]),
                                   progress=progress)
        timings["predict"] = time.perf_counter() - t
        pairs_scored = con.execute(f"select count(*) from {predictions}").fetchall()[0][0]

        t = time.perf_counter()
        progress("clustering")
        block_keys = None
        con.execute("begin transaction")
        try:
            # The one-record index's block keys depend only on the records: hashed and sorted on
            # a second connection while this one clusters (most of it single-threaded Python).
            block_keys = BlockKeysInBackground(con, model)
            weights = _weight_columns(con, predictions)
            cols = "unique_id_l, unique_id_r, match_weight, match_probability, " + ", ".join(weights)
            kept = "unique_id_l, unique_id_r, match_weight, match_probability, " + ", ".join(
                w.rsplit(" as ", 1)[-1] for w in weights)
            if incremental:
                con.execute(f"""
                    create or replace table linkage.pairs as
                    select {kept} from linkage.pairs
                    where unique_id_l not in (select unique_id from memory.main.link_changed_ids)
                      and unique_id_r not in (select unique_id from memory.main.link_changed_ids)
                      and unique_id_l in (select unique_id from linkage.records)
                      and unique_id_r in (select unique_id from linkage.records)
                    union all
                    select {cols} from {predictions}
                """)
            else:
                con.execute(f"create or replace table linkage.pairs as select {cols} from {predictions}")
            # The pairs a hard-negative rule keeps apart, found once: clustering and the review
            # queue both read them.
            rules = constraints(spec)
            con.execute("create or replace temp table _link_hard_pairs as "
                        + hard_negative_sql(rules.get("hard_negatives", []), scalar_columns(con)))
            links, persons = write_person_links(con, float(thresholds["match_weight"]), run_id, rules,
                                                hard="_link_hard_pairs")
            review = write_review_queue(con, thresholds, rules, hard="_link_hard_pairs")
            con.execute("drop table _link_hard_pairs")
            con.execute("create or replace table linkage.index_records as "
                        "select unique_id, fingerprint from linkage.records")
            block_keys.install(con)
            # Point lookups for one-record scoring (justice link explain).
            con.execute("create index link_records_record_no on linkage.records (record_no)")
            con.execute("create index link_person_links_unique_id on linkage.person_links (unique_id)")
            timings["cluster"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - started
            record_run(con, run_id, mode, model, n, changed, removed, pairs_scored, links, persons, review,
                       timings["total"], decisions)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            if block_keys is not None:
                block_keys.close()
        con.execute(f"drop table if exists {predictions}")
    finally:
        con.close()
    # The index lives in the serving warehouse (the web app, explain and clerical review read
    # and write it there); an engine that builds elsewhere gets the tables the models read.
    engine.load_from_warehouse("linkage", LINKAGE_TABLES_READ_BY_MODELS)
    return LinkResult(run_id, mode, model["justice"]["version"], model_path, n, changed, pairs_scored,
                      links, persons, review, timings)


def _predict(engine: Engine, con: duckdb.DuckDBPyConnection, model: dict, incremental: bool,
             keep: float, progress: Callable[[str], None] = lambda _: None) -> str:
    """Score candidate pairs with Splink on `engine`; returns the name of a memory table (in
    `con`) holding the pairs at or above `keep`."""
    settings = mdl.splink_part(model, engine.linkage_sql)
    linker, db_api = mdl.make_linker(engine, con, "wh.linkage.records", settings)
    mdl.register_tf_tables(engine, con, linker, db_api, mdl.tf_columns(model))
    if not incremental:
        if settings["link_type"] == "dedupe_only" and all_rules_keyed(model):
            # The candidate pairs by block keys (blocking.build_blocked_pairs: the pairs Splink's
            # blocking finds, found faster, less those whose weight cannot reach `keep`), scored
            # by Splink's own predict on the engine: on DuckDB a view of this connection's table,
            # on Spark the table handed over as Parquet (three columns: a copy of seconds, where
            # Splink's blocking on Spark joined strings per rule and scored every candidate).
            # The bound runs here, on DuckDB: from the model's DuckDB conditions, whatever the
            # engine (its own dialect's would not parse here, and the Spark-dialect model gave no
            # bound at all).
            duck_model = mdl.splink_part(model, LinkageSQL())
            handed = build_blocked_pairs(con, model, "wh.linkage.records", "memory.main.link_blocked_pairs",
                                         bound=weight_upper_bound(duck_model), keep=keep,
                                         tightening=weight_bound_tightening(duck_model))
            progress(f"Splink scores {handed:,} candidate pairs whose weight bound reaches {keep}")
            pairs = engine.splink_input(db_api, con, "link_blocked_pairs",
                                        "select * from memory.main.link_blocked_pairs")
            linker.table_management.register_blocked_pairs_for_predict(pairs)
        out = linker.inference.predict(threshold_match_weight=keep, warning_mode="never")
        con.execute("drop table if exists memory.main.link_blocked_pairs")
        engine.splink_output(out, con, "memory.main.link_predictions")
        return "memory.main.link_predictions"
    changed = engine.splink_input(
        db_api, con, "link_changed", "select * from wh.linkage.records where unique_id in "
        "(select unique_id from memory.main.link_changed_ids)", table_name="link_changed_in")
    unchanged = engine.splink_input(
        db_api, con, "link_unchanged", "select * from wh.linkage.records where unique_id not in "
        "(select unique_id from memory.main.link_changed_ids)", table_name="link_unchanged_in")
    between = linker.inference.predict_between(unchanged, changed, threshold_match_weight=keep,
                                               warning_mode="never")
    engine.splink_output(between, con, "memory.main.link_between")
    within = linker.inference.predict_within(changed, threshold_match_weight=keep, warning_mode="never")
    engine.splink_output(within, con, "memory.main.link_within")
    con.execute("""create or replace table memory.main.link_predictions as
                   select * from memory.main.link_between union all by name select * from memory.main.link_within""")
    con.execute("drop table memory.main.link_between")
    con.execute("drop table memory.main.link_within")
    # Pairs keep the lower id on the left, as a full run's do.
    con.execute("""update memory.main.link_predictions set unique_id_l = unique_id_r, unique_id_r = unique_id_l
                   where unique_id_l > unique_id_r""")
    return "memory.main.link_predictions"
