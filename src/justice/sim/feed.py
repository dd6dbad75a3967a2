"""The live prison: carries the simulated world on past its end date, writing into NOMIS.

``justice feed`` keeps a simulated clock that starts where the prison database's data ends (the
feed's own clock if it ran before, else the day after the world's end date, never before the
latest MODIFY_DATETIME) and advances ``speed`` simulated seconds per wall-clock second. Every
``tick`` wall seconds it simulates the interval the clock moved through and writes its events in
one transaction: receptions, transfers, releases, cell moves, alerts raised, closed and deleted,
CSRA reviews, non-associations, incidents, adjudications and corrections, with rates from
``reference/feed.yaml`` (see there, with their sources).

How rows are written
    Exactly as the batch emitter (:mod:`justice.sim.legacy.prison`) writes them: the same
    tables, text formats and keys, sequences continued (the next OFFENDER_ID, OFFENDER_BOOK_ID,
    MOVEMENT_SEQ of a booking, ...). CREATE_DATETIME and MODIFY_DATETIME are the simulated time
    of the event; an update sets MODIFY_DATETIME to the simulated now and never changes a key;
    a deleted row disappears. A cell never holds more than its capacity of two, and a prisoner
    assessed high risk in the CSRA is never put in a shared cell.

Determinism
    A tick's random draws come from a generator seeded by (seed, the tick's simulated start),
    and what it writes depends only on the database (with the truth folder, which grows with
    it) and those draws. The same seed and steps on the same starting database give identical
    tables, whether the steps are run at once or over several runs.

The answer key (``HOME/truth/feed/``)
    ``events/``, ``records/`` and ``persons/`` hold Parquet parts named
    ``<first simulated second>-<end simulated second>.parquet``: one per tick with events while
    the feed runs, merged into one per run when it stops. ``records`` rows have the form of
    ``truth/records.parquet`` (system, record_id = OFFENDER_ID, person_id, mess) for every new
    OFFENDERS row; ``persons`` the true identity of people new to the world (person ids
    ``PF`` + the first OFFENDER_ID they were received under, so they never clash with the
    world's ``P`` ids); ``events`` one row per event (:data:`EVENT_SCHEMA`). A part is written
    before its tick's transaction commits and removed if the commit fails; parts of a tick the
    database never committed (a crash between the two) are removed when the feed starts.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from justice.errors import ConfigError, SimulationError
from justice.sim import feed_state as fs
from justice.sim import mess as mess_mod
from justice.sim import reference as ref
from justice.sim.custody import alert_codes
from justice.sim.feed_events import Pools, Tick
from justice.sim.legacy import prison
from justice.sim.people import name_pools, postcode_pool

EVENT_SCHEMA = pa.schema([
    ("at", pa.string()), ("kind", pa.string()), ("person_id", pa.string()),
    ("other_person_id", pa.string()), ("offender_id", pa.int64()), ("offender_book_id", pa.int64()),
    ("agy_loc_id", pa.string()), ("detail", pa.string()),
])
RECORD_SCHEMA = pa.schema([("system", pa.string()), ("record_id", pa.string()),
                           ("person_id", pa.string()), ("mess", pa.string())])
PERSON_SCHEMA = pa.schema([
    ("person_id", pa.string()), ("forename", pa.string()), ("middle_name", pa.string()),
    ("surname", pa.string()), ("sex", pa.string()), ("dob", pa.string()), ("pnc_id", pa.string()),
    ("cro_number", pa.string()), ("prison_number", pa.string()), ("risk_score", pa.float64()),
    ("self_harm_prone", pa.bool_()), ("first_received", pa.string()), ("ethnicity", pa.string()),
])
PER = ("prisoner_day", "prone_prisoner_day", "open_acct_day", "post_acct_day", "open_na_day",
       "open_incident_day", "active_alert_day")


def load_rates(path: Path | None = None) -> dict:
    """The feed's rates (``reference/feed.yaml``, or another file of the same form)."""
    import yaml

    if path is None:
        from importlib import resources
        text = resources.files("justice.sim").joinpath("reference", "feed.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    rates = yaml.safe_load(text)
    for name, ev in rates["events"].items():
        if not hasattr(Tick, f"on_{name}"):
            known = sorted(n[3:] for n in dir(Tick) if n.startswith("on_"))
            raise ConfigError(f"feed.yaml events.{name}: no such event; the feed knows "
                              f"{', '.join(known)}")
        if ev.get("per") not in PER or not float(ev.get("rate", -1)) >= 0:
            raise ConfigError(f"feed.yaml events.{name}: needs `per` (one of {', '.join(PER)}) "
                              "and a `rate` of at least 0")
    return rates


@dataclass(frozen=True, kw_only=True)
class FeedOptions:
    """How the feed runs.

    Example::

        FeedOptions(seed=3, speed=3600, tick=1.0, steps=10)  # ten hours of prison life at once
    """

    seed: int = 1
    """Seed of every random draw (with each tick's simulated start)."""

    speed: float = 1.0
    """Simulated seconds per wall-clock second (1: real time)."""

    rate: float = 1.0
    """Multiplies every event rate (a demo can make a quiet prison busy)."""

    tick: float = 1.0
    """Wall seconds between writes; each write holds the events of the simulated interval."""

    steps: int | None = None
    """Run this many ticks without sleeping, then stop (tests and benchmarks)."""

    duration: float | None = None
    """Stop after this many wall seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ConfigError(f"--speed {self.speed}: simulated seconds per wall second must be "
                              "more than 0 (1 is real time)")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ConfigError(f"--rate {self.rate}: the multiplier of event rates must be 0 or more")
        if not (math.isfinite(self.tick) and self.tick > 0):
            raise ConfigError(f"--tick {self.tick}: wall seconds between writes must be more than 0")
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"--steps {self.steps}: a number of ticks cannot be negative")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration {self.duration}: give a number of wall seconds above 0")
        if self.steps is not None and self.duration is not None:
            raise ConfigError("give --steps or --duration, not both")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: a seed cannot be negative")


@dataclass
class TickResult:
    """What one tick did."""

    start: int
    end: int
    counts: Counter = field(default_factory=Counter)


@dataclass
class FeedSummary:
    """What a run of the feed did."""

    started_at: str
    ended_at: str
    ticks: int
    counts: Counter
    roll: int
    seconds: float


# --------------------------------------------------------------------------------------------
# The feed
# --------------------------------------------------------------------------------------------


class LivePrison:
    """The prison database carried on in simulated time, one tick at a time."""

    def __init__(self, conn: sa.Connection, truth: Path, options: FeedOptions,
                 rates: dict | None = None) -> None:
        self.conn, self.truth, self.options = conn, Path(truth), options
        self.rates = rates or load_rates()
        self.state = fs.load_state(conn, self.truth)
        params = fs.truth_params(self.truth)
        self.world_rates = ref.world(params.get("world_file"))
        # New people are adults: juveniles are not held in these establishments.
        self.world_rates = {**self.world_rates, "population": {
            **self.world_rates["population"], "juvenile_entry_share": 0.0}}
        self.mess_rates = mess_mod.load_mess_levels()[self.state.mess]
        self.name_pools = name_pools()
        self.surnames = self.name_pools[("White", "")].names
        self.postcodes = postcode_pool(options.seed, 2_000)
        codes = alert_codes()
        self.alert_types = {row["alert_code"]: row["alert_type"] for row in codes}
        self.reception_alerts = [(row["alert_code"], float(row["prevalence_on_reception"]))
                                 for row in codes if row["trigger"] == "reception"
                                 and float(row["prevalence_on_reception"]) > 0]
        self.reception_alerts += [(c, float(s)) for c, s in
                                  self.rates["reception"]["offence_alerts"].items()]
        self.run_start = self.state.clock
        self._pools: Pools | None = None
        self._failed = False

    def pools(self) -> Pools:
        """Who and what events can happen to; kept while quiet ticks change nothing."""
        if self._pools is None:
            self._pools = Pools(self.state, self.state.roll())
        return self._pools

    def names_of(self, offender: int) -> tuple:
        """An OFFENDERS row's (first, middle, last) names as the database holds them."""
        row = fs.rows(self.conn, f"SELECT FIRST_NAME, MIDDLE_NAME, LAST_NAME FROM OFFENDERS "
                                 f"WHERE OFFENDER_ID = {int(offender)}")
        return row[0] if row else (None, None, None)

    def step(self, seconds: int) -> TickResult:
        """Simulate the next `seconds` of prison life and write them in one transaction.

        If the write fails, nothing of the tick is in the database but the state in memory has
        moved on: this object refuses further steps, and a new one reads the prison again.
        """
        if self._failed:
            raise SimulationError("feed: a tick failed to write; start the feed again")
        start = self.state.clock
        end = start + max(int(seconds), 0)
        tick = Tick(self, start, end)
        tick.run()
        if tick.ops:
            self._pools = None  # the prison changed: who events can happen to must be looked at again
        self.state.clock = end
        self.state.ticks += 1
        parts = self._write_truth(tick) if tick.events else []
        if self.conn.in_transaction():
            self.conn.commit()  # a read made while drawing the tick (nothing written yet)
        try:
            with self.conn.begin():
                for sql, params in _batches(tick.ops):
                    self.conn.execute(sa.text(sql), params)
                self.conn.exec_driver_sql(f"DELETE FROM {fs.FEED_CLOCK}")
                self.conn.execute(sa.text(f"INSERT INTO {fs.FEED_CLOCK} (SIMULATED_NOW, TICKS) "
                                          "VALUES (:now, :ticks)"),
                                  {"now": fs.stamp(end), "ticks": self.state.ticks})
        except sa.exc.SQLAlchemyError as exc:
            self._failed = True
            for p in parts:
                p.unlink(missing_ok=True)
            raise SimulationError(f"feed: writing the tick {fs.stamp(start)} to the prison "
                                  f"database failed ({exc.__class__.__name__}: "
                                  f"{str(getattr(exc, 'orig', exc)).strip()[:200]}); nothing of "
                                  "it was committed") from exc
        return TickResult(start, end, tick.counts)

    def _write_truth(self, tick: Tick) -> list[Path]:
        written = []
        name = f"{tick.start:012d}-{tick.end:012d}.parquet"
        for kind, rows_, schema in (("events", tick.events, EVENT_SCHEMA),
                                    ("records", tick.records, RECORD_SCHEMA),
                                    ("persons", tick.persons, PERSON_SCHEMA)):
            if not rows_:
                continue
            folder = self.truth / fs.TRUTH_FEED / kind
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            pq.write_table(pa.Table.from_pylist(rows_, schema=schema), path, compression="zstd")
            written.append(path)
        return written

    def compact_truth(self) -> None:
        """Merge this run's per-tick answer-key parts into one part per kind."""
        for kind in ("events", "records", "persons"):
            folder = self.truth / fs.TRUTH_FEED / kind
            if not folder.exists():
                continue
            mine = sorted(p for p in folder.glob("*.parquet")
                          if int(p.stem.partition("-")[0]) >= self.run_start)
            if len(mine) < 2:
                continue
            merged = pa.concat_tables([pq.read_table(p) for p in mine])
            first = mine[0].stem.partition("-")[0]
            last = max(p.stem.partition("-")[2] for p in mine)
            target = folder / f"{first}-{last}.parquet"
            tmp = target.with_suffix(".tmp")
            pq.write_table(merged, tmp, compression="zstd")
            # The merged part is in place before the tick parts go: a reader (or a crash in
            # between) finds either, and read_feed_truth skips parts a larger one holds.
            tmp.rename(target)
            for p in mine:
                if p != target:
                    p.unlink()


def _batches(ops: list[tuple[str, dict]]):
    """Consecutive operations with the same statement, as one executemany each (order kept)."""
    i = 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j][0] == ops[i][0]:
            j += 1
        yield ops[i][0], [p for _, p in ops[i:j]]
        i = j


