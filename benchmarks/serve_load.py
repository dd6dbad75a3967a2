"""Benchmark: the safety service under load, with the live prison feed running (issue 11, speed).

Run: .venv/bin/python benchmarks/serve_load.py --home DIR [--clients 50] [--duration 30]
         [--sync-interval 60] [--feed-speed 60] [--store URL] [--prison CODE] [--roll-query Q]...
         [--think-ms MS] [--sample 200] [--writes 3]

on a home that has been simulated, ingested, linked and built. It:

1. syncs the prison database into a fresh serving store with `justice sync --once` (its time and
   peak memory are reported) and adds a benchmark officer for the largest establishment (or
   --prison);
2. starts `justice feed` (at --feed-speed simulated seconds per second) and `justice serve`
   (syncing in-process every --sync-interval seconds) on 127.0.0.1 at a free port;
3. signs in once, and picks the rolls of the officer's establishment (by default the whole roll
   and the roll of its busiest wing; --roll-query for others) and the summaries of a random
   sample of the prisoners in it;
4. drives each roll, then the summaries, each at --clients connections for --duration seconds
   with wrk (a Lua script sends the session cookie, rotates the summary URLs and counts
   statuses): requests/s, p50/p95/p99 latency and errors (any non-200; a 403 means the prisoner
   left the establishment during the run, and the sample is picked again before the next
   phase). Each connection asks again as soon as it is answered (the flat-out load the goal is
   set for); with --think-ms the phases are run again with each connection pausing a random 0
   to 2x that long after each answer, as an officer reading the page would (a new connection
   per request then, as the server closes one idle for 5 s);
5. freshness: writes an open ACCT alert (OFFENDER_ALERTS, code HA) into the prison database for a
   prisoner on the roll, at the prison clock, and polls the roll of the prisoner's wing every
   0.5 s until their row shows the flag; repeated --writes times, each at a random point of the
   sync cycle;
6. stops everything and prints a table of figures.

Goals (issue 11): p95 <= 100 ms for the roll and the summary at 50 clients on loopback; a write
shown on the roll within one sync interval.

The benchmark writes into the home: the feed carries its prison database on (and its truth/feed
answer key), the freshness writes add --writes ACCT alerts to it, and the store defaults to
HOME/serving/serve_load.sqlite (replaced on each run). Every process it starts runs in its own
process group and is stopped (SIGINT, then SIGTERM, then SIGKILL) when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

OFFICER = "serve-load-officer"
ACCT_CODE = "HA"              # open ACCT (self-harm or suicide risk plan): rules.yaml `open_acct`
ACCT_LABEL = "Open ACCT"
ALERT_SEQ_GAP = 1_000
"""The running feed keeps each booking's next ALERT_SEQ in memory: a freshness alert written at
that key would make the feed's next alert on the booking fail, so it is written past a gap."""
POLL_SECONDS = 0.5
READY_TIMEOUT = 600.0         # the server and the feed load the whole prison at start
STOP_TIMEOUT = 60.0
WRK_INSTALL = "apt-get install -y wrk   (Debian package `wrk`; then run this again)"
MARKER = "SERVE_LOAD "

