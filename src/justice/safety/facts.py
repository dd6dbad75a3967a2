"""What the serving store holds on a set of people that matters for their safety.

A *person* is a person_id of the person index (``person_resolution``): every prison record
(OFFENDERS row) resolved to the same person, so an earlier, unmerged prison number's self-harm or
violence counts. `load_people` reads a whole population in a handful of set-based queries (one per
kind of fact, never one per person), so the roll of a large establishment stays fast.

Facts are slotted dataclasses, read-only by convention rather than frozen: a frozen one costs
ten times as much to make, and the roll of a large establishment makes thousands.

Each fact carries its `Source`: the prisoner's current record, or a linked one (an earlier prison
number, a court or probation record) with how the link was made (``index``: in the person index;
``scored``: scored on arrival, not yet confirmed by the index) and its confidence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from justice.safety.rules import alert_descriptions
from justice.safety.tables import in_values, table

SYSTEM_NAMES = {
    "prison": "Prison system (NOMIS)",
    "magistrates": "Magistrates' courts",
    "crown": "Crown Court",
    "probation": "Probation",
    "interventions": "Interventions",
}


def name_part(text: str | None) -> str:
    """A NOMIS name (upper case, sometimes with stray spaces) as officers write it: 'Spencer'."""
    return " ".join((text or "").split()).title()


@dataclass(slots=True)
class Source:
    """Where a fact was recorded and how sure the link to this prisoner is."""

    system: str  # prison, magistrates, crown, probation, ...
    record: str  # the prison number, or the other system's record key
    linked: bool  # False: the prisoner's current prison number
    method: str = "index"  # index (confirmed in the person index), scored, unresolved
    confidence: float = 1.0

    @property
    def system_name(self) -> str:
        """The source system in words."""
        return SYSTEM_NAMES.get(self.system, self.system)

    def short(self) -> str:
        """A few words for a list: 'Crown Court T2019, linked 92%'."""
        if not self.linked:
            return "this prison number"
        where = (
            f"earlier prison number {self.record}"
            if self.system == "prison"
            else f"{self.system_name} {self.record}"
        )
        how = "scored link" if self.method == "scored" else "linked"
        return f"{where}, {how} {self.confidence:.0%}"

    def describe(self) -> str:
        """Plain words for an officer: where this was recorded and how the link was made."""
        if not self.linked:
            return f"this prison number ({self.record})"
        where = (
            f"earlier prison number {self.record}"
            if self.system == "prison"
            else f"{self.system_name} record {self.record}"
        )
        if self.method == "scored":
            how = (
                f"linked when it arrived, by a match score of {self.confidence:.0%}: "
                "not yet confirmed in the person index"
            )
        else:
            how = f"linked in the person index ({self.confidence:.0%} match)"
        return f"{where}, {how}"


@dataclass(slots=True)
class Record:
    """One prison record (OFFENDERS root row) of the person."""

    offender_id: int
    prison_number: str
    first_name: str
    last_name: str
    birth_date: dt.date | None
    sex_code: str | None
    method: str
    confidence: float

    @property
    def full_name(self) -> str:
        """Name as it is said: First Surname."""
        return f"{name_part(self.first_name)} {name_part(self.last_name)}"


@dataclass(slots=True)
class Booking:
    """A person's current custody spell: where they are now."""

    offender_book_id: int
    offender_id: int
    prison_number: str
    first_name: str
    last_name: str
    birth_date: dt.date | None
    sex_code: str | None
    prison_id: str
    cell_id: int | None
    begin_date: dt.date

    @property
    def name(self) -> str:
        """Name as officers write it: Surname, First."""
        return f"{name_part(self.last_name)}, {name_part(self.first_name)}"

    @property
    def full_name(self) -> str:
        """Name as it is said: First Surname."""
        return f"{name_part(self.first_name)} {name_part(self.last_name)}"


@dataclass(slots=True)
class Alert:
    """An alert on one of the person's custody spells."""

    code: str
    description: str
    alert_date: dt.date
    status: str
    expiry_date: dt.date | None
    raised_by: str | None
    offender_book_id: int
    on_current_booking: bool
    source: Source

    def is_active(self, today: dt.date) -> bool:
        """Active and not past its expiry date on `today`."""
        return self.status == "ACTIVE" and (self.expiry_date is None or self.expiry_date > today)