def open_prison_database(url: str) -> sa.Engine:
    """An engine on the prison database set up as the feed uses it (SQLite: WAL, busy timeout)."""
    engine = prison._engine(url)
    if engine.dialect.name == "sqlite":
        # The safety service's sync reads while the feed writes: in WAL mode neither blocks the
        # other, and a commit need not wait for the disk (a crash loses at most the last ticks,
        # and their answer-key parts with them: see drop_stale_parts).
        @sa.event.listens_for(engine, "connect")
        def _pragma(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 10000")
            # Another process holding the file open keeps its mode: that is fine too.
            with contextlib.suppress(Exception):
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()
    return engine


Progress = Callable[[TickResult, "LivePrison"], None]


def run_feed(db_url: str, truth: Path, options: FeedOptions, *, rates: dict | None = None,
             progress: Progress = lambda _r, _l: None) -> FeedSummary:
    """Run the feed on the prison database at `db_url` until its steps or duration are done,
    or Ctrl-C (which stops after the current tick)."""
    truth = Path(truth)
    if not (truth / "records.parquet").exists():
        raise SimulationError(f"{truth}: no records.parquet; the feed needs the simulated world's "
                              "truth/ folder (run `justice simulate` into this --home first)")
    engine = open_prison_database(db_url)
    shown = prison._shown(db_url)
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    t0 = time.monotonic()
    counts: Counter = Counter()
    try:
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise SimulationError(f"prison database {shown}: cannot connect "
                                  f"({exc.__class__.__name__})") from None
        with conn:
            with conn.begin():
                live = LivePrison(conn, truth, options, rates)
            started = live.state.clock
            # The ticks and --duration count from here, once the prison is read: on a loaded
            # machine reading it can take longer than a short run's whole duration.
            t_feed = time.monotonic()
            done = 0
            per_tick = options.tick * options.speed
            while not stop.is_set():
                if options.steps is not None and done >= options.steps:
                    break
                if options.duration is not None and time.monotonic() - t_feed >= options.duration:
                    break
                if options.steps is None:
                    wait = t_feed + (done + 1) * options.tick - time.monotonic()
                    if options.duration is not None:
                        wait = min(wait, t_feed + options.duration - time.monotonic())
                    if wait > 0 and stop.wait(wait):
                        break
                length = round((done + 1) * per_tick) - round(done * per_tick)
                result = live.step(length)
                counts.update(result.counts)
                done += 1
                progress(result, live)
            live.compact_truth()
            return FeedSummary(fs.stamp(started), fs.stamp(live.state.clock), done, counts,
                               len(live.state.bookings), time.monotonic() - t0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        engine.dispose()
