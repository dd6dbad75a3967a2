"""Benchmark: a 24-month projection with 100 repetitions of a 1,000,000-person world, timed.

Run: nice -n 10 .venv/bin/python benchmarks/project_speed.py --home /work/homes/big
     (a built home; the warehouse is opened read-only, outputs go to a temporary folder)

Times `justice.project.project` end to end, step by step: reading the warehouse as at the origin,
learning the flows, simulating the baseline and each scenario (the example early-release rule
and a volume scenario unless --no-scenarios), making the tables and writing the files. Prints the
people simulated (stock and receptions over all repetitions) and peak memory, so the work done
is visible. Target (issue 15): 24 months, 100 repetitions, 1,000,000 people in <= 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[1] / "src" / "justice" / "project" / "scenarios"


def peak_rss_gb() -> float:
    """Peak resident memory of this process (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repetitions", type=int, default=100)
    parser.add_argument("--from", dest="origin", default=None, help="Origin date (default: data end + 1).")
    parser.add_argument("--no-scenarios", action="store_true", help="Baseline only.")
    args = parser.parse_args()

    import datetime as dt

    from justice.project import load_scenario, project
    from justice.project import projection as projection_module
    from justice.project.data import load_origin
    from justice.project.flows import learn_flows
    from justice.project.outputs import write_outputs
    from justice.settings import Settings

    settings = Settings(home=args.home)
    origin = dt.date.fromisoformat(args.origin) if args.origin else None
    scenarios = [] if args.no_scenarios else [
        load_scenario(SCENARIOS / "early_release.yaml"), load_scenario(SCENARIOS / "more_charges.yaml")]

    steps = {}
    t0 = time.perf_counter()
    data = load_origin(settings, origin)
    steps["read the warehouse as at the origin"] = time.perf_counter() - t0
    t = time.perf_counter()
    flows = learn_flows(data)
    steps["learn the flows"] = time.perf_counter() - t
    t = time.perf_counter()
    from justice.project.scenario import BASELINE

    result = projection_module.run_projection(data, flows, [BASELINE, *scenarios], months=args.months,
                                              repetitions=args.repetitions, seed=1)
    steps[f"simulate {1 + len(scenarios)} scenario(s) and tabulate"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        write_outputs(result, Path(folder))
        steps["write tables, fan chart, summary"] = time.perf_counter() - t
    total = time.perf_counter() - t0

    # The same through the public API, as `justice project` runs it.
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        project(settings, scenarios, origin=origin, months=args.months,
                repetitions=args.repetitions, out=Path(folder))
        api = time.perf_counter() - t

    stock = int(data.in_custody().sum())
    print(f"home {args.home}: origin {data.origin}, {stock:,} in custody, {len(data.spells):,} "
          f"spells read; receptions a day: "
          + ", ".join(f"{k} {v:.1f}" for k, v in flows.daily_rate.items()))
    for name, seconds in steps.items():
        print(f"  {name:48s} {seconds:6.1f} s")
    print(f"  {'total (steps above)':48s} {total:6.1f} s")
    print(f"  {'project() through the API':48s} {api:6.1f} s")
    print(f"{args.months} months x {args.repetitions} repetitions x {1 + len(scenarios)} scenario(s); "
          f"peak memory {peak_rss_gb():.1f} GB; target <= 60 s: {'met' if api <= 60 else 'NOT met'}")
    for line in result.summary:
        print("  " + line)


if __name__ == "__main__":
    main()
