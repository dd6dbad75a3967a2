"""The wing and landing roll: everyone held in an establishment, where, and their safety flags.

One set-based read of the whole population (`facts.load_people`), then flags per person in
Python: the cost grows with the number of prisoners, not with queries per prisoner.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import sqlalchemy as sa

from justice.safety.facts import NonAssociation, PersonSafety, load_people, people_held
from justice.safety.flags import Flag, flag_scope, incidents_within, person_flags
from justice.safety.locations import Cell, PrisonLayout, load_layout
from justice.safety.rules import Rules

NON_ASSOCIATION_FLAG = "non_association_on_wing"
SORTS = ("cell", "name", "prison_number", "flags", "incidents_short", "incidents_long")


@dataclass
class RollRow:
    """One prisoner on the roll."""

    person: PersonSafety
    cell: Cell | None
    flags: dict[str, Flag]
    non_associations_on_wing: list[NonAssociation]
    incidents: dict[int, int]  # look-back days -> incidents in that window
    # The row as the roll page draws it: kept with a cached row, so a row is drawn once per data
    # version, not on every view (the web layer fills it; the domain never reads it).
    html: str | None = field(default=None, compare=False, repr=False)

    @property
    def flag_count(self) -> int:
        return len(self.flags) + (1 if self.non_associations_on_wing else 0)

    def has(self, flag: str) -> bool:
        """Whether the row carries `flag` (a rules.yaml flag or non_association_on_wing)."""
        if flag == NON_ASSOCIATION_FLAG:
            return bool(self.non_associations_on_wing)
        return flag in self.flags


@dataclass
class Roll:
    """The roll of an establishment, filtered and sorted."""

    layout: PrisonLayout
    rows: list[RollRow]
    held: int  # everyone held (before the filter)
    flag_counts: dict[str, int] = field(default_factory=dict)  # over the filtered wing/landing


def roll_rows(
    people: dict[str, PersonSafety], layout: PrisonLayout, rules: Rules, today: dt.date
) -> list[RollRow]:
    """A roll row for each person held in the layout's establishment."""
    rows = []
    for person in people.values():
        booking = person.booking
        if booking is None or booking.prison_id != layout.prison_id:
            continue
        cell = layout.cells.get(booking.cell_id) if booking.cell_id is not None else None
        on_wing = []
        for na in person.non_associations:
            other = na.other_booking
            if other is None or other.prison_id != layout.prison_id or cell is None:
                continue
            other_cell = layout.cells.get(other.cell_id) if other.cell_id is not None else None
            if other_cell is not None and other_cell.wing_id == cell.wing_id:
                on_wing.append(na)
        rows.append(
            RollRow(
                person,
                cell,
                person_flags(person, rules, today),
                on_wing,
                {days: incidents_within(person, today, days) for days in rules.incident_windows},
            )
        )
    return rows


def _sort_key(sort: str, windows: tuple[int, ...]):
    def cell_key(row: RollRow):
        return (row.cell is None, row.cell.label if row.cell else "")

    def name_key(row: RollRow):
        # As the page shows it (Surname, First), so the order is the order officers read.
        b = row.person.booking
        return (b.name.casefold(), b.prison_number)

    if sort == "name":
        return name_key
    if sort == "prison_number":
        return lambda r: r.person.booking.prison_number
    if sort == "flags":
        return lambda r: (r.flag_count, *cell_key(r))
    if sort == "incidents_short":
        return lambda r: (r.incidents[windows[0]], *cell_key(r))
    if sort == "incidents_long":
        return lambda r: (r.incidents[windows[-1]], *cell_key(r))
    return lambda r: (*cell_key(r), *name_key(r))


def establishment_rows(
    conn: sa.Connection,
    rules: Rules,
    prison_id: str,
    today: dt.date,
    cell_ids: list[int] | None = None,
) -> tuple[PrisonLayout, list[RollRow], int]:
    """(layout, a row for everyone held in `prison_id` (in `cell_ids` if given), number held)."""
    layout = load_layout(conn, prison_id)
    held = people_held(conn, prison_id)
    wanted = held if cell_ids is None else people_held(conn, prison_id, cell_ids)
    people = load_people(conn, wanted, today, scope=flag_scope(rules, today))
    return layout, roll_rows(people, layout, rules, today), len(held)


def _filtered(
    rows: list[RollRow], rules: Rules, wing: str | None, landing: str | None, flag: str | None,
    sort: str, descending: bool,
) -> tuple[list[RollRow], dict[str, int]]:
    """(the rows of `wing`/`landing` with `flag`, sorted; flag counts over the wing/landing)."""
    rows = [
        r
        for r in rows
        if (not wing or (r.cell and r.cell.wing == wing))
        and (not landing or (r.cell and r.cell.landing == landing))
    ]
    counts = {
        name: sum(1 for r in rows if r.has(name)) for name in [*rules.flags, NON_ASSOCIATION_FLAG]
    }
    if flag:
        rows = [r for r in rows if r.has(flag)]
    rows = sorted(
        rows,
        key=_sort_key(sort if sort in SORTS else "cell", rules.incident_windows),
        reverse=descending,
    )
    return rows, counts


