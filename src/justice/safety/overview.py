"""The establishment overview: the roll count, who came in and went out today, active flags by
kind, recent incidents by type, and each wing's numbers.

"Today" is the date of the prison data's as-at time (the prison system's clock), not the web
server's: the demo's live prison runs on simulated time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from justice.safety.locations import PrisonLayout, occupancy
from justice.safety.roll import NON_ASSOCIATION_FLAG, RollCache, establishment_rows
from justice.safety.rules import Rules
from justice.safety.tables import table

INCIDENT_PERIODS = (7, 30)


@dataclass(frozen=True)
class WingCount:
    """One wing's roll."""

    wing: str
    held: int
    capacity: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.held, 0)


@dataclass
class Overview:
    """What the establishment overview shows."""

    layout: PrisonLayout
    today: dt.date
    held: int
    capacity: int
    free: int
    in_today: int
    out_today: int
    flag_counts: dict[str, int]  # flag name -> people carrying it
    incidents: dict[str, dict[int, int]]  # incident type -> {days: count}
    wings: list[WingCount]


def movements_today(conn: sa.Connection, prison_id: str, today: dt.date) -> tuple[int, int]:
    """(received, discharged) today: admissions and transfers in, releases and transfers out."""
    m = table("nomis_offender_external_movements")
    day = m.c.movement_date == today
    received = conn.execute(
        sa.select(sa.func.count()).where(day, m.c.to_agy_loc_id == prison_id)
    ).scalar()
    gone = conn.execute(
        sa.select(sa.func.count()).where(day, m.c.from_agy_loc_id == prison_id)
    ).scalar()
    return int(received or 0), int(gone or 0)


def incident_counts(
    conn: sa.Connection, prison_id: str, today: dt.date, periods: tuple[int, ...] = INCIDENT_PERIODS
) -> dict[str, dict[int, int]]:
    """Incident type -> {days: incidents in the establishment in the last `days` days}."""
    ic = table("nomis_incident_cases")
    longest = today - dt.timedelta(days=max(periods))
    rows = conn.execute(
        sa.select(ic.c.incident_type, ic.c.incident_date).where(
            ic.c.agy_loc_id == prison_id, ic.c.incident_date > longest, ic.c.incident_date <= today
        )
    ).all()
    out: dict[str, dict[int, int]] = {}
    for kind, when in rows:
        counts = out.setdefault(kind, dict.fromkeys(periods, 0))
        for days in periods:
            if when > today - dt.timedelta(days=days):
                counts[days] += 1
    return dict(sorted(out.items()))


def build_overview(
    conn: sa.Connection,
    rules: Rules,
    prison_id: str,
    today: dt.date,
    *,
    cache: RollCache | None = None,
    version: object | None = None,
) -> Overview:
    """The overview of `prison_id` on `today` (its flag counts from the roll `cache` if given)."""
    if cache is not None:
        layout, rows, _ = cache.rows(conn, rules, prison_id, today, version)
    else:
        layout, rows, _ = establishment_rows(conn, rules, prison_id, today)
    occupied = occupancy(conn, prison_id)
    cells = [c for c in layout.cells.values() if c.active]
    capacity = sum(c.capacity for c in cells)
    free = sum(max(c.capacity - len(occupied.get(c.cell_id, ())), 0) for c in cells)
    counts = Counter(name for r in rows for name in r.flags)
    counts[NON_ASSOCIATION_FLAG] = sum(1 for r in rows if r.non_associations_on_wing)
    wing_held: Counter = Counter()
    wing_capacity: Counter = Counter()
    for c in cells:
        wing_capacity[c.wing] += c.capacity
        wing_held[c.wing] += len(occupied.get(c.cell_id, ()))
    received, gone = movements_today(conn, prison_id, today)
    return Overview(
        layout=layout,
        today=today,
        held=len(rows),
        capacity=capacity,
        free=free,
        in_today=received,
        out_today=gone,
        flag_counts={name: counts.get(name, 0) for name in [*rules.flags, NON_ASSOCIATION_FLAG]},
        incidents=incident_counts(conn, prison_id, today),
        wings=[WingCount(w, wing_held[w], wing_capacity[w]) for w in sorted(wing_capacity)],
    )
