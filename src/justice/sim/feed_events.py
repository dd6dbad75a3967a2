"""The events of one tick of the live prison (:mod:`justice.sim.feed`): who they happen to,
and the rows each writes.

A tick draws, for each event of ``reference/feed.yaml``, a Poisson number of events from the
exposure it names (the roll, open ACCTs, open non-associations, ...), each at a uniform time in
the interval on a subject drawn from that exposure, then applies them in time order to the
prison's state (:mod:`justice.sim.feed_state`) and collects the rows to write and the answer
key. A subject gone by the time its event comes (released earlier in the tick) is skipped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from justice import identifiers
from justice.errors import SimulationError
from justice.sim import feed_state as fs
from justice.sim.courts import NONE
from justice.sim.custody import WINGS
from justice.sim.legacy import ethnicity, prison
from justice.sim.legacy.identity import messy_identity
from justice.sim.people import make_people

if TYPE_CHECKING:
    from justice.sim.feed import LivePrison

DAY = 86_400


# --------------------------------------------------------------------------------------------


class Pools:
    """The exposures of a tick (who or what each event can happen to), built when first needed."""

    def __init__(self, state: fs.PrisonState, roll: list[int]) -> None:
        self.state, self.roll = state, roll
        self._made: dict[str, list] = {"prisoner_day": roll}
        self._risk: np.ndarray | None = None

    def get(self, per: str) -> list:
        """Who or what an exposure is made of, in key order (a subject is drawn from it)."""
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
        """How large an exposure is, from the roll's running counts."""
        st = self.state
        sizes = {
            "prisoner_day": len(self.roll), "prone_prisoner_day": st.prone_on_roll,
            "open_acct_day": st.alerts_on_roll["HA"], "post_acct_day": st.alerts_on_roll["HA1"],
            "active_alert_day": st.alerts_on_roll.total(), "open_na_day": len(st.open_nas),
            "open_incident_day": len(st.open_incidents)}
        return sizes[per]

    def risk(self) -> np.ndarray:
        """Each prisoner's weight as an assailant: their propensity, capped (as the world does)."""
        if self._risk is None:
            st = self.state
            self._risk = np.array([min(st.people[st.bookings[b].person_id].risk, 5.0)
                                   for b in self.roll])
        return self._risk


class Tick:
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
        """Write a new row."""
        cols = list(row)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
        self.ops.append((sql, row))

    def update(self, table: str, key: dict, values: dict) -> None:
        """Change a row found by its key; its MODIFY_DATETIME becomes the simulated now."""
        values = {**values, "MODIFY_DATETIME": fs.stamp(self.now)}
        sets = ", ".join(f"{c} = :{c}" for c in values)
        where = " AND ".join(f"{c} = :k_{c}" for c in key)
        self.ops.append((f"UPDATE {table} SET {sets} WHERE {where}",
                         {**values, **{f"k_{c}": v for c, v in key.items()}}))

    def delete(self, table: str, key: dict) -> None:
        """Remove a row found by its key."""
        where = " AND ".join(f"{c} = :k_{c}" for c in key)
        self.ops.append((f"DELETE FROM {table} WHERE {where}", {f"k_{c}": v for c, v in key.items()}))

    def times(self) -> dict:
        """CREATE_DATETIME and MODIFY_DATETIME of a row written now."""
        return {"CREATE_DATETIME": fs.stamp(self.now), "MODIFY_DATETIME": fs.stamp(self.now)}

    def event(self, kind: str, booking: fs.Booking | None, *, other: fs.Booking | None = None,
              person: str | None = None, offender: int | None = None, book: int | None = None,
              agy: str | None = None, detail: str | None = None) -> None:
        """Count an event and add it to the answer key (the booking's person, or those given)."""
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
        """The simulated date of the event in hand."""
        return fs.day_of(self.now)

    # -- drawing ------------------------------------------------------------------------------

    def run(self) -> None:
        """Draw the interval's events, then apply them in time order."""
        st = self.state
        days = (self.end - self.start) / DAY
        if days <= 0:
            return
        pools = self.live.pools()
        roll = pools.roll
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
        # Alerts recorded with a planned end (the batch world's ACCTs) end on their day.
        order = len(self.rates["events"])
        while st.expiring and fs.seconds_of(st.expiring[0][0]) < self.end:
            expiry, book, seq = st.expiring.pop(0)
            drawn.append((max(fs.seconds_of(expiry), self.start), order, len(drawn),
                          "alert_expired", (book, seq)))
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
        b.alerts[seq] = (code, self.today, None)
        self.state.alerts_on_roll[code] += 1
        self._carry(b.offender_id, code, +1)
        self.event("alert_raised", b, detail=code)

    def _end_alert(self, b: fs.Booking, seq: int) -> None:
        code, _, expiry = b.alerts.pop(seq)
        self.state.alerts_on_roll[code] -= 1
        if expiry is None:
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
        people = make_people(self.rng, 1, np.array([today]), live.world_rates, live.name_pools,
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
                           str(people["surname"][0]), pnc, cro, str(people["ethnicity"][0]))
        st.people[person.person_id] = person
        offender = self._new_offender(person, "new_person")
        self.persons.append({
            "person_id": person.person_id, "forename": person.forename,
            "middle_name": person.middle_name, "surname": person.surname, "sex": person.sex,
            "dob": person.dob, "pnc_id": person.pnc_id, "cro_number": person.cro_number,
            "prison_number": st.offender_display[offender], "risk_score": person.risk,
            "self_harm_prone": person.prone, "first_received": fs.stamp(self.now),
            "ethnicity": person.ethnicity})
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
            "RACE_CODE": self._race_code(person, offender),
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

    @staticmethod
    def _race_code(person: fs.Person, offender: int) -> str | None:
        """RACE_CODE of a new row, as the batch emitter records it (null: ethnicity unknown to
        an answer key written before the feed kept it)."""
        if person.ethnicity is None:
            return None
        return str(ethnicity.recorded_codes(np.array([person.person_id], object),
                                            np.array([person.ethnicity], object),
                                            np.array([offender]))[0])

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
        st.join_roll(b)
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
        st.leave_roll(b)
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
        here = [o for o in st.roll_ids if st.bookings[o].agy == b.agy
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

    def on_alert_expired(self, key: tuple[int, int]) -> None:
        """An alert reaches its planned EXPIRY_DATE: INACTIVE; an ACCT goes to post closure."""
        b = self._booking(key[0])
        if b is None or key[1] not in b.alerts:
            return
        code = b.alerts.pop(key[1])[0]
        self.state.alerts_on_roll[code] -= 1
        self.update("OFFENDER_ALERTS", {"OFFENDER_BOOK_ID": b.book_id, "ALERT_SEQ": key[1]},
                    {"ALERT_STATUS": "INACTIVE"})
        self.event("alert_closed", b, detail=code)
        if code == "HA":
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
            code, day, expiry = b.alerts[seq]
            day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
            b.alerts[seq] = (code, day, expiry)
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
        code, _, expiry = b.alerts.pop(key[1])
        self.state.alerts_on_roll[code] -= 1
        if expiry is None:
            self._carry(b.offender_id, code, -1)
        self.delete("OFFENDER_ALERTS", {"OFFENDER_BOOK_ID": key[0], "ALERT_SEQ": key[1]})
        self.event("alert_deleted", b, detail=f"{code}:{key[1]}")


def _iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


