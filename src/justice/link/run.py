"""`justice link`: standardise, (train,) predict, cluster and write the master person index.

Tables written in the warehouse's `linkage` schema, all in one transaction (a failure leaves the
previous run's tables whole):

* `records`: every person-bearing record, standardised (see standardise.py);
* `pairs`: scored candidate pairs at or above the model's `keep_weight`, with each comparison's
  weight in the score (mw_<comparison>, term-frequency adjustment included);
* `person_links`: one row per record: `system`, `record_id` (the keys of truth/records.parquet),
  `person_id`, and the cluster's evidence;
* `clerical_review`: pairs in the uncertainty band with no decision yet, side by side;
* `clerical_decisions`: reviewers' decisions (never rebuilt; honoured on every run);
* `person_id_changes`: ids merged into or split from others, per run;
* `runs`: one row per run (mode, model version, counts, seconds);
* `block_keys`: each record's key per blocking rule, for scoring one record fast (blocking.py).

The first run, a `--full` run, and a run after the model spec changed score every candidate pair.
Otherwise a run is incremental: only records that are new or whose linkage fields changed are
scored, against the existing index (`predict_between`) and among themselves (`predict_within`),
with no retraining; pairs between unchanged records are kept from the last run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from justice.engine import engine_for
from justice.errors import ConfigError, TransformError
from justice.link import cluster as clustering
from justice.link import model as mdl
from justice.link.blocking import build_block_keys
from justice.link.standardise import standardise
from justice.settings import Settings

DECISIONS = ("match", "non_match")

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


def open_warehouse(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the warehouse attached as `wh` and in use.

    Splink's working tables then live in memory, not in the warehouse file."""
    path = settings.home / "warehouse.duckdb"
    if not path.exists():
        raise ConfigError(f"no warehouse at {path}: run `justice ingest` first")
    con = duckdb.connect()
    con.execute(f"attach '{path}' as wh {'(read_only)' if read_only else ''}").fetchall()
    con.execute("use wh").fetchall()
    return con


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_catalog = 'wh' "
                       "and table_schema = ? and table_name = ?", [schema, table]).fetchall()[0][0] > 0


def ensure_decisions_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists linkage")
    con.execute("""
        create table if not exists linkage.clerical_decisions (
            unique_id_l varchar not null, unique_id_r varchar not null,
            decision varchar not null check (decision in ('match', 'non_match')),
            reviewer varchar not null, decided_at timestamp not null, note varchar,
            primary key (unique_id_l, unique_id_r))
    """)


