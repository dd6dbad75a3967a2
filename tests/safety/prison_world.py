"""A small prison written row by row into the serving store's mirror tables, for the safety tests.

Each test builds exactly the people and facts it is about, so a flag or a conflict it asserts can
only come from the rows it wrote:

    world = PrisonWorld(engine)
    world.prison("MDI", wings="AB", landings=2, cells=3)          # cells MDI-A-1-001 ...
    smith = world.prisoner("A1111AA", "MDI", "A-1-001")
    world.alert(smith, "HSH", days_ago=100)
    old = world.earlier_record(smith, "B2222BB")                 # same person, closed booking
    world.incident("SELF_HARM", days_ago=400, parties=[(old, "SELF_HARMER")])
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import sqlalchemy as sa

from justice.serving.store import metadata

TODAY = dt.date(2026, 3, 27)
AS_AT = dt.datetime(2026, 3, 27, 9, 0)


@dataclass(frozen=True)
class Held:
    """A prisoner the world made: their person, record and current booking."""

    person_id: str
    offender_id: int
    booking_id: int
    prison_number: str


class PrisonWorld:
    """Writes mirror rows; ids count up from 1000 so they never meet the web core's seed."""

    def __init__(
        self, engine: sa.Engine, *, today: dt.date = TODAY, set_as_at: bool = True
    ) -> None:
        import justice.serving.mirror  # noqa: F401  (declares the mirror tables)

        self.engine = engine
        self.today = today
        self.t = metadata.tables
        metadata.create_all(engine)
        self._ids = itertools.count(1000)
        self._seq = itertools.count(1)
        self.cells: dict[tuple[str, str], int] = {}
        if set_as_at:
            with engine.begin() as conn:
                conn.execute(
                    sa.delete(self.t["sync_state"]).where(
                        self.t["sync_state"].c.table_name == "OFFENDERS"
                    )
                )
                conn.execute(
                    self.t["sync_state"]
                    .insert()
                    .values(
                        table_name="OFFENDERS",
                        cursor_modify=dt.datetime.combine(today, AS_AT.time()),
                        rows=0,
                        synced_at=AS_AT,
                    )
                )

    def _insert(self, name: str, **values) -> None:
        stamp = dt.datetime.combine(self.today, dt.time(8, 0))
        if "create_datetime" in self.t[name].c:
            values.setdefault("create_datetime", stamp)
            values.setdefault("modify_datetime", stamp)
        with self.engine.begin() as conn:
            conn.execute(self.t[name].insert().values(**values))

    def day(self, days_ago: int) -> dt.date:
        return self.today - dt.timedelta(days=days_ago)

    def prison(
        self,
        prison_id: str,
        name: str | None = None,
        *,
        wings: str = "AB",
        landings: int = 2,
        cells: int = 3,
        capacity: int = 2,
        exists: bool = False,
    ) -> None:
        """An establishment with wings > landings > cells (CELL capacity `capacity`); `exists`:
        the establishment row is there already (the web tests' seed), add only its cells."""
        if not exists:
            self._insert(
                "nomis_agency_locations",
                agy_loc_id=prison_id,
                description=name or f"HMP {prison_id}",
                agency_location_type="INST",
                active_flag="Y",
            )
        for wing in wings:
            wing_id = next(self._ids)
            self._location(
                wing_id,
                prison_id,
                wing,
                "WING",
                f"{prison_id}-{wing}",
                None,
                capacity * cells * landings,
            )
            for landing in range(1, landings + 1):
                landing_id = next(self._ids)
                self._location(
                    landing_id,
                    prison_id,
                    str(landing),
                    "LAND",
                    f"{prison_id}-{wing}-{landing}",
                    wing_id,
                    capacity * cells,
                )
                for cell in range(1, cells + 1):
                    cell_id = next(self._ids)
                    label = f"{wing}-{landing}-{cell:03d}"
                    self._location(
                        cell_id,
                        prison_id,
                        f"{cell:03d}",
                        "CELL",
                        f"{prison_id}-{label}",
                        landing_id,
                        capacity,
                    )
                    self.cells[(prison_id, label)] = cell_id

    def _location(self, location_id, prison_id, code, kind, description, parent, capacity) -> None:
        self._insert(
            "nomis_agency_internal_locations",
            internal_location_id=location_id,
            agy_loc_id=prison_id,
            internal_location_code=code,
            internal_location_type=kind,
            description=description,
            parent_internal_location_id=parent,
            capacity=capacity,
            active_flag="Y",
        )

    def _offender(
        self,
        prison_number: str,
        last: str,
        first: str,
        sex: str,
        person_id: str,
        method: str,
        confidence: float,
    ) -> int:
        offender_id = next(self._ids)
        self._insert(
            "nomis_offenders",
            offender_id=offender_id,
            offender_id_display=prison_number,
            last_name=last,
            first_name=first,
            birth_date=dt.date(1990, 5, 17),
            sex_code=sex,
        )
        self._insert(
            "person_resolution",
            offender_id=offender_id,
            person_id=person_id,
            method=method,
            confidence=confidence,
            resolved_at=AS_AT,
        )
        return offender_id

    def _booking(
        self,
        offender_id: int,
        prison_id: str,
        *,
        active: bool,
        cell_id: int | None,
        begin_days_ago: int,
    ) -> int:
        booking_id = next(self._ids)
        self._insert(
            "nomis_offender_bookings",
            offender_book_id=booking_id,
            offender_id=offender_id,
            booking_no=f"B{booking_id}",
            booking_begin_date=self.day(begin_days_ago),
            booking_end_date=None if active else self.day(begin_days_ago - 100),
            booking_status="O" if active else "C",
            active_flag="Y" if active else "N",
            agy_loc_id=prison_id if active else "OUT",
            living_unit_id=cell_id,
            in_out_status="IN" if active else "OUT",
        )
        return booking_id

    def prisoner(
        self,
        prison_number: str,
        prison_id: str,
        cell: str | None,
        *,
        last: str | None = None,
        first: str = "JOHN",
        sex: str = "M",
        person_id: str | None = None,
        method: str = "index",
        confidence: float = 1.0,
    ) -> Held:
        """Someone held now in `cell` (a label like A-1-001) of `prison_id`."""
        person_id = person_id or f"person-{prison_number}"
        offender_id = self._offender(
            prison_number,
            last or f"SURNAME{prison_number[1:5]}",
            first,
            sex,
            person_id,
            method,
            confidence,
        )
        cell_id = self.cells[(prison_id, cell)] if cell else None
        booking_id = self._booking(
            offender_id, prison_id, active=True, cell_id=cell_id, begin_days_ago=200
        )
        return Held(person_id, offender_id, booking_id, prison_number)

    def earlier_record(
        self, held: Held, prison_number: str, *, method: str = "index", confidence: float = 0.97
    ) -> Held:
        """An earlier prison record of the same person, with a closed custody spell."""
        offender_id = self._offender(
            prison_number, "OLDNAME", "JON", "M", held.person_id, method, confidence
        )
        booking_id = self._booking(
            offender_id, "OUT", active=False, cell_id=None, begin_days_ago=2000
        )
        return Held(held.person_id, offender_id, booking_id, prison_number)

    def alert(
        self,
        held: Held,
        code: str,
        *,
        days_ago: int = 30,
        status: str = "ACTIVE",
        raised_by: str | None = "OFFICER_X",
    ) -> None:
        self._insert(
            "nomis_offender_alerts",
            offender_book_id=held.booking_id,
            alert_seq=next(self._seq),
            root_offender_id=held.offender_id,
            alert_date=self.day(days_ago),
            alert_type=code[0],
            alert_code=code,
            alert_status=status,
            expiry_date=None,
            create_user_id=raised_by,
        )

    def csra(self, held: Held, level: str, *, days_ago: int = 20) -> None:
        self._insert(
            "nomis_offender_assessments",
            offender_book_id=held.booking_id,
            assessment_seq=next(self._seq),
            assessment_type="CSRA",
            assessment_date=self.day(days_ago),
            assessment_reason="RECEPTION",
            review_sup_level_type=level,
            assess_status="A",
            agy_loc_id="MDI",
        )

    def non_association(
        self,
        a: Held,
        b: Held,
        restriction: str,
        *,
        reason: str = "VIC",
        role: str = "PERPETRATOR",
        other_role: str = "VICTIM",
        days_ago: int = 50,
        expired: bool = False,
    ) -> None:
        """A keep-apart rule recorded against a's record (and booking), naming b's."""
        self._insert(
            "nomis_offender_non_associations",
            offender_id=a.offender_id,
            ns_offender_id=b.offender_id,
            type_seq=next(self._seq),
            offender_book_id=a.booking_id,
            ns_offender_book_id=b.booking_id,
            ns_reason_code=reason,
            offender_role=role,
            ns_offender_role=other_role,
            ns_type=restriction,
            effective_date=self.day(days_ago),
            expiry_date=self.day(1) if expired else None,
        )

    def incident(
        self, kind: str, *, days_ago: int, parties: list[tuple[Held, str]], prison_id: str = "MDI"
    ) -> int:
        incident_id = next(self._ids)
        when = self.day(days_ago)
        self._insert(
            "nomis_incident_cases",
            incident_case_id=incident_id,
            incident_type=kind,
            incident_date=when,
            incident_time=dt.datetime.combine(when, dt.time(10)),
            agy_loc_id=prison_id,
            incident_status="CLOSE",
        )
        for seq, (held, role) in enumerate(parties, start=1):
            self._insert(
                "nomis_incident_case_parties",
                incident_case_id=incident_id,
                party_seq=seq,
                offender_book_id=held.booking_id,
                participation_role=role,
            )
        return incident_id

    def linked(
        self,
        held: Held,
        kind: str,
        description: str,
        *,
        is_violence: bool = False,
        system: str = "crown",
        record: str = "T20201234",
        confidence: float = 0.92,
        days_ago: int = 900,
        detail: str | None = None,
    ) -> None:
        self._insert(
            "linked_history",
            person_id=held.person_id,
            source_system=system,
            source_record=record,
            kind=kind,
            event_date=self.day(days_ago),
            description=description,
            detail=detail,
            is_violence=is_violence,
            confidence=confidence,
        )

    def movement(self, held: Held, *, to: str | None, frm: str | None, days_ago: int = 0) -> None:
        when = self.day(days_ago)
        self._insert(
            "nomis_offender_external_movements",
            offender_book_id=held.booking_id,
            movement_seq=next(self._seq),
            movement_date=when,
            movement_time=dt.datetime.combine(when, dt.time(11)),
            movement_type="ADM" if frm is None or frm.endswith("CRT") else "TRN",
            movement_reason_code="I",
            direction_code="IN" if to else "OUT",
            from_agy_loc_id=frm,
            to_agy_loc_id=to,
            active_flag="Y",
        )
