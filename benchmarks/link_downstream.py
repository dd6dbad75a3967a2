"""Benchmark: the linkage errors that per-person figures downstream inherit, for a linked home.

Run: .venv/bin/python benchmarks/link_downstream.py HOME [HOME ...]

HOME is a linked home with its answer key (truth/). It reads truth to measure only; nothing here
feeds the pipeline. For each home it prints, over every record and over the records of each
group of systems a downstream figure counts (courts: core.person's court persons and the
reoffending cohort; prison: custody and cell history):

* true people, person ids, extra ids from people split over several ids (and how many of those
  are pieces made only of alias or borrowed-identity records), ids saved by merges; exactly
  person ids = people + splits - merges;
* pairwise recall (the share of one person's record pairs under one id) and precision;
* false pairs by cause: a borrowed-identity record with the person it names, with a third
  person, and the linker's own.

The reoffending rate's own split of its gap (reoffenders lost to splits) is printed by
`pytest -s tests/transform/test_marts_reoffending.py -k rates`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

GROUPS = {"every record": "true",
          "courts": "system in ('magistrates', 'crown')",
          "prison": "system = 'prison'"}


def downstream(home: Path) -> str:
    """The figures for one home, as text."""
    from justice.link.evaluate import false_pairs_by_cause, load_truth, pairwise, person_counts

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        load_truth(con, home / "truth")
        out = [f"== {home}",
               (f"{'records':<14}{'people':>8}{'ids':>8}{'splits':>8}{'(alias/borrowed)':>18}"
                f"{'merges':>8}{'recall':>8}{'precision':>11}")]
        for name, where in GROUPS.items():
            p = person_counts(con, where)
            q = pairwise(con, where)
            out.append(f"{name:<14}{p['true_people']:>8,}{p['person_ids']:>8,}"
                       f"{p['extra_ids_from_splits']:>8,}{p['extra_ids_of_other_identities']:>18,}"
                       f"{p['ids_saved_by_merges']:>8,}{q['recall']:>8.4f}{q['precision']:>11.4f}")
        fp = false_pairs_by_cause(con, home / "truth")
        out.append("false pairs: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in fp.items()))
        return "\n".join(out)
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("homes", type=Path, nargs="+")
    for home in parser.parse_args().homes:
        print(downstream(home))
        print()


if __name__ == "__main__":
    main()