class _Establishment:
    """One cached establishment: its layout, rows and the views of them already asked for."""

    # Views (filter and sort) kept per establishment: a wing, landing, flag and order each.
    MAX_VIEWS = 128

    def __init__(self, layout: PrisonLayout, rows: list[RollRow], held: int) -> None:
        self.layout, self.rows, self.held = layout, rows, held
        self._views: OrderedDict[tuple, tuple[list[RollRow], dict[str, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def view(
        self, rules: Rules, wing: str | None, landing: str | None, flag: str | None, sort: str,
        descending: bool,
    ) -> tuple[list[RollRow], dict[str, int]]:
        """The rows and flag counts of one filter and order, computed once per data version."""
        key = (wing, landing, flag, sort, descending)
        with self._lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        # Computed outside the lock: two requests for the same new view compute the same answer.
        found = _filtered(self.rows, rules, wing, landing, flag, sort, descending)
        with self._lock:
            self._views[key] = found
            while len(self._views) > self.MAX_VIEWS:
                self._views.popitem(last=False)
        return found


class RollCache:
    """Whole-establishment roll rows, kept until the data changes.

    The serving store changes only when a sync runs, so rows computed for one data version
    (`clock.data_version`: the last successful sync run) stay right until the next run; every
    view is still scoped and audited by the web layer. A version of None (never synced: tests
    that write the mirror directly) is never cached. Misses are computed under a lock, so a sync
    followed by fifty concurrent requests computes the roll once. Each filter and order of a
    cached roll is kept too (lists of the same rows), so a view asked for again is a look-up.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self._rows: OrderedDict[tuple, _Establishment] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def prisons_in_use(self, url: str) -> list[str]:
        """The establishments whose rows are cached for the store at `url`, latest used first:
        the ones officers are looking at, worth computing again after a sync."""
        with self._lock:
            seen = [key[1] for key in reversed(self._rows) if key[0] == url]
        return list(dict.fromkeys(seen))

    def rows(
        self,
        conn: sa.Connection,
        rules: Rules,
        prison_id: str,
        today: dt.date,
        version: object | None,
    ) -> tuple[PrisonLayout, list[RollRow], int]:
        """establishment_rows, from the cache when computed for the same data version."""
        if version is None:
            return establishment_rows(conn, rules, prison_id, today)
        found = self.establishment(conn, rules, prison_id, today, version)
        return found.layout, found.rows, found.held

    def establishment(
        self,
        conn: sa.Connection,
        rules: Rules,
        prison_id: str,
        today: dt.date,
        version: object,
    ) -> _Establishment:
        """The cached establishment for this data version (computed on a miss)."""
        key = (str(conn.engine.url), prison_id, today, rules.version, version)
        with self._lock:
            if key not in self._rows:
                self._rows[key] = _Establishment(*establishment_rows(conn, rules, prison_id, today))
                while len(self._rows) > self.max_entries:
                    self._rows.popitem(last=False)
            self._rows.move_to_end(key)
            return self._rows[key]


def build_roll(
    conn: sa.Connection,
    rules: Rules,
    prison_id: str,
    today: dt.date,
    *,
    wing: str | None = None,
    landing: str | None = None,
    flag: str | None = None,
    sort: str = "cell",
    descending: bool = False,
    cache: RollCache | None = None,
    version: object | None = None,
) -> Roll:
    """The roll of `prison_id`, optionally of one wing or landing and of people with one flag
    (from `cache` when given and the data's `version` is known)."""
    sort = sort if sort in SORTS else "cell"
    if cache is not None and version is not None:
        found = cache.establishment(conn, rules, prison_id, today, version)
        rows, counts = found.view(rules, wing, landing, flag, sort, descending)
        # A copy: the caller may reorder or trim its roll without touching the cached view.
        return Roll(found.layout, list(rows), found.held, dict(counts))
    if cache is not None:  # never synced: the whole establishment afresh, as a cached one is
        layout, rows, held = cache.rows(conn, rules, prison_id, today, version)
        rows, counts = _filtered(rows, rules, wing, landing, flag, sort, descending)
        return Roll(layout, rows, held, counts)
    cell_ids = None
    if wing or landing:
        layout = load_layout(conn, prison_id)
        cell_ids = [
            c.cell_id
            for c in layout.cells.values()
            if (not wing or c.wing == wing) and (not landing or c.landing == landing)
        ]
    layout, rows, held = establishment_rows(conn, rules, prison_id, today, cell_ids)
    rows, counts = _filtered(rows, rules, wing, landing, flag, sort, descending)
    return Roll(layout, rows, held, counts)
