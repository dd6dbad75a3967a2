"""Benchmark: the statistics explorer's table builder and API under load (issue 16, speed).

Run: nice -n 10 .venv/bin/python benchmarks/explorer_load.py [--home /work/homes/big]
         [--clients 20] [--duration 20] [--distinct 2000] [--threads 2]

It copies the published aggregate files of HOME/reports/data (and the dbt manifest, if the build
left one) into a temporary home (person-level files are not copied: the explorer never reads
them), says whether they are stale against today's exports.yaml, starts `justice serve
--no-sync` on 127.0.0.1 at a free port, and drives four phases with wrk at --clients
connections for --duration seconds each (serve_load.py's wrk script: it rotates a list of URLs
and counts statuses):

1. builder, repeated views: each dataset's default table and a few common ones (the tables a
   shared link or a headline brings many people to; the query layer keeps recent tables);
2. builder, distinct queries: --distinct different random queries (measures, rows, columns and
   filters), more than the query layer keeps, so most are computed afresh;
3. and 4. the same two lists through the JSON API (/api/datasets/<name>/table).

Goal (issue 16): p95 <= 200 ms for the table builder and the API at 20 concurrent clients over a
1,000,000-person world's published files. Prints a table of figures at the end, with the
machine's load average during each phase (other work on the machine slows every phase).

With --in-process it starts no server and no wrk: it sends the same URLs, one at a time,
straight to the app (middleware, routing, the work and the page; no HTTP parsing) and reports
the CPU time each takes (time.process_time: the process's own, so other work on the machine
changes it far less than it changes latency). 1000 / the mean is what one core could serve.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import (
    WRK_INSTALL,
    WRK_SCRIPT,
    BenchmarkError,
    Child,
    free_port,
    justice_command,
    parse_wrk_output,
    wrk_version,
)

GOAL_P95_MS = 200.0
READY_TIMEOUT = 120.0


def copy_published(home: Path, dest: Path) -> dict:
    """Copy home's published aggregate files and manifest into dest/reports; return the
    manifest."""
    source = home / "reports" / "data"
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file():
        raise BenchmarkError(f"{manifest_path} is missing: run `justice build --home {home}` first")
    manifest = json.loads(manifest_path.read_text())
    data = dest / "reports" / "data"
    data.mkdir(parents=True)
    for name, entry in manifest["files"].items():
        if entry.get("person_level", True):
            continue
        shutil.copy2(source / f"{name}.parquet", data / f"{name}.parquet")
    shutil.copy2(manifest_path, data / "manifest.json")
    for docs in (home / "reports" / "dbt-docs" / "manifest.json",):
        if docs.is_file():
            (dest / "reports" / "dbt-docs").mkdir(parents=True, exist_ok=True)
            shutil.copy2(docs, dest / "reports" / "dbt-docs" / "manifest.json")
    return manifest


def staleness(manifest: dict) -> list[str]:
    """What differs between the published files and today's exports.yaml (empty: current)."""
    from justice.transform.publish import exports

    notes = []
    for name, spec in exports().items():
        entry = manifest["files"].get(name)
        if entry is None:
            notes.append(f"{name} is not published")
            continue
        missing = [c for c in (*spec.dims, *spec.counts, *spec.derived) if c not in entry["columns"]]
        if missing:
            notes.append(f"{name} lacks {', '.join(missing)}")
    return notes


def repeated_queries(catalogue) -> list[tuple[str, str]]:
    """(dataset, query) pairs many people would ask for: defaults and headline-like tables."""
    from justice.explore.query import default_query

    pairs = []
    for ds in catalogue.datasets.values():
        pairs.append((ds.name, default_query(ds).query_string()))
        q = default_query(ds)
        pairs.append((ds.name, q.query_string() + "&totals=1"))
    return pairs


