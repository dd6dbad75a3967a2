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
import dataclasses
import datetime as dt
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from justice import identifiers
from justice.errors import ConfigError, SimulationError
from justice.sim import feed_state as fs
from justice.sim import mess as mess_mod
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.custody import WINGS, alert_codes
from justice.sim.legacy import prison
from justice.sim.legacy.identity import messy_identity
from justice.sim.people import make_people, name_pools, postcode_pool

DAY = 86_400
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
    ("self_harm_prone", pa.bool_()), ("first_received", pa.string()),
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
# One tick
# --------------------------------------------------------------------------------------------


class _Pools:
    """The exposures of a tick (who or what each event can happen to), built when first needed."""

    def __init__(self, state: fs.PrisonState, roll: list[int]) -> None:
        self.state, self.roll = state, roll
        self._made: dict[str, list] = {"prisoner_day": roll}
        self._risk: np.ndarray | None = None

    def get(self, per: str) -> list:
        if per not in self._made:
            st, roll = self.state, self.roll
            if per == "prone_prisoner_day":
                pool = [b for b in roll if st.people[st.bookings[b].person_id].prone]
            elif per in ("open_acct_day", "post_acct_day"):
                code = "HA" if per == "open_acct_day" else "HA1"
                pool = [(b, s) for b in roll for s, a in sorted(st.bookings[b].alerts.items())
                        if a[0] == code]
            elif per == "active_alert_day":
                pool = [(b, s) for b in roll for s in sorted(st.bookings[b].alerts)]
            elif per == "open_na_day":
                pool = sorted(st.open_nas)
            else:
                pool = list(st.open_incidents)
            self._made[per] = pool
        return self._made[per]

    def size(self, per: str) -> int:
        if per == "open_na_day":
            return len(self.state.open_nas)
        if per == "open_incident_day":
            return len(self.state.open_incidents)
        return len(self.get(per))

    def risk(self) -> np.ndarray:
        """Each prisoner's weight as an assailant: their propensity, capped (as the world does)."""
        if self._risk is None:
            st = self.state
            self._risk = np.array([min(st.people[st.bookings[b].person_id].risk, 5.0)
                                   for b in self.roll])
        return self._risk


