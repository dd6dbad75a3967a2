"""Benchmark: the calibration table (every figure against its published target) over seeds.

Run: .venv/bin/python benchmarks/calibration.py --persons 100000 --seeds 1 2 3 4 5
Simulates the world only (truth tables in memory; no legacy extracts or files written), one seed
at a time, measures every figure in `reference/calibration_targets.yaml` and prints, per figure,
the target, the tolerance, the value on each seed, the min and max over seeds, and whether it is
within tolerance on every seed. `--json FILE` also writes the rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import sys
import time
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measure_seed(persons: int, seed: int, world_file: str | None) -> list[dict]:
    """Simulate one world and return its calibration rows."""
    from justice.sim import calibration
    from justice.sim import reference as ref
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate

    params = SimulationParams(persons=persons, seed=seed, world_file=world_file)
    world = simulate(params)
    rows = calibration.calibrate(world.tables, ref.day_number(params.start), ref.day_number(params.end))
    del world
    gc.collect()
    return rows


def fmt(value: float | None, target: float) -> str:
    """A value in the figure's own unit, to a precision that suits the target's size."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(target) < 1:
        return f"{value:.3f}"
    if abs(target) < 10:
        return f"{value:.2f}"
    if abs(target) < 100:  # e.g. 22.0 months, 17.6 people per prisoner
        return f"{value:.1f}"
    return f"{value:.0f}"


def table(results: dict[int, list[dict]]) -> list[dict]:
    """One row per figure: target, tolerance, value by seed, min, max and pass on all seeds."""
    seeds = list(results)
    out = []
    for i, first in enumerate(results[seeds[0]]):
        values = [results[s][i]["simulated"] for s in seeds]
        finite = [v for v in values if v is not None]
        out.append({
            "figure": first["figure"], "target": first["target"], "tolerance": first["tolerance"],
            "values": dict(zip(seeds, values)),
            "min": min(finite) if finite else None, "max": max(finite) if finite else None,
            "pass_all": all(results[s][i]["within_tolerance"] for s in seeds),
            "min_persons": first.get("min_persons"), "known_gap": first.get("known_gap"),
        })
    return out


def print_table(rows: list[dict], seeds: list[int], persons: int) -> None:
    """The table as aligned text."""
    name_w = max(len(r["figure"]) for r in rows)
    head = f"{'figure':<{name_w}} {'target':>8} {'tol':>7} " + " ".join(
        f"{'s' + str(s):>7}" for s in seeds) + f" {'min':>7} {'max':>7}  all  note"
    print(f"calibration at {persons:,} people, seeds {' '.join(map(str, seeds))}")
    print(head)
    print("-" * len(head))
    for r in rows:
        t = r["target"]
        vals = " ".join(f"{fmt(r['values'][s], t):>7}" for s in seeds)
        reliable_from = r["min_persons"] or 100_000  # the smallest size measured
        note = "known gap" if r["known_gap"] else (
            f"noisy below {reliable_from:,}" if reliable_from > persons else "")
        print(f"{r['figure']:<{name_w}} {fmt(t, t):>8} {fmt(r['tolerance'], t):>7} {vals} "
              f"{fmt(r['min'], t):>7} {fmt(r['max'], t):>7}  {'yes' if r['pass_all'] else 'NO ':<3}  {note}")
    ok = sum(r["pass_all"] for r in rows)
    print(f"{ok}/{len(rows)} figures within tolerance on every seed")
    checked = [r for r in rows if not r["known_gap"] and (r["min_persons"] or 100_000) <= persons]
    print(f"{sum(r['pass_all'] for r in checked)}/{len(checked)} of the figures expected to hold at "
          f"{persons:,} people (no known gap, reliable at this size) within tolerance on every seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--world-file", default=None, help="YAML overriding reference/world.yaml")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    results: dict[int, list[dict]] = {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        results[seed] = measure_seed(args.persons, seed, args.world_file)
        bad = [r["figure"] for r in results[seed] if not r["within_tolerance"]]
        print(f"seed {seed}: {time.perf_counter() - t0:.0f}s, peak {peak_rss_gb():.1f} GB, "
              f"outside tolerance: {', '.join(bad) or 'none'}", file=sys.stderr, flush=True)
        if args.json:  # after every seed, so a long run that is stopped keeps what it measured
            args.json.write_text(json.dumps({"persons": args.persons, "seeds": list(results),
                                             "rows": table(results)}, indent=2, default=str) + "\n")
    print_table(table(results), args.seeds, args.persons)


if __name__ == "__main__":
    main()
