"""Benchmark: how long the safety pages take to build and render, one request at a time.

Run: .venv/bin/python benchmarks/safety_pages.py --home DIR [--prison CODE] [--repeat 20]

on a home whose serving store has been synced (`justice sync --once`). For the largest
establishment (or --prison) it times, in one process on the store (SQLite by default):

* the roll's data computed afresh (`build_roll` without the cache: what the first view after each
  sync costs), the whole roll page over HTTP (FastAPI's TestClient: routing, scoping, audit row,
  the rows from the cache for the current sync, template), and one wing's roll page;
* the prisoner summary page of a sample of the prisoners;
* the establishment overview page, and a cell-move check (data only, nothing recorded).

It prints the median and 95th percentile of each (wall time), and the median CPU time of the
process (on a busy machine the wall time also measures the wait for a core). The concurrent
load test is
benchmarks/serve_load.py; this one says where a single request's time goes. It adds a
benchmark officer to the store (name `bench.safety`) and its audit rows.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from pathlib import Path

import sqlalchemy as sa

PASSWORD = "benchmark password 2026"


CPU: dict[int, list[float]] = {}  # id of a wall-time list -> the CPU times measured with it


def _times(fn, repeat: int) -> list[float]:
    fn()  # warm: imports, template compilation, SQLite page cache
    out, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    CPU[id(out)] = cpu
    return out


def _line(label: str, ms: list[float]) -> str:
    # CPU time beside wall time: on a busy machine the wall time measures the queue for a core.
    cpu = sorted(CPU.get(id(ms), []))
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    cpu50 = f"{statistics.median(cpu):8.1f}" if cpu else f"{'':>8}"
    return f"{label:<44} {statistics.median(ms):8.1f} {p95:8.1f} {cpu50}   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--prison", default=None)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from justice.safety.cell_moves import check_move, load_prison_now
    from justice.safety.clock import service_today
    from justice.safety.roll import build_roll
    from justice.safety.rules import load_rules
    from justice.settings import Settings
    from justice.web import auth
    from justice.web.app import create_app

    settings = Settings(home=args.home)
    app = create_app(settings, sync=False)
    engine = app.state.engine
    rules = load_rules()
    with engine.connect() as conn:
        prison = (
            args.prison
            or conn.execute(
                sa.text(
                    "SELECT agy_loc_id FROM nomis_offender_bookings"
                    " WHERE active_flag = 'Y' AND in_out_status = 'IN' "
                    "GROUP BY agy_loc_id ORDER BY COUNT(*) DESC LIMIT 1"
                )
            ).scalar()
        )
        today = service_today(conn)
    if "bench.safety" not in {u["name"] for u in auth.list_users(engine)}:
        auth.add_user(engine, "bench.safety", "officer", [prison], PASSWORD)
    client = TestClient(app, base_url="http://127.0.0.1")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text).group(1)
    signed = client.post(
        "/sign-in",
        data={"name": "bench.safety", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303, "the benchmark officer could not sign in"

    with engine.connect() as conn:
        roll = build_roll(conn, rules, prison, today)
        now = load_prison_now(conn, prison)
    numbers = [r.person.booking.prison_number for r in roll.rows]
    wings = roll.layout.wing_options()
    busiest_wing = max(
        wings, key=lambda w: sum(1 for r in roll.rows if r.cell and r.cell.wing == w)
    )
    print(
        f"{roll.layout.name} ({prison}): {roll.held} people held, "
        f"{len(roll.layout.cells)} cells; today {today}"
    )
    print(f"{'':<44} {'p50 ms':>8} {'p95 ms':>8} {'CPU p50':>8}")

    def data():
        with engine.connect() as conn:
            build_roll(conn, rules, prison, today)

    def page(url):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return get

    print(_line("roll data computed afresh (first view a sync)", _times(data, args.repeat)))
    print(
        _line(
            "roll page, whole establishment (HTTP)",
            _times(page(f"/prisons/{prison}/roll"), args.repeat),
        )
    )
    print(
        _line(
            f"roll page, wing {busiest_wing} (HTTP)",
            _times(page(f"/prisons/{prison}/roll?wing={busiest_wing}"), args.repeat),
        )
    )
    print(_line("overview page (HTTP)", _times(page(f"/prisons/{prison}"), args.repeat)))
    rng = random.Random(11)
    sample = rng.sample(numbers, min(args.repeat, len(numbers)))
    summary_ms, summary_cpu = [], []
    for number in sample:
        one = _times(page(f"/prisoners/{number}"), 1)
        summary_ms += one
        summary_cpu += CPU[id(one)]
    CPU[id(summary_ms)] = summary_cpu
    print(_line("prisoner summary page (HTTP)", summary_ms))
    free = [c for c in now.layout.cells.values() if c.active]
    moves = [(rng.choice(numbers), rng.choice(free).label) for _ in range(args.repeat)]
    check_ms, check_cpu = [], []
    for number, cell in moves:

        def check(number=number, cell=cell):
            with engine.connect() as conn:
                try:
                    check_move(conn, rules, prison, number, cell, today)
                except Exception as exc:  # an already-there move is still timed
                    if type(exc).__name__ != "MoveInputError":
                        raise

        one = _times(check, 1)
        check_ms += one
        check_cpu += CPU[id(one)]
    CPU[id(check_ms)] = check_cpu
    print(_line("cell-move check (data only)", check_ms))


if __name__ == "__main__":
    main()
