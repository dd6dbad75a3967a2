"""The live prison's memory: what the feed needs to know, read from the prison database and truth.

Everything here is rebuilt from the database (and the answer key in ``truth/``) when the feed
starts, and kept up to date as it writes, so a feed stopped and started again carries on from
exactly the state it would have had: what it writes depends on the database, never on how many
runs it took to get there. Collections are iterated in key order wherever a random draw picks
from them, for the same reason.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from justice.errors import SimulationError
from justice.sim.legacy import prison

FEED_CLOCK = prison.FEED_CLOCK
EPOCH = dt.datetime(1970, 1, 1)
TRUTH_FEED = "feed"


def stamp(seconds: int) -> str:
    """A simulated time as the batch emitter writes it: ``YYYY-MM-DD HH:MM:SS``."""
    return (EPOCH + dt.timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


def day_of(seconds: int) -> str:
    """The ``YYYY-MM-DD`` date of a simulated time."""
    return stamp(seconds)[:10]


def seconds_of(text: str) -> int:
    """Seconds since 1970 of a ``YYYY-MM-DD[ HH:MM:SS]`` text."""
    value = dt.datetime.fromisoformat(text[:19]) if len(text) > 10 else dt.datetime.fromisoformat(text)
    return int((value - EPOCH).total_seconds())


def _text(value: object) -> object:
    """A database value as SQLite stores it (PostgreSQL returns dates and datetimes)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def rows(conn: sa.Connection, sql: str) -> list[tuple]:
    """The rows of a query, dates and timestamps as text."""
    return [tuple(_text(v) for v in r) for r in conn.exec_driver_sql(sql).all()]


@dataclass
class Booking:
    """An open booking: someone on the roll."""

    book_id: int
    offender_id: int
    person_id: str
    agy: str
    cell: int | None
    reason: str            # admission reason: remand, sentenced or recall
    bed_seq: int           # open bed assignment (0: none)
    movement_seq: int      # latest movement
    alert_seq: int
    assessment_seq: int
    csra_high: bool
    # Active alerts: seq -> (code, ALERT_DATE, EXPIRY_DATE or None when open-ended)
    alerts: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)


@dataclass
class Person:
    """What the feed needs to know of a person (from truth or from the feed's own answer key)."""

    person_id: str
    sex: str
    dob: str | None
    prone: bool
    risk: float
    forename: str | None = None
    middle_name: str | None = None
    surname: str | None = None
    pnc_id: str | None = None
    cro_number: str | None = None
    ethnicity: str | None = None  # the true group (White, Mixed, Asian, Black, Other)