@dataclass(slots=True)
class Csra:
    """A cell sharing risk assessment."""

    assessment_date: dt.date
    seq: int
    level: str
    reason: str
    prison_id: str
    on_current_booking: bool
    source: Source


@dataclass(slots=True)
class Incident:
    """An incident the person took part in, and their role."""

    incident_id: int
    type: str
    incident_date: dt.date
    role: str
    prison_id: str
    offender_book_id: int
    source: Source


@dataclass(slots=True)
class Adjudication:
    """A disciplinary (OIC) hearing."""

    hearing_id: int
    adjudication_number: int
    incident_date: dt.date
    hearing_date: dt.date
    charge: str
    finding: str
    punishment: str | None
    prison_id: str
    source: Source


@dataclass(slots=True)
class NonAssociation:
    """An active keep-apart rule between this person and another."""

    other_person_id: str
    other_offender_id: int
    other_prison_number: str
    other_name: str
    reason_code: str
    role: str  # this person's role (VICTIM, PERPETRATOR, NOT_RELEVANT, ...)
    other_role: str
    restriction: str  # CELL, LANDING or WING
    effective_date: dt.date
    source: Source  # the record of THIS person it was recorded against
    other_booking: Booking | None = None  # where the other person is now, if in custody
    recorded_other_number: str = ""  # the other person's prison number it names

    @property
    def other_record_is_earlier(self) -> bool:
        """True when it names an earlier prison number of the other person (found only
        through the person index)."""
        return bool(
            self.other_booking
            and self.recorded_other_number
            and self.recorded_other_number != self.other_booking.prison_number
        )

    @property
    def reason(self) -> str:
        """The reason in words."""
        return REASONS.get(self.reason_code, self.reason_code)


@dataclass(slots=True)
class LinkedEvent:
    """A fact from another system, joined through the person index (``linked_history``)."""

    kind: str
    event_date: dt.date | None
    description: str
    detail: str | None
    is_violence: bool
    source: Source


@dataclass(slots=True)
class PersonSafety:
    """Everything the service shows or checks about one person."""

    person_id: str
    booking: Booking | None = None
    records: list[Record] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    csra: list[Csra] = field(default_factory=list)  # newest first
    incidents: list[Incident] = field(default_factory=list)  # newest first
    adjudications: list[Adjudication] = field(default_factory=list)
    non_associations: list[NonAssociation] = field(default_factory=list)
    linked_events: list[LinkedEvent] = field(default_factory=list)

    @property
    def current_csra(self) -> Csra | None:
        """The latest CSRA on the current custody spell (None: not assessed on this spell)."""
        return next((c for c in self.csra if c.on_current_booking), None)

    @property
    def earlier_prison_numbers(self) -> list[Record]:
        """The person's other prison records, found through the person index."""
        current = self.booking.prison_number if self.booking else None
        return [r for r in self.records if r.prison_number != current]


REASONS = {
    "BUL": "Bullying",
    "GANG": "Gang related",
    "RIV": "Rivalry",
    "TH": "Threat",
    "VIC": "Victim and perpetrator",
    "VIOL": "Violence",
    "ORG": "Organised crime",
    "LEG": "Police or legal request",
    "OTH": "Other",
}


def person_id_of(resolution: sa.Table, offender_id_column: sa.ColumnElement) -> sa.ColumnElement:
    """The person of an OFFENDERS row: its resolution, or the record alone while unresolved."""
    return sa.func.coalesce(
        resolution.c.person_id, sa.literal("prison:") + sa.cast(offender_id_column, sa.String)
    )


def _bookings_in_custody(*extra: sa.ColumnElement) -> sa.Select:
    """Every booking in custody now (active, IN) with the prisoner's identity, and `extra`."""
    b, o = table("nomis_offender_bookings"), table("nomis_offenders")
    return (
        sa.select(
            *extra,
            b.c.offender_book_id,
            b.c.offender_id,
            o.c.offender_id_display,
            o.c.first_name,
            o.c.last_name,
            o.c.birth_date,
            o.c.sex_code,
            b.c.agy_loc_id,
            b.c.living_unit_id,
            b.c.booking_begin_date,
        )
        .join(o, o.c.offender_id == b.c.offender_id)
        .where(b.c.active_flag == "Y", b.c.in_out_status == "IN")
    )