class _Tick:
    """The events of one simulated interval: draws them, applies them to the state, and
    collects the rows to write and the answer key."""

    def __init__(self, live: LivePrison, start: int, end: int) -> None:
        self.live = live
        self.state = live.state
        self.rates = live.rates
        self.rng = np.random.default_rng([live.options.seed, start])
        self.start, self.end = start, end
        self.ops: list[tuple[str, dict]] = []
        self.events: list[dict] = []
        self.records: list[dict] = []
        self.persons: list[dict] = []
        self.counts: Counter = Counter()
        self.now = start

    # -- rows ---------------------------------------------------------------------------------

    def insert(self, table: str, row: dict) -> None:
        cols = list(row)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
        self.ops.append((sql, row))

    def update(self, table: str, key: dict, values: dict) -> None:
        values = {**values, "MODIFY_DATETIME": fs.stamp(self.now)}
        sets = ", ".join(f"{c} = :{c}" for c in values)
        where = " AND ".join(f"{c} = :k_{c}" for c in key)
        self.ops.append((f"UPDATE {table} SET {sets} WHERE {where}",
                         {**values, **{f"k_{c}": v for c, v in key.items()}}))

    def delete(self, table: str, key: dict) -> None:
        where = " AND ".join(f"{c} = :k_{c}" for c in key)
        self.ops.append((f"DELETE FROM {table} WHERE {where}", {f"k_{c}": v for c, v in key.items()}))

    def times(self) -> dict:
        return {"CREATE_DATETIME": fs.stamp(self.now), "MODIFY_DATETIME": fs.stamp(self.now)}

    def event(self, kind: str, booking: fs.Booking | None, *, other: fs.Booking | None = None,
              person: str | None = None, offender: int | None = None, book: int | None = None,
              agy: str | None = None, detail: str | None = None) -> None:
        self.counts[kind] += 1
        self.events.append({
            "at": fs.stamp(self.now), "kind": kind,
            "person_id": booking.person_id if booking else person,
            "other_person_id": other.person_id if other else None,
            "offender_id": booking.offender_id if booking else offender,
            "offender_book_id": booking.book_id if booking else book,
            "agy_loc_id": booking.agy if booking else agy, "detail": detail})

    @property
    def today(self) -> str:
        return fs.day_of(self.now)

    # -- drawing ------------------------------------------------------------------------------

    def run(self) -> None:
        """Draw the interval's events, then apply them in time order."""
        st = self.state
        days = (self.end - self.start) / DAY
        if days <= 0:
            return
        roll = st.roll()
        pools = _Pools(st, roll)
        drawn: list[tuple[int, int, int, str, object]] = []
        for order, (kind, ev) in enumerate(self.rates["events"].items()):
            # Receptions come at the world's rate for its roll, so the roll returns to it
            # (releases follow the roll as it is) instead of wandering off.
            exposure = st.target_roll if kind == "reception" else pools.size(ev["per"])
            n = int(self.rng.poisson(float(ev["rate"]) * self.live.options.rate * exposure * days))
            if n == 0:
                continue
            pool = roll if kind == "reception" else pools.get(ev["per"])
            if not pool and kind != "reception":
                continue
            if kind.startswith("assault") and pools.risk().sum() > 0:
                pick = self.rng.choice(len(pool), size=n, p=pools.risk() / pools.risk().sum())
            else:
                pick = self.rng.integers(0, max(len(pool), 1), n)
            at = self.start + self.rng.integers(0, self.end - self.start, n)
            for i in range(n):
                subject = pool[int(pick[i])] if pool else None
                drawn.append((int(at[i]), order, i, kind, subject))
        drawn.sort(key=lambda d: d[:3])
        for at, _, _, kind, subject in drawn:
            self.now = at
            getattr(self, f"on_{kind}")(subject)

    def _booking(self, book: int) -> fs.Booking | None:
        return self.state.bookings.get(book)

    def _choice(self, items: list):
        return items[int(self.rng.integers(0, len(items)))]

    def _weighted(self, table: dict) -> str:
        keys = list(table)
        p = np.array([float(table[k]) for k in keys])
        return keys[int(self.rng.choice(len(keys), p=p / p.sum()))]

    # -- cells and establishments ----------------------------------------------------------------

    def _find_cell(self, agy: str, high: bool, avoid: int | None = None) -> int:
        """A cell with a free place: alone for CSRA high, else sharing as often as the world does."""
        st = self.state
        empty, half = [], []
        for c in st.cells_of.get(agy, []):
            if c == avoid:
                continue
            occ = st.occupants.get(c, ())
            if not occ:
                empty.append(c)
            elif len(occ) == 1 and not st.bookings[occ[0]].csra_high:
                half.append(c)
        share = float(self.rates["reception"]["double_cell_share"])
        if not high and half and (not empty or self.rng.random() < share):
            return self._choice(half)
        if empty:
            return self._choice(empty)
        return self._open_wing(agy)

    def _open_wing(self, agy: str) -> int:
        """A new wing (four landings of 30 cells) when an establishment is full."""
        st = self.state
        wings = st.wings_of.setdefault(agy, [])
        k = len(wings)
        label = WINGS[k % len(WINGS)] * (1 + k // len(WINGS))
        while label in wings:
            k += 1
            label = WINGS[k % len(WINGS)] * (1 + k // len(WINGS))
        wings.append(label)
        cap = prison.CELL_CAPACITY

        def add(code: str, kind: str, desc: str, parent: int | None, capacity: int) -> int:
            loc = st.next_ids["location"]
            st.next_ids["location"] += 1
            self.insert("AGENCY_INTERNAL_LOCATIONS", {
                "INTERNAL_LOCATION_ID": loc, "AGY_LOC_ID": agy, "INTERNAL_LOCATION_CODE": code,
                "INTERNAL_LOCATION_TYPE": kind, "DESCRIPTION": desc,
                "PARENT_INTERNAL_LOCATION_ID": parent, "CAPACITY": capacity, "ACTIVE_FLAG": "Y",
                **self.times()})
            return loc

        wing = add(label, "WING", f"{agy}-{label}", None,
                   prison.LANDINGS * prison.CELLS_PER_LANDING * cap)
        first = None
        for landing in range(1, prison.LANDINGS + 1):
            land = add(str(landing), "LAND", f"{agy}-{label}-{landing}", wing,
                       prison.CELLS_PER_LANDING * cap)
            for n in range(1, prison.CELLS_PER_LANDING + 1):
                cell = add(f"{n:03d}", "CELL", f"{agy}-{label}-{landing}-{n:03d}", land, cap)
                st.cells[cell] = (agy, land, wing)
                st.cells_of.setdefault(agy, []).append(cell)
                first = first or cell
        self.event("wing_opened", None, agy=agy, detail=label)
        return first

    def _establishment_for(self, person: fs.Person, exclude: str | None = None) -> str | None:
        st = self.state
        age = (dt.date.fromisoformat(self.today) - dt.date.fromisoformat(person.dob)).days / 365.25 \
            if person.dob else 30
        want = "female" if person.sex == "F" else ("young_offender" if age < 21 else "male_adult")
        pool = sorted(c for c, f in st.establishments.items() if f == want and c != exclude)
        if not pool and want != "female":
            pool = sorted(c for c, f in st.establishments.items() if f == "male_adult" and c != exclude)
        return self._choice(pool) if pool else None

    def _occupy(self, b: fs.Booking, cell: int) -> None:
        st = self.state
        if b.cell is not None:
            st.occupants[b.cell].remove(b.book_id)
        b.cell = cell
        st.occupants.setdefault(cell, []).append(b.book_id)
        if len(st.occupants[cell]) > prison.CELL_CAPACITY:
            raise SimulationError(f"feed: cell {cell} would hold more than {prison.CELL_CAPACITY}")

    def _new_bed(self, b: fs.Booking, cell: int, reason: str) -> None:
        if b.bed_seq:
            self.update("BED_ASSIGNMENT_HISTORIES", {"OFFENDER_BOOK_ID": b.book_id,
                                                     "BED_ASSIGN_SEQ": b.bed_seq},
                        {"ASSIGNMENT_END_DATE": self.today})
        b.bed_seq += 1
        self.insert("BED_ASSIGNMENT_HISTORIES", {
            "OFFENDER_BOOK_ID": b.book_id, "BED_ASSIGN_SEQ": b.bed_seq, "LIVING_UNIT_ID": cell,
            "ASSIGNMENT_DATE": self.today, "ASSIGNMENT_DATETIME": fs.stamp(self.now),
            "ASSIGNMENT_REASON": reason, "ASSIGNMENT_END_DATE": None, **self.times()})
        self._occupy(b, cell)

    def _movement(self, b: fs.Booking, kind: str, reason: str, direction: str, src: str,
                  dst: str) -> None:
        if b.movement_seq:
            self.update("OFFENDER_EXTERNAL_MOVEMENTS", {"OFFENDER_BOOK_ID": b.book_id,
                                                        "MOVEMENT_SEQ": b.movement_seq},
                        {"ACTIVE_FLAG": "N"})
        b.movement_seq += 1
        self.insert("OFFENDER_EXTERNAL_MOVEMENTS", {
            "OFFENDER_BOOK_ID": b.book_id, "MOVEMENT_SEQ": b.movement_seq,
            "MOVEMENT_DATE": self.today, "MOVEMENT_TIME": fs.stamp(self.now),
            "MOVEMENT_TYPE": kind, "MOVEMENT_REASON_CODE": reason, "DIRECTION_CODE": direction,
            "FROM_AGY_LOC_ID": src, "TO_AGY_LOC_ID": dst, "ACTIVE_FLAG": "Y", **self.times()})

    # -- alerts, assessments ---------------------------------------------------------------------

    def _has_alert(self, b: fs.Booking, code: str) -> bool:
        return any(a[0] == code for a in b.alerts.values())

    def _raise_alert(self, b: fs.Booking, code: str) -> None:
        b.alert_seq += 1
        seq = b.alert_seq
        self.insert("OFFENDER_ALERTS", {
            "OFFENDER_BOOK_ID": b.book_id, "ALERT_SEQ": seq, "ROOT_OFFENDER_ID": b.offender_id,
            "ALERT_DATE": self.today, "ALERT_TYPE": self.live.alert_types.get(code, code[:1]),
            "ALERT_CODE": code, "ALERT_STATUS": "ACTIVE", "EXPIRY_DATE": None,
            "CREATE_USER_ID": str(prison.alert_raised_by(np.array([b.book_id * 1024 + seq]))[0]),
            **self.times()})
        b.alerts[seq] = (code, self.today, True)
        self._carry(b.offender_id, code, +1)
        self.event("alert_raised", b, detail=code)

    def _end_alert(self, b: fs.Booking, seq: int) -> None:
        code, _, open_ended = b.alerts.pop(seq)
        if open_ended:
            self._carry(b.offender_id, code, -1)
        self.update("OFFENDER_ALERTS", {"OFFENDER_BOOK_ID": b.book_id, "ALERT_SEQ": seq},
                    {"ALERT_STATUS": "INACTIVE", "EXPIRY_DATE": self.today})

    def _carry(self, offender: int, code: str, delta: int) -> None:
        held = self.state.carried.setdefault(offender, Counter())
        held[code] += delta
        if held[code] <= 0:
            del held[code]

    def _assess(self, b: fs.Booking, high: bool, reason: str) -> None:
        b.assessment_seq += 1
        b.csra_high = high
        self.insert("OFFENDER_ASSESSMENTS", {
            "OFFENDER_BOOK_ID": b.book_id, "ASSESSMENT_SEQ": b.assessment_seq,
            "ASSESSMENT_TYPE": "CSRA", "ASSESSMENT_DATE": self.today, "ASSESSMENT_REASON": reason,
            "REVIEW_SUP_LEVEL_TYPE": "HIGH" if high else "STANDARD", "ASSESS_STATUS": "A",
            "AGY_LOC_ID": b.agy, **self.times()})
        self.event("csra_assessed", b, detail=f"{reason}:{'HIGH' if high else 'STANDARD'}")
        if high and b.cell is not None and len(self.state.occupants.get(b.cell, ())) > 1:
            # Assessed high risk while sharing: moved to a cell of their own at once.
            self._move_cell(b, "MOVE")

    def _move_cell(self, b: fs.Booking, reason: str) -> None:
        cell = self._find_cell(b.agy, b.csra_high, avoid=b.cell)
        self._new_bed(b, cell, reason)
        self.update("OFFENDER_BOOKINGS", {"OFFENDER_BOOK_ID": b.book_id}, {"LIVING_UNIT_ID": cell})
        self.event("cell_move", b, detail=str(cell))

    # -- receptions ------------------------------------------------------------------------------

    def on_reception(self, _subject) -> None:
        """Someone is received: a returning prisoner, a person the world knows, or a stranger."""
        st, r = self.state, self.rates["reception"]
        reason = self._weighted(r["reason"])
        today = dt.date.fromisoformat(self.today)
        recent = (today - dt.timedelta(days=int(365.25 * r["returning_within_years"]))).isoformat()
        if self.rng.random() >= float(r["first_time_share"]):
            returning = sorted(p for p, (day, _) in st.last_release.items() if day >= recent)
            if returning:
                person = st.people[self._choice(returning)]
                if self.rng.random() < self.live.mess_rates["duplicate_row"]:
                    offender = self._new_offender(person, "new_record_known_person", dup=True)
                    how = "new_record_returning"
                else:
                    offender, how = st.person_rows[person.person_id][-1], "existing_record"
                self._receive(person, offender, reason, how)
                return
        if self.rng.random() >= float(r["new_to_world_share"]) and len(st.world_candidates):
            for _ in range(20):  # those received since the world ended are no longer first-timers
                pid = str(st.world_candidates[int(self.rng.integers(0, len(st.world_candidates)))])
                if pid not in st.known_people:
                    person = fs.world_person(st, pid)
                    offender = self._new_offender(person, "first_reception_known_person")
                    self._receive(person, offender, reason, "first_reception_known_person")
                    return
        person, offender = self._new_person(reason)
        self._receive(person, offender, reason, "new_person")

    def _new_person(self, reason: str) -> tuple[fs.Person, int]:
        """Someone the world has never seen, with a person id from their first OFFENDERS row."""
        st, live = self.state, self.live
        today = fs.seconds_of(self.today) // DAY
        people = make_people(self.rng, 1, np.array([today]), live.world_rates, live.pools,
                             live.postcodes)
        dob = int(people["dob"][0])
        if today - dob < 18 * 365.25:  # juveniles are not held in these establishments
            dob = today - int(365.25 * (18 + self.rng.uniform(0, 12)))
        sex = str(people["sex"][0])
        prone_share = live.world_rates["custody"]["self_harm"]["prone_share"][sex]
        year = np.array([dt.date.fromisoformat(self.today).year])
        pnc = str(identifiers.make_pnc_ids(self.rng, year)[0])
        cro = str(identifiers.make_cro_numbers(self.rng, year)[0]) if reason != "remand" else None
        offender_id = st.next_ids["offender"]
        person = fs.Person(f"PF{offender_id:08d}", sex, _iso(dob),
                           bool(self.rng.random() < prone_share), float(people["risk"][0]),
                           str(people["forename"][0]), people["middle_name"][0],
                           str(people["surname"][0]), pnc, cro)
        st.people[person.person_id] = person
        offender = self._new_offender(person, "new_person")
        self.persons.append({**dataclasses.asdict(person), "risk_score": person.risk,
                             "self_harm_prone": person.prone,
                             "prison_number": st.offender_display[offender],
                             "first_received": fs.stamp(self.now)})
        for k in ("prone", "risk"):
            self.persons[-1].pop(k)
        return person, offender

    def _new_offender(self, person: fs.Person, how: str, *, dup: bool = False) -> int:
        """A new OFFENDERS row (and its identifiers) for a person, with the source's usual mess."""
        st = self.state
        offender = st.next_ids["offender"]
        st.next_ids["offender"] += 1
        number = self._prison_number()
        dob = fs.seconds_of(person.dob) // DAY if person.dob else NONE
        rows = {"person_id": np.array([person.person_id], object),
                "forename": np.array([person.forename], object),
                "middle_name": np.array([person.middle_name], object),
                "surname": np.array([person.surname], object), "sex": np.array([person.sex], object),
                "dob": np.array([dob], np.int64), "postcode": np.array([None], object),
                "pnc_id": np.array([person.pnc_id], object),
                "cro_number": np.array([person.cro_number], object),
                "prison_number": np.array([number], object), "crn": np.array([None], object)}
        messy, labels = messy_identity(self.rng, rows, self.live.mess_rates,
                                       surname_pool=self.live.surnames, upper_case=True)
        birth = messy["dob"][0]
        self.insert("OFFENDERS", {
            "OFFENDER_ID": offender, "OFFENDER_ID_DISPLAY": number,
            "LAST_NAME": messy["surname"][0], "FIRST_NAME": messy["forename"][0],
            "MIDDLE_NAME": messy["middle_name"][0],
            "BIRTH_DATE": None if np.isnat(birth) else str(birth), "SEX_CODE": messy["sex"][0],
            "ALIAS_OFFENDER_ID": None, **self.times()})
        seq = 0
        for kind, col in (("PNC", "pnc_id"), ("CRO", "cro_number")):
            if messy[col][0] is not None:
                seq += 1
                self.insert("OFFENDER_IDENTIFIERS", {
                    "OFFENDER_ID": offender, "OFFENDER_ID_SEQ": seq, "IDENTIFIER_TYPE": kind,
                    "IDENTIFIER": messy[col][0], **self.times()})
        st.offender_person[offender] = person.person_id
        st.offender_display[offender] = number
        st.offender_names[offender] = (messy["forename"][0], messy["middle_name"][0],
                                       messy["surname"][0])
        st.person_rows.setdefault(person.person_id, []).append(offender)
        st.known_people.add(person.person_id)
        label = set(filter(None, str(labels[0]).split(",")))
        if dup:
            label.add("duplicate_row")
        self.records.append({"system": "prison", "record_id": str(offender),
                             "person_id": person.person_id, "mess": ",".join(sorted(label))})
        self.event("offender_created", None, person=person.person_id, offender=offender, detail=how)
        return offender

    def _prison_number(self) -> str:
        st = self.state
        while True:
            number = str(identifiers.make_prison_numbers(self.rng, 1)[0])
            if number not in st.prison_numbers:
                st.prison_numbers.add(number)
                return number

    def _receive(self, person: fs.Person, offender: int, reason: str, how: str) -> None:
        st, r = self.state, self.rates["reception"]
        agy = self._establishment_for(person)
        if agy is None:
            return
        book = st.next_ids["booking"]
        st.next_ids["booking"] += 1
        high = bool(self.rng.random() < float(r["csra_high_share"]))
        b = fs.Booking(book, offender, person.person_id, agy, None, reason, 0, 0, 0, 0, high)
        cell = self._find_cell(agy, high)
        self.insert("OFFENDER_BOOKINGS", {
            "OFFENDER_BOOK_ID": book, "OFFENDER_ID": offender,
            "BOOKING_NO": prison.booking_number(book), "BOOKING_BEGIN_DATE": self.today,
            "BOOKING_END_DATE": None, "BOOKING_STATUS": "O", "ACTIVE_FLAG": "Y", "AGY_LOC_ID": agy,
            "LIVING_UNIT_ID": cell, "IN_OUT_STATUS": "IN", **self.times()})
        st.bookings[book] = b
        st.last_release.pop(person.person_id, None)
        source = "OUT" if reason == "recall" or not st.courts else self._choice(st.courts)
        self._movement(b, "ADM", prison.ADMISSION_REASON[reason], "IN", source, agy)
        self._new_bed(b, cell, "ADM")
        self.event("reception", b, detail=f"{how}:{reason}")
        self._assess(b, high, "RECEPTION")
        codes = []
        if how == "existing_record":
            codes += sorted(c for c in st.carried.get(offender, {}) if c in r["carried_alerts"])
        for code, share in self.live.reception_alerts:
            if self.rng.random() < share and code not in codes:
                codes.append(code)
        for code in codes:
            self._raise_alert(b, code)

    # -- movements -------------------------------------------------------------------------------

    def on_release(self, book: int) -> None:
        """Released: REL movement, booking closed and OUT, bed assignment ended."""
        st = self.state
        b = self._booking(book)
        if b is None:
            return
        self._movement(b, "REL", "BL" if b.reason == "remand" else "CR", "OUT", b.agy, "OUT")
        if b.bed_seq:
            self.update("BED_ASSIGNMENT_HISTORIES", {"OFFENDER_BOOK_ID": book,
                                                     "BED_ASSIGN_SEQ": b.bed_seq},
                        {"ASSIGNMENT_END_DATE": self.today})
        self.update("OFFENDER_BOOKINGS", {"OFFENDER_BOOK_ID": book}, {
            "BOOKING_END_DATE": self.today, "BOOKING_STATUS": "C", "ACTIVE_FLAG": "N",
            "AGY_LOC_ID": "OUT", "LIVING_UNIT_ID": None, "IN_OUT_STATUS": "OUT"})
        self.event("release", b, detail=b.reason)
        if b.cell is not None:
            st.occupants[b.cell].remove(book)
        del st.bookings[book]
        st.last_release[b.person_id] = (self.today, book)

    def on_transfer(self, book: int) -> None:
        """Moved to another establishment of the same kind: TRN movement and a new cell there."""
        b = self._booking(book)
        if b is None:
            return
        dest = self._establishment_for(self.state.people[b.person_id], exclude=b.agy)
        if dest is None:
            return
        self._movement(b, "TRN", "NOTR", "OUT", b.agy, dest)
        source, b.agy = b.agy, dest
        cell = self._find_cell(dest, b.csra_high)
        self._new_bed(b, cell, "TRN")
        self.update("OFFENDER_BOOKINGS", {"OFFENDER_BOOK_ID": book},
                    {"AGY_LOC_ID": dest, "LIVING_UNIT_ID": cell})
        self.event("transfer", b, detail=f"{source}>{dest}")

    def on_cell_move(self, book: int) -> None:
        """Moved to another cell in the same establishment."""
        b = self._booking(book)
        if b is not None:
            self._move_cell(b, "MOVE")

    # -- incidents -------------------------------------------------------------------------------

    def _incident(self, kind: str, parties: list[tuple[fs.Booking, str]]) -> int:
        st = self.state
        case = st.next_ids["incident"]
        st.next_ids["incident"] += 1
        first = parties[0][0]
        self.insert("INCIDENT_CASES", {
            "INCIDENT_CASE_ID": case, "INCIDENT_TYPE": kind, "INCIDENT_DATE": self.today,
            "INCIDENT_TIME": fs.stamp(self.now), "AGY_LOC_ID": first.agy, "INCIDENT_STATUS": "AWAN",
            **self.times()})
        for seq, (b, role) in enumerate(parties, start=1):
            self.insert("INCIDENT_CASE_PARTIES", {
                "INCIDENT_CASE_ID": case, "PARTY_SEQ": seq, "OFFENDER_BOOK_ID": b.book_id,
                "PARTICIPATION_ROLE": role, **self.times()})
        st.open_incidents.append(case)
        other = parties[1][0] if len(parties) > 1 else None
        self.event("incident", first, other=other, detail=f"{kind}:{case}")
        return case

    def on_self_harm(self, book: int) -> None:
        """Self-harm: an incident with a SELF_HARMER; an ACCT opened unless one is open."""
        b = self._booking(book)
        if b is None:
            return
        self._incident("SELF_HARM", [(b, "SELF_HARMER")])
        if not self._has_alert(b, "HA"):
            self._raise_alert(b, "HA")
        if not self._has_alert(b, "HSH"):
            self._raise_alert(b, "HSH")

    def _someone_near(self, b: fs.Booking) -> fs.Booking | None:
        """Another prisoner in the same establishment, on the same wing where possible."""
        st = self.state
        wing = st.cells[b.cell][2] if b.cell is not None else None
        here = [o for o in sorted(st.bookings) if st.bookings[o].agy == b.agy
                and st.bookings[o].person_id != b.person_id]
        near = [o for o in here if st.bookings[o].cell is not None
                and st.cells[st.bookings[o].cell][2] == wing]
        pool = near or here
        return st.bookings[self._choice(pool)] if pool else None

    def on_assault_on_prisoner(self, book: int) -> None:
        """An assault: PERPETRATOR and VICTIM, an adjudication, often a non-association, and a
        CSRA review to high."""
        b = self._booking(book)
        if b is None:
            return
        victim = self._someone_near(b)
        if victim is None:
            return
        self._incident("ASSAULT_ON_PRISONER", [(b, "PERPETRATOR"), (victim, "VICTIM")])
        self._adjudicate(b, "Commits any assault")
        a = self.rates["assault"]
        if self.rng.random() < float(a["non_association_share"]):
            self._non_association(b, victim, "VIC", "PERPETRATOR", "VICTIM",
                                  self._weighted(a["restriction"]))
        if not b.csra_high:
            self._assess(b, True, "REVIEW_AFTER_INCIDENT")

    def on_assault_on_staff(self, book: int) -> None:
        """An assault on staff: a PERPETRATOR, an adjudication and the staff assaulter alert."""
        b = self._booking(book)
        if b is None:
            return
        self._incident("ASSAULT_ON_STAFF", [(b, "PERPETRATOR")])
        self._adjudicate(b, "Commits any assault on an officer")
        if not self._has_alert(b, "XSA"):
            self._raise_alert(b, "XSA")

    def _adjudicate(self, b: fs.Booking, charge: str) -> None:
        st, ad = self.state, self.rates["adjudication"]
        hearing_id, number = st.next_ids["hearing"], st.next_ids["adjudication"]
        st.next_ids["hearing"] += 1
        st.next_ids["adjudication"] += 1
        lo, hi = ad["hearing_after_days"]
        hearing = dt.date.fromisoformat(self.today) + dt.timedelta(days=int(self.rng.integers(lo, hi + 1)))
        finding = self._weighted(ad["finding"])
        self.insert("OIC_HEARINGS", {
            "OIC_HEARING_ID": hearing_id, "OIC_INCIDENT_ID": number, "OFFENDER_BOOK_ID": b.book_id,
            "AGY_LOC_ID": b.agy, "INCIDENT_DATE": self.today, "HEARING_DATE": hearing.isoformat(),
            "OIC_HEARING_TYPE": "GOV", "CHARGE_DESC": charge, "FINDING_CODE": finding,
            "PUNISHMENT_DESC": self._weighted(ad["punishment"]) if finding == "PROVED" else None,
            **self.times()})
        self.event("adjudication", b, detail=charge)

    def on_adjudication(self, book: int) -> None:
        """A disciplinary charge other than assault."""
        b = self._booking(book)
        if b is not None:
            self._adjudicate(b, self._weighted(self.rates["adjudication"]["charges"]))

    def on_incident_closed(self, case: int) -> None:
        """An incident's analysis is done: INCIDENT_STATUS CLOSE."""
        if case in self.state.open_incidents:
            self.state.open_incidents.remove(case)
            self.update("INCIDENT_CASES", {"INCIDENT_CASE_ID": case}, {"INCIDENT_STATUS": "CLOSE"})
            self.event("incident_closed", None, detail=str(case))

    # -- alerts and reviews ----------------------------------------------------------------------

    def on_acct_closed(self, key: tuple[int, int]) -> None:
        """An ACCT closes: HA inactive, ACCT post closure (HA1) raised."""
        b = self._booking(key[0])
        if b is None or key[1] not in b.alerts:
            return
        self._end_alert(b, key[1])
        self.event("alert_closed", b, detail="HA")
        self._raise_alert(b, "HA1")

    def on_post_acct_ended(self, key: tuple[int, int]) -> None:
        """ACCT post closure ends."""
        b = self._booking(key[0])
        if b is None or key[1] not in b.alerts:
            return
        self._end_alert(b, key[1])
        self.event("alert_closed", b, detail="HA1")

    def on_csra_review(self, book: int) -> None:
        """A CSRA review: STANDARD to HIGH or back, at the rates of feed.yaml."""
        b = self._booking(book)
        if b is None:
            return
        r = self.rates["csra_review"]
        u = self.rng.random()
        high = (u >= float(r["to_standard"])) if b.csra_high else (u < float(r["to_high"]))
        self._assess(b, high, "REVIEW")

    def _non_association(self, a: fs.Booking, b: fs.Booking, reason: str, role: str,
                         other_role: str, restriction: str) -> None:
        st = self.state
        pair = (a.offender_id, b.offender_id)
        seq = st.na_seq.get(pair, 0) + 1
        st.na_seq[pair] = seq
        self.insert("OFFENDER_NON_ASSOCIATIONS", {
            "OFFENDER_ID": a.offender_id, "NS_OFFENDER_ID": b.offender_id, "TYPE_SEQ": seq,
            "OFFENDER_BOOK_ID": a.book_id, "NS_OFFENDER_BOOK_ID": b.book_id,
            "NS_REASON_CODE": reason, "OFFENDER_ROLE": role, "NS_OFFENDER_ROLE": other_role,
            "NS_TYPE": restriction, "EFFECTIVE_DATE": self.today, "EXPIRY_DATE": None,
            **self.times()})
        st.open_nas[(a.offender_id, b.offender_id, seq)] = (a.book_id, b.book_id)
        self.event("non_association", a, other=b, detail=f"{reason}:{restriction}")

    def on_non_association(self, book: int) -> None:
        """Two prisoners in one establishment must be kept apart (gangs, bullying, threats)."""
        b = self._booking(book)
        if b is None:
            return
        other = self._someone_near(b)
        if other is None:
            return
        na = self.rates["non_association"]
        self._non_association(b, other, self._weighted(na["reason"]), "NOT_RELEVANT",
                              "NOT_RELEVANT", self._weighted(na["restriction"]))

    def on_non_association_expired(self, key: tuple[int, int, int]) -> None:
        """A non-association ends: EXPIRY_DATE set."""
        st = self.state
        if key not in st.open_nas:
            return
        books = st.open_nas.pop(key)
        self.update("OFFENDER_NON_ASSOCIATIONS", {"OFFENDER_ID": key[0], "NS_OFFENDER_ID": key[1],
                                                  "TYPE_SEQ": key[2]},
                    {"EXPIRY_DATE": self.today})
        self.event("non_association_expired", None, person=st.offender_person[key[0]],
                   offender=key[0], book=books[0], detail=f"{key[1]}:{key[2]}")

    # -- what a real source does -----------------------------------------------------------------

    def on_correction(self, book: int) -> None:
        """A row put right later: the offender's names, or an alert's date (key unchanged)."""
        st = self.state
        b = self._booking(book)
        if b is None:
            return
        person = st.people[b.person_id]
        true = tuple(v.upper() if isinstance(v, str) else v
                     for v in (person.forename, person.middle_name, person.surname))
        names = st.offender_names.get(b.offender_id) or self.live.names_of(b.offender_id)
        if (self.rng.random() < 0.5 or not b.alerts) and names != true:
            st.offender_names[b.offender_id] = true
            self.update("OFFENDERS", {"OFFENDER_ID": b.offender_id},
                        {"FIRST_NAME": true[0], "MIDDLE_NAME": true[1], "LAST_NAME": true[2]})
            self.event("correction", b, detail="OFFENDERS names")
        elif b.alerts:
            seq = self._choice(sorted(b.alerts))
            code, day, open_ended = b.alerts[seq]
            day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
            b.alerts[seq] = (code, day, open_ended)
            self.update("OFFENDER_ALERTS", {"OFFENDER_BOOK_ID": book, "ALERT_SEQ": seq},
                        {"ALERT_DATE": day})
            self.event("correction", b, detail=f"OFFENDER_ALERTS {seq} ALERT_DATE")
        else:
            # Nothing to put right: the names are re-saved as they are (MODIFY_DATETIME moves on).
            self.update("OFFENDERS", {"OFFENDER_ID": b.offender_id},
                        {"FIRST_NAME": names[0], "MIDDLE_NAME": names[1], "LAST_NAME": names[2]})
            self.event("correction", b, detail="OFFENDERS re-saved")

    def on_alert_deleted(self, key: tuple[int, int]) -> None:
        """An alert entered in error is deleted: the row disappears."""
        b = self._booking(key[0])
        if b is None or key[1] not in b.alerts:
            return
        code, _, open_ended = b.alerts.pop(key[1])
        if open_ended:
            self._carry(b.offender_id, code, -1)
        self.delete("OFFENDER_ALERTS", {"OFFENDER_BOOK_ID": key[0], "ALERT_SEQ": key[1]})
        self.event("alert_deleted", b, detail=f"{code}:{key[1]}")


def _iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


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
        params = fs._truth_params(self.truth)
        self.world_rates = ref.world(params.get("world_file"))
        # New people are adults: juveniles are not held in these establishments.
        self.world_rates = {**self.world_rates, "population": {
            **self.world_rates["population"], "juvenile_entry_share": 0.0}}
        self.mess_rates = mess_mod.load_mess_levels()[self.state.mess]
        self.pools = name_pools()
        self.surnames = self.pools[("White", "")].names
        self.postcodes = postcode_pool(options.seed, 2_000)
        codes = alert_codes()
        self.alert_types = {row["alert_code"]: row["alert_type"] for row in codes}
        self.reception_alerts = [(row["alert_code"], float(row["prevalence_on_reception"]))
                                 for row in codes if row["trigger"] == "reception"
                                 and float(row["prevalence_on_reception"]) > 0]
        self.reception_alerts += [(c, float(s)) for c, s in
                                  self.rates["reception"]["offence_alerts"].items()]
        self.run_start = self.state.clock

    def names_of(self, offender: int) -> tuple:
        """An OFFENDERS row's (first, middle, last) names as the database holds them."""
        row = fs.rows(self.conn, f"SELECT FIRST_NAME, MIDDLE_NAME, LAST_NAME FROM OFFENDERS "
                                 f"WHERE OFFENDER_ID = {int(offender)}")
        return row[0] if row else (None, None, None)

    def step(self, seconds: int) -> TickResult:
        """Simulate the next `seconds` of prison life and write them in one transaction."""
        start = self.state.clock
        end = start + max(int(seconds), 0)
        tick = _Tick(self, start, end)
        tick.run()
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
            for p in parts:
                p.unlink(missing_ok=True)
            raise SimulationError(f"feed: writing the tick {fs.stamp(start)} to the prison "
                                  f"database failed ({exc.__class__.__name__}: "
                                  f"{str(getattr(exc, 'orig', exc)).strip()[:200]}); nothing of "
                                  "it was committed") from exc
        return TickResult(start, end, tick.counts)

    def _write_truth(self, tick: _Tick) -> list[Path]:
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
            for p in mine:
                p.unlink()
            tmp.rename(target)


def _batches(ops: list[tuple[str, dict]]):
    """Consecutive operations with the same statement, as one executemany each (order kept)."""
    i = 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j][0] == ops[i][0]:
            j += 1
        yield ops[i][0], [p for _, p in ops[i:j]]
        i = j


def _engine(url: str) -> sa.Engine:
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
    engine = _engine(db_url)
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
                fs.check_tables(conn, shown)
                fs.ensure_clock_table(conn)
            with conn.begin():
                live = LivePrison(conn, truth, options, rates)
            started = live.state.clock
            done = 0
            per_tick = options.tick * options.speed
            while not stop.is_set():
                if options.steps is not None and done >= options.steps:
                    break
                if options.duration is not None and time.monotonic() - t0 >= options.duration:
                    break
                if options.steps is None:
                    wait = t0 + (done + 1) * options.tick - time.monotonic()
                    if options.duration is not None:
                        wait = min(wait, t0 + options.duration - time.monotonic())
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