def record_decision(settings: Settings, a: str, b: str, decision: str, reviewer: str,
                    note: str | None = None) -> None:
    """Store a reviewer's decision on the pair of records `a` and `b` (``system:record_id``)."""
    if decision not in DECISIONS:
        raise ConfigError(f"decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    if not reviewer.strip():
        raise ConfigError("a decision needs the reviewer's name")
    if a == b:
        raise ConfigError("a decision needs two different records")
    con = open_warehouse(settings)
    try:
        ensure_decisions_table(con)
        known = con.execute("select unique_id from linkage.records where unique_id in (?, ?)", [a, b]).fetchall() \
            if _exists(con, "linkage", "records") else []
        missing = {a, b} - {r[0] for r in known}
        if missing:
            raise ConfigError(f"no such record(s) in linkage.records: {', '.join(sorted(missing))} "
                              "(ids are system:record_id, e.g. crown:10371735)")
        lo, hi = sorted((a, b))
        con.execute("insert or replace into linkage.clerical_decisions values (?, ?, ?, ?, ?, ?)",
                    [lo, hi, decision, reviewer.strip(), dt.datetime.now(dt.UTC).replace(tzinfo=None), note])
    finally:
        con.close()


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
    timings: dict[str, float] = {}
    started = time.perf_counter()
    run_id = dt.datetime.now(dt.UTC).strftime("link-%Y%m%dT%H%M%S%f")
    spec = spec if spec is not None else mdl.load_model_spec()
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
        if loaded is None:
            mdl.compute_tf_tables(con, "linkage.records", mdl.tf_columns(spec))
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
        incremental = (not full and _exists(con, "linkage", "index_records") and _exists(con, "linkage", "pairs")
                       and all(_exists(con, "linkage", f"tf_{c}") for c in tf_cols))
        if not incremental:
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
        last = _last_run(con)
        if (incremental and changed == 0 and removed == 0 and last is not None
                and last["model_version"] == model["justice"]["version"]
                and (last.get("decisions"), last.get("decisions_at")) == (decisions[0], decisions[1])):
            # Nothing the index depends on has changed: keep it, record the run, and stop.
            progress("nothing changed since the last run")
            con.execute("create index if not exists link_records_record_no on linkage.records (record_no)")
            timings["total"] = time.perf_counter() - started
            _record_run(con, run_id, "unchanged", model, n, 0, 0, 0, last["links"], last["persons"],
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
            predictions = _predict(con, model, incremental, keep=float(thresholds["keep_weight"]))
        timings["predict"] = time.perf_counter() - t
        pairs_scored = con.execute(f"select count(*) from {predictions}").fetchall()[0][0]

        t = time.perf_counter()
        progress("clustering")
        con.execute("begin transaction")
        try:
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
            links, persons = _cluster_and_write(con, float(thresholds["match_weight"]), run_id, constraints(spec))
            review = _write_review(con, thresholds, constraints(spec))
            con.execute("create or replace table linkage.index_records as "
                        "select unique_id, fingerprint from linkage.records")
            build_block_keys(con, model)
            # Point lookups for one-record scoring (justice link explain).
            con.execute("create index link_records_record_no on linkage.records (record_no)")
            con.execute("create index link_person_links_unique_id on linkage.person_links (unique_id)")
            timings["cluster"] = time.perf_counter() - t
            timings["total"] = time.perf_counter() - started
            _record_run(con, run_id, mode, model, n, changed, removed, pairs_scored, links, persons, review,
                        timings["total"], decisions)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        con.execute(f"drop table if exists {predictions}")
    finally:
        con.close()
    # Linkage itself runs on DuckDB over the served staging tables on every engine for now
    # (docs/engines.md); an engine that builds elsewhere gets the index the models read.
    with engine_for(settings) as engine:
        engine.load_from_warehouse("linkage", LINKAGE_TABLES_READ_BY_MODELS)
    return LinkResult(run_id, mode, model["justice"]["version"], model_path, n, changed, pairs_scored,
                      links, persons, review, timings)


RUN_COLUMNS = ("run_id varchar, finished_at timestamp, mode varchar, model_version integer, records bigint, "
               "changed_records bigint, removed_records bigint, pairs_scored bigint, links bigint, persons bigint, "
               "review_pairs bigint, seconds double, decisions bigint, decisions_at timestamp")


def _record_run(con, run_id, mode, model, n, changed, removed, pairs_scored, links, persons, review, seconds,
                decisions) -> None:
    con.execute(f"create table if not exists linkage.runs ({RUN_COLUMNS})")
    for column in RUN_COLUMNS.split(", "):  # a home linked by an earlier version lacks newer columns
        con.execute(f"alter table linkage.runs add column if not exists {column}")
    con.execute("insert into linkage.runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None), mode, model["justice"]["version"],
                 n, changed, removed, pairs_scored, links, persons, review, seconds, decisions[0], decisions[1]])


def _last_run(con) -> dict | None:
    """The latest run that wrote the index (not an 'unchanged' one), or None."""
    if not _exists(con, "linkage", "runs") or not _exists(con, "linkage", "person_links"):
        return None
    cur = con.execute("select * from linkage.runs order by finished_at desc limit 1")
    rows = cur.fetchall()
    return dict(zip([d[0] for d in cur.description], rows[0])) if rows else None


def _predict(con: duckdb.DuckDBPyConnection, model: dict, incremental: bool, keep: float) -> str:
    """Score candidate pairs; returns the name of a memory table holding them."""
    settings = mdl.splink_part(model)
    linker, db_api = mdl.make_linker(con, "wh.linkage.records", settings)
    mdl.register_tf_tables(linker, db_api, mdl.tf_columns(model))
    cur = db_api.duckdb_con
    if not incremental:
        out = linker.inference.predict(threshold_match_weight=keep, warning_mode="never")
        cur.execute(f"create or replace table memory.main.link_predictions as select * from {out.physical_name}")
        out.drop_table_from_database_and_remove_from_cache()
        return "memory.main.link_predictions"
    cur.execute("create or replace temp view link_changed as select * from wh.linkage.records "
                "where unique_id in (select unique_id from memory.main.link_changed_ids)").fetchall()
    cur.execute("create or replace temp view link_unchanged as select * from wh.linkage.records "
                "where unique_id not in (select unique_id from memory.main.link_changed_ids)").fetchall()
    changed = db_api.register("link_changed", table_name="link_changed_in")
    unchanged = db_api.register("link_unchanged", table_name="link_unchanged_in")
    between = linker.inference.predict_between(unchanged, changed, threshold_match_weight=keep,
                                               warning_mode="never")
    within = linker.inference.predict_within(changed, threshold_match_weight=keep, warning_mode="never")
    cur.execute(f"""create or replace table memory.main.link_predictions as
                    select * from {between.physical_name} union all by name select * from {within.physical_name}""")
    # Pairs keep the lower id on the left, as a full run's do.
    cur.execute("""update memory.main.link_predictions set unique_id_l = unique_id_r, unique_id_r = unique_id_l
                   where unique_id_l > unique_id_r""")
    return "memory.main.link_predictions"


def constraints(spec: dict) -> dict:
    """The model spec's clustering rules: `never_link` identifiers, `hard_negatives`, and
    `identifier_links` (identifiers whose valid exact agreement is an edge of its own)."""
    return {"never_link": list(spec.get("never_link", []) or []),
            "hard_negatives": list(spec.get("hard_negatives", []) or []),
            "identifier_links": list(spec.get("identifier_links", []) or [])}


def _identifier_edges_sql(rules: list[dict], weight: float) -> str:
    """Pairs of records holding the same valid value of an `identifier_links` column, as edges of
    `weight` (the link threshold: the weakest edge, so in a component that breaks a constraint
    every model link is placed first and an identifier link only where it conflicts with none)."""
    parts = [f"""select l.unique_id as unique_id_l, r.unique_id as unique_id_r,
                        {float(weight)}::double as weight, 'same {rule["column"]}' as basis,
                        '{rule["column"]}:' || l.{rule["column"]} as value
                 from linkage.records l join linkage.records r
                 on l.{rule["column"]} = r.{rule["column"]} and l.unique_id < r.unique_id
                 where l.{rule["valid"]} and r.{rule["valid"]}""" for rule in rules]
    return " union all ".join(parts) if parts else (
        "select null::varchar as unique_id_l, null::varchar as unique_id_r, null::double as weight, "
        "null::varchar as basis, null::varchar as value where false")


def _supported(n: int, left: np.ndarray, right: np.ndarray, id_left: np.ndarray, id_right: np.ndarray,
               id_value: np.ndarray) -> np.ndarray:
    """Which identifier edges to keep: those joining two groups of records (the components of the
    other edges) where each group is one record or holds the shared value on two records or more.
    A value keyed once by mistake (another person's PNC ID) or given with a borrowed identity sits
    on one record of a group that the names hold together; joining on it would merge two people.
    An alias record alone, or two groups of one person that both carry the id, join."""
    if not len(id_left):
        return np.zeros(0, bool)
    comp = clustering.components(n, left, right)
    size = np.bincount(comp, minlength=comp.max() + 1 if n else 0)
    holders: dict[tuple[int, str], set[int]] = {}
    for a, b, v in zip(id_left.tolist(), id_right.tolist(), id_value.tolist()):
        holders.setdefault((int(comp[a]), v), set()).add(a)
        holders.setdefault((int(comp[b]), v), set()).add(b)
    keep = np.zeros(len(id_left), bool)
    for i, (a, b, v) in enumerate(zip(id_left.tolist(), id_right.tolist(), id_value.tolist())):
        ca, cb = int(comp[a]), int(comp[b])
        keep[i] = ca == cb or all(size[c] == 1 or len(holders[(c, v)]) >= 2 for c in (ca, cb))
    return keep


def _hard_negative_sql(rules: list[dict]) -> str:
    """Scored pairs that a hard-negative rule says are different people, with the rule's name."""
    if not rules:
        return "select null::varchar as unique_id_l, null::varchar as unique_id_r, null::varchar as rule where false"
    parts = [f"""select p.unique_id_l, p.unique_id_r, '{r["name"].replace("'", "''")}' as rule
                from linkage.pairs p join linkage.records l on l.unique_id = p.unique_id_l
                join linkage.records r on r.unique_id = p.unique_id_r where {r["sql"]}""" for r in rules]
    return " union all ".join(parts)


def cluster_labels(con: duckdb.DuckDBPyConnection, threshold: float, rules: dict) -> dict:
    """Cluster linkage.records by linkage.pairs at `threshold` (plus system aliases and clerical
    decisions), under the constraints of `rules` (see `constraints`), without writing anything.
    Returns the nodes' unique ids (sorted), their cluster labels and the edges used.

    A pair a hard-negative rule matches is not an edge and may not share a cluster, unless a
    reviewer decided it is a match."""
    never_link = rules.get("never_link", [])
    nodes = con.sql("select unique_id from linkage.records order by unique_id").to_arrow_table()
    uid = nodes.column("unique_id").to_numpy(zero_copy_only=False).astype(object)
    n = len(uid)
    con.register("_nodes", pa.table({"unique_id": nodes.column("unique_id"), "node": pa.array(np.arange(n))}))
    try:
        edges = con.sql(f"""
            with decided as (select * from linkage.clerical_decisions),
            hard as ({_hard_negative_sql(rules.get("hard_negatives", []))}),
            model as (
                select unique_id_l, unique_id_r, match_weight as weight, 'model' as basis from linkage.pairs p
                where match_weight >= {float(threshold)}
                  and not exists (select 1 from decided d where d.decision = 'non_match'
                                  and d.unique_id_l = p.unique_id_l and d.unique_id_r = p.unique_id_r)
                  and not exists (select 1 from hard h
                                  where h.unique_id_l = p.unique_id_l and h.unique_id_r = p.unique_id_r)),
            alias as (
                select least(unique_id, same_as) as unique_id_l, greatest(unique_id, same_as) as unique_id_r,
                       'Infinity'::double as weight, 'system alias' as basis
                from linkage.records where same_as is not null),
            clerical as (
                select unique_id_l, unique_id_r, 'Infinity'::double, 'clerical' from decided where decision = 'match')
            select a.node as l, b.node as r, e.weight, e.basis
            from (select * from model union all select * from alias union all select * from clerical) e
            join _nodes a on a.unique_id = e.unique_id_l join _nodes b on b.unique_id = e.unique_id_r
        """).fetchnumpy()
        cannot = con.sql(f"""
            with pairs as (
                select unique_id_l, unique_id_r from linkage.clerical_decisions where decision = 'non_match'
                union
                select unique_id_l, unique_id_r from ({_hard_negative_sql(rules.get("hard_negatives", []))}) h
                where not exists (select 1 from linkage.clerical_decisions d where d.decision = 'match'
                                  and d.unique_id_l = h.unique_id_l and d.unique_id_r = h.unique_id_r))
            select a.node, b.node from pairs d
            join _nodes a on a.unique_id = d.unique_id_l join _nodes b on b.unique_id = d.unique_id_r""").fetchnumpy()
    finally:
        con.unregister("_nodes")
    left, right = edges["l"].astype(np.int64), edges["r"].astype(np.int64)
    weight = np.asarray(edges["weight"], dtype=np.float64)
    basis = np.asarray(edges["basis"], dtype=object)
    if rules.get("identifier_links"):
        con.register("_nodes", pa.table({"unique_id": nodes.column("unique_id"), "node": pa.array(np.arange(n))}))
        try:
            ident = con.sql(f"""
                with i as ({_identifier_edges_sql(rules["identifier_links"], threshold)})
                select a.node as l, b.node as r, i.weight, i.basis, i.value from i
                join _nodes a on a.unique_id = i.unique_id_l join _nodes b on b.unique_id = i.unique_id_r
                where not exists (select 1 from linkage.clerical_decisions d where d.decision = 'non_match'
                                  and d.unique_id_l = least(i.unique_id_l, i.unique_id_r)
                                  and d.unique_id_r = greatest(i.unique_id_l, i.unique_id_r))""").fetchnumpy()
        finally:
            con.unregister("_nodes")
        il, ir = ident["l"].astype(np.int64), ident["r"].astype(np.int64)
        keep = _supported(n, left, right, il, ir, np.asarray(ident["value"], dtype=object))
        left, right = np.concatenate([left, il[keep]]), np.concatenate([right, ir[keep]])
        weight = np.concatenate([weight, np.asarray(ident["weight"], dtype=np.float64)[keep]])
        basis = np.concatenate([basis, np.asarray(ident["basis"], dtype=object)[keep]])
    cann = list(cannot.values())
    keys = []
    for rule in never_link:
        col, valid = rule["column"], rule.get("valid")
        cond = f"case when {valid} then {col} end" if valid else col
        vals = con.sql(f"select {cond} as v from linkage.records order by unique_id").fetchnumpy()["v"]
        keys.append(np.array(vals.tolist(), dtype=object))
    labels = clustering.cluster(n, left, right, weight, cann[0].astype(np.int64), cann[1].astype(np.int64), keys)
    return {"unique_id": uid, "labels": labels, "left": left, "right": right, "weight": weight,
            "basis": basis}


def _cluster_and_write(con: duckdb.DuckDBPyConnection, threshold: float, run_id: str,
                       rules: dict) -> tuple[int, int]:
    c = cluster_labels(con, threshold, rules)
    uid, labels, left, right, weight = c["unique_id"], c["labels"], c["left"], c["right"], c["weight"]
    n = len(uid)
    edges = {"basis": c["basis"]}
    con.register("_nodes", pa.table({"unique_id": pa.array(uid.tolist(), pa.string()), "node": pa.array(np.arange(n))}))
    previous = np.full(n, None, dtype=object)
    next_serial = 1
    if _exists(con, "linkage", "person_links"):
        prev = con.sql("select n.node, p.person_id from linkage.person_links p "
                           "join _nodes n using (unique_id)").fetchnumpy()
        previous[prev["node"].astype(np.int64)] = prev["person_id"].astype(object)
        top = con.execute(f"select max(try_cast(substr(person_id, {len(clustering.PERSON_PREFIX) + 1}) as bigint)) "
                          "from linkage.person_links").fetchall()[0][0]
        if _exists(con, "linkage", "person_id_changes"):
            top_c = con.execute(f"select max(try_cast(substr(old_person_id, {len(clustering.PERSON_PREFIX) + 1}) "
                                "as bigint)) from linkage.person_id_changes").fetchall()[0][0]
            top = max(top or 0, top_c or 0)
        next_serial = (top or 0) + 1
    ids, changes, _ = clustering.stable_ids(labels, previous, next_serial)

    # Evidence per record: the links that hold it in its cluster.
    kept = labels[left] == labels[right]
    ev_node = np.concatenate([left[kept], right[kept]])
    ev_w = np.concatenate([weight[kept], weight[kept]])
    ev_basis = np.concatenate([edges["basis"][kept], edges["basis"][kept]]).astype(object)
    con.register("_labels", pa.table({"node": pa.array(np.arange(n)), "cluster": pa.array(labels),
                                      "person_id": pa.array(ids.tolist(), pa.string())}))
    con.register("_evidence", pa.table({"node": pa.array(ev_node), "weight": pa.array(ev_w),
                                        "basis": pa.array(ev_basis.tolist(), pa.string())}))
    con.execute("""
        create or replace table linkage.person_links as
        with ev as (
            select node, count(*) as links,
                   max(weight) filter (where isfinite(weight)) as best_match_weight,
                   list(distinct basis order by basis) as bases
            from _evidence group by node),
        per_cluster as (
            select l.cluster, count(*) as cluster_size,
                   list(distinct r.system order by r.system) as cluster_systems
            from _labels l join _nodes n using (node) join linkage.records r using (unique_id)
            group by l.cluster),
        weakest as (
            select l.cluster, min(e.weight) filter (where isfinite(e.weight)) as weakest_link_weight
            from _evidence e join _labels l using (node) group by l.cluster)
        select r.system, r.record_id, r.unique_id, l.person_id,
               c.cluster_size, c.cluster_systems,
               coalesce(ev.links, 0) as links,
               ev.best_match_weight, w.weakest_link_weight,
               case when ev.bases is null then 'unlinked' else array_to_string(ev.bases, ', ') end as linked_by
        from linkage.records r join _nodes n using (unique_id) join _labels l using (node)
        join per_cluster c using (cluster) left join ev using (node) left join weakest w using (cluster)
        order by r.unique_id
    """)
    con.execute("""create table if not exists linkage.person_id_changes (
        run_id varchar, old_person_id varchar, new_person_id varchar, reason varchar)""")
    if changes:
        con.executemany("insert into linkage.person_id_changes values (?, ?, ?, ?)",
                        [[run_id, o, nw, r] for o, nw, r in changes])
    for t in ("_nodes", "_labels", "_evidence"):
        con.unregister(t)
    return int(kept.sum()), len(np.unique(labels))


def _write_review(con: duckdb.DuckDBPyConnection, thresholds: dict, rules: dict) -> int:
    lo, hi = float(thresholds["review_low"]), float(thresholds["review_high"])
    con.execute(f"""
        create or replace table linkage.clerical_review as
        with hard as ({_hard_negative_sql(rules.get("hard_negatives", []))})
        select p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability,
               coalesce(hard.rule, 'match weight in the review band') as reason,
               case when hard.rule is not null then 'kept apart'
                    when p.match_weight >= {float(thresholds['match_weight'])} then 'linked'
                    else 'not linked' end as current_outcome,
               l.forename as forename_l, r.forename as forename_r, l.middle_names as middle_names_l,
               r.middle_names as middle_names_r, l.surname as surname_l, r.surname as surname_r,
               l.dob as dob_l, r.dob as dob_r, l.sex as sex_l, r.sex as sex_r,
               l.postcode as postcode_l, r.postcode as postcode_r, l.pnc as pnc_l, r.pnc as pnc_r,
               l.cro as cro_l, r.cro as cro_r, l.prison_number as prison_number_l,
               r.prison_number as prison_number_r
        from linkage.pairs p
        join linkage.records l on l.unique_id = p.unique_id_l
        join linkage.records r on r.unique_id = p.unique_id_r
        left join hard on hard.unique_id_l = p.unique_id_l and hard.unique_id_r = p.unique_id_r
        where ((p.match_weight >= {lo} and p.match_weight < {hi})
               or (hard.rule is not null and p.match_weight >= {float(thresholds['match_weight'])}))
          and not exists (select 1 from linkage.clerical_decisions d
                          where d.unique_id_l = p.unique_id_l and d.unique_id_r = p.unique_id_r)
        order by hard.rule is null, abs(p.match_weight - {float(thresholds['match_weight'])})
    """)
    return con.execute("select count(*) from linkage.clerical_review").fetchall()[0][0]


def require_links(con: duckdb.DuckDBPyConnection) -> None:
    if not _exists(con, "linkage", "person_links"):
        raise TransformError("no linkage yet: run `justice link` first")