def current_bookings() -> sa.Select:
    """Every booking in custody now (active, IN), with its person and prisoner's identity."""
    b, pr = table("nomis_offender_bookings"), table("person_resolution")
    return _bookings_in_custody(person_id_of(pr, b.c.offender_id).label("person_id")).outerjoin(
        pr, pr.c.offender_id == b.c.offender_id)


def booking_of(row) -> Booking:
    """A Booking from a row of `current_bookings()`."""
    return Booking(
        offender_book_id=row.offender_book_id,
        offender_id=row.offender_id,
        prison_number=row.offender_id_display,
        first_name=row.first_name or "",
        last_name=row.last_name or "",
        birth_date=row.birth_date,
        sex_code=row.sex_code,
        prison_id=row.agy_loc_id,
        cell_id=row.living_unit_id,
        begin_date=row.booking_begin_date,
    )


@dataclass(frozen=True)
class FactScope:
    """What `load_people` reads: everything (None fields, for the summary), or only what the
    flags and checks use (the roll of a large establishment reads a fraction of the history)."""

    alert_codes: frozenset[str] | None = None  # only these alert codes
    incident_types: frozenset[str] | None = None  # only these incident types ...
    incidents_since: dt.date | None = None  # ... or any incident from this date
    csra_current_only: bool = False  # only CSRAs of the current custody spell
    linked_violence_only: bool = False  # only violent convictions from linked records


EVERYTHING = FactScope()


def _rows_in(conn: sa.Connection, query: sa.Select, column: sa.ColumnElement, values) -> list:
    """Rows of `query` with `column` in `values` (one indexed lookup per value)."""
    values = sorted(set(values))
    if not values:
        return []
    return conn.execute(query.where(in_values(column, values, conn.dialect.name))).all()


@dataclass(slots=True)
class _Resolution:
    person_id: str
    method: str
    confidence: float


def _resolutions(conn: sa.Connection, column: str, values) -> dict[int, _Resolution]:
    """person_resolution rows whose `column` is one of `values`, by OFFENDER_ID."""
    pr = table("person_resolution")
    query = sa.select(pr.c.offender_id, pr.c.person_id, pr.c.method, pr.c.confidence)
    return {
        r.offender_id: _Resolution(r.person_id, r.method, float(r.confidence))
        for r in _rows_in(conn, query, pr.c[column], values)
    }


def resolve_offenders(conn: sa.Connection, offender_ids) -> dict[int, _Resolution]:
    """The person of each OFFENDERS row (the record alone while the sync has not resolved it)."""
    found = _resolutions(conn, "offender_id", offender_ids)
    for oid in offender_ids:
        found.setdefault(oid, _Resolution(f"prison:{oid}", "unresolved", 1.0))
    return found


def offenders_of_people(conn: sa.Connection, person_ids) -> dict[int, _Resolution]:
    """Every OFFENDERS row resolved to one of the people, with its resolution."""
    out = _resolutions(conn, "person_id", person_ids)
    for pid in person_ids:
        # A record the sync could not resolve is its own person, named after its OFFENDER_ID.
        if pid.startswith("prison:") and pid[7:].isdigit():
            out.setdefault(int(pid[7:]), _Resolution(pid, "unresolved", 1.0))
    return out


def _current_of(conn: sa.Connection, offenders: dict[int, _Resolution]) -> dict[str, Booking]:
    """person_id -> current booking, for the people of `offenders` who are in custody."""
    b = table("nomis_offender_bookings")
    query = _bookings_in_custody()
    out: dict[str, Booking] = {}
    rows = _rows_in(conn, query, b.c.offender_id, offenders)
    for row in sorted(rows, key=lambda r: (r.booking_begin_date, r.offender_book_id)):
        out[offenders[row.offender_id].person_id] = booking_of(row)  # the latest open spell wins
    return out