WRK_SCRIPT = r"""
-- serve_load.py's wrk script: rotates the paths listed in a file (one a line, from the
-- argument after --), counts responses by status in each thread, and prints the figures as
-- one JSON line in done(). Latencies are wrk's own (microseconds).
local threads = {}

-- With SERVE_LOAD_THINK_MS set, each connection waits a random 0 to 2x that many milliseconds
-- after each answer (an officer reading the page) instead of asking again at once.
local think = tonumber(os.getenv("SERVE_LOAD_THINK_MS") or "0") or 0
if think > 0 then
  function delay()
    return math.random(0, 2 * think)
  end
end

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  i = offset or 0
  ok = 0
  other = ""
end

function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other .. status .. ","
  end
end

function done(summary, latency, requests)
  local ok_all, codes = 0, {}
  for _, t in ipairs(threads) do
    ok_all = ok_all + t:get("ok")
    for code in string.gmatch(t:get("other"), "(%d+),") do
      codes[code] = (codes[code] or 0) + 1
    end
  end
  local parts = {}
  for code, n in pairs(codes) do parts[#parts + 1] = string.format('"%s": %d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'SERVE_LOAD {"requests": %d, "duration_us": %d, "bytes": %d, "ok": %d, "statuses": {%s}, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes, ok_all, table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.timeout))
end
"""


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says why."""


# ------------------------------------------------------------------------------------------------
# Pure helpers (tested in tests/benchmarks/test_serve_load.py)
# ------------------------------------------------------------------------------------------------


def parse_wrk_output(text: str) -> dict:
    """The figures the wrk script printed (its SERVE_LOAD line), with requests/s and errors."""
    for line in text.splitlines():
        if line.startswith(MARKER):
            figures = json.loads(line[len(MARKER):])
            break
    else:
        raise BenchmarkError("wrk printed no SERVE_LOAD line (did the Lua script fail?):\n"
                             + text[-2000:])
    seconds = figures["duration_us"] / 1e6
    figures["seconds"] = seconds
    figures["rps"] = figures["requests"] / seconds if seconds > 0 else 0.0
    figures["statuses"] = {int(k): v for k, v in figures["statuses"].items()}
    figures["socket_errors"] = sum(figures[k] for k in ("connect_errors", "read_errors",
                                                        "write_errors", "timeouts"))
    figures["errors"] = sum(figures["statuses"].values()) + figures["socket_errors"]
    return figures


_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.DOTALL | re.IGNORECASE)


def roll_row(html: str, prison_number: str) -> str | None:
    """The roll table row (inner HTML) of `prison_number`, or None when it is not on the page."""
    for match in _ROW.finditer(html):
        if re.search(rf"\b{re.escape(prison_number)}\b", match.group(1)):
            return match.group(1)
    return None


def row_shows_flag(row: str, label: str = ACCT_LABEL) -> bool:
    """Whether a roll row shows the flag labelled `label` (tags and text, not attributes)."""
    text = re.sub(r"<[^>]*>", " ", row)
    return re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", text) is not None


def wrk_version(wrk: str) -> str:
    """wrk's version line (``wrk debian/4.1.0-3+b2 [epoll]``)."""
    out = subprocess.run([wrk, "-v"], check=False, capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "wrk (version unknown)"


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ms(us: float) -> str:
    return f"{us / 1000:,.1f}"


# ------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------


def justice_command() -> list[str]:
    """The `justice` command of this Python environment."""
    beside = Path(sys.executable).with_name("justice")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("justice")
    if found:
        return [found]
    raise BenchmarkError("the `justice` command is not installed in this environment "
                         "(run `make setup`, or this script with .venv/bin/python)")


class Child:
    """A process this benchmark started, in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict, log: Path, *,
                 stdin: str | None = None) -> None:
        self.name, self.log = name, log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin is not None else
                                     subprocess.DEVNULL, start_new_session=True)
        if stdin is not None:
            self.proc.stdin.write(stdin.encode())
            self.proc.stdin.close()
        self.rusage = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the process to end (at most `timeout` seconds); keeps its resource usage."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = usage
                self._log.close()
                return self.proc.returncode
            time.sleep(0.2)
        raise BenchmarkError(f"{self.name} did not finish within {timeout:,.0f} s (log: {self.log})")

    def tail(self, chars: int = 1500) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGINT (a clean stop), then SIGTERM, then SIGKILL, to this process's group only."""
        for sig, grace in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGTERM, 10.0),
                           (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # A worker left in the group after its leader ended is ours too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not self._log.closed:
            self._log.close()


# ------------------------------------------------------------------------------------------------
# The benchmark
# ------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One wrk run."""

    name: str
    urls: int
    figures: dict


@dataclass
class Report:
    """What the run measured, for the final table."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, value: str) -> None:
        self.lines.append((what, value))
        print(f"  {what}: {value}", flush=True)


class Benchmark:
    """One run of the benchmark (see the module doc)."""

    def __init__(self, args: argparse.Namespace, wrk: str, stack: ExitStack) -> None:
        import sqlalchemy as sa

        from justice.settings import Settings

        self.args, self.wrk, self.stack = args, wrk, stack
        self.home = Path(args.home).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="serve-load-"))
        self.rng = random.Random(args.seed)
        store = args.store or f"sqlite:///{self.home / 'serving' / 'serve_load.sqlite'}"
        self.settings = Settings(home=self.home, serving_db=store,
                                 sync_interval=args.sync_interval)
        self.env = {**os.environ, "JUSTICE_HOME": str(self.home), "JUSTICE_SERVING_DB": store,
                    "JUSTICE_SYNC_INTERVAL": f"{args.sync_interval:g}"}
        self.env.pop("JUSTICE_SERVE_SYNC", None)
        self.justice = justice_command()
        self.report = Report()
        self.sa = sa
        self.store = None
        self.prison_db = None
        self.base = ""
        self.cookie = ""
        self.client = None
        from justice.sim.custody import alert_codes

        self.acct_type = next(r["alert_type"] for r in alert_codes() if r["alert_code"] == ACCT_CODE)

    # -- helpers --------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)

    def start(self, name: str, *cmd: str, stdin: str | None = None) -> Child:
        child = Child(name, [*self.justice, *cmd], self.env, self.work / f"{name}.log", stdin=stdin)
        self.stack.callback(child.stop)
        return child

    def check_home(self) -> None:
        from justice.web.sync import open_prison

        missing = [p for p in ("warehouse.duckdb", "truth/records.parquet") if not (self.home / p).exists()]
        if missing:
            raise BenchmarkError(f"{self.home} is not a simulated, ingested, linked and built home: "
                                 f"{', '.join(missing)} missing")
        open_prison(self.settings).dispose()  # says clearly when the prison database is missing

    def fresh_store(self) -> None:
        from justice.serving.store import create_store_engine

        url = self.sa.engine.make_url(self.settings.serving_db_url)
        if url.get_backend_name() == "sqlite" and not self.args.store:
            path = Path(url.database)
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
            return
        engine = create_store_engine(self.settings.serving_db_url)
        try:
            with engine.connect() as conn:
                used = self.sa.inspect(conn).has_table("sync_runs") and conn.execute(
                    self.sa.text("SELECT COUNT(*) FROM sync_runs")).scalar()
        finally:
            engine.dispose()
        if used:
            raise BenchmarkError(f"--store {self.args.store}: the store has been synced before; the "
                                 "benchmark measures the first sync into an empty store")

    # -- 1. the first sync and the officer ------------------------------------------------------

    def first_sync(self) -> None:
        self.log("first sync into a fresh store (justice sync --once) ...")
        began = time.monotonic()
        child = self.start("first-sync", "sync", "--once")
        code = child.wait(4 * 3600)
        seconds = time.monotonic() - began
        if code != 0:
            raise BenchmarkError(f"justice sync --once failed (exit {code}):\n{child.tail()}")
        peak = child.rusage.ru_maxrss / 1024**2  # KB on Linux
        self.report.add("first sync (justice sync --once)", f"{seconds:,.1f} s, peak memory {peak:,.2f} GB")
        from justice.serving.store import create_store_engine

        self.store = create_store_engine(self.settings.serving_db_url)
        with self.store.connect() as conn:
            offenders = conn.execute(self.sa.text("SELECT COUNT(*) FROM nomis_offenders")).scalar()
            held = conn.execute(self.sa.text(
                "SELECT agy_loc_id, COUNT(*) FROM nomis_offender_bookings WHERE active_flag = 'Y' "
                "AND in_out_status = 'IN' GROUP BY agy_loc_id ORDER BY 2 DESC, 1")).all()
        if not held:
            raise BenchmarkError("nobody is held in any establishment after the sync")
        self.held = dict(held)
        self.report.add("prison database", f"{offenders:,} OFFENDERS rows; {sum(self.held.values()):,} "
                        f"held in {len(self.held)} establishments")
        prisons = self.args.prison or [held[0][0]]
        unknown = [p for p in prisons if p not in self.held]
        if unknown:
            raise BenchmarkError(f"--prison {', '.join(unknown)}: nobody is held there "
                                 f"(establishments: {', '.join(self.held)})")
        self.prisons = prisons
        self.prison = prisons[0]
        self.password = secrets.token_urlsafe(18)
        cmd = ["users", "add", OFFICER, "--role", "officer", "--password-stdin"]
        for p in prisons:
            cmd += ["--prison", p]
        child = self.start("users-add", *cmd, stdin=self.password + "\n")
        if child.wait(120) != 0:
            raise BenchmarkError(f"justice users add failed:\n{child.tail()}")
        self.report.add("officer's establishment", f"{self.prison} ({self.held[self.prison]:,} held"
                        + (f"; the officer also has {', '.join(prisons[1:])})" if prisons[1:] else ")"))

    # -- 2. the feed and the server ---------------------------------------------------------------

    def feed_clock(self) -> str | None:
        from justice.sim.legacy.prison import FEED_CLOCK

        with self.prison_db.connect() as conn:
            if not self.sa.inspect(conn).has_table(FEED_CLOCK):
                return None
            return conn.execute(self.sa.text(f"SELECT SIMULATED_NOW FROM {FEED_CLOCK}")).scalar()

    def start_services(self) -> None:
        import httpx

        from justice.sim.feed import open_prison_database

        self.prison_db = open_prison_database(self.settings.prison_db_url)
        clock_before = self.feed_clock()
        self.log(f"starting justice feed at {self.args.feed_speed:g}x and justice serve ...")
        self.feed = self.start("feed", "feed", "--speed", f"{self.args.feed_speed:g}")
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.serve = self.start("serve", "serve", "--host", "127.0.0.1", "--port", str(port))
        self.client = self.stack.enter_context(httpx.Client(base_url=self.base, timeout=120.0))
        deadline = time.monotonic() + READY_TIMEOUT
        server_up = feed_writing = False
        while not (server_up and feed_writing):
            if time.monotonic() > deadline:
                raise BenchmarkError(f"not ready after {READY_TIMEOUT:.0f} s (server up: {server_up}, "
                                     f"feed writing: {feed_writing}); logs in {self.work}")
            for child in (self.feed, self.serve):
                if not child.alive():
                    raise BenchmarkError(f"justice {child.name} stopped:\n{child.tail()}")
            if not server_up:
                try:
                    server_up = self.client.get("/sign-in").status_code == 200
                except httpx.TransportError:
                    pass
            if not feed_writing:
                clock = self.feed_clock()
                feed_writing = clock is not None and clock != clock_before
            time.sleep(0.5)
        self.report.add("feed", f"justice feed --speed {self.args.feed_speed:g} (prison clock "
                        f"{self.feed_clock()} at start)")
        self.report.add("server", f"justice serve on {self.base}, 1 process, syncing every "
                        f"{self.args.sync_interval:g} s in-process; store {self._store_shown()}")

    def _store_shown(self) -> str:
        return self.sa.engine.make_url(self.settings.serving_db_url).render_as_string(hide_password=True)

    # -- 3. sign in, pick the URLs ----------------------------------------------------------------

    def sign_in(self) -> None:
        page = self.client.get("/sign-in")
        token = re.search(r'name="csrf_token"\s+value="([^"]+)"', page.text)
        if token is None:
            raise BenchmarkError("the sign-in page has no csrf_token field")
        response = self.client.post("/sign-in", data={"name": OFFICER, "password": self.password,
                                                      "csrf_token": token.group(1), "next": "/"})
        self.cookie = self.client.cookies.get("justice_session") or ""
        if response.status_code != 303 or not self.cookie:
            raise BenchmarkError(f"signing in as {OFFICER} failed (HTTP {response.status_code})")
        wings = self.wings_held()
        self.roll_paths = []
        for query in self.args.roll_query:
            if query == "wing=busiest":
                if not wings:
                    raise BenchmarkError(f"nobody in {self.prison} is in a cell on a wing")
                query = f"wing={collections.Counter(wings.values()).most_common(1)[0][0]}"
            path = f"/prisons/{self.prison}/roll" + (f"?{query}" if query else "")
            began = time.perf_counter()
            roll = self.client.get(path)
            alone = time.perf_counter() - began
            if roll.status_code != 200:
                raise BenchmarkError(f"GET {path} answered {roll.status_code}: is the roll page "
                                     "(justice.web.safety) installed, and the query right?")
            rows = len(_ROW.findall(roll.text))
            self.roll_paths.append(path)
            self.report.add("roll URL", f"{path} ({rows:,} table rows, {len(roll.content) / 1024:,.0f} "
                            f"KB; {alone * 1000:,.0f} ms alone)")

    def wings_held(self) -> dict[int, str]:
        """The wing of each booking held in the establishment (by OFFENDER_BOOK_ID)."""
        from justice.safety.locations import load_layout

        with self.store.connect() as conn:
            layout = load_layout(conn, self.prison)
            rows = conn.execute(self.sa.text(
                "SELECT offender_book_id, living_unit_id FROM nomis_offender_bookings "
                "WHERE active_flag = 'Y' AND in_out_status = 'IN' AND agy_loc_id = :p"),
                {"p": self.prison}).all()
        return {b: layout.cells[c].wing for b, c in rows if c in layout.cells}

    def held_now(self) -> list[tuple[str, int, int]]:
        """(prison number, booking, offender) of everyone the store shows in the establishment."""
        with self.store.connect() as conn:
            return [tuple(r) for r in conn.execute(self.sa.text(
                "SELECT o.offender_id_display, b.offender_book_id, b.offender_id "
                "FROM nomis_offender_bookings b JOIN nomis_offenders o ON o.offender_id = b.offender_id "
                "WHERE b.active_flag = 'Y' AND b.in_out_status = 'IN' AND b.agy_loc_id = :p "
                "ORDER BY b.offender_book_id"), {"p": self.prison}).all()]

    def pick_summaries(self) -> list[str]:
        """A random sample of prisoners in the establishment whose summary answers 200 now."""
        pool = [r[0] for r in self.held_now()]
        self.rng.shuffle(pool)
        wanted = min(self.args.sample, len(pool))
        chosen, timings, stale = [], [], 0
        for number in pool:
            if len(chosen) == wanted:
                break
            began = time.perf_counter()
            status = self.client.get(f"/prisoners/{number}").status_code
            timings.append(time.perf_counter() - began)
            if status == 200:
                chosen.append(f"/prisoners/{number}")
            elif status == 403:
                stale += 1  # left since the store was read, or its page said so
            else:
                raise BenchmarkError(f"GET /prisoners/{number} answered {status}")
        if not chosen:
            raise BenchmarkError(f"no prisoner summary in {self.prison} answered 200")
        self.summary_alone = statistics.median(timings)
        return chosen

    # -- 4. load --------------------------------------------------------------------------------

    def run_wrk(self, name: str, paths: list[str], think_ms: float = 0) -> Phase:
        slug = re.sub(r"\W+", "-", name)
        paths_file = self.work / f"{slug}-paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script = self.work / "serve_load.lua"
        script.write_text(WRK_SCRIPT)
        threads = max(1, min(self.args.threads, self.args.clients))
        cmd = [self.wrk, "-t", str(threads), "-c", str(self.args.clients), "-d",
               f"{self.args.duration:g}s", "--timeout", f"{self.args.timeout:g}s",
               "-H", f"Cookie: justice_session={self.cookie}", "-s", str(script),
               # uvicorn closes a connection idle for 5 s; wrk would count the next request on
               # it as a read error. A reading officer's browser reconnects: so do these.
               *(["-H", "Connection: close"] if think_ms else []),
               self.base + paths[0], "--", str(paths_file)]
        self.log(f"{name}: wrk -t {threads} -c {self.args.clients} -d {self.args.duration:g}s over "
                 f"{len(paths)} URL(s) ...")
        load = os.getloadavg()[0]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True,
                             env={**os.environ, "SERVE_LOAD_THINK_MS": f"{think_ms:g}"},
                             timeout=self.args.duration + self.args.timeout + 60)
        (self.work / f"{slug}-wrk.log").write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise BenchmarkError(f"wrk failed (exit {out.returncode}):\n{out.stderr[-1500:]}")
        figures = parse_wrk_output(out.stdout)
        figures["load_before"] = load
        return Phase(name, len(paths), figures)

    # -- 5. freshness -----------------------------------------------------------------------------

    def roll_html(self, path: str) -> str:
        response = self.client.get(path)
        if response.status_code != 200:
            raise BenchmarkError(f"GET {path} answered {response.status_code}")
        return response.text

    def write_acct(self, booking: int, offender: int) -> tuple[int, str]:
        """Raise an open ACCT on `booking` in the prison database at the prison clock, as the
        feed raises alerts; returns its ALERT_SEQ and time stamp."""
        import numpy as np

        from justice.sim.legacy import prison
        from justice.sim.legacy.prison import FEED_CLOCK

        with self.prison_db.begin() as conn:
            now = conn.execute(self.sa.text(f"SELECT SIMULATED_NOW FROM {FEED_CLOCK}")).scalar()
            top = conn.execute(self.sa.text(
                "SELECT COALESCE(MAX(ALERT_SEQ), 0) FROM OFFENDER_ALERTS WHERE OFFENDER_BOOK_ID = :b"),
                {"b": booking}).scalar()
            seq = int(top) + ALERT_SEQ_GAP
            conn.execute(self.sa.text(
                "INSERT INTO OFFENDER_ALERTS (OFFENDER_BOOK_ID, ALERT_SEQ, ROOT_OFFENDER_ID, "
                "ALERT_DATE, ALERT_TYPE, ALERT_CODE, ALERT_STATUS, EXPIRY_DATE, CREATE_USER_ID, "
                "CREATE_DATETIME, MODIFY_DATETIME) VALUES (:b, :s, :o, :d, :type, :c, 'ACTIVE', "
                "NULL, :u, :t, :t)"),
                {"b": booking, "s": seq, "o": offender, "d": now[:10], "type": self.acct_type,
                 "c": ACCT_CODE, "t": now,
                 "u": str(prison.alert_raised_by(np.array([booking * 1024 + seq]))[0])})
        return seq, now

    def candidates(self) -> list[tuple[str, int, int]]:
        """People in the establishment with no active ACCT on their booking (store's view)."""
        with self.store.connect() as conn:
            acct = {r[0] for r in conn.execute(self.sa.text(
                "SELECT offender_book_id FROM nomis_offender_alerts WHERE alert_code = :c "
                "AND alert_status = 'ACTIVE'"), {"c": ACCT_CODE})}
        return [r for r in self.held_now() if r[1] not in acct]

    def freshness(self) -> list[float]:
        interval = self.args.sync_interval
        timeout = 3 * interval + 60
        delays, left, fetches = [], 0, []
        pool = self.candidates()
        self.rng.shuffle(pool)
        wings = self.wings_held()
        for number, booking, offender in pool[:20 * self.args.writes]:
            if len(delays) == self.args.writes:
                break
            # The roll of the prisoner's wing: the row is the same as on the whole roll, and a
            # smaller page keeps the polling close to 0.5 s on a large establishment.
            path = f"/prisons/{self.prison}/roll" + (f"?wing={wings[booking]}" if booking in wings else "")
            row = roll_row(self.roll_html(path), number)
            if row is None or row_shows_flag(row):
                continue  # not on this roll (filter) or already flagged
            # A random point of the sync cycle, so the writes sample the whole wait, not its end.
            time.sleep(self.rng.uniform(0, interval))
            seq, stamp = self.write_acct(booking, offender)
            written = time.monotonic()
            shown = None
            while time.monotonic() - written < timeout:
                time.sleep(POLL_SECONDS)
                began = time.monotonic()
                row = roll_row(self.roll_html(path), number)
                fetches.append(time.monotonic() - began)
                if row is None:
                    break  # released or moved since: the write says nothing of freshness
                if row_shows_flag(row):
                    shown = time.monotonic() - written
                    break
                if not (self.feed.alive() and self.serve.alive()):
                    raise BenchmarkError("the feed or the server stopped during the freshness test")
            if shown is None and row is not None:
                raise BenchmarkError(f"the ACCT written for {number} (booking {booking}, seq {seq}, "
                                     f"at {stamp}) was not on the roll after {timeout:.0f} s")
            if shown is None:
                left += 1
                continue
            delays.append(shown)
            self.log(f"freshness: ACCT for {number} written at prison time {stamp}, on {path} "
                     f"after {shown:.1f} s")
        if left:
            self.log(f"freshness: {left} prisoner(s) left the roll before their alert showed")
        if not delays:
            raise BenchmarkError("no freshness write could be measured")
        self.poll_fetch = statistics.median(fetches)
        return delays

    # -- the run ----------------------------------------------------------------------------------

    def sync_runs(self, since: dt.datetime) -> list[tuple[float, str | None]]:
        with self.store.connect() as conn:
            rows = conn.execute(self.sa.text(
                "SELECT started_at, finished_at, error FROM sync_runs WHERE started_at >= :t "
                "ORDER BY run_id"), {"t": since}).all()
        out = []
        for started, finished, error in rows:
            if isinstance(started, str):
                started, finished = (dt.datetime.fromisoformat(started),
                                     dt.datetime.fromisoformat(finished) if finished else None)
            out.append(((finished - started).total_seconds() if finished else float("nan"), error))
        return out

    def run(self) -> None:
        a = self.args
        print(f"serve_load: {a.clients} clients x {a.duration:g} s per phase; home {self.home}; "
              f"logs in {self.work}", flush=True)
        self.report.add("load tool", f"{wrk_version(self.wrk)} (-t {min(a.threads, a.clients)} "
                        f"-c {a.clients} -d {a.duration:g}s --timeout {a.timeout:g}s), on loopback")
        self.report.add("machine", f"{os.cpu_count()} cores shared by wrk, the server, the sync and "
                        f"the feed; load average {os.getloadavg()[0]:.2f} at start")
        self.check_home()
        self.fresh_store()
        self.first_sync()
        self.start_services()
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.sign_in()
        def roll_name(path: str) -> str:
            return "roll" + (f" ?{path.partition('?')[2]}" if "?" in path else "")

        phases = [self.run_wrk(roll_name(p), [p]) for p in self.roll_paths]
        summaries = self.pick_summaries()
        self.report.add("summary URLs", f"{len(summaries)} prisoners sampled at random from "
                        f"{self.prison}; median {self.summary_alone * 1000:,.0f} ms alone")
        phases.append(self.run_wrk("summary", summaries))
        if a.think_ms:
            label = f"think {a.think_ms:g} ms"
            phases += [self.run_wrk(f"{roll_name(p)}, {label}", [p], a.think_ms)
                       for p in self.roll_paths]
            summaries = self.pick_summaries()
            phases.append(self.run_wrk(f"summary, {label}", summaries, a.think_ms))
        delays = self.freshness()
        runs = self.sync_runs(started)
        self.phases, self.delays, self.runs = phases, delays, runs
        for child in (self.feed, self.serve):
            if not child.alive():
                raise BenchmarkError(f"justice {child.name} stopped during the run:\n{child.tail()}")

    def print_table(self) -> None:
        a = self.args
        print(f"\nFigures ({a.clients} connections, {a.duration:g} s a phase; latency in ms, wrk's "
              "own percentiles; goal p95 <= 100 ms):")
        w = max(len(p.name) for p in self.phases) + 2
        print(f"{'page':<{w}}{'URLs':>6}{'requests':>10}{'req/s':>9}{'p50':>9}{'p95':>9}{'p99':>9}"
              f"{'max':>10}  {'goal':<7} errors")
        for p in self.phases:
            f = p.figures
            errors = ", ".join(f"{n} x HTTP {code}" + (" (stale: left the prison)" if code == 403 else "")
                               for code, n in sorted(f["statuses"].items()))
            if f["socket_errors"]:
                sockets = "socket errors: " + ", ".join(
                    f"{f[k + '_errors' if k != 'timeouts' else k]} {k}"
                    for k in ("connect", "read", "write", "timeouts"))
                errors = f"{errors}, {sockets}" if errors else sockets
            goal = "met" if f["p95_us"] <= 100_000 and f["requests"] else "missed"
            print(f"{p.name:<{w}}{p.urls:>6}{f['requests']:>10,}{f['rps']:>9,.1f}{ms(f['p50_us']):>9}"
                  f"{ms(f['p95_us']):>9}{ms(f['p99_us']):>9}{ms(f['max_us']):>10}  {goal:<7} "
                  f"{errors or 'none'}")
        d = self.delays
        print(f"freshness over {len(d)} write(s): min {min(d):.1f} s, median {statistics.median(d):.1f} s, "
              f"max {max(d):.1f} s (polled every {POLL_SECONDS:g} s + {self.poll_fetch:.2f} s a fetch); sync interval {a.sync_interval:g} s: "
              f"goal (<= one interval) "
              f"{'met' if max(d) <= a.sync_interval else 'missed'}")
        ok_runs = [s for s, e in self.runs if e is None]
        failed = len(self.runs) - len(ok_runs)
        if ok_runs:
            print(f"in-process syncs during the run: {len(self.runs)} ({failed} failed); "
                  f"median {statistics.median(ok_runs):.1f} s, max {max(ok_runs):.1f} s each")
        print("\nRun figures:")
        for what, value in self.report.lines:
            print(f"  {what}: {value}")
        print(f"  load average at the end: {os.getloadavg()[0]:.2f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="a simulated, ingested, linked and built home")
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections (50)")
    parser.add_argument("--duration", type=float, default=30, help="seconds per load phase (30)")
    parser.add_argument("--sync-interval", type=float, default=60, help="seconds between syncs (60)")
    parser.add_argument("--feed-speed", type=float, default=60,
                        help="simulated seconds per wall second of the feed (60)")
    parser.add_argument("--store", help="serving store URL (default HOME/serving/serve_load.sqlite, "
                        "replaced; another store must never have been synced)")
    parser.add_argument("--prison", action="append",
                        help="the officer's establishment (repeat for several; the roll is the first's); "
                             "default the one holding most people")
    parser.add_argument("--roll-query", action="append",
                        help="query string of a roll URL to drive, e.g. 'wing=A' or 'flag=open_acct'; "
                             "'wing=busiest' is the wing holding most; repeat for several phases "
                             "(default: the whole roll, then the busiest wing's)")
    parser.add_argument("--sample", type=int, default=200, help="prisoners whose summaries are driven")
    parser.add_argument("--writes", type=int, default=3, help="freshness writes (3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2: the machine's cores)")
    parser.add_argument("--timeout", type=float, default=30,
                        help="wrk's request timeout in seconds (30: a slow answer is measured, "
                             "not dropped)")
    parser.add_argument("--think-ms", type=float, default=0,
                        help="also drive both pages with each client pausing 0 to 2x this many ms "
                             "after each answer (an officer reading), after the flat-out phases")
    parser.add_argument("--seed", type=int, default=1, help="seed of the samples and write times")
    args = parser.parse_args(argv)
    if args.roll_query is None:
        args.roll_query = ["", "wing=busiest"]
    for name in ("clients", "sample", "writes", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.think_ms < 0:
        parser.error("--think-ms cannot be negative")
    for name in ("duration", "sync_interval", "feed_speed", "timeout"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every figure was measured, non-zero with a reason when not."""
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(f"serve_load: the load tool wrk is not installed. Install it with:\n    {WRK_INSTALL}",
              file=sys.stderr)
        return 2

    def _terminate(_sig, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with ExitStack() as stack:
            bench = Benchmark(args, wrk, stack)
            bench.run()
        # Everything is stopped here (the ExitStack stopped the server and the feed).
        bench.print_table()
        return 0
    except BenchmarkError as exc:
        print(f"serve_load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("serve_load: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
