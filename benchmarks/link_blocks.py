"""Benchmark: how big the linkage model's blocks are, and how skewed, on a linked home.

Run: .venv/bin/python benchmarks/link_blocks.py HOME [--rule "surname"]...
For each blocking rule of link/model.yaml (and any extra --rule, a comma-separated list of
linkage.records columns, to see what a rule not used would cost): the records it can block, its
largest block, the pairs it makes and the share of those pairs in its largest 0.1% of blocks.
A rule whose pairs grow faster than its records, or whose top blocks hold most of its pairs,
would put one executor's work on a cluster out of proportion (docs/engines.md).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def key_expressions(rule: str) -> list[str] | None:
    """The key expressions of an equi-join blocking rule (`l.a = r.a and f(l.b) = f(r.b)`), or
    None when the rule is not a conjunction of such equalities."""
    keys = []
    for part in re.split(r"\s+and\s+", rule.strip(), flags=re.IGNORECASE):
        left, sep, right = part.partition("=")
        if not sep or left.replace("l.", "r.").strip() != right.strip():
            return None
        keys.append(left.strip().replace("l.", ""))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--rule", action="append", default=[], help="extra key columns, comma-separated")
    args = parser.parse_args()

    import duckdb

    from justice.link.model import load_model_spec

    rules = [(r, key_expressions(r)) for r in load_model_spec()["blocking_rules"]]
    rules += [(f"(not used) {r}", [c.strip() for c in r.split(",")]) for r in args.rule]
    con = duckdb.connect(str(args.home / "warehouse.duckdb"), read_only=True)
    records = con.execute("select count(*) from linkage.records").fetchall()[0][0]
    print(f"{records:,} records in {args.home}")
    print(f"{'rule':70s} {'largest':>8s} {'pairs':>15s} {'top 0.1%':>9s}")
    for rule, keys in rules:
        if keys is None:
            print(f"{rule[:70]:70s} (not an equi-join: skipped)")
            continue
        known = " and ".join(f"({k}) is not null" for k in keys)
        try:
            largest, pairs, top = con.execute(f"""
                with blocks as (select count(*) as k from linkage.records where {known}
                                group by {', '.join(keys)}),
                     sized as (select k, k * (k - 1) / 2 as p from blocks),
                     ranked as (select p, row_number() over (order by p desc) as n from sized)
                select max(k), sum(p),
                       (select sum(p) from ranked where n <= greatest(1, (select count(*) from sized) // 1000))
                from sized""").fetchall()[0]
        except duckdb.BinderException as exc:  # a home linked under an older model.yaml
            print(f"{rule[:70]:70s} (not in this home's records: {str(exc).splitlines()[0]})")
            continue
        share = f"{top / pairs:.0%}" if pairs else "-"
        print(f"{rule[:70]:70s} {largest:>8,} {int(pairs or 0):>15,} {share:>9s}")


if __name__ == "__main__":
    main()