class _Sources:
    """The Source of a fact recorded against one of the person's prison records."""

    def __init__(
        self,
        records: dict[int, Record],
        offenders: dict[int, _Resolution],
        current: dict[str, Booking],
    ) -> None:
        self._records = records
        self._offenders = offenders
        self._current = current
        self.current = current  # person_id -> current booking, of the people read
        self._made: dict[tuple[str, int], Source] = {}

    def __call__(self, person_id: str, offender_id: int) -> Source:
        key = (person_id, offender_id)
        if key not in self._made:
            self._made[key] = self._source(person_id, offender_id)
        return self._made[key]

    def _source(self, person_id: str, offender_id: int) -> Source:
        record = self._records.get(offender_id)
        booking = self._current.get(person_id)
        if record is None:
            return Source(
                "prison", str(offender_id), linked=True, method="unresolved", confidence=0.0
            )
        if booking is None or record.prison_number == booking.prison_number:
            # A person not in custody has no "current" record: every record is their own.
            return Source("prison", record.prison_number, linked=False)
        method, confidence = self.link(person_id)
        return Source(
            "prison",
            record.prison_number,
            linked=True,
            method="scored" if "scored" in (method, record.method) else record.method,
            confidence=min(confidence, record.confidence),
        )

    def link(self, person_id: str) -> tuple[str, float]:
        """How the prisoner's current record joined the person: a link through the person is
        only as sure as the current record's own resolution."""
        booking = self._current.get(person_id)
        if booking is None or booking.offender_id not in self._offenders:
            return "index", 1.0
        own = self._offenders[booking.offender_id]
        return own.method, own.confidence


