"""Measuring only: missed pairs sorted by the kinds of mess on their records
(justice.link.evaluate.missed_pairs_by_mess)."""

from __future__ import annotations

import itertools

import duckdb

from justice.link.evaluate import missed_pairs_by_mess


def _by_listing(rows: list[tuple]) -> dict:
    """The same figures by listing every pair: the definition the exact SQL must agree with."""
    total, neither, kinds = 0, 0, {}
    for (_, _, p1, t1, m1), (_, _, p2, t2, m2) in itertools.combinations(rows, 2):
        if t1 != t2 or p1 == p2:
            continue
        total += 1
        k1, k2 = set(filter(None, (m1 or "").split(","))), set(filter(None, (m2 or "").split(",")))
        neither += not k1 and not k2
        for k in k1 | k2:
            kinds[k] = kinds.get(k, 0) + 1
    return {"missed_pairs": total, "by_kind": kinds, "neither_record_messy": neither}


def test_missed_pairs_are_counted_by_mess_kind():
    rows = [
        # person A: three records, split 2 + 1; the lone record has a name swap: 2 missed pairs
        ("m", "a1", "p1", "A", None), ("m", "a2", "p1", "A", "nickname"),
        ("m", "a3", "p2", "A", "name_swap,dob_missing"),
        # person B: split 1 + 1, both clean: 1 missed pair with no mess
        ("m", "b1", "p3", "B", ""), ("m", "b2", "p4", "B", None),
        # person C: linked whole (no missed pair) though messy
        ("m", "c1", "p5", "C", "name_swap"), ("m", "c2", "p5", "C", "name_typo"),
        # person D: three pieces; a typo on one, a swap on another: 3 missed pairs
        ("m", "d1", "p6", "D", "name_typo"), ("m", "d2", "p7", "D", "name_swap"), ("m", "d3", "p8", "D", ""),
        # a false merge (E with A's piece) is no missed pair
        ("m", "e1", "p1", "E", "name_swap"),
    ]
    con = duckdb.connect()
    con.execute("create table _eval (system varchar, record_id varchar, pred varchar, truth varchar, mess varchar)")
    con.executemany("insert into _eval values (?, ?, ?, ?, ?)", rows)
    got = missed_pairs_by_mess(con)
    assert got["missed_pairs"] == 6
    assert got["by_kind"] == {"name_swap": 4, "dob_missing": 2, "name_typo": 2, "nickname": 1}
    assert got["neither_record_messy"] == 1
    assert got == {**_by_listing(rows), "by_kind": got["by_kind"]}
    assert got["by_kind"] == _by_listing(rows)["by_kind"]
    # Listed most missed first.
    assert list(got["by_kind"]) == ["name_swap", "dob_missing", "name_typo", "nickname"]
