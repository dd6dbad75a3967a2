"""Benchmark: where linkage loses recall and precision, by mess kind and by system pair.

Run: .venv/bin/python benchmarks/link_diagnose.py [--keys] [--bounds] HOME [HOME ...]

HOME is a linked home with its answer key (e.g. one kept by `benchmarks/link_quality.py --keep`).
It reads truth/records.parquet and truth/identity/record_mess.parquet to measure only; nothing
here feeds back into the pipeline. For each home it prints:

* by mess kind: true pairs with that kind on either record, the share of them the index missed,
  and that kind's share of all missed pairs (a pair with two kinds counts under both); the same
  for false pairs (two people's records put in one person);
* by system pair: true pairs, missed, predicted pairs, false;
* by stage (`misses_by_stage`): where each missed pair was lost, scored below the threshold,
  blocked but scored below `keep_weight` (not stored), or never a candidate; and whether the two
  person ids it was split over have any scored pair between them (so a person-level second pass
  could see them) or none (only better blocking would).

With `--bounds`, also what the records allow (`bounds`):

* precision and recall of the answer key itself with each borrowed-identity record moved to its
  lender: all of them (what a linker that follows names and dates of birth does at best), all
  but those carrying an identifier of their own, and all but those with any evidence of their
  own (an identifier, a postcode another of the borrower's records holds and none of the
  lender's, or a day another system's record of the borrower shares);
* the kept pairs (`linkage.pairs`) at or above each weight, joined as connected components, beside
  the index (what clustering's constraints and the person-level passes add); the recall the true
  pairs among them reach when joined (the steps after scoring join records that kept pairs
  connect, an identifier, system alias or clerical link aside), and that of every true pair a
  blocking rule makes, at any weight; and, when other
  homes of the same mess level are given, the same pairs ranked instead by their comparison
  pattern's true match rate in those other homes (each comparison's weight rounded: a classifier
  fitted on the answer key of other worlds, to see whether the model's fit or the evidence
  itself is what limits it);
* the index clustered again at link thresholds from +0 to +20 (`sweep`: every pass after scoring,
  as `justice link report` draws it), its own trade-off of precision against recall;
* every candidate pair scored by the home's model (`below_keep`), by match weight: how many are
  true below `keep_weight`, where the recall the index lacks mostly lies, and how many false
  pairs stand beside each true one there.

With `--keys`, also: for each candidate blocking key in `CANDIDATE_KEYS` (none of them a rule in
link/model.yaml), how many of the missed pairs that no scored pair between their two person ids
reaches it would make candidates, and how many candidate pairs it would make over the whole
index: what a new blocking rule could buy, and at what cost.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


def diagnose(home: Path, keys: bool = False, bounds_from: list[Path] | None = None) -> str:
    """The tables for one home, as text (with `keys`, the candidate keys' table too; with
    `bounds_from`, a list of other homes, possibly empty, the bounds' tables)."""
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    truth = home / "truth"
    # Each record's person in the index and in truth, its mess, and its standardised fields (for
    # the candidate keys).
    con.execute(f"""
        create temp table ev as
        select l.unique_id, l.system, l.person_id as pred, t.person_id as truth,
               coalesce(t.mess, '') as mess, r.* exclude (unique_id, system, record_id),
               split_part(r.middle_names, ' ', 1) as mid1
        from wh.linkage.person_links l join read_parquet('{truth / 'records.parquet'}') t
        using (system, record_id) join wh.linkage.records r using (unique_id)
    """)
    con.execute("""
        create temp table tp as
        select a.system as sa, b.system as sb, a.mess as ma, b.mess as mb, a.pred = b.pred as found
        from ev a join ev b on a.truth = b.truth and a.unique_id < b.unique_id
    """)
    con.execute("""
        create temp table fp as
        select a.system as sa, b.system as sb, a.mess as ma, b.mess as mb
        from ev a join ev b on a.pred = b.pred and a.unique_id < b.unique_id and a.truth <> b.truth
    """)
    out = [f"== {home}"]
    tot_true, tot_missed = con.execute("select count(*), count(*) filter (where not found) from tp").fetchone()
    tot_pred = con.execute("select count(*) from ev a join ev b on a.pred = b.pred "
                           "and a.unique_id < b.unique_id").fetchone()[0]
    tot_false = con.execute("select count(*) from fp").fetchone()[0]
    out.append(f"true pairs {tot_true:,}, missed {tot_missed:,} (recall {1 - tot_missed / tot_true:.4f}); "
               f"predicted {tot_pred:,}, false {tot_false:,} (precision {1 - tot_false / tot_pred:.4f})")
    rows = con.execute("""
        with k as (
            select found, unnest(list_distinct(list_filter(string_split(ma || ',' || mb, ','),
                                                            lambda x: x <> ''))) as kind from tp
            union all select found, '(no mess on either record)' from tp where ma = '' and mb = ''),
        f as (
            select unnest(list_distinct(list_filter(string_split(ma || ',' || mb, ','),
                                                     lambda x: x <> ''))) as kind from fp
            union all select '(no mess on either record)' from fp where ma = '' and mb = '')
        select kind, t.n, t.missed, coalesce(f.n, 0)
        from (select kind, count(*) as n, count(*) filter (where not found) as missed from k group by kind) t
        full join (select kind, count(*) as n from f group by kind) f using (kind)
        order by t.missed desc nulls last, kind
    """).fetchall()
    out.append(f"{'mess kind (either record)':32} {'true pairs':>10} {'missed':>8} {'miss %':>7} "
               f"{'% of missed':>11} {'false':>7} {'% of false':>10}")
    for kind, n, missed, false in rows:
        n, missed = n or 0, missed or 0
        out.append(f"{kind:32} {n:>10,} {missed:>8,} {100 * missed / n if n else 0:>6.1f}% "
                   f"{100 * missed / tot_missed if tot_missed else 0:>10.1f}% {false:>7,} "
                   f"{100 * false / tot_false if tot_false else 0:>9.1f}%")
    out.append("")
    rows = con.execute("""
        with t as (select least(sa, sb) as s1, greatest(sa, sb) as s2, count(*) as n,
                          count(*) filter (where not found) as missed from tp group by all),
        f as (select least(sa, sb) as s1, greatest(sa, sb) as s2, count(*) as n from fp group by all)
        select s1, s2, coalesce(t.n, 0), coalesce(t.missed, 0), coalesce(f.n, 0)
        from t full join f using (s1, s2) order by 4 desc
    """).fetchall()
    out.append(f"{'system pair':28} {'true pairs':>10} {'missed':>8} {'recall':>7} {'false':>7}")
    for s1, s2, n, missed, false in rows:
        out.append(f"{s1 + '-' + s2:28} {n:>10,} {missed:>8,} {1 - missed / n if n else 1:>7.4f} {false:>7,}")
    out.append("")
    out += misses_by_stage(con, home)
    if bounds_from is not None:
        out += ["", *bounds(con, home, bounds_from)]
    if keys:
        out += ["", *unreached_by_keys(con, home)]
    con.close()
    return "\n".join(out)


def misses_by_stage(con: duckdb.DuckDBPyConnection, home: Path) -> list[str]:
    """Missed true pairs by where they were lost (needs the `ev` table of `diagnose`)."""
    from justice.link.blocking import rule_texts
    from justice.link.model import load_model

    model = load_model(home)[0]
    threshold = float(model["justice"]["thresholds"]["match_weight"])
    # A missed pair was a candidate when a blocking rule's SQL holds for it (equal block keys
    # are not the test: a side rule's records with a date of birth share a key, see blocking.py).
    any_rule = " or ".join(f"coalesce(({r}), false)" for r in rule_texts(model))
    con.execute("""
        create temp table missed as
        select a.unique_id as ua, b.unique_id as ub, a.pred as pa, b.pred as pb
        from ev a join ev b on a.truth = b.truth and a.unique_id < b.unique_id and a.pred <> b.pred
    """)
    con.execute(f"""
        create temp table blocked as
        select m.ua, m.ub from missed m
        join wh.linkage.records l on l.unique_id = m.ua join wh.linkage.records r on r.unique_id = m.ub
        where {any_rule};
        create temp table person_pairs as
        select distinct least(a.pred, b.pred) as p1, greatest(a.pred, b.pred) as p2
        from wh.linkage.pairs p join ev a on a.unique_id = p.unique_id_l join ev b on b.unique_id = p.unique_id_r
        where a.pred <> b.pred
    """)
    rows = con.execute(f"""
        select case when p.match_weight >= {threshold} then 'scored at or above the threshold, kept apart'
                    when p.match_weight is not null then 'scored below the threshold'
                    when b.ua is not null then 'blocked, scored below keep_weight'
                    else 'never a candidate (no blocking rule)' end as stage,
               count(*) as n,
               count(*) filter (where pp.p1 is not null) as persons_compared
        from missed m
        left join wh.linkage.pairs p on p.unique_id_l = least(m.ua, m.ub) and p.unique_id_r = greatest(m.ua, m.ub)
        left join blocked b on b.ua = m.ua and b.ub = m.ub
        left join person_pairs pp on pp.p1 = least(m.pa, m.pb) and pp.p2 = greatest(m.pa, m.pb)
        group by all order by n desc
    """).fetchall()
    total = sum(r[1] for r in rows)
    out = [(f"missed pairs by stage (threshold {threshold:+.2f}); 'person ids compared': the two ids it is "
            "split over have a scored pair between them"),
           f"{'stage':44} {'missed':>8} {'share':>6} {'person ids compared':>20}"]
    for stage, n, compared in rows:
        out.append(f"{stage:44} {n:>8,} {100 * n / total if total else 0:>5.1f}% {compared:>20,}")
    return out


# Blocking keys tried on the missed pairs (SQL over linkage.records, `mid1` the first middle
# name): each a record's value; two records with the same value would be a candidate pair.
CANDIDATE_KEYS = {
    "surname sound + birth year": "surname_sound || '|' || birth_year",
    "date of birth + sex + postcode district": "dob || '|' || sex || '|' || postcode_district",
    "surname + postcode district": "surname || '|' || postcode_district",
    "date of birth + forename initial": "dob || '|' || left(forename, 1)",
    "date of birth + surname initial": "dob || '|' || left(surname, 1)",
    "postcode alone": "postcode",
    "middle names + birth year": "middle_names || '|' || birth_year",
    "birth year, day and month either way, surname sound":
        "birth_year || '|' || least(month(dob), day(dob)) || '|' || greatest(month(dob), day(dob)) || '|' || surname_sound",
    "forename + surname sound": "forename || '|' || surname_sound",
    "surname + forename sound": "surname || '|' || forename_sound",
    "forename, first middle name and surname in any order": "list_sort([forename, mid1, surname])::varchar",
    "surname (Mc/Mac one way) + forename initial + birth year":
        "surname_key || '|' || left(forename, 1) || '|' || birth_year",
    "date of birth + postcode district": "dob || '|' || postcode_district",
    "forename + day and month of birth": "forename || '|' || strftime(dob, '%m%d')",
    "surname + day and month of birth": "surname || '|' || strftime(dob, '%m%d')",
}


def unreached_by_keys(con: duckdb.DuckDBPyConnection, home: Path) -> list[str]:
    """Per candidate key: the missed pairs between person ids with no scored pair between them
    that it would make candidates, and the candidate pairs it would make in all (needs the
    `missed` and `person_pairs` tables of `misses_by_stage`)."""
    con.execute("""
        create temp table unreached as
        select ua, ub, least(pa, pb) as p1, greatest(pa, pb) as p2 from missed
        anti join person_pairs pp on pp.p1 = least(pa, pb) and pp.p2 = greatest(pa, pb)
    """)
    n, splits = con.execute("select count(*), count(distinct (p1, p2)) from unreached").fetchone()
    records = con.execute("select count(*) from ev").fetchone()[0]
    out = [(f"== {home}: {n:,} missed pairs between {splits:,} pairs of person ids that no scored pair "
            f"reaches ({records:,} records)"),
           f"{'candidate key':58} {'reaches':>8} {'of splits':>9} {'pairs it makes':>15}"]
    for name, expr in CANDIDATE_KEYS.items():
        con.execute(f"create or replace temp table k as select unique_id, {expr} as k from ev where ({expr}) is not null")
        cost = con.execute("select coalesce(sum(c * (c - 1) / 2), 0) from (select count(*) as c from k group by k)").fetchone()[0]
        hit, hit_splits = con.execute("""
            select count(*), count(distinct (p1, p2)) from unreached u
            join k a on a.unique_id = u.ua join k b on b.unique_id = u.ub where a.k = b.k""").fetchone()
        out.append(f"{name:58} {hit:>8,} {hit_splits:>9,} {int(cost):>15,}")
    return out


def pairwise(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a labelling of records (any labels) against the true
    person ids (report.pairwise_from_labels, on the two as integer codes)."""
    from justice.link.report import pairwise_from_labels

    def codes(values: np.ndarray) -> np.ndarray:
        return np.unique(values, return_inverse=True)[1].astype(np.int64)

    out = pairwise_from_labels(codes(labels), codes(truth))
    return out["precision"], out["recall"]


def _mess_level(home: Path) -> str | None:
    params = home / "truth" / "params.json"
    return json.loads(params.read_text()).get("mess") if params.exists() else None


def _truth_ids_sql(home: Path) -> str:
    """SQL for each record of `home`'s answer key: its unique id (`uid`) and true `person_id`."""
    return (f"select system || ':' || record_id as uid, person_id "
            f"from read_parquet('{home / 'truth' / 'records.parquet'}')")


def _pattern_sql(cols: list[str], alias: str = "") -> str:
    """SQL for a pair's comparison pattern: each of `cols` (comparison weights) rounded to a whole
    number, joined by '|'."""
    return " || '|' || ".join(f"coalesce(round({alias}{c})::varchar, '')" for c in cols) or "''"


def _pattern_rate(patterns: pd.Series, hits: pd.Series, counts: pd.Series, prior) -> pd.Series:
    """Each of `patterns`' true match rate in other homes (`hits` true of `counts` pairs, indexed
    by pattern), pulled toward `prior` as if by five more pairs (a pattern unseen there gets the
    prior)."""
    return (patterns.map(hits).fillna(0) + 5 * prior) / (patterns.map(counts).fillna(0) + 5)


@functools.cache
def _kept_pairs(home: Path) -> tuple[list[str], pd.DataFrame]:
    """The comparison columns of `home`'s kept pairs, and the pairs with their match weight, true
    match (0 or 1) and comparison pattern (each comparison's weight rounded to a whole number)."""
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    cols = sorted(c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = 'wh' "
        "and table_schema = 'linkage' and table_name = 'pairs' and starts_with(column_name, 'mw_')"
    ).fetchall())
    df = con.execute(f"""
        with t as ({_truth_ids_sql(home)})
        select p.unique_id_l, p.unique_id_r, p.match_weight as w, {_pattern_sql(cols, "p.")} as pattern,
               (a.person_id = b.person_id)::int as match
        from wh.linkage.pairs p join t a on a.uid = p.unique_id_l join t b on b.uid = p.unique_id_r
    """).df()
    con.close()
    return cols, df


def bounds(con: duckdb.DuckDBPyConnection, home: Path, others: list[Path]) -> list[str]:
    """What the records allow (needs the `ev` table of `diagnose`): see the module's docstring."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    mess = home / "truth" / "identity" / "record_mess.parquet"
    recs = con.execute(f"""
        with lent as (select distinct system || ':' || record_id as unique_id, other_person_id as lender
                      from read_parquet('{mess}') where kind = 'borrowed_identity')
        select e.unique_id, e.pred, e.truth, lent.lender,
               e.pnc_core is not null or e.cro_core is not null or e.prison_number is not null as own_id,
               lent.lender is not null and (
                 (exists (select 1 from ev o where o.truth = e.truth and o.unique_id <> e.unique_id
                          and o.postcode = e.postcode)
                  and not exists (select 1 from ev o where o.truth = lent.lender and o.postcode = e.postcode))
                 or exists (select 1 from ev o where o.truth = e.truth and o.system <> e.system
                            and list_has_any(o.event_dates, e.event_dates))) as own_evidence
        from ev e left join lent using (unique_id) order by e.unique_id
    """).df()
    truth = recs["truth"].to_numpy()
    lent = recs["lender"].notna().to_numpy()
    lender = recs["lender"].fillna("").to_numpy()
    own_id, own_evidence = recs["own_id"].to_numpy(), recs["own_evidence"].to_numpy(dtype=bool)
    out = [(f"== what the records allow: {int(lent.sum()):,} borrowed-identity records, "
            f"{int((lent & own_id).sum()):,} of them carrying an identifier"),
           f"{'labelling':72} {'precision':>9} {'recall':>7}"]
    rows = [("the index", recs["pred"].to_numpy()),
            ("the answer key, every borrowed-identity record with its lender", np.where(lent, lender, truth)),
            ("  ... but those carrying an identifier of their own", np.where(lent & ~own_id, lender, truth)),
            ("  ... but those with any evidence of their own",
             np.where(lent & ~own_id & ~own_evidence, lender, truth))]
    for name, labels in rows:
        p, r = pairwise(labels, truth)
        out.append(f"{name:72} {p:>9.4f} {r:>7.4f}")

    index = {u: i for i, u in enumerate(recs["unique_id"])}
    cols, kept = _kept_pairs(home)
    left = kept["unique_id_l"].map(index).to_numpy()
    right = kept["unique_id_r"].map(index).to_numpy()
    n = len(recs)

    def joined(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """Precision and recall of the connected components of the edges (a, b)."""
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        return pairwise(connected_components(graph, directed=False)[1], truth)

    def components(selected: np.ndarray) -> tuple[float, float]:
        return joined(left[selected], right[selected])

    out += ["", (f"kept pairs ({len(kept):,}, {int(kept['match'].sum()):,} of them true) joined as connected "
                 "components"), f"{'pairs':72} {'precision':>9} {'recall':>7}"]
    for w in (-2.0, 0.0, 3.0, 6.63, 9.0, 12.0, 16.0):
        p, r = components(kept["w"].to_numpy() >= w)
        out.append(f"{f'match weight >= {w:+.2f}':72} {p:>9.4f} {r:>7.4f}")
    # About the most recall the steps after scoring could reach: the true pairs among the kept
    # pairs, joined (those steps join records that kept pairs connect, an identifier, system alias
    # or clerical link aside); and what perfect scoring of every candidate pair (the blocking
    # rules, any weight) would reach.
    p, r = components(kept["match"].to_numpy() == 1)
    out.append(f"{'the true pairs among them, joined (their reach)':72} {p:>9.4f} {r:>7.4f}")
    from justice.link.blocking import rule_texts
    from justice.link.model import load_model

    any_rule = " or ".join(f"coalesce(({r}), false)" for r in rule_texts(load_model(home)[0]))
    blocked = con.execute(f"""
        select a.unique_id as ul, b.unique_id as ur from ev a join ev b on a.truth = b.truth and a.unique_id < b.unique_id
        join wh.linkage.records l on l.unique_id = a.unique_id join wh.linkage.records r on r.unique_id = b.unique_id
        where {any_rule}""").df()
    p, r = joined(blocked["ul"].map(index).to_numpy(), blocked["ur"].map(index).to_numpy())
    out.append(f"{'true pairs a blocking rule makes, any weight, joined (their reach)':72} {p:>9.4f} {r:>7.4f}")
    level = _mess_level(home)
    train = [h for h in others if h != home and _mess_level(h) == level]
    loaded = [(h, *_kept_pairs(h)) for h in train]
    fitted = [df for _, other_cols, df in loaded if other_cols == cols]
    alike = [h for h, other_cols, _ in loaded if other_cols == cols]
    if train and not fitted:
        out.append(f"(no other home of level {level} scored the same comparisons: no pattern ranking)")
    if fitted:
        fit = pd.concat(fitted)
        band = np.floor(fit["w"].clip(-5, 30))
        band_rate = fit.groupby(band)["match"].mean()
        stats = fit.groupby("pattern")["match"].agg(["sum", "count"])
        prior = np.floor(kept["w"].clip(-5, 30)).map(band_rate).fillna(0.5)
        rate = _pattern_rate(kept["pattern"], stats["sum"], stats["count"], prior).to_numpy()
        out.append(f"ranked by the pattern's true match rate in {len(fitted)} other home(s) of level {level} "
                   f"({len(stats):,} patterns)")
        for q in (0.9, 0.95, 0.97, 0.98, 0.99):
            p, r = components(rate >= q)
            out.append(f"{f'pattern match rate >= {q:.2f}':72} {p:>9.4f} {r:>7.4f}")
    return out + ["", *sweep(home), "", *below_keep(home, alike)]


# The link thresholds at which `sweep` clusters the index again.
SWEEP = (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)


def sweep(home: Path) -> list[str]:
    """The index's own trade-off: the kept pairs clustered again at each of `SWEEP`, by every pass
    after scoring and the model's constraints (report.threshold_sweep, as `justice link report`
    draws it), precision and recall against the answer key."""
    from justice.link import report
    from justice.link.model import load_model
    from justice.link.store import open_warehouse
    from justice.settings import Settings

    model = load_model(home)[0]
    con = open_warehouse(Settings(home=home), read_only=True)
    try:
        rows = report.threshold_sweep(con, home / "truth", report.model_constraints(model), thresholds=SWEEP)
    finally:
        con.close()
    out = ["the index clustered again at each link threshold (every pass after scoring)",
           f"{'link threshold':72} {'precision':>9} {'recall':>7}"]
    out += [f"{r['threshold']:<+72.2f} {r['precision']:>9.4f} {r['recall']:>7.4f}" for r in rows]
    return out


# The weight bands below `keep_weight` in which `below_keep` counts every candidate pair.
BELOW_BANDS = (-1000.0, -10.0, -6.0, -4.0)


@functools.cache
def _scored_below(home: Path) -> tuple[float, list[tuple], pd.DataFrame]:
    """Every candidate pair of `home` scored by its model (run._predict, the weight floor at
    BELOW_BANDS[0], on a read-only warehouse): its `keep_weight`; (band, pairs, true pairs) per
    band of BELOW_BANDS and keep_weight; and the pairs below keep_weight counted by comparison
    pattern (each comparison's weight rounded), whether the two records are one true person's
    (`match`) and whether the index holds them as two people (`apart`)."""
    from justice.engine import engine_for
    from justice.link import run
    from justice.link.model import load_model
    from justice.link.store import open_warehouse
    from justice.settings import Settings

    model = load_model(home)[0]
    keep = float(model["justice"]["thresholds"]["keep_weight"])
    settings = Settings(home=home)
    with engine_for(settings) as engine:
        con = open_warehouse(settings, read_only=True)
        con.execute("set enable_progress_bar = false")
        try:
            table = run._predict(engine, con, model, False, keep=BELOW_BANDS[0], progress=lambda _: None)
            edges = [*BELOW_BANDS, keep]
            band = " ".join(f"when p.match_weight < {hi} then {i}" for i, hi in enumerate(edges[1:]))
            cols = sorted(c for (c,) in con.execute(f"select column_name from (describe {table})").fetchall()
                          if c.startswith("mw_") and not c.startswith("mw_tf_adj_"))
            con.execute(f"""
                create temp table _below as
                with t as ({_truth_ids_sql(home)})
                select case {band} else {len(edges) - 1} end as band, p.match_weight < {keep} as below,
                       {_pattern_sql(cols, "p.")} as pattern, a.person_id = b.person_id as match,
                       la.person_id <> lb.person_id as apart
                from {table} p join t a on a.uid = p.unique_id_l join t b on b.uid = p.unique_id_r
                join linkage.person_links la on la.system || ':' || la.record_id = p.unique_id_l
                join linkage.person_links lb on lb.system || ':' || lb.record_id = p.unique_id_r""")
            rows = con.execute("select band, count(*), count(*) filter (where match) from _below "
                               "group by 1 order by 1").fetchall()
            patterns = con.execute("select pattern, match, apart, count(*) as n from _below where below "
                                   "group by all").df()
        finally:
            con.close()
    return keep, rows, patterns


def below_keep(home: Path, train: list[Path] = ()) -> list[str]:
    """Every candidate pair (the blocking rules' pairs, at any weight) scored by the home's model
    with the run's own scoring, and counted against the answer key: how many pairs, and how many
    of them true, in bands of match weight below the model's `keep_weight` and at or above it. The
    recall the index lacks lies in pairs scored below `keep_weight` or never a candidate; this
    says how rare the true pairs are there (how many false pairs a linker would have to pass over
    for each true one). With `train` (other homes of the same mess level), the pairs below
    `keep_weight` that the index holds as two people, ranked by their comparison pattern's true
    match rate in those homes (a classifier fitted on the answer key of other worlds): how many
    true and false pairs each rate would pick out."""
    keep, rows, patterns = _scored_below(home)
    edges = [*BELOW_BANDS, keep]
    counts = {b: (n, t) for b, n, t in rows}
    names = [f"below {edges[1]:+.0f}", *(f"{lo:+.0f} to {hi:+.0f}" for lo, hi in itertools.pairwise(edges[1:])),
             f"at or above keep_weight {keep:+.0f}"]
    total = sum(n for n, _ in counts.values())
    out = [f"every candidate pair scored ({total:,}), by match weight",
           f"{'weight':40} {'pairs':>9} {'true':>8} {'true share':>10} {'false per true':>14}"]
    for i, name in enumerate(names):
        n, t = counts.get(i, (0, 0))
        out.append(f"{name:40} {n:>9,} {t:>8,} {t / n if n else 0:>10.4f} "
                   f"{(n - t) / t if t else float('nan'):>14.1f}")
    n = sum(counts.get(i, (0, 0))[0] for i in range(len(names) - 1))
    t = sum(counts.get(i, (0, 0))[1] for i in range(len(names) - 1))
    out.append(f"{'below keep_weight, all':40} {n:>9,} {t:>8,} {t / n if n else 0:>10.4f} "
               f"{(n - t) / t if t else float('nan'):>14.1f}")
    if not train:
        return out
    fit = pd.concat([_scored_below(h)[2] for h in train])
    fit = fit.assign(t=fit["n"] * fit["match"]).groupby("pattern")[["t", "n"]].sum()
    prior = float(fit["t"].sum() / fit["n"].sum()) if fit["n"].sum() else 0.0
    apart = patterns[patterns["apart"]]
    rate = _pattern_rate(apart["pattern"], fit["t"], fit["n"], prior)
    true_apart = int(apart.loc[apart["match"], "n"].sum())
    out += ["", (f"below keep_weight and held as two people by the index: {true_apart:,} true pairs, "
                 f"{int(apart.loc[~apart['match'], 'n'].sum()):,} false; ranked by the pattern's true "
                 f"match rate below keep_weight in {len(train)} other home(s) of the level"),
            f"{'pattern match rate':40} {'true':>9} {'false':>8}"]
    for q in (0.5, 0.7, 0.9):
        picked = apart[(rate >= q).to_numpy()]
        out.append(f"{f'>= {q:.1f}':40} {int(picked.loc[picked['match'], 'n'].sum()):>9,} "
                   f"{int(picked.loc[~picked['match'], 'n'].sum()):>8,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", action="store_true", help="also try the candidate blocking keys on the missed pairs")
    parser.add_argument("--bounds", action="store_true",
                        help="also what the records allow (borrowed identities; kept pairs as components)")
    parser.add_argument("homes", type=Path, nargs="+")
    args = parser.parse_args()
    for home in args.homes:
        # A linked home with its answer key: say which home lacks what, before any table is read.
        from justice.link.model import load_model

        if not (home / "warehouse.duckdb").exists() or load_model(home) is None:
            parser.error(f"{home}: not a linked home (no warehouse or linkage model): run `justice link` there first")
        if not (home / "truth" / "records.parquet").exists():
            parser.error(f"{home}: no answer key (truth/records.parquet): only a simulated world can be diagnosed")
    for home in args.homes:
        print(diagnose(home, keys=args.keys, bounds_from=args.homes if args.bounds else None))
        print()


if __name__ == "__main__":
    main()