@dataclass
class PrisonState:
    """The prison as the feed sees it; see the module docstring."""

    clock: int                                    # simulated now (seconds since 1970)
    ticks: int
    world_end: dt.date
    mess: str
    establishments: dict[str, str]                # code -> function (female, young_offender, ...)
    courts: list[str]
    cells: dict[int, tuple[str, int, int]]        # cell -> (agy, landing id, wing id)
    cells_of: dict[str, list[int]]                # agy -> cells, by id
    wings_of: dict[str, list[str]]                # agy -> wing codes
    occupants: dict[int, list[int]]               # cell -> book ids
    bookings: dict[int, Booking]                  # the roll
    offender_person: dict[int, str]
    offender_display: dict[int, str]
    offender_names: dict[int, tuple]              # (first, middle, last) of roll offenders
    person_rows: dict[str, list[int]]             # person -> root OFFENDERS rows, oldest first
    last_release: dict[str, tuple[str, int]]      # person -> (release date, booking) if not in
    carried: dict[int, Counter]                   # offender -> open-ended active alert codes
    open_nas: dict[tuple[int, int, int], tuple[int, int]]  # key -> (book, ns book)
    na_seq: dict[tuple[int, int], int]
    open_incidents: list[int]
    prison_numbers: set[str]
    people: dict[str, Person]
    world_candidates: np.ndarray                  # person ids never received, for first receptions
    next_ids: dict[str, int]
    target_roll: int = 0                          # the roll on the world's last day
    known_people: set[str] = field(default_factory=set)
    world_persons: tuple | None = None            # (truth persons table, its sorted person ids)
    roll_ids: list[int] = field(default_factory=list)        # open bookings, by id
    prone_on_roll: int = 0
    alerts_on_roll: Counter = field(default_factory=Counter)  # active alerts on the roll by code
    # Active alerts on the roll with a planned end, (EXPIRY_DATE, book, seq) soonest first; an
    # entry whose alert has gone already is skipped when its day comes.
    expiring: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def clock_text(self) -> str:
        """The simulated now as text."""
        return stamp(self.clock)

    def roll(self) -> list[int]:
        """Open bookings, by id."""
        return list(self.roll_ids)

    # The roll's running counts, so a tick knows its exposures without looking at everyone.

    def count_roll(self) -> None:
        """Count the roll from scratch (on loading)."""
        self.roll_ids = sorted(self.bookings)
        self.prone_on_roll = sum(self.people[b.person_id].prone for b in self.bookings.values())
        self.alerts_on_roll = Counter(a[0] for b in self.bookings.values() for a in b.alerts.values())
        self.expiring = sorted((a[2], b.book_id, s) for b in self.bookings.values()
                               for s, a in b.alerts.items() if a[2])

    def join_roll(self, b: Booking) -> None:
        """A booking opens (its id is the highest yet)."""
        self.bookings[b.book_id] = b
        self.roll_ids.append(b.book_id)
        self.prone_on_roll += self.people[b.person_id].prone
        self.alerts_on_roll.update(a[0] for a in b.alerts.values())

    def leave_roll(self, b: Booking) -> None:
        """A booking closes."""
        del self.bookings[b.book_id]
        self.roll_ids.pop(bisect.bisect_left(self.roll_ids, b.book_id))
        self.prone_on_roll -= self.people[b.person_id].prone
        self.alerts_on_roll.subtract(a[0] for a in b.alerts.values())


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def check_tables(conn: sa.Connection, shown: str) -> None:
    """Fail with a clear message if the database does not hold the NOMIS tables."""
    have = {n.upper() for n in sa.inspect(conn).get_table_names()}
    missing = [n for n in prison.table_names() if n not in have]
    if missing:
        raise SimulationError(
            f"prison database {shown}: {len(missing)} of the {len(prison.table_names())} NOMIS "
            f"tables are missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            "run `justice simulate` first, or point "
            "--prison-db (JUSTICE_PRISON_DB) at the prison database")
    columns = {c["name"].upper() for c in sa.inspect(conn).get_columns(
        "offender_alerts" if conn.dialect.name == "postgresql" else "OFFENDER_ALERTS")}
    if "CREATE_USER_ID" not in columns:
        # A database simulated before alerts recorded who raised them: add the column (empty on
        # old rows) rather than refuse to carry it on.
        conn.exec_driver_sql("ALTER TABLE OFFENDER_ALERTS ADD COLUMN CREATE_USER_ID VARCHAR(32)")


def ensure_clock_table(conn: sa.Connection) -> None:
    """Create the feed's clock table if missing (one row: the simulated time reached)."""
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {FEED_CLOCK} ("
                         "SIMULATED_NOW VARCHAR(19) NOT NULL, TICKS INTEGER NOT NULL)")


def truth_params(truth: Path) -> dict:
    """The simulated world's parameters (``truth/params.json``)."""
    path = truth / "params.json"
    if not path.exists():
        raise SimulationError(f"{truth}: no params.json; the feed needs the simulated world's "
                              "truth/ folder (run `justice simulate` into this --home)")
    return json.loads(path.read_text())


def _parts(folder: Path) -> list[Path]:
    """The feed's answer-key parts in a folder, without those a compacted part already holds."""
    if not folder.exists():
        return []
    spans = []
    for p in sorted(folder.glob("*.parquet")):
        start, _, end = p.stem.partition("-")
        spans.append((int(start), int(end), p))
    keep = [p for s, e, p in spans
            if not any((s2 <= s and e <= e2) and (s2, e2) != (s, e) for s2, e2, _ in spans)]
    return keep