def distinct_queries(catalogue, count: int, seed: int = 16) -> list[tuple[str, str]]:
    """`count` different valid random queries over every dataset."""
    from justice.explore import QueryError, parse_query, run_query

    rng = random.Random(seed)
    datasets = list(catalogue.datasets.values())
    seen: set[tuple[str, str]] = set()
    attempts = 0
    while len(seen) < count and attempts < count * 20:
        attempts += 1
        ds = rng.choice(datasets)
        measures = rng.sample(list(ds.measures), k=min(len(ds.measures), rng.randint(1, 3)))
        others = [d for d in ds.dims if d != ds.time]
        rows = [ds.time] if ds.time and rng.random() < 0.8 else rng.sample(others, 1) if others else []
        free = [d for d in others if d not in rows]
        cols = rng.sample(free, 1) if free and rng.random() < 0.6 else []
        params = [("measure", m) for m in measures] + [("row", d) for d in rows] + [("col", d) for d in cols]
        for dim in rng.sample(ds.dims, k=rng.randint(0, min(2, len(ds.dims)))):
            values = ds.values[dim]
            for v in rng.sample(values, k=rng.randint(1, max(1, min(4, len(values) // 2)))):
                params.append((f"f.{dim}", v))
        if rng.random() < 0.5:
            params.append(("totals", "1"))
        try:
            query = parse_query(ds, params)
            if not run_query(ds, query).row_keys:
                continue
        except QueryError:
            continue
        seen.add((ds.name, query.query_string()))
    return sorted(seen)


def run_wrk(wrk: str, base: str, work: Path, name: str, paths: list[str], args) -> dict:
    import subprocess

    paths_file = work / f"{name}-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = work / "explorer_load.lua"
    script.write_text(WRK_SCRIPT)
    cmd = [wrk, "-t", str(args.threads), "-c", str(args.clients), "-d", f"{args.duration:g}s",
           "--timeout", "10s", "-s", str(script), base + paths[0], "--", str(paths_file)]
    print(f"  {name}: wrk -t {args.threads} -c {args.clients} -d {args.duration:g}s over "
          f"{len(paths)} URL(s) ...", flush=True)
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=args.duration + 90)
    (work / f"{name}-wrk.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise BenchmarkError(f"wrk failed (exit {out.returncode}):\n{out.stderr[-1500:]}")
    return parse_wrk_output(out.stdout)


def in_process_costs(home: Path, phases: list[tuple[str, list[str]]]) -> None:
    """Send each phase's paths to the app in this process, one at a time; print the CPU time
    per request."""
    import asyncio
    import statistics

    from justice.settings import Settings
    from justice.web.app import create_app

    app = create_app(Settings.from_env(home=str(home)), sync=False)

    async def call(path: str) -> int:
        route, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "http", "path": route, "raw_path": route.encode(),
                 "query_string": query.encode(), "root_path": "", "client": ("127.0.0.1", 1),
                 "headers": [(b"host", b"127.0.0.1")], "server": ("127.0.0.1", 80)}
        status = 0

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def run() -> None:
        async with app.router.lifespan_context(app):
            print(f"\nin process: CPU time per request, one at a time ({os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.1f})")
            print(f"{'phase':<34} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
                  f"{'1 core req/s':>13}")
            for name, paths in phases:
                costs = []
                for path in paths:
                    started = time.process_time()
                    status = await call(path)
                    costs.append((time.process_time() - started) * 1000)
                    if status != 200:
                        raise BenchmarkError(f"{path} answered {status}")
                costs.sort()
                mean = statistics.mean(costs)
                print(f"{name:<34} {mean:>8.2f} {costs[len(costs) // 2]:>8.2f} "
                      f"{costs[int(len(costs) * 0.95)]:>8.2f} {costs[-1]:>8.1f} {1000 / mean:>13.0f}")

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/work/homes/big"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--distinct", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--in-process", action="store_true",
                        help="no server: CPU time per request through the app, one at a time")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None and not args.in_process:
        print(f"wrk is not installed: {WRK_INSTALL}")
        return 2
    import httpx

    from justice.explore import load_catalogue

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="explorer-load-")))
        home = work / "home"
        manifest = copy_published(args.home, home)
        stale = staleness(manifest)
        print(f"published files: {args.home}/reports/data, built {manifest.get('published_at')}; "
              + ("stale against today's exports.yaml: " + "; ".join(stale) if stale else
                 "current against today's exports.yaml"), flush=True)
        catalogue = load_catalogue(home / "reports")
        repeated = repeated_queries(catalogue)
        distinct = distinct_queries(catalogue, args.distinct)
        if args.in_process:
            in_process_costs(home, [
                (f"{kind}, {label} ({len(pairs)} URLs)",
                 # as many requests in each phase: the repeated URLs asked again and again
                 [make(n, q) for n, q in pairs] * max(1, len(distinct) // len(pairs)))
                for label, pairs in (("distinct", distinct), ("repeated", repeated))
                for kind, make in (("builder", lambda n, q: f"/explore/{n}?{q}"),
                                   ("api", lambda n, q: f"/api/datasets/{n}/table?{q}"))])
            return 0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "JUSTICE_HOME": str(home)}
        server = Child("serve", [*justice_command(), "serve", "--no-sync", "--host", "127.0.0.1",
                                 "--port", str(port)], env, work / "serve.log")
        stack.callback(server.stop)
        client = stack.enter_context(httpx.Client(base_url=base, timeout=30))
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if not server.alive():
                raise BenchmarkError(f"justice serve stopped:\n{server.tail()}")
            try:
                if client.get("/explore").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchmarkError(f"justice serve not up after {READY_TIMEOUT:.0f} s")
            time.sleep(0.3)
        rows = []
        for label, pairs in (("repeated", repeated), ("distinct", distinct)):
            for kind, make in (("builder", lambda n, q: f"/explore/{n}?{q}"),
                               ("api", lambda n, q: f"/api/datasets/{n}/table?{q}")):
                paths = [make(n, q) for n, q in pairs]
                load = os.getloadavg()[0]
                figures = run_wrk(wrk, base, work, f"{kind}-{label}", paths, args)
                figures["load"] = (load + os.getloadavg()[0]) / 2  # the machine's, not ours alone
                rows.append((f"{kind}, {label} ({len(paths)} URLs)", figures))
        print(f"\nexplorer load: {args.clients} clients, {args.duration:g} s a phase, "
              f"{wrk_version(wrk)}, 1 server process (justice serve), {os.cpu_count()} CPUs, "
              f"published files of {args.home} ({sum(d.rows for d in catalogue.datasets.values()):,} "
              f"published rows in {len(catalogue.datasets)} datasets)")
        print(f"{'phase':<34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'load':>5}  goal")
        for name, f in rows:
            p95 = f["p95_us"] / 1000
            print(f"{name:<34} {f['rps']:>8.1f} {f['p50_us'] / 1000:>8.1f} {p95:>8.1f} "
                  f"{f['p99_us'] / 1000:>8.1f} {f['errors']:>7} {f['load']:>5.1f}  "
                  f"{'met' if p95 <= GOAL_P95_MS and not f['errors'] else 'NOT met'} (p95 <= {GOAL_P95_MS:g} ms)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as exc:
        print(f"explorer_load: {exc}", file=sys.stderr)
        sys.exit(1)
