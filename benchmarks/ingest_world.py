"""Benchmark: `justice ingest` of a whole simulated world (all six sources, then dbt staging).

Run: .venv/bin/python benchmarks/ingest_world.py --world DIR     (a `justice simulate --out DIR`)
 or: .venv/bin/python benchmarks/ingest_world.py --persons 1000000 (simulates first, in a temp dir)
Prints, per system, the landing time, rows read and set aside, and the peak memory so far (of
the landing process, and of the largest worker process reading files); then the staging build
(unless --no-staging). Landing streams (each file is read in batches and spooled to disk when
large, at most a few files ahead), so peak memory should not grow with the world.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (children excluded)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cpu_seconds() -> tuple[float, float]:
    """CPU time (user + system) so far of this process and of its finished children (workers).
    On a shared machine wall time depends on the other load; CPU time is the work done."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def worker_peak_gb() -> float:
    """Peak resident memory of the largest finished child (a landing worker process), in GB.
    While a system lands, memory in use is at most the landing process's plus this per worker."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--no-staging", action="store_true", help="land only; skip dbt staging")
    args = parser.parse_args()

    from justice.ingest import landing, warehouse
    from justice.ingest.landing import land_system
    from justice.settings import Settings
    from justice.sources.spec import specs_for
    from justice.transform.build import stage

    world = args.world
    if world is None:
        from justice.sim.params import SimulationParams
        from justice.sim.world import simulate_to

        world = Path(tempfile.mkdtemp(prefix="justice-ingest-world-"))
        t = time.perf_counter()
        simulate_to(SimulationParams(persons=args.persons, seed=1), world)
        print(f"simulated {args.persons:,} persons in {time.perf_counter() - t:.1f}s")
    for stale in ("lake", ".dlt", "transform"):  # measure a first load, not a no-op re-run
        shutil.rmtree(world / stale, ignore_errors=True)
    (world / "warehouse.duckdb").unlink(missing_ok=True)

    settings = Settings(home=world)
    total = time.perf_counter()
    rows = 0
    cpu_own = cpu_kids = 0.0
    for spec in specs_for(settings):
        t, (own0, kids0) = time.perf_counter(), cpu_seconds()
        report = land_system(spec, settings)
        dt = time.perf_counter() - t
        own, kids = cpu_seconds()
        cpu_own += own - own0
        cpu_kids += kids - kids0
        rows += report.rows_read
        print(f"  {spec.system:<14} {dt:7.1f}s  {report.rows_read:>11,} rows read  "
              f"{report.rows_rejected:>7,} set aside  {len(report.errors)} failed files  "
              f"{report.rows_read / max(dt, 1e-9):>9,.0f} rows/s  cpu {own - own0:6.1f}s + workers "
              f"{kids - kids0:6.1f}s  peak {peak_rss_gb():.2f} GB "
              f"(worker {worker_peak_gb():.2f} GB)", flush=True)
    print(f"  {'landing':<14} {time.perf_counter() - total:7.1f}s  {rows:>11,} rows read  "
          f"cpu {cpu_own:.1f}s + workers {cpu_kids:.1f}s  peak {peak_rss_gb():.2f} GB", flush=True)
    if not args.no_staging:
        t = time.perf_counter()
        tables = warehouse.refresh_views(settings)
        stage(settings, specs_for(settings), tables)
        print(f"  {'staging (dbt)':<14} {time.perf_counter() - t:7.1f}s")
    print(f"world={world} rows_read={rows:,} seconds={time.perf_counter() - total:.1f} "
          f"peak_rss_gb={peak_rss_gb():.2f} worker_peak_rss_gb={worker_peak_gb():.2f} "
          f"workers={landing.WORKERS}")


if __name__ == "__main__":
    main()
