"""One prisoner's safety summary: who they are, where, their flags and alerts, CSRA history,
keep-apart rules, incidents and adjudications, cellmates, and what linked records hold.

"History from linked records" is the part today's prison screens cannot show: what was recorded
under the person's earlier prison numbers (found through the person index) and what the courts
and probation hold, each with its source and how sure the link is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from justice.safety.facts import (
    Alert,
    Incident,
    LinkedEvent,
    NonAssociation,
    PersonSafety,
    Record,
    Source,
    booking_of,
    current_bookings,
    load_people,
)
from justice.safety.flags import Flag, person_flags
from justice.safety.locations import Cell, PrisonLayout, load_cells, prison_name
from justice.safety.rules import Rules


@dataclass(frozen=True)
class NonAssociationView:
    """A non-association and where the other person is now, relative to this prisoner."""

    na: NonAssociation
    other_prison: str | None  # establishment name, None when not in custody
    other_cell: Cell | None
    same_prison: bool
    same_wing: bool
    same_landing: bool
    same_cell: bool = False

    @property
    def breached(self) -> bool:
        """True when the two are within the restriction now (a cell, landing or wing shared)."""
        return {"CELL": self.same_cell, "LANDING": self.same_landing, "WING": self.same_wing}.get(
            self.na.restriction, False
        )


@dataclass(frozen=True)
class EarlierRecord:
    """An earlier prison number of the person and what was recorded under it."""

    record: Record
    source: Source
    alerts: list[Alert]
    incidents: list[Incident]


@dataclass
class Summary:
    """What the prisoner summary page shows."""

    person: PersonSafety
    layout: PrisonLayout
    cell: Cell | None
    flags: dict[str, Flag]
    cellmates: list[PersonSafety]  # their current booking only: the page shows no more of them
    non_associations: list[NonAssociationView]
    earlier_records: list[EarlierRecord] = field(default_factory=list)
    court_convictions: list[LinkedEvent] = field(default_factory=list)
    probation: list[LinkedEvent] = field(default_factory=list)
    other_linked: list[LinkedEvent] = field(default_factory=list)

    @property
    def current_alerts(self) -> list[Alert]:
        """Alerts of the current custody spell."""
        return [a for a in self.person.alerts if a.on_current_booking]

    @property
    def earlier_spell_alerts(self) -> list[Alert]:
        """Alerts of earlier custody spells under this same prison number."""
        return [a for a in self.person.alerts if not a.on_current_booking and not a.source.linked]


def build_summary(
    conn: sa.Connection, rules: Rules, person_id: str, today: dt.date
) -> Summary | None:
    """The summary of `person_id` (None when they are not in custody)."""
    person = load_people(conn, [person_id], today, with_adjudications=True).get(person_id)
    if person is None or person.booking is None:
        return None
    booking = person.booking
    # Only the cells the page shows: the prisoner's own and those of the people they must be kept
    # apart from in the same establishment (not the whole establishment's layout).
    layout = load_cells(
        conn,
        booking.prison_id,
        [booking.cell_id]
        + [
            na.other_booking.cell_id
            for na in person.non_associations
            if na.other_booking is not None and na.other_booking.prison_id == booking.prison_id
        ],
    )
    cell = layout.cells.get(booking.cell_id) if booking.cell_id is not None else None
    cellmates: list[PersonSafety] = []
    if booking.cell_id is not None:
        # The page names a cellmate and links to their summary, so their booking (who and where)
        # is all that is read of them, in the query that finds them.
        cb = current_bookings().subquery("cb")
        cellmates = [
            PersonSafety(person_id=r.person_id, booking=booking_of(r))
            for r in conn.execute(
                sa.select(cb).where(
                    cb.c.living_unit_id == booking.cell_id,
                    cb.c.agy_loc_id == booking.prison_id,
                    cb.c.offender_book_id != booking.offender_book_id,
                )
            )
        ]
    nas = []
    names: dict[str, str | None] = {}
    for na in person.non_associations:
        other = na.other_booking
        other_cell = None
        if other is not None and other.prison_id == booking.prison_id and other.cell_id is not None:
            other_cell = layout.cells.get(other.cell_id)
        if other is not None and other.prison_id not in names:
            names[other.prison_id] = prison_name(conn, other.prison_id)
        nas.append(
            NonAssociationView(
                na=na,
                other_prison=(names.get(other.prison_id) or other.prison_id) if other else None,
                other_cell=other_cell,
                same_prison=bool(other and other.prison_id == booking.prison_id),
                same_wing=bool(other_cell and cell and other_cell.wing_id == cell.wing_id),
                same_landing=bool(other_cell and cell and other_cell.landing_id == cell.landing_id),
                same_cell=bool(other_cell and cell and other_cell.cell_id == cell.cell_id),
            )
        )
    own = next((r for r in person.records if r.prison_number == booking.prison_number), None)
    own_method, own_confidence = (own.method, own.confidence) if own else ("index", 1.0)

    def link(r: Record) -> Source:
        # An earlier record reaches this prisoner through the person: as sure as the weaker link.
        return Source(
            "prison",
            r.prison_number,
            linked=True,
            method="scored" if "scored" in (r.method, own_method) else r.method,
            confidence=min(r.confidence, own_confidence),
        )

    earlier = [
        EarlierRecord(
            r,
            link(r),
            [a for a in person.alerts if a.source.record == r.prison_number],
            [i for i in person.incidents if i.source.record == r.prison_number],
        )
        for r in person.earlier_prison_numbers
    ]
    linked = person.linked_events
    return Summary(
        person=person,
        layout=layout,
        cell=cell,
        flags=person_flags(person, rules, today),
        cellmates=cellmates,
        non_associations=nas,
        earlier_records=earlier,
        court_convictions=[e for e in linked if e.kind == "court_conviction"],
        probation=[e for e in linked if e.kind.startswith("probation")],
        other_linked=[
            e for e in linked if e.kind != "court_conviction" and not e.kind.startswith("probation")
        ],
    )
