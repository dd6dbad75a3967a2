"""Benchmark: each pipeline step on each engine (DuckDB, Spark), wall time, CPU and peak memory.

Run: .venv/bin/python benchmarks/engine_steps.py --persons 100000 --engines duckdb spark
 or: .venv/bin/python benchmarks/engine_steps.py --world DIR      (a `justice simulate --out DIR`)
Lands the world's extracts once (landing is the same Python code on every engine), then, in a
fresh home per engine holding a copy of that lake: the raw views, staging (dbt build of staging,
quarantine and audit, with its tests, then the copy into the serving warehouse), link, and build
(seeds, core and marts with their tests, then the copy; publishing is left out). Memory is the
peak of this process plus every descendant (Spark's JVM is one) during the step, sampled from
/proc. Say the load average beside the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from ingest_world import MemorySampler
from ingest_world import cpu_seconds as process_cpu_seconds

STEPS = ("raw_views", "staging", "link", "build")


def cpu_seconds() -> float:
    """CPU time so far of this process and all its descendants, Spark's JVM and its Python
    workers included (ingest_world.cpu_seconds): on a shared machine CPU seconds move far less
    with the load than wall time."""
    return sum(process_cpu_seconds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"])
    parser.add_argument("--keep", type=Path, default=None, help="keep the homes under this folder")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS,
                        help="run only these steps, in the engine home --keep holds (made, with "
                             "a copy of the landed lake, if it has none): e.g. raw_views staging "
                             "link first, then build alone")
    parser.add_argument("--link-full", action="store_true",
                        help="link scores every candidate pair even when the home was linked "
                             "before (a full run with the home's model, as `justice link --full`)")
    args = parser.parse_args()

    from justice.engine import engine_for, lake, spark
    from justice.ingest.landing import land_system
    from justice.link.run import link
    from justice.settings import Settings
    from justice.sources.spec import specs_for
    from justice.transform.build import build, stage

    work = args.keep or Path(tempfile.mkdtemp(prefix="engine-steps-"))
    work.mkdir(parents=True, exist_ok=True)
    memory = MemorySampler()
    rows: list[tuple[str, str, float, float, str]] = []

    def step(engine: str, name: str, run) -> object:
        memory.reset()
        t, c = time.perf_counter(), cpu_seconds()
        out = run()
        rows.append((engine, name, time.perf_counter() - t, cpu_seconds() - c,
                     f"{memory.peak_total / 1024**3:.2f}"))
        print(f"{engine:7s} {name:10s} {rows[-1][2]:8.1f} s  cpu {rows[-1][3]:7.1f} s  "
              f"peak {rows[-1][4]} GB  (load {os.getloadavg()[0]:.1f})", flush=True)
        return out

    world = args.world
    if world is None:
        from justice.sim.params import SimulationParams
        from justice.sim.world import simulate_to

        world = work / "world"
        if not (world / "legacy").exists():
            import datetime as dt

            print(f"simulating {args.persons:,} people into {world}", flush=True)
            simulate_to(SimulationParams(persons=args.persons, seed=7, start=dt.date(2014, 1, 1),
                                         end=dt.date(2025, 12, 31)), world)
    landed = Settings(home=work / "landed")
    if not (landed.lake_dir / "raw").exists():
        shutil.rmtree(landed.home, ignore_errors=True)
        landed.home.mkdir(parents=True)
        (landed.home / "legacy").symlink_to((world / "legacy").resolve())

        def land() -> None:
            for spec in specs_for(landed):
                land_system(spec, landed)

        step("both", "land", land)

    def run_engine(name: str) -> None:
        settings = Settings.from_env(home=work / name, engine=name)  # JUSTICE_DUCKDB_MEMORY etc. apply
        if args.steps == list(STEPS) or not settings.lake_dir.exists():
            shutil.rmtree(settings.home, ignore_errors=True)
            settings.home.mkdir(parents=True)
            shutil.copytree(landed.lake_dir, settings.lake_dir)
        specs = specs_for(settings)
        tables = lake.raw_tables(settings)
        with engine_for(settings) as engine:
            if "raw_views" in args.steps:
                tables = step(name, "raw views", lambda: engine.refresh_raw_views(specs))
            if "staging" in args.steps:
                step(name, "staging", lambda: stage(settings, specs, tables, engine=engine))
        if "link" in args.steps:
            result = step(name, "link", lambda: link(settings, full=args.link_full, progress=lambda m: print(
                f"        {time.strftime('%H:%M:%S')} {m}", flush=True)))
            # Where link's time went (Splink's scoring runs on the engine; the rest on DuckDB).
            print(f"{name:7s} link parts: {result.mode}, {result.records:,} records, "
                  f"{result.pairs_scored:,} pairs kept; " + ", ".join(
                      f"{part} {secs:.1f} s" for part, secs in result.seconds.items()), flush=True)
        if "build" in args.steps:
            step(name, "build", lambda: build(settings, outputs=False))
        spark.stop()

    for name in args.engines:
        run_engine(name)
    print("\nengine   step        wall s    cpu s   peak GB")
    for engine, name, wall, cpu, peak in rows:
        print(f"{engine:8s} {name:10s} {wall:8.1f} {cpu:8.1f} {peak:>8s}")
    print(f"(load average now {os.getloadavg()[0]:.1f}; homes in {work})")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
