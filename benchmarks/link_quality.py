"""Benchmark: linkage accuracy against the answer key at each mess level (low, default, high).

Run: .venv/bin/python benchmarks/link_quality.py [--persons 20000] [--levels low default high]
For each level it simulates a world (seed 1), ingests it, runs `justice link` with a newly trained
model, and prints pairwise precision, recall and F1, B-cubed F1, the share of people whose records
form exactly one cluster, the weakest system pair, and the link time. The quality report of each
world is left in its home (printed) under reports/.
Targets (issue 5): pairwise F1 >= 0.99 at the default level and >= 0.97 at high.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--levels", nargs="+", default=["low", "default", "high"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from justice.ingest.run import ingest
    from justice.link.evaluate import evaluate
    from justice.link.report import write_report
    from justice.link.run import link, open_warehouse
    from justice.settings import Settings
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    rows = []
    for level in args.levels:
        home = Path(tempfile.mkdtemp(prefix=f"justice-link-{level}-"))
        simulate_to(SimulationParams(persons=args.persons, seed=args.seed, mess=level), home)
        settings = Settings(home=home)
        ingest(settings)
        t = time.perf_counter()
        result = link(settings, retrain=True, full=True)
        seconds = time.perf_counter() - t
        con = open_warehouse(settings, read_only=True)
        try:
            q = evaluate(con, settings.truth_dir)
        finally:
            con.close()
        report = write_report(settings)
        pw, cl = q["pairwise"], q["clusters"]
        weakest = min((r for r in q["by_system_pair"] if r["true_pairs"] >= 100), key=lambda r: r["f1"])
        rows.append((level, result.records, pw["precision"], pw["recall"], pw["f1"], cl["bcubed_f1"],
                     cl["people_exactly_right"], f"{weakest['systems']} {weakest['f1']:.3f}", seconds))
        print(f"{level}: report {report}", flush=True)
    print(f"\n{'mess':8} {'records':>9} {'precision':>9} {'recall':>7} {'F1':>7} {'B3 F1':>7} {'exact':>7}  "
          f"{'weakest system pair':28} {'seconds':>7}")
    for level, n, p, r, f1, b3, exact, weakest, secs in rows:
        print(f"{level:8} {n:>9,} {p:>9.4f} {r:>7.4f} {f1:>7.4f} {b3:>7.4f} {exact:>7.4f}  {weakest:28} {secs:>7.1f}")


if __name__ == "__main__":
    main()
