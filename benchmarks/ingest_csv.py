"""Benchmark: land a big magistrates CSV (reader alone, and the whole dlt landing) vs DuckDB's
read_csv, all to Parquet.

Run: .venv/bin/python benchmarks/ingest_csv.py --rows 1000000
Builds one file of `--rows` data rows by concatenating the simulated magistrates' daily files
(header once, repeated as needed), then times (1) justice.sources.readers.csv.read -> every
batch written to one Parquet file with pyarrow's ParquetWriter and (2) DuckDB's
`COPY (SELECT * FROM read_csv(..., all_varchar=true)) TO '...parquet'` on the same file.
(3) `land_system`, the whole landing `justice ingest` does (hash for the ledger, spool, dlt
writing Parquet to the lake). The target is a landing/DuckDB ratio of at most 1.5, in bounded
memory.

Each timing gives wall seconds, CPU seconds (this process's, all its threads: DuckDB's and
pyarrow's included) and the 1-minute load average, as the machine may be shared: CPU seconds
say what work was done whatever the load, wall seconds what it took under it.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import tempfile
import time
from pathlib import Path

from ingest_world import cpu_seconds as process_cpu_seconds


def cpu_seconds() -> float:
    """CPU seconds used by this process (every thread) and its descendants so far."""
    return sum(process_cpu_seconds())


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build_file(world: Path, rows: int, out: Path) -> int:
    """Concatenate the world's magistrates files into `out` until it holds `rows` data rows."""
    files = sorted(glob.glob(str(world / "legacy" / "magistrates" / "**" / "libra_*.csv"),
                         recursive=True))
    if not files:
        raise SystemExit(f"no magistrates files under {world}/legacy/magistrates")
    written = 0
    with open(out, "wb") as dst:
        dst.write(Path(files[0]).read_bytes().split(b"\n", 1)[0] + b"\n")
        while written < rows:
            for f in files:
                lines = Path(f).read_bytes().split(b"\n", 1)[1].splitlines(keepends=True)
                lines = lines[:rows - written]
                dst.write(b"".join(lines))
                written += len(lines)
                if written >= rows:
                    break
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000,
                        help="persons in the simulated world whose files are concatenated")
    parser.add_argument("--world", type=Path, default=None,
                        help="an existing simulate_to folder to take the files from")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="landings (and DuckDB reads) timed in turn; the best of each count")
    args = parser.parse_args()

    import duckdb
    import pyarrow.parquet as pq

    from justice.sources.readers import csv as csv_reader
    from justice.sources.reading import Lineage
    from justice.sources.spec import builtin_spec_dir, load_spec

    out = args.out or Path(tempfile.mkdtemp(prefix="justice-ingest-"))
    out.mkdir(parents=True, exist_ok=True)
    world = args.world
    if world is None:
        from justice.sim.params import SimulationParams
        from justice.sim.world import simulate_to

        world = out / "world"
        t = time.perf_counter()
        simulate_to(SimulationParams(persons=args.persons, seed=1), world)
        print(f"simulated {args.persons:,} persons in {time.perf_counter() - t:.1f}s")
    big = out / "libra_big.csv"
    rows = build_file(world, args.rows, big)
    print(f"file: {big} ({big.stat().st_size / 1e6:,.0f} MB, {rows:,} data rows)")

    spec = load_spec(builtin_spec_dir() / "magistrates.yaml")
    lineage = Lineage(load_id="bench", extracted_at="2026-01-01T00:00:00")
    t = time.perf_counter()
    n_rows = n_rejects = 0
    writer = None
    for batch in csv_reader.read(spec, str(big), lineage, relative_name=big.name):
        if writer is None:
            writer = pq.ParquetWriter(out / "ours.parquet", batch.rows.schema)
        writer.write_table(batch.rows)
        n_rows += batch.rows.num_rows
        n_rejects += batch.rejects.num_rows
    if writer is not None:
        writer.close()
    ours = time.perf_counter() - t
    print(f"ours:   {ours:6.2f}s  {n_rows:,} rows + {n_rejects:,} rejects  "
          f"({(n_rows + n_rejects) / ours:,.0f} rows/s, peak {peak_rss_gb():.2f} GB)")

    def duckdb_read() -> tuple[float, float]:
        # DuckDB reads the file as UTF-8 (it has no cp1252, and its latin-1 refuses the file);
        # the few non-ASCII bytes do not change its timing.
        t, c = time.perf_counter(), cpu_seconds()
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute(f"COPY (SELECT * FROM read_csv('{big}', all_varchar=true)) "
                    f"TO '{out / 'duckdb.parquet'}' (FORMAT parquet)")
        con.close()
        return time.perf_counter() - t, cpu_seconds() - c

    theirs, theirs_cpu = duckdb_read()
    print(f"duckdb: {theirs:6.2f}s  CPU {theirs_cpu:.2f}s  {load()}")
    print(f"rows {rows:,}  reader {ours:.2f}s  duckdb {theirs:.2f}s  ratio {ours / theirs:.2f}")

    # The whole landing, as `justice ingest` does it: ledger hash, spool, dlt to the lake.
    import shutil

    import dlt  # noqa: F401  (imported before timing, as duckdb is)

    from justice.ingest.landing import land_system
    from justice.settings import Settings

    def landing() -> tuple[float, float, int]:
        home = out / "home"
        shutil.rmtree(home, ignore_errors=True)
        (home / "legacy" / "magistrates").mkdir(parents=True)
        os.link(big, home / "legacy" / "magistrates" / "libra_20250101.csv")
        t, c = time.perf_counter(), cpu_seconds()
        report = land_system(spec, Settings(home=home))
        return time.perf_counter() - t, cpu_seconds() - c, report.rows_read

    # On a shared machine one timing says little: DuckDB and the landing take turns, and the
    # fastest of each (the run least slowed by others) is compared.
    duck_times, land_times, duck_cpu, land_cpu = [theirs], [], [theirs_cpu], []
    for i in range(args.repeat):
        took, used, read = landing()
        land_times.append(took)
        land_cpu.append(used)
        print(f"landing (reader + dlt to the lake): {took:6.2f}s  CPU {used:.2f}s  {read:,} rows "
              f"read, peak {peak_rss_gb():.2f} GB  {load()}")
        if i + 1 < args.repeat:
            took, used = duckdb_read()
            duck_times.append(took)
            duck_cpu.append(used)
            print(f"duckdb: {took:6.2f}s  CPU {used:.2f}s  {load()}")
    best_land, best_duck = min(land_times), min(duck_times)
    print(f"rows {rows:,}  landing {best_land:.2f}s  duckdb {best_duck:.2f}s  (best of "
          f"{len(land_times)} and {len(duck_times)})  ratio {best_land / best_duck:.2f}  "
          f"CPU {min(land_cpu):.2f}s against {min(duck_cpu):.2f}s  peak {peak_rss_gb():.2f} GB  "
          f"{load()}")


if __name__ == "__main__":
    main()
