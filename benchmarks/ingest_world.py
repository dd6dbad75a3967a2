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
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (children excluded)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cpu_seconds() -> tuple[float, float]:
    """CPU time (user + system) so far of this process, and of its descendants: those that have
    finished (getrusage) and those still running, each with the children it has reaped (from
    /proc: the landing workers, kept from one system to the next; Spark's JVM and its Python
    workers, for benchmarks/engine_steps.py). On a shared machine wall time depends on the other
    load; CPU time is the work done."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks, pending = 0, MemorySampler._children(os.getpid())
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone since it was listed
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        pending += MemorySampler._children(pid)
    return (own.ru_utime + own.ru_stime,
            kids.ru_utime + kids.ru_stime + ticks / os.sysconf("SC_CLK_TCK"))


class MemorySampler:
    """Samples, every `every` seconds, the resident memory of this process plus all its
    descendants (the landing workers), from /proc: the peak of the sum is the memory a landing
    really takes. (getrusage's figure for children is no use here: a spawned child's peak
    includes the parent's memory it was forked with before it exec'd.)"""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        self.peak_total = self.peak_worker = 0
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    @staticmethod
    def _children(pid: int) -> list[int]:
        out = []
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out += [int(c) for c in fh.read().split()]
        except OSError:
            pass
        return out

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.every):
            pending, workers = self._children(me), []
            while pending:
                pid = pending.pop()
                workers.append(self._rss(pid))
                pending += self._children(pid)
            self.peak_total = max(self.peak_total, self._rss(me) + sum(workers))
            self.peak_worker = max([self.peak_worker, *workers])

    def reset(self) -> None:
        """Start the peaks afresh (one step's peak, not the run's)."""
        self.peak_total = self.peak_worker = 0

    def gb(self) -> str:
        """The peaks so far, for printing."""
        return (f"all processes {self.peak_total / 1024**3:.2f} GB, largest worker "
                f"{self.peak_worker / 1024**3:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--no-staging", action="store_true", help="land only; skip dbt staging")
    args = parser.parse_args()

    from justice.engine import engine_for
    from justice.ingest.landing import Workers, land_system
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
    memory = MemorySampler()
    workers = Workers()  # kept from one system to the next, as `justice ingest` does
    for spec in specs_for(settings):
        t, (own0, kids0) = time.perf_counter(), cpu_seconds()
        report = land_system(spec, settings, workers=workers)
        dt = time.perf_counter() - t
        own, kids = cpu_seconds()
        cpu_own += own - own0
        cpu_kids += kids - kids0
        rows += report.rows_read
        print(f"  {spec.system:<14} {dt:7.1f}s  {report.rows_read:>11,} rows read  "
              f"{report.rows_rejected:>7,} set aside  {len(report.errors)} failed files  "
              f"{report.rows_read / max(dt, 1e-9):>9,.0f} rows/s  cpu {own - own0:6.1f}s + workers "
              f"{kids - kids0:6.1f}s  peak {peak_rss_gb():.2f} GB ({memory.gb()})", flush=True)
    t, (own0, kids0) = time.perf_counter(), cpu_seconds()
    workers.close()
    own, kids = cpu_seconds()
    cpu_own, cpu_kids = cpu_own + own - own0, cpu_kids + kids - kids0
    print(f"  {'(workers stop)':<14} {time.perf_counter() - t:7.1f}s", flush=True)
    print(f"  {'landing':<14} {time.perf_counter() - total:7.1f}s  {rows:>11,} rows read  "
          f"cpu {cpu_own:.1f}s + workers {cpu_kids:.1f}s  peak {peak_rss_gb():.2f} GB", flush=True)
    if not args.no_staging:
        t = time.perf_counter()
        tables = engine_for(settings).refresh_raw_views([])
        stage(settings, specs_for(settings), tables)
        print(f"  {'staging (dbt)':<14} {time.perf_counter() - t:7.1f}s")
    print(f"world={world} rows_read={rows:,} seconds={time.perf_counter() - total:.1f} "
          f"peak_rss_gb={peak_rss_gb():.2f} ({memory.gb()}) workers={settings.ingest_workers}")


if __name__ == "__main__":
    main()