def load_people(
    conn: sa.Connection,
    person_ids: Iterable[str],
    today: dt.date,
    *,
    with_adjudications: bool = False,
    with_linked: bool = True,
    scope: FactScope = EVERYTHING,
) -> dict[str, PersonSafety]:
    """PersonSafety of each of the people (person ids), read in a few set-based queries;
    `scope` narrows what is read."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    out = {pid: PersonSafety(person_id=pid) for pid in ids}
    offenders = offenders_of_people(conn, ids)
    current = _current_of(conn, offenders)
    for pid, booking in current.items():
        out[pid].booking = booking

    o = table("nomis_offenders")
    records: dict[int, Record] = {}
    for r in _rows_in(
        conn,
        sa.select(
            o.c.offender_id,
            o.c.offender_id_display,
            o.c.first_name,
            o.c.last_name,
            o.c.birth_date,
            o.c.sex_code,
        ).where(o.c.alias_offender_id.is_(None)),
        o.c.offender_id,
        offenders,
    ):
        res = offenders[r.offender_id]
        records[r.offender_id] = Record(
            offender_id=r.offender_id,
            prison_number=r.offender_id_display,
            first_name=r.first_name or "",
            last_name=r.last_name or "",
            birth_date=r.birth_date,
            sex_code=r.sex_code,
            method=res.method,
            confidence=res.confidence,
        )
        out[res.person_id].records.append(records[r.offender_id])
    source = _Sources(records, offenders, current)

    b = table("nomis_offender_bookings")
    owner = {
        r.offender_book_id: r.offender_id
        for r in _rows_in(
            conn, sa.select(b.c.offender_book_id, b.c.offender_id), b.c.offender_id, records
        )
    }
    current_book = {bk.offender_book_id for bk in current.values()}

    def whose(book_id: int) -> tuple[str, Source]:
        pid = offenders[owner[book_id]].person_id
        return pid, source(pid, owner[book_id])

    descriptions = alert_descriptions()
    a = table("nomis_offender_alerts")
    raised_by = a.c.create_user_id if "create_user_id" in a.c else sa.null()
    alerts = sa.select(
        a.c.offender_book_id,
        a.c.alert_seq,
        a.c.alert_code,
        a.c.alert_date,
        a.c.alert_status,
        a.c.expiry_date,
        raised_by.label("raised_by"),
    )
    if scope.alert_codes is not None:
        alerts = alerts.where(a.c.alert_code.in_(sorted(scope.alert_codes)))
    for r in sorted(
        _rows_in(conn, alerts, a.c.offender_book_id, owner),
        key=lambda r: (r.alert_date, r.alert_seq),
        reverse=True,
    ):
        pid, src = whose(r.offender_book_id)
        out[pid].alerts.append(
            Alert(
                code=r.alert_code,
                description=descriptions.get(r.alert_code, r.alert_code),
                alert_date=r.alert_date,
                status=r.alert_status,
                expiry_date=r.expiry_date,
                raised_by=r.raised_by,
                offender_book_id=r.offender_book_id,
                on_current_booking=r.offender_book_id in current_book,
                source=src,
            )
        )

    s = table("nomis_offender_assessments")
    csra_books = current_book if scope.csra_current_only else owner
    for r in sorted(
        _rows_in(
            conn,
            sa.select(
                s.c.offender_book_id,
                s.c.assessment_date,
                s.c.assessment_seq,
                s.c.review_sup_level_type,
                s.c.assessment_reason,
                s.c.agy_loc_id,
            ).where(s.c.assessment_type == "CSRA"),
            s.c.offender_book_id,
            csra_books,
        ),
        key=lambda r: (r.assessment_date, r.offender_book_id, r.assessment_seq),
        reverse=True,
    ):
        pid, src = whose(r.offender_book_id)
        out[pid].csra.append(
            Csra(
                assessment_date=r.assessment_date,
                seq=r.assessment_seq,
                level=r.review_sup_level_type,
                reason=r.assessment_reason,
                prison_id=r.agy_loc_id,
                on_current_booking=r.offender_book_id in current_book,
                source=src,
            )
        )

    ic, ip = table("nomis_incident_cases"), table("nomis_incident_case_parties")
    incidents = sa.select(
        ip.c.offender_book_id,
        ic.c.incident_case_id,
        ic.c.incident_type,
        ic.c.incident_date,
        ip.c.participation_role,
        ic.c.agy_loc_id,
    ).join(ic, ic.c.incident_case_id == ip.c.incident_case_id)
    if scope.incident_types is not None:
        wanted = ic.c.incident_type.in_(sorted(scope.incident_types))
        if scope.incidents_since is not None:
            wanted = sa.or_(wanted, ic.c.incident_date >= scope.incidents_since)
        incidents = incidents.where(wanted)
    for r in sorted(
        _rows_in(conn, incidents, ip.c.offender_book_id, owner),
        key=lambda r: (r.incident_date, r.incident_case_id),
        reverse=True,
    ):
        pid, src = whose(r.offender_book_id)
        out[pid].incidents.append(
            Incident(
                incident_id=r.incident_case_id,
                type=r.incident_type,
                incident_date=r.incident_date,
                role=r.participation_role,
                prison_id=r.agy_loc_id,
                offender_book_id=r.offender_book_id,
                source=src,
            )
        )

    if with_adjudications:
        h = table("nomis_oic_hearings")
        for r in sorted(
            _rows_in(conn, sa.select(h), h.c.offender_book_id, owner),
            key=lambda r: (r.hearing_date, r.oic_hearing_id),
            reverse=True,
        ):
            pid, src = whose(r.offender_book_id)
            out[pid].adjudications.append(
                Adjudication(
                    hearing_id=r.oic_hearing_id,
                    adjudication_number=r.oic_incident_id,
                    incident_date=r.incident_date,
                    hearing_date=r.hearing_date,
                    charge=r.charge_desc,
                    finding=r.finding_code,
                    punishment=r.punishment_desc,
                    prison_id=r.agy_loc_id,
                    source=src,
                )
            )

    _load_non_associations(conn, records, offenders, today, out, source)
    if with_linked:
        _load_linked(conn, ids, out, source, violence_only=scope.linked_violence_only)
    return out


def _load_non_associations(
    conn,
    records: dict[int, Record],
    offenders: dict[int, _Resolution],
    today: dt.date,
    out: dict[str, PersonSafety],
    source: _Sources,
) -> None:
    """Active non-associations of the people, both ways round, with the other person's place."""
    na, o = table("nomis_offender_non_associations"), table("nomis_offenders")
    active = sa.and_(
        na.c.effective_date <= today, sa.or_(na.c.expiry_date.is_(None), na.c.expiry_date > today)
    )
    found = []
    # A row is recorded once, from one side; each side sees it with the roles its own way round.
    for mine, other, my_role, other_role in (
        (na.c.offender_id, na.c.ns_offender_id, na.c.offender_role, na.c.ns_offender_role),
        (na.c.ns_offender_id, na.c.offender_id, na.c.ns_offender_role, na.c.offender_role),
    ):
        query = sa.select(
            mine.label("my_offender_id"),
            other.label("other_offender_id"),
            na.c.ns_reason_code,
            my_role.label("my_role"),
            other_role.label("other_role"),
            na.c.ns_type,
            na.c.effective_date,
        ).where(active)
        found += _rows_in(conn, query, mine, records)
    if not found:
        return
    other_ids = {r.other_offender_id for r in found}
    named = {
        r.offender_id: r
        for r in _rows_in(
            conn,
            sa.select(o.c.offender_id, o.c.offender_id_display, o.c.first_name, o.c.last_name),
            o.c.offender_id,
            other_ids,
        )
    }
    # The other person is often one of the people being read (a roll reads a whole
    # establishment): their place is known already; look up only the rest.
    known = {oid: res for oid, res in offenders.items() if oid in other_ids}
    other_res = known | resolve_offenders(conn, other_ids - set(known))
    other_people = {res.person_id for res in other_res.values()}
    where_now = {p: b for p, b in source.current.items() if p in other_people}
    unknown_people = other_people - set(out)
    if unknown_people:
        where_now |= _current_of(conn, offenders_of_people(conn, unknown_people))
    seen = set()
    for r in sorted(found, key=lambda r: (r.effective_date, r.other_offender_id)):
        pid = offenders[r.my_offender_id].person_id
        other_pid = other_res[r.other_offender_id].person_id
        key = (pid, other_pid, r.ns_type, r.ns_reason_code, r.effective_date)
        if key in seen or pid == other_pid:
            continue
        seen.add(key)
        other_now = where_now.get(other_pid)
        who = named.get(r.other_offender_id)
        recorded_number = who.offender_id_display if who else str(r.other_offender_id)
        out[pid].non_associations.append(
            NonAssociation(
                other_person_id=other_pid,
                other_offender_id=r.other_offender_id,
                other_prison_number=other_now.prison_number if other_now else recorded_number,
                other_name=other_now.name
                if other_now
                else f"{name_part(who.last_name)}, {name_part(who.first_name)}"
                if who
                else "",
                reason_code=r.ns_reason_code,
                role=r.my_role,
                other_role=r.other_role,
                restriction=r.ns_type,
                effective_date=r.effective_date,
                source=source(pid, r.my_offender_id),
                other_booking=other_now,
                recorded_other_number=recorded_number,
            )
        )


