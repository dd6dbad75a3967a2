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
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--rule", action="append", default=[], help="extra key columns, comma-separated")
    args = parser.parse_args()

    import duckdb

    from justice.link.blocking import rule_key
    from justice.link.model import load_model_spec

    def keyed(rule: str) -> tuple[list[str], str | None] | None:
        rk = rule_key(rule)
        return None if rk is None else ([e.replace("l.", "") for e in rk[0]], rk[1])

    rules = [(r, keyed(r)) for r in load_model_spec()["blocking_rules"]]
    rules += [(f"(not used) {r}", ([c.strip() for c in r.split(",")], None)) for r in args.rule]
    con = duckdb.connect(str(args.home / "warehouse.duckdb"), read_only=True)
    records = con.execute("select count(*) from linkage.records").fetchall()[0][0]
    print(f"{records:,} records in {args.home}")
    print(f"{'rule':70s} {'largest':>8s} {'pairs':>15s} {'top 0.1%':>9s}")
    for rule, rk in rules:
        if rk is None:
            print(f"{rule[:70]:70s} (not an equi-join: skipped)")
            continue
        keys, side = rk
        known = " and ".join(f"({k}) is not null" for k in keys)
        # A side rule (`and (l.x is null or r.x is null)`, justice.link.blocking) pairs a block's
        # records lacking x with every other record of the block, not every two records.
        lacking = "count(*)" if side is None else f"count(*) filter (where {side} is null)"
        try:
            largest, pairs, top = con.execute(f"""
                with blocks as (select count(*) as k, {lacking} as k0 from linkage.records where {known}
                                group by {', '.join(keys)}),
                     sized as (select k, k0 * (k - k0) + k0 * (k0 - 1) / 2 as p from blocks),
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
