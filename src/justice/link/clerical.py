"""Clerical review: reviewers' decisions on pairs of records (`linkage.clerical_decisions`, never
rebuilt, honoured on every run) and the review queue of pairs still undecided
(`linkage.clerical_review`)."""

from __future__ import annotations

import datetime as dt

import duckdb

from justice.errors import ConfigError
from justice.link.persons import hard_negative_sql
from justice.link.store import open_warehouse, shared_days_sql, table_exists
from justice.settings import Settings

DECISIONS = ("match", "non_match")


def ensure_decisions_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create `linkage.clerical_decisions` if the warehouse has none yet."""
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
            if table_exists(con, "linkage", "records") else []
        missing = {a, b} - {r[0] for r in known}
        if missing:
            raise ConfigError(f"no such record(s) in linkage.records: {', '.join(sorted(missing))} "
                              "(ids are system:record_id, e.g. crown:10371735)")
        lo, hi = sorted((a, b))
        con.execute("insert or replace into linkage.clerical_decisions values (?, ?, ?, ?, ?, ?)",
                    [lo, hi, decision, reviewer.strip(), dt.datetime.now(dt.UTC).replace(tzinfo=None), note])
    finally:
        con.close()


def write_review_queue(con: duckdb.DuckDBPyConnection, thresholds: dict, rules: dict, hard: str | None = None) -> int:
    """Write `linkage.clerical_review`: undecided pairs in the review band, pairs a hard-negative
    rule keeps apart that the model would link, and (once `linkage.person_links` is written) any
    other pair with a linking weight that the clustering rules or a later step put in two people
    (a conflicting identifier, a record moved to its identifier's holders, a record only its name
    held: strangers.py); returns their count. Each pair's outcome is read from the people when
    they are written: linked (one person), kept apart (two, at a linking weight) or not linked."""
    lo, hi = float(thresholds["review_low"]), float(thresholds["review_high"])
    link_at = float(thresholds["match_weight"])
    people = table_exists(con, "linkage", "person_links")
    # A hard negative is soft (a shared valid identifier lifts it, cluster.cluster): only the
    # pairs it really kept apart are queued as such.
    apart = ("" if not people else
             """where not exists (select 1 from linkage.person_links a join linkage.person_links b
                                  on a.person_id = b.person_id
                                  where a.unique_id = h.unique_id_l and b.unique_id = h.unique_id_r)""")
    source = hard or f"({hard_negative_sql(rules.get('hard_negatives', []))})"
    if people:
        together = "pl.person_id = pr.person_id"
        joins = ("left join linkage.person_links pl on pl.unique_id = p.unique_id_l "
                 "left join linkage.person_links pr on pr.unique_id = p.unique_id_r")
    else:
        together, joins = f"p.match_weight >= {link_at}", ""
    con.execute(f"""
        create or replace table linkage.clerical_review as
        with hard as (select unique_id_l, unique_id_r, string_agg(distinct rule, '; ' order by rule) as rule
                      from {source} h {apart} group by all)
        select p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability,
               coalesce(hard.rule, case when p.match_weight >= {hi} then 'put in two people by the clustering rules'
                                        else 'match weight in the review band' end) as reason,
               case when hard.rule is not null then 'kept apart'
                    when {together} then 'linked'
                    when p.match_weight >= {link_at} then 'kept apart'
                    else 'not linked' end as current_outcome,
               l.forename as forename_l, r.forename as forename_r, l.middle_names as middle_names_l,
               r.middle_names as middle_names_r, l.surname as surname_l, r.surname as surname_r,
               l.dob as dob_l, r.dob as dob_r, l.sex as sex_l, r.sex as sex_r,
               l.postcode as postcode_l, r.postcode as postcode_r, l.pnc as pnc_l, r.pnc as pnc_r,
               l.cro as cro_l, r.cro as cro_r, l.prison_number as prison_number_l,
               r.prison_number as prison_number_r, {shared_days_sql(con)} as shared_event_days
        from linkage.pairs p
        join linkage.records l on l.unique_id = p.unique_id_l
        join linkage.records r on r.unique_id = p.unique_id_r
        left join hard on hard.unique_id_l = p.unique_id_l and hard.unique_id_r = p.unique_id_r
        {joins}
        where ((p.match_weight >= {lo} and p.match_weight < {hi})
               or (hard.rule is not null and p.match_weight >= {link_at})
               or (p.match_weight >= {hi} and not coalesce({together}, false)))
          and not exists (select 1 from linkage.clerical_decisions d
                          where d.unique_id_l = p.unique_id_l and d.unique_id_r = p.unique_id_r)
        order by hard.rule is null, abs(p.match_weight - {link_at})
    """)
    return con.execute("select count(*) from linkage.clerical_review").fetchall()[0][0]