def read_feed_truth(truth: Path, kind: str) -> list[dict]:
    """Rows of the feed's answer key of one kind (events, records or persons), in order."""
    out: list[dict] = []
    for part in _parts(truth / TRUTH_FEED / kind):
        out.extend(pq.read_table(part).to_pylist())
    return out


def deleted_alert_seqs(truth: Path) -> dict[int, int]:
    """The highest ALERT_SEQ the feed has deleted on each booking (from its events)."""
    out: dict[int, int] = {}
    for part in _parts(truth / TRUTH_FEED / "events"):
        t = pq.read_table(part, columns=["kind", "offender_book_id", "detail"]).to_pydict()
        for kind, book, detail in zip(t["kind"], t["offender_book_id"], t["detail"], strict=True):
            if kind == "alert_deleted" and book is not None:
                out[book] = max(out.get(book, 0), int(detail.rsplit(":", 1)[1]))
    return out


def drop_stale_parts(truth: Path, clock: int) -> None:
    """Remove answer-key parts of ticks the database never committed (a crash between the two)."""
    for kind in ("events", "records", "persons"):
        folder = truth / TRUTH_FEED / kind
        if folder.exists():
            for p in folder.glob("*.parquet"):
                if int(p.stem.partition("-")[0]) >= clock:
                    p.unlink()


