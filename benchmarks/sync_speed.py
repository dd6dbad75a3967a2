"""How fast the safety service's sync copies the prison database into the serving store.

    .venv/bin/python benchmarks/sync_speed.py                       # a copy of /work/homes/demo
    .venv/bin/python benchmarks/sync_speed.py --home DIR --feed-steps 10
    .venv/bin/python benchmarks/sync_speed.py --persons 100000      # a fresh world, mirror only
    .venv/bin/python benchmarks/sync_speed.py --store postgresql+psycopg://...   # store in PostgreSQL

Works on a copy (the home given is never written). Prints, for the first sync (everything),
an incremental sync after the live feed (`justice feed --steps N`) has written a handful of
changes, and a sync with nothing to do: seconds (mirror, people, commit), rows read and rows per
second. With --persons it simulates a world of that size first (prison database only matters;
no warehouse, so person resolution waits and only the mirror is timed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from justice.serving.mirror import MIRROR
from justice.serving.store import metadata, open_store
from justice.settings import Settings
from justice.web.sync import sync_once

JUSTICE = str(Path(sys.executable).with_name("justice"))


def _line(label: str, result) -> str:
    rate = result.rows_read / result.seconds if result.seconds else 0.0
    phases = ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items())
    return (f"{label:<28} {result.seconds:7.2f} s  ({phases})  read {result.rows_read:>9,}  "
            f"upserted {result.upserted:>9,}  deleted {result.deleted:>4}  resolved "
            f"{result.resolved:>7,}  scored {result.scored:>4}  {rate:>9,.0f} rows/s"
            + (f"\n{'':<28} note: {result.note}" if result.note else "")
            + (f"\n{'':<28} ERROR: {result.error}" if result.error else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/work/homes/demo"))
    parser.add_argument("--persons", type=int, default=0,
                        help="Simulate a fresh world of this size instead of copying --home.")
    parser.add_argument("--feed-steps", type=int, default=5,
                        help="Ticks of `justice feed` between the first and the incremental sync.")
    parser.add_argument("--feed-speed", type=float, default=3600.0,
                        help="Simulated seconds per tick of the feed.")
    parser.add_argument("--feed-rate", type=float, default=20.0,
                        help="Multiplier of the feed's event rates (the demo's prisons are small).")
    parser.add_argument("--store", default="",
                        help="SQLAlchemy URL of the serving store (default: SQLite in the copy). "
                             "Its sync tables are dropped first.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    try:
        home = work / "home"
        started = time.perf_counter()
        if args.persons:
            subprocess.run([JUSTICE, "simulate", "--persons", str(args.persons), "--seed", "1",
                            "--out", str(home)], check=True, stdout=subprocess.DEVNULL)
            print(f"simulated {args.persons:,} people in {time.perf_counter() - started:.0f} s")
        else:
            shutil.copytree(args.home, home, ignore=shutil.ignore_patterns("serving"))
        settings = Settings(home=home, serving_db=args.store)
        source = sa.create_engine(settings.prison_db_url)
        with source.connect() as conn:
            rows = {n: conn.execute(sa.text(f"SELECT COUNT(*) FROM {n}")).scalar() for n in MIRROR}
        size = (home / "legacy" / "prison" / "nomis.sqlite").stat().st_size / 1e6
        print(f"prison database: {sum(rows.values()):,} rows in {len(rows)} tables ({size:.0f} MB); "
              f"OFFENDERS {rows['OFFENDERS']:,}, OFFENDER_BOOKINGS {rows['OFFENDER_BOOKINGS']:,}")

        store = open_store(settings)
        if args.store:  # start from nothing, as the copy's SQLite store would
            sync_tables = [t for t in metadata.sorted_tables if t.name.startswith("nomis_")
                           or t.name in ("person_resolution", "linked_history", "sync_state",
                                         "sync_runs")]
            metadata.drop_all(store, tables=sync_tables)
            metadata.create_all(store, tables=sync_tables)
        print(_line("first sync", sync_once(settings, store)))
        print(_line("nothing to do", sync_once(settings, store)))
        feed = subprocess.run([JUSTICE, "feed", "--home", str(home), "--steps", str(args.feed_steps),
                               "--speed", str(args.feed_speed), "--rate", str(args.feed_rate),
                               "--tick", "1", "--json"],
                              check=True, capture_output=True, text=True)
        with source.connect() as conn:
            after = {n: conn.execute(sa.text(f"SELECT COUNT(*) FROM {n}")).scalar() for n in MIRROR}
        print(f"feed: {args.feed_steps} ticks of {args.feed_speed:g} simulated s; row count change "
              f"{sum(after.values()) - sum(rows.values()):+,} "
              f"({', '.join(f'{n} {after[n] - rows[n]:+}' for n in MIRROR if after[n] != rows[n])})")
        events = json.loads(feed.stdout).get("events", {})
        print(f"feed events: {', '.join(f'{k} {v}' for k, v in events.items()) or 'none'}")
        print(_line("incremental sync", sync_once(settings, store)))
        print(_line("nothing to do", sync_once(settings, store)))
        # A delete in the largest table: the count check finds it and that table's keys are
        # reconciled, the dearest thing an incremental run does.
        largest = max(after, key=after.get)
        spec, _ = MIRROR[largest]
        with source.begin() as conn:
            key = conn.execute(sa.text(f"SELECT {', '.join(spec.primary_key)} FROM {largest} "
                                       f"ORDER BY MODIFY_DATETIME LIMIT 1")).one()
            conn.execute(sa.text(f"DELETE FROM {largest} WHERE " + " AND ".join(
                f"{k} = :k{i}" for i, k in enumerate(spec.primary_key))),
                {f"k{i}": v for i, v in enumerate(key)})
        print(_line(f"1 delete ({largest.lower()}, {after[largest]:,} rows)",
                    sync_once(settings, store)))
        if not args.store:
            size = (home / "serving" / "safety.sqlite").stat().st_size / 1e6
            print(f"serving store: {size:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
