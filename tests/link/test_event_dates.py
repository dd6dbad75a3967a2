"""Event dates: the days of a record's events that another system records too (a sentence and the
reception into prison), carried by standardisation from a source's `events` query, compared by
the model between systems, and blocked on by list rules that key a record once per day."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pytest
from blocking_pairs import check_probe_candidates, expected_pairs

from justice.errors import ConfigError
from justice.link.blocking import (
    ELEMENT,
    all_rules_keyed,
    block_keys_sql,
    build_blocked_pairs,
    list_column,
    probe_lookups,
    rule_key,
)
from justice.link.model import load_model_spec, splink_settings
from justice.link.standardise import load_sources, standardise

RULES = [
    "l.surname = r.surname and l.birth_year = r.birth_year",
    "list_has_any(l.days, r.days) and l.sound = r.sound",
    "l.sound = r.sound and list_has_any(l.days, r.days) and l.sex = r.sex",
]
MODEL = {"blocking_rules_to_generate_predictions": RULES}


def test_a_list_condition_is_keyed_once_per_element():
    assert rule_key(RULES[1]) == ([ELEMENT, "l.sound"], None)
    assert rule_key(RULES[2]) == (["l.sound", ELEMENT, "l.sex"], None)
    assert list_column(RULES[1]) == "days" and list_column(RULES[0]) is None
    # Not keyed: a list condition alone (every record sharing a day would be a candidate), two of
    # them, two columns, or a list and a side condition together.
    assert rule_key("list_has_any(l.days, r.days)") is None
    assert rule_key("list_has_any(l.days, r.days) and list_has_any(l.ids, r.ids) and l.a = r.a") is None
    assert rule_key("list_has_any(l.days, r.ids) and l.a = r.a") is None
    assert rule_key("list_has_any(l.days, r.days) and l.a = r.a and (l.dob is null or r.dob is null)") is None
    assert all_rules_keyed(MODEL)


def _records(n: int = 300, seed: int = 5) -> duckdb.DuckDBPyConnection:
    rng = random.Random(seed)
    day0 = dt.date(2020, 1, 1)
    con = duckdb.connect()
    con.execute("""create table recs (record_no bigint, unique_id varchar, surname varchar, birth_year bigint,
                   sound varchar, sex varchar, days date[])""")
    rows = []
    for i in range(n):
        days = None if rng.random() < 0.3 else sorted({day0 + dt.timedelta(rng.randint(0, 40))
                                                       for _ in range(rng.randint(1, 4))})
        rows.append((i, f"u{i:04d}", rng.choice(["smith", "jones", None]), rng.choice([1980, 1981, None]),
                     rng.choice(["S530", "J520", "B650", None]), rng.choice(["M", "F", None]), days))
    con.executemany("insert into recs values (?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def test_the_full_runs_pairs_are_the_list_rules_pairs():
    con = _records()
    expected = expected_pairs(con, RULES)
    # Pairs only a list rule finds are there, some sharing two days or more (found once).
    assert sum(1 for k in expected.values() if k in ("1", "2")) > 100
    several = con.execute("""select count(*) from recs l join recs r on l.unique_id < r.unique_id
                             where l.sound = r.sound and len(list_intersect(l.days, r.days)) > 1""").fetchall()[0][0]
    assert several > 10
    n = build_blocked_pairs(con, MODEL, "recs", "mine")
    got = {(a, b): k for k, a, b in con.execute("select match_key, join_key_l, join_key_r from mine").fetchall()}
    assert n == len(got) == len(expected)
    assert got == expected


def test_a_probes_candidates_by_its_days_are_the_list_rules_candidates():
    con = _records()
    expected = expected_pairs(con, RULES)
    con.execute(f"create table block_keys as {block_keys_sql(MODEL, 'recs')}")
    # A record with three days is filed under three keys for each list rule.
    u = con.execute("select record_no from recs where len(days) = 3 and sound is not null and sex is not null "
                    "limit 1").fetchall()[0][0]
    own = con.execute(f"select count(*) from block_keys where record_no = {u}").fetchall()[0][0]
    has_first = con.execute(f"select surname is not null and birth_year is not null from recs "
                            f"where record_no = {u}").fetchall()[0][0]
    assert own == 3 + 3 + int(has_first)
    keyed, unkeyed = probe_lookups(MODEL, "r")
    assert not unkeyed and len(keyed) == len(RULES)
    probes = con.execute("select unique_id from recs order by unique_id").fetchall()
    checked = check_probe_candidates(con, keyed, expected, [u for (u,) in probes[:80]])
    assert checked > 40


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("""create table people as select * from (values ('1', 'Ann', 'Lee'), ('2', 'Bob', 'Ray'))
                   t(id, fore, sur)""")
    con.execute("""create table events as select * from (values
        ('1', date '2021-05-04'), ('1', date '2020-01-02'), ('1', date '2021-05-04'), ('1', null),
        (null, date '2019-01-01'), ('9', date '2019-01-01')) t(id, day)""")
    return con


RECORDS = ("select id as record_id, fore as forenames, sur as surname, null as dob, null as sex, null as postcode, "
           "null as pnc, null as cro, null as prison_number, null as crn, null as same_as from people")


def test_a_sources_events_become_its_records_sorted_distinct_days():
    con = _warehouse()
    standardise(con, {"court": {"records": RECORDS, "events": "select id as record_id, day as event_date from events"},
                      "other": {"records": RECORDS.replace("id as record_id", "'x' || id as record_id")}})
    got = dict(con.execute("select unique_id, event_dates from linkage.records").fetchall())
    # Days in order, once each; no list for a record without events or a source without them.
    assert got == {"court:1": [dt.date(2020, 1, 2), dt.date(2021, 5, 4)], "court:2": None,
                   "other:x1": None, "other:x2": None}
    # The days are part of the fingerprint: a new event re-links the record.
    before = dict(con.execute("select unique_id, fingerprint from linkage.records").fetchall())
    con.execute("insert into events values ('1', date '2022-02-02')")
    standardise(con, {"court": {"records": RECORDS, "events": "select id as record_id, day as event_date from events"}})
    after = dict(con.execute("select unique_id, fingerprint from linkage.records").fetchall())
    assert after["court:1"] != before["court:1"] and after["court:2"] == before["court:2"]


def test_an_events_entry_that_is_not_a_query_is_refused_and_the_old_table_survives():
    con = _warehouse()
    standardise(con, {"court": {"records": RECORDS}})
    with pytest.raises(ConfigError, match="`events` must be a query"):
        standardise(con, {"court": {"records": RECORDS, "events": ["select 1"]}})
    assert con.execute("select count(*) from linkage.records").fetchall() == [(2,)]


def test_the_builtin_sources_give_events_and_the_model_compares_and_blocks_on_them():
    sources = load_sources()
    assert {s for s, e in sources.items() if e.get("events")} == {"magistrates", "crown", "prison", "probation"}
    spec = load_model_spec()
    (comp,) = [c for c in spec["comparisons"] if c["name"] == "event_dates"]
    # Records of one system are no evidence either way: only a shared day between systems is.
    assert comp["levels"][0]["is_null"] and "system_l = system_r" in comp["levels"][0]["sql"]
    settings = splink_settings(spec)
    (levels,) = [c["comparison_levels"] for c in settings["comparisons"] if c["output_column_name"] == "event_dates"]
    assert levels[0]["is_null_level"] and not levels[1].get("is_null_level")
    listed = [r for r in spec["blocking_rules"] if "event_dates" in r]
    assert listed and all(rule_key(r) is not None and list_column(r) == "event_dates" for r in listed)