def _load_linked(
    conn,
    person_ids: list[str],
    out: dict[str, PersonSafety],
    source: _Sources,
    *,
    violence_only: bool = False,
) -> None:
    """Other systems' records of the people (``linked_history``), marked with their source."""
    lh = table("linked_history")
    query = sa.select(
        lh.c.person_id,
        lh.c.source_system,
        lh.c.source_record,
        lh.c.kind,
        lh.c.event_date,
        lh.c.description,
        lh.c.detail,
        lh.c.confidence,
        lh.c.is_violence,
    )
    if violence_only:
        query = query.where(lh.c.kind == "court_conviction", lh.c.is_violence == sa.true())
    for r in sorted(
        _rows_in(conn, query, lh.c.person_id, person_ids),
        key=lambda r: r.event_date or dt.date.min,
        reverse=True,
    ):
        # A linked record reaches this prisoner through the person, so it is only as sure as the
        # weaker of its own link and the prisoner's current record's.
        own_method, own_confidence = source.link(r.person_id)
        confidence = 1.0 if r.confidence is None else float(r.confidence)
        out[r.person_id].linked_events.append(
            LinkedEvent(
                kind=r.kind,
                event_date=r.event_date,
                description=r.description or "",
                detail=r.detail,
                is_violence=bool(r.is_violence),
                source=Source(
                    r.source_system,
                    r.source_record,
                    linked=True,
                    method="scored" if own_method == "scored" else "index",
                    confidence=min(confidence, own_confidence),
                ),
            )
        )


def people_held(
    conn: sa.Connection, prison_id: str, cell_ids: list[int] | None = None
) -> list[str]:
    """The person ids of everyone held in `prison_id` now (in `cell_ids` if given)."""
    b = table("nomis_offender_bookings")
    query = sa.select(b.c.offender_id, b.c.living_unit_id).where(
        b.c.agy_loc_id == prison_id, b.c.active_flag == "Y", b.c.in_out_status == "IN"
    )
    rows = conn.execute(query).all()
    if cell_ids is not None:
        wanted = set(cell_ids)
        rows = [r for r in rows if r.living_unit_id in wanted]
    resolved = resolve_offenders(conn, [r.offender_id for r in rows])
    return sorted({resolved[r.offender_id].person_id for r in rows})
