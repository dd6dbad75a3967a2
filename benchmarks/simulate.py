"""Benchmark: time and peak memory of `justice simulate` (truth and, where built, legacy extracts).

Run: .venv/bin/python benchmarks/simulate.py --persons 1000000
Prints one line per stage and a summary; targets are 1,000,000 persons in under 5 minutes with
under 8 GB peak memory on 2 cores (stretch: 2 minutes).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temp dir)")
    args = parser.parse_args()

    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = args.out or Path(tempfile.mkdtemp(prefix="justice-bench-"))
    t0 = time.perf_counter()
    stage = ["setup (name and postcode pools)", t0]

    def progress(next_stage: str) -> None:
        """Print the stage that just finished, with its own time and the peak memory so far."""
        now = time.perf_counter()
        print(f"  {stage[0]:<34} {now - stage[1]:7.1f}s   (at {now - t0:6.1f}s, peak {peak_rss_gb():5.2f} GB)",
              flush=True)
        stage[:] = [next_stage, now]

    world = simulate_to(SimulationParams(persons=args.persons, seed=args.seed), out, progress=progress)
    progress("done")
    total = time.perf_counter() - t0
    rows = sum(len(next(iter(t.values()))) for t in world.tables.values())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"persons={args.persons:,} seconds={total:.1f} peak_rss_gb={peak_rss_gb():.2f} "
          f"truth_rows={rows:,} bytes_written={size / 1e6:.0f}MB out={out}")
    ok = sum(r["within_tolerance"] for r in world.calibration or [])
    print(f"calibration: {ok}/{len(world.calibration or [])} figures within tolerance")


if __name__ == "__main__":
    main()
