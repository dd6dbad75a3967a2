"""Blocking rules with a side condition (`l.x = r.x and (l.y is null or r.y is null)`): keyed in
two halves (justice.link.blocking), they find exactly the pairs the rule's SQL finds, for the full
run's candidate pairs and for one probe's candidates alike."""

from __future__ import annotations

import random

import duckdb
import pytest
from blocking_pairs import check_probe_candidates, expected_pairs

from justice.link.blocking import (
    all_rules_keyed,
    block_keys_sql,
    build_blocked_pairs,
    probe_lookups,
    rule_key,
)

RULES = [
    "l.sound = r.sound and l.birth_year = r.birth_year",
    "l.sound = r.sound and (l.dob is null or r.dob is null)",
    "l.surname = r.surname",
]
MODEL = {"blocking_rules_to_generate_predictions": RULES}


def test_a_side_condition_is_keyed_and_other_disjunctions_are_not():
    assert rule_key("l.a = r.a and l.b = r.b") == (["l.a", "l.b"], None)
    assert rule_key("l.a = r.a and (l.dob is null or r.dob is null)") == (["l.a"], "dob")
    assert rule_key("(l.dob IS NULL or r.dob IS NULL) and left(l.a, 2) = left(r.a, 2)") == (["left(l.a, 2)"], "dob")
    # Not a side: two columns, a side alone, two sides, any other disjunction.
    assert rule_key("l.a = r.a and (l.dob is null or r.postcode is null)") is None
    assert rule_key("(l.dob is null or r.dob is null)") is None
    assert rule_key("l.a = r.a and (l.dob is null or r.dob is null) and (l.pc is null or r.pc is null)") is None
    assert rule_key("l.a = r.a and (l.dob is null or l.pc is null)") is None
    assert rule_key("l.a = r.a or l.b = r.b") is None
    assert all_rules_keyed(MODEL)
    assert not all_rules_keyed({"blocking_rules_to_generate_predictions": [*RULES, "l.a = r.b"]})


def _records(n: int = 400, seed: int = 7) -> duckdb.DuckDBPyConnection:
    rng = random.Random(seed)
    con = duckdb.connect()
    con.execute("""create table recs (record_no bigint, unique_id varchar, sound varchar, surname varchar,
                   dob date, birth_year bigint)""")
    rows = []
    for i in range(n):
        dob = None if rng.random() < 0.2 else f"19{rng.randint(80, 83)}-0{rng.randint(1, 3)}-1{rng.randint(0, 2)}"
        rows.append((i, f"u{i:04d}", rng.choice(["A1 B2", "A1 C3", "D4 B2", None]),
                     rng.choice(["smith", "jones", "brown", "khan", None]), dob))
    con.executemany("insert into recs values (?, ?, ?, ?, ?::date, year(?::date))",
                    [(*r, r[-1]) for r in rows])
    return con


def test_the_full_runs_pairs_are_the_rules_pairs_under_their_first_rule():
    con = _records()
    expected = expected_pairs(con, RULES)
    # Pairs only the side rule finds are there (one date of birth missing, birth years apart).
    assert sum(1 for k in expected.values() if k == "1") > 50
    n = build_blocked_pairs(con, MODEL, "recs", "mine")
    got = {(a, b): k for k, a, b in con.execute("select match_key, join_key_l, join_key_r from mine").fetchall()}
    assert n == len(got) == len(expected)
    assert got == expected
    # Nothing of the run's working tables is left behind.
    names = {r[0] for r in con.execute("select table_name from duckdb_tables() where temporary").fetchall()}
    assert not names & {"_link_rule_keys", "_link_side_keys", "_link_bound_records"}


@pytest.mark.parametrize("with_dob", [True, False])
def test_a_probes_candidates_by_block_keys_are_the_rules_candidates(with_dob):
    con = _records()
    expected = expected_pairs(con, RULES)
    con.execute(f"create table block_keys as {block_keys_sql(MODEL, 'recs')}")
    keyed, unkeyed = probe_lookups(MODEL, "r")
    assert not unkeyed and len(keyed) == len(RULES) + 1  # the side rule looks up two keys
    probes = con.execute(f"select unique_id from recs where (dob is null) = {not with_dob} "
                         "order by unique_id").fetchall()
    checked = check_probe_candidates(con, keyed, expected, [u for (u,) in probes[:60]])
    assert checked > 30


def test_equal_index_keys_of_a_side_rule_are_not_candidates_without_a_missing_side():
    # Two records with a date of birth and the same sound, birth years apart: filed under the
    # side rule's tag 1 both, and no candidates of each other (`rule_key` and the rule's SQL are
    # the test a key does not stand for, see blocking.py).
    con = duckdb.connect()
    con.execute("""create table recs as select * from (values
        (0, 'a', 'A1 B2', 'x', date '1980-01-01', 1980), (1, 'b', 'A1 B2', 'y', date '1990-01-01', 1990),
        (2, 'c', 'A1 B2', 'z', null, null))
        t(record_no, unique_id, sound, surname, dob, birth_year)""")
    keys = con.execute(f"select key, record_no from ({block_keys_sql(MODEL, 'recs')})").fetchall()
    side = [k for k, r in keys if r in (0, 1)]
    assert len(set(side)) < len(side)  # the two share their tag-1 key...
    build_blocked_pairs(con, MODEL, "recs", "mine")
    pairs = {tuple(p) for p in con.execute("select join_key_l, join_key_r from mine").fetchall()}
    assert pairs == {("a", "c"), ("b", "c")}  # ... but only the record lacking a date meets them
