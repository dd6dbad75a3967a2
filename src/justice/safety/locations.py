"""An establishment's wings, landings and cells (AGENCY_INTERNAL_LOCATIONS), and who is in each.

Cells hang under landings, landings under wings (PARENT_INTERNAL_LOCATION_ID). A cell is named
by its DESCRIPTION without the establishment prefix (``A-1-012`` for ``MDI-A-1-012``), the way
officers say it; `PrisonLayout.find_cell` accepts either form.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from justice.safety.tables import in_values, table


@dataclass(frozen=True)
class Cell:
    """A cell and the landing and wing it is on."""

    cell_id: int
    label: str  # A-1-012
    capacity: int
    landing_id: int | None
    landing: str
    wing_id: int | None
    wing: str  # A
    active: bool


@dataclass
class PrisonLayout:
    """The cells of one establishment, indexed for the checks."""

    prison_id: str
    name: str
    cells: dict[int, Cell] = field(default_factory=dict)
    wings: dict[int, str] = field(default_factory=dict)  # wing id -> code
    landings: dict[int, tuple[int | None, str]] = field(default_factory=dict)  # id -> (wing, label)

    def find_cell(self, text: str) -> Cell | None:
        """The cell named `text` (A-1-012 or MDI-A-1-012, any case, spaces ignored)."""
        wanted = "".join(text.split()).upper()
        prefix = f"{self.prison_id}-"
        wanted = wanted.removeprefix(prefix)
        return next((c for c in self.cells.values() if c.label.upper() == wanted), None)

    def wing_options(self) -> list[str]:
        """Wing codes in order."""
        return sorted(set(self.wings.values()))

    def landing_options(self, wing: str | None = None) -> list[str]:
        """Landing labels (A-1) in order, of one wing if given."""
        return sorted(
            label
            for wing_id, label in self.landings.values()
            if wing is None or self.wings.get(wing_id) == wing
        )


def _label(description: str, prison_id: str) -> str:
    prefix = f"{prison_id}-"
    return description.removeprefix(prefix)


def prison_name(conn: sa.Connection, prison_id: str) -> str | None:
    """The establishment's name (None: no such establishment)."""
    al = table("nomis_agency_locations")
    return conn.execute(sa.select(al.c.description).where(al.c.agy_loc_id == prison_id)).scalar()


def load_layout(conn: sa.Connection, prison_id: str) -> PrisonLayout:
    """The wings, landings and cells of `prison_id`."""
    ail = table("nomis_agency_internal_locations")
    layout = PrisonLayout(prison_id=prison_id, name=prison_name(conn, prison_id) or prison_id)
    rows = conn.execute(
        sa.select(
            ail.c.internal_location_id,
            ail.c.internal_location_type,
            ail.c.description,
            ail.c.parent_internal_location_id,
            ail.c.capacity,
            ail.c.active_flag,
        ).where(ail.c.agy_loc_id == prison_id)
    ).all()
    parent = {r.internal_location_id: r.parent_internal_location_id for r in rows}
    for r in rows:
        if r.internal_location_type == "WING":
            layout.wings[r.internal_location_id] = _label(r.description, prison_id)
    for r in rows:
        if r.internal_location_type == "LAND":
            layout.landings[r.internal_location_id] = (
                r.parent_internal_location_id,
                _label(r.description, prison_id),
            )
    for r in rows:
        if r.internal_location_type != "CELL":
            continue
        landing_id = parent.get(r.internal_location_id)
        wing_id = layout.landings.get(landing_id, (parent.get(landing_id), ""))[0]
        layout.cells[r.internal_location_id] = Cell(
            cell_id=r.internal_location_id,
            label=_label(r.description, prison_id),
            capacity=int(r.capacity or 0),
            landing_id=landing_id,
            landing=layout.landings.get(landing_id, (None, ""))[1],
            wing_id=wing_id,
            wing=layout.wings.get(wing_id, ""),
            active=r.active_flag == "Y",
        )
    return layout


def load_cells(conn: sa.Connection, prison_id: str, cell_ids) -> PrisonLayout:
    """The layout of `prison_id` cut to `cell_ids` and the landings and wings they are on, each
    cell exactly as `load_layout` makes it: for a page that shows a few cells, one query of
    those rows instead of the whole establishment's."""
    ail = table("nomis_agency_internal_locations")
    cell, landing, wing = ail.alias("cell"), ail.alias("landing"), ail.alias("wing")
    layout = PrisonLayout(prison_id=prison_id, name=prison_name(conn, prison_id) or prison_id)
    wanted = sorted({c for c in cell_ids if c is not None})
    if not wanted:
        return layout
    rows = conn.execute(
        sa.select(
            cell.c.internal_location_id.label("cell_id"),
            cell.c.description.label("cell_description"),
            cell.c.capacity,
            cell.c.active_flag,
            cell.c.parent_internal_location_id.label("landing_id"),
            landing.c.internal_location_type.label("landing_type"),
            landing.c.description.label("landing_description"),
            landing.c.parent_internal_location_id.label("wing_id"),
            wing.c.internal_location_type.label("wing_type"),
            wing.c.description.label("wing_description"),
        )
        .select_from(cell)
        # Only rows of this establishment count as a cell's landing and wing, as in load_layout.
        .outerjoin(
            landing,
            (landing.c.internal_location_id == cell.c.parent_internal_location_id)
            & (landing.c.agy_loc_id == prison_id),
        )
        .outerjoin(
            wing,
            (wing.c.internal_location_id == landing.c.parent_internal_location_id)
            & (wing.c.agy_loc_id == prison_id),
        )
        .where(
            cell.c.agy_loc_id == prison_id,
            cell.c.internal_location_type == "CELL",
            in_values(cell.c.internal_location_id, wanted, conn.dialect.name),
        )
    ).all()
    for r in rows:
        wing_code = _label(r.wing_description, prison_id) if r.wing_type == "WING" else ""
        if r.wing_type == "WING":
            layout.wings[r.wing_id] = wing_code
        landing_label = ""
        if r.landing_type == "LAND":
            landing_label = _label(r.landing_description, prison_id)
            layout.landings[r.landing_id] = (r.wing_id, landing_label)
        layout.cells[r.cell_id] = Cell(
            cell_id=r.cell_id,
            label=_label(r.cell_description, prison_id),
            capacity=int(r.capacity or 0),
            # The parent's id even when it is no landing of this establishment, as in load_layout.
            landing_id=r.landing_id,
            landing=landing_label,
            wing_id=r.wing_id,
            wing=wing_code,
            active=r.active_flag == "Y",
        )
    return layout


def occupancy(conn: sa.Connection, prison_id: str) -> dict[int, list[int]]:
    """Cell id -> the booking ids in it now (active bookings IN at the establishment)."""
    b = table("nomis_offender_bookings")
    out: dict[int, list[int]] = defaultdict(list)
    for r in conn.execute(
        sa.select(b.c.living_unit_id, b.c.offender_book_id)
        .where(
            b.c.agy_loc_id == prison_id,
            b.c.active_flag == "Y",
            b.c.in_out_status == "IN",
            b.c.living_unit_id.is_not(None),
        )
        .order_by(b.c.offender_book_id)
    ):
        out[r.living_unit_id].append(r.offender_book_id)
    return out