def load_state(conn: sa.Connection, truth: Path) -> PrisonState:
    """The prison as it stands in the database, with each record's person from truth."""
    check_tables(conn, conn.engine.url.render_as_string(hide_password=True))
    params = truth_params(truth)
    world_end = dt.date.fromisoformat(params["end"])
    ensure_clock_table(conn)
    clock_row = rows(conn, f"SELECT SIMULATED_NOW, TICKS FROM {FEED_CLOCK}")
    start_of_feed = seconds_of((world_end + dt.timedelta(days=1)).isoformat())
    latest = max((r[0] for name in prison.table_names()
                  for r in rows(conn, f"SELECT MAX(MODIFY_DATETIME) FROM {name}") if r[0]),
                 default=None)
    if clock_row:
        clock, ticks = seconds_of(clock_row[0][0]), int(clock_row[0][1])
    else:
        clock, ticks = start_of_feed, 0
    if latest is not None:
        clock = max(clock, seconds_of(latest) + 1)
    drop_stale_parts(truth, clock)

    # Who each record is: the world's answer key and the feed's own.
    records = pq.read_table(truth / "records.parquet", columns=["system", "record_id", "person_id"])
    records = records.filter(pc.equal(records["system"], "prison"))
    offender_person = {int(r): p for r, p in zip(records["record_id"].to_pylist(),
                                                 records["person_id"].to_pylist())}
    world_in_prison = set(offender_person.values())
    for r in read_feed_truth(truth, "records"):
        offender_person[int(r["record_id"])] = r["person_id"]

    persons = pq.read_table(truth / "persons.parquet", columns=list(PERSON_COLUMNS))
    pid = np.array(persons["person_id"].to_pylist(), dtype=object)
    in_prison = set(offender_person.values())
    needed = np.fromiter((p in in_prison for p in pid.tolist()), dtype=bool, count=len(pid))
    people = {p.person_id: p for p in _persons_at(persons, np.flatnonzero(needed))}
    for r in read_feed_truth(truth, "persons"):
        people[r["person_id"]] = Person(r["person_id"], r["sex"], r["dob"], bool(r["self_harm_prone"]),
                                        float(r["risk_score"]), r["forename"], r["middle_name"],
                                        r["surname"], r["pnc_id"], r["cro_number"],
                                        r.get("ethnicity"))
    # Adults the world knows but its prisons never received: first receptions of known people.
    # Fixed by the world alone (the feed skips those it has since received), so the draws do
    # not depend on how many runs the feed took.
    years = pc.fill_null(pc.year(persons["dob"]), 0).to_numpy()
    adult = (world_end.year - years >= 18) & (world_end.year - years <= 70)
    never = np.fromiter((p not in world_in_prison for p in pid.tolist()), dtype=bool, count=len(pid))
    # People with careers only: the one-off summary defendants (sim/one_offs.py, no risk score)
    # have no offending that would bring them to prison.
    career = pc.is_valid(persons["risk_score"]).to_numpy(zero_copy_only=False)
    world_candidates = pid[adult & never & career]

    est = pq.read_table(truth / "establishments.parquet", columns=["establishment_code", "function"])
    establishments = dict(zip(est["establishment_code"].to_pylist(), est["function"].to_pylist()))
    courts = [r[0] for r in rows(conn, "SELECT AGY_LOC_ID FROM AGENCY_LOCATIONS "
                                       "WHERE AGENCY_LOCATION_TYPE = 'CRT' ORDER BY AGY_LOC_ID")]

    locs = rows(conn, "SELECT INTERNAL_LOCATION_ID, AGY_LOC_ID, INTERNAL_LOCATION_CODE, "
                      "INTERNAL_LOCATION_TYPE, PARENT_INTERNAL_LOCATION_ID "
                      "FROM AGENCY_INTERNAL_LOCATIONS ORDER BY INTERNAL_LOCATION_ID")
    parent = {r[0]: r[4] for r in locs}
    cells: dict[int, tuple[str, int, int]] = {}
    cells_of: dict[str, list[int]] = {}
    wings_of: dict[str, list[str]] = {}
    for loc_id, agy, code, kind, par in locs:
        if kind == "CELL":
            cells[loc_id] = (agy, par, parent[par])
            cells_of.setdefault(agy, []).append(loc_id)
        elif kind == "WING":
            wings_of.setdefault(agy, []).append(code)

    offenders = rows(conn, "SELECT OFFENDER_ID, OFFENDER_ID_DISPLAY, ALIAS_OFFENDER_ID "
                           "FROM OFFENDERS ORDER BY OFFENDER_ID")
    unknown = [o for o, _, _ in offenders if o not in offender_person]
    if unknown:
        raise SimulationError(
            f"prison database: OFFENDERS row {unknown[0]} (and {len(unknown) - 1} more) has no "
            f"person in {truth}/records.parquet or {truth}/feed/records: the database and the "
            "truth folder come from different worlds; simulate again into one --home")
    offender_display = {o: d for o, d, _ in offenders}
    prison_numbers = {d for _, d, _ in offenders}
    person_rows: dict[str, list[int]] = {}
    for o, _, alias in offenders:
        if alias is None:
            person_rows.setdefault(offender_person[o], []).append(o)

    bookings: dict[int, Booking] = {}
    last_release: dict[str, tuple[str, int]] = {}
    active_people: set[str] = set()
    for book, off, end, active, agy, unit in rows(
            conn, "SELECT OFFENDER_BOOK_ID, OFFENDER_ID, BOOKING_END_DATE, ACTIVE_FLAG, AGY_LOC_ID, "
                  "LIVING_UNIT_ID FROM OFFENDER_BOOKINGS ORDER BY OFFENDER_BOOK_ID"):
        person = offender_person[off]
        if active == "Y":
            bookings[book] = Booking(book, off, person, agy, unit, "sentenced", 0, 0, 0, 0, False)
            active_people.add(person)
        elif end is not None and (person not in last_release or last_release[person][0] <= end):
            last_release[person] = (end, book)
    for person in active_people:
        last_release.pop(person, None)

    def per_active(sql: str) -> list[tuple]:
        return rows(conn, sql.replace(
            "{active}", "OFFENDER_BOOK_ID IN (SELECT OFFENDER_BOOK_ID FROM OFFENDER_BOOKINGS "
                        "WHERE ACTIVE_FLAG = 'Y')"))

    for book, seq in per_active("SELECT OFFENDER_BOOK_ID, MAX(MOVEMENT_SEQ) FROM "
                                "OFFENDER_EXTERNAL_MOVEMENTS WHERE {active} GROUP BY OFFENDER_BOOK_ID"):
        bookings[book].movement_seq = seq
    reasons = {"N": "remand", "I": "sentenced", "L": "recall"}
    for book, code in per_active("SELECT OFFENDER_BOOK_ID, MOVEMENT_REASON_CODE FROM "
                                 "OFFENDER_EXTERNAL_MOVEMENTS WHERE MOVEMENT_TYPE = 'ADM' AND "
                                 "{active} ORDER BY OFFENDER_BOOK_ID, MOVEMENT_SEQ"):
        bookings[book].reason = reasons.get(code, "sentenced")
    for book, seq, end in per_active("SELECT OFFENDER_BOOK_ID, BED_ASSIGN_SEQ, ASSIGNMENT_END_DATE "
                                     "FROM BED_ASSIGNMENT_HISTORIES WHERE {active} "
                                     "ORDER BY OFFENDER_BOOK_ID, BED_ASSIGN_SEQ"):
        bookings[book].bed_seq = seq
    for book, seq, code, day, status, expiry in per_active(
            "SELECT OFFENDER_BOOK_ID, ALERT_SEQ, ALERT_CODE, ALERT_DATE, ALERT_STATUS, EXPIRY_DATE "
            "FROM OFFENDER_ALERTS WHERE {active} ORDER BY OFFENDER_BOOK_ID, ALERT_SEQ"):
        b = bookings[book]
        b.alert_seq = max(b.alert_seq, seq)
        if status == "ACTIVE":
            b.alerts[seq] = (code, day, expiry)
    # A deleted alert leaves no row, but its number is not given out again (the feed that runs
    # on does not reuse it, and a reused number would be another alert under the same key), so
    # the latest number comes from the feed's answer key too.
    for book, seq in deleted_alert_seqs(truth).items():
        if book in bookings:
            bookings[book].alert_seq = max(bookings[book].alert_seq, seq)
    for book, seq, level in per_active(
            "SELECT OFFENDER_BOOK_ID, ASSESSMENT_SEQ, REVIEW_SUP_LEVEL_TYPE FROM OFFENDER_ASSESSMENTS "
            "WHERE {active} ORDER BY OFFENDER_BOOK_ID, ASSESSMENT_SEQ"):
        bookings[book].assessment_seq = seq
        bookings[book].csra_high = level == "HIGH"

    occupants: dict[int, list[int]] = {}
    for b in bookings.values():
        if b.cell is not None:
            occupants.setdefault(b.cell, []).append(b.book_id)

    roll_offenders = sorted({b.offender_id for b in bookings.values()})
    offender_names = {}
    if roll_offenders:
        for o, first, middle, last in rows(conn, "SELECT OFFENDER_ID, FIRST_NAME, MIDDLE_NAME, "
                                                 "LAST_NAME FROM OFFENDERS WHERE OFFENDER_ID IN "
                                                 "(SELECT OFFENDER_ID FROM OFFENDER_BOOKINGS WHERE "
                                                 "ACTIVE_FLAG = 'Y') ORDER BY OFFENDER_ID"):
            offender_names[o] = (first, middle, last)

    carried: dict[int, Counter] = {}
    for off, code, n in rows(conn, "SELECT b.OFFENDER_ID, a.ALERT_CODE, COUNT(*) FROM OFFENDER_ALERTS a "
                                   "JOIN OFFENDER_BOOKINGS b ON b.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID "
                                   "WHERE a.ALERT_STATUS = 'ACTIVE' AND a.EXPIRY_DATE IS NULL "
                                   "GROUP BY b.OFFENDER_ID, a.ALERT_CODE"):
        carried.setdefault(off, Counter())[code] = int(n)

    open_nas = {}
    for off, ns, seq, book, ns_book in rows(
            conn, "SELECT OFFENDER_ID, NS_OFFENDER_ID, TYPE_SEQ, OFFENDER_BOOK_ID, NS_OFFENDER_BOOK_ID "
                  "FROM OFFENDER_NON_ASSOCIATIONS WHERE EXPIRY_DATE IS NULL "
                  "ORDER BY OFFENDER_ID, NS_OFFENDER_ID, TYPE_SEQ"):
        open_nas[(off, ns, seq)] = (book, ns_book)
    na_seq = {(o, n): s for o, n, s in rows(conn, "SELECT OFFENDER_ID, NS_OFFENDER_ID, MAX(TYPE_SEQ) "
                                                  "FROM OFFENDER_NON_ASSOCIATIONS "
                                                  "GROUP BY OFFENDER_ID, NS_OFFENDER_ID")}
    open_incidents = [r[0] for r in rows(conn, "SELECT INCIDENT_CASE_ID FROM INCIDENT_CASES WHERE "
                                               "INCIDENT_STATUS = 'AWAN' ORDER BY INCIDENT_CASE_ID")]

    def top(sql: str) -> int:
        value = rows(conn, sql)[0][0]
        return int(value or 0)

    next_ids = {
        "offender": top("SELECT MAX(OFFENDER_ID) FROM OFFENDERS") + 1,
        "booking": top("SELECT MAX(OFFENDER_BOOK_ID) FROM OFFENDER_BOOKINGS") + 1,
        "incident": top("SELECT MAX(INCIDENT_CASE_ID) FROM INCIDENT_CASES") + 1,
        "hearing": top("SELECT MAX(OIC_HEARING_ID) FROM OIC_HEARINGS") + 1,
        "adjudication": top("SELECT MAX(OIC_INCIDENT_ID) FROM OIC_HEARINGS") + 1,
        "location": top("SELECT MAX(INTERNAL_LOCATION_ID) FROM AGENCY_INTERNAL_LOCATIONS") + 1,
    }
    end_text = world_end.isoformat()
    target_roll = int(rows(conn, "SELECT COUNT(*) FROM OFFENDER_BOOKINGS WHERE BOOKING_BEGIN_DATE <= "
                                 f"'{end_text}' AND (BOOKING_END_DATE IS NULL OR BOOKING_END_DATE > "
                                 f"'{end_text}')")[0][0])
    state = PrisonState(
        clock=clock, ticks=ticks, world_end=world_end, mess=params.get("mess", "default"),
        establishments=establishments, courts=courts, cells=cells, cells_of=cells_of,
        wings_of=wings_of, occupants=occupants, bookings=bookings, offender_person=offender_person,
        offender_display=offender_display, offender_names=offender_names, person_rows=person_rows,
        last_release=last_release, carried=carried, open_nas=open_nas, na_seq=na_seq,
        open_incidents=open_incidents, prison_numbers=prison_numbers, people=people,
        world_candidates=world_candidates, next_ids=next_ids, target_roll=target_roll,
        known_people=set(offender_person.values()))
    state.world_persons = (persons, pid)
    state.count_roll()
    return state


PERSON_COLUMNS = ("person_id", "forename", "middle_name", "surname", "sex", "dob", "pnc_id",
                  "cro_number", "risk_score", "self_harm_prone", "ethnicity")


def _persons_at(persons, positions: np.ndarray) -> list[Person]:
    """People at the given rows of the world's persons table."""
    rows_ = persons.take(positions).to_pylist()
    return [Person(r["person_id"], r["sex"], r["dob"].isoformat() if r["dob"] else None,
                   bool(r["self_harm_prone"]), float(r["risk_score"]), r["forename"],
                   r["middle_name"], r["surname"], r["pnc_id"], r["cro_number"],
                   r["ethnicity"]) for r in rows_]


def world_person(state: PrisonState, person_id: str) -> Person:
    """A person of the world's truth (looked up when first needed)."""
    if person_id not in state.people:
        persons, pid = state.world_persons
        # World person ids are zero-padded and in order, so the array is sorted.
        pos = int(np.searchsorted(pid, person_id))
        if pos >= len(pid) or pid[pos] != person_id:
            raise SimulationError(f"truth/persons.parquet: no person {person_id}")
        state.people[person_id] = _persons_at(persons, np.array([pos]))[0]
    return state.people[person_id]
