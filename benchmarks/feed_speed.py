"""Benchmark: how far ahead of real time the live prison (`justice feed`) runs.

Run: .venv/bin/python benchmarks/feed_speed.py --home DIR [--steps 2000]
     (DIR: a home with truth/ and legacy/prison/, e.g. after `justice demo`; it is copied to a
     temporary folder first, so DIR is never written)
Prints: the time to read the prison at start, then for quiet ticks at real time (--speed 1),
hourly ticks (--speed 3600) and busy hourly ticks (--speed 3600 --rate 30): ticks a second,
events written, and how many times faster than real time that is; and the time a tick spends on
its exposures for a roll scaled up to what a 1,000,000-person world holds (~2% in custody):
for a typical tick with an event, and the worst case that lists every exposure.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Measure the feed on a copy of --home and print the figures."""
    from justice.sim.feed import FeedOptions, LivePrison, open_prison_database
    from justice.sim.feed_events import Pools
    from justice.sim.legacy import prison

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(args.home / "truth", work / "truth", ignore=shutil.ignore_patterns("feed"))
        (work / "legacy" / "prison").mkdir(parents=True)
        shutil.copy2(args.home / "legacy" / "prison" / prison.DB_FILE, work / "legacy" / "prison")
        engine = open_prison_database(f"sqlite:///{work / 'legacy' / 'prison' / prison.DB_FILE}")
        for speed, rate in ((1, 1), (3600, 1), (3600, 30)):
            with engine.connect() as conn:
                began = time.perf_counter()
                with conn.begin():
                    live = LivePrison(conn, work / "truth", FeedOptions(speed=speed, rate=rate))
                loaded = time.perf_counter() - began
                began, events = time.perf_counter(), 0
                for _ in range(args.steps):
                    events += sum(live.step(speed).counts.values())
                seconds = time.perf_counter() - began
                print(f"--speed {speed} --rate {rate}: read the prison in {loaded:.2f} s (roll "
                      f"{len(live.state.bookings):,}); {args.steps / seconds:,.0f} ticks/s, "
                      f"{events:,} events, {args.steps * speed / seconds:,.0f}x real time")
        # A roll the size of a 1,000,000-person world's: copies of this one's bookings.
        state = live.state
        base = list(state.bookings.values())
        next_book = max(state.bookings) + 1
        while len(state.bookings) < 20_000:
            for b in base:
                twin = copy.deepcopy(b)
                twin.book_id, twin.cell = next_book, None
                state.join_roll(twin)
                next_book += 1
        pers = ("prisoner_day", "prone_prisoner_day", "open_acct_day", "post_acct_day",
                "active_alert_day", "open_na_day", "open_incident_day")
        for label, build_all in (("a tick with an event", False), ("every exposure listed", True)):
            began = time.perf_counter()
            for _ in range(10):
                pools = Pools(state, state.roll())
                for per in pers:
                    if pools.size(per) and (build_all or per == "prisoner_day"):
                        pools.get(per)
            ms = (time.perf_counter() - began) / 10 * 1000
            print(f"exposures of a roll of {len(state.bookings):,}, {label}: {ms:.1f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
