"""Brute-force checks of blocking (justice.link.blocking) on a small table `recs` with
`record_no` and `unique_id`: the pairs each rule's SQL finds, and a probe's candidates by its
block keys."""

from __future__ import annotations

import duckdb


def expected_pairs(con: duckdb.DuckDBPyConnection, rules: list[str]) -> dict[tuple[str, str], str]:
    """Every pair (l < r by unique id) and the first rule (its index, a string, as Splink's
    match_key) its SQL satisfies."""
    checks = ", ".join(f"coalesce(({r}), false)" for r in rules)
    found = con.execute(f"""select l.unique_id, r.unique_id, [{checks}] from recs l join recs r
                            on l.unique_id < r.unique_id""").fetchall()
    return {(a, b): str(hits.index(True)) for a, b, hits in found if any(hits)}


def check_probe_candidates(con: duckdb.DuckDBPyConnection, keyed: list[tuple[str, str]],
                           expected: dict[tuple[str, str], str], probes: list[str]) -> int:
    """Assert that each probe's candidates, found by looking up its keys (`keyed`, from
    blocking.probe_lookups: lists of keys) in the table `block_keys`, are the records `expected`
    pairs it with; returns how many probes had any."""
    lookups = " union all ".join(f"select unnest(case when {present} then {key} end) as key from recs r "
                                 f"where r.unique_id = $u" for key, present in keyed)
    checked = 0
    for u in probes:
        got = {r[0] for r in con.execute(
            f"""select distinct x.unique_id from block_keys b join recs x using (record_no)
                where b.key in (select key from ({lookups}) where key is not null) and x.unique_id <> $u""",
            {"u": u}).fetchall()}
        want = {b if a == u else a for a, b in expected if u in (a, b)}
        assert got == want, u
        checked += bool(want)
    return checked
