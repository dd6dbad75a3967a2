"""Cell-move checks: one planned move judged against the rules, and the officer's decision.

The service never moves anyone: the prison system is the record of where people are, and the
service only reads it. A check records what was found (``move_checks``, one row per planned
move, and ``move_check_conflicts``, one row per rule that fired); the decision (proceed or
cancel) is written onto the check with its reason, once.

Who may decide (the service's policy, documented in docs/safety-service.md):
    * a check with no conflict: proceed or cancel, a reason is optional;
    * a check with warnings: either, with a reason (it is what the evidence page learns from);
    * a check with a stop: an officer may only cancel; a safety lead may proceed, with a
      reason. An officer who meets a stop can hand the check's page to a safety lead.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from justice.safety.conflicts import Conflict, PrisonState, move_conflicts
from justice.safety.facts import PersonSafety, current_bookings, load_people
from justice.safety.flags import flag_scope
from justice.safety.locations import Cell, PrisonLayout, load_layout
from justice.safety.rules import Rules
from justice.serving.store import metadata

DECISIONS = ("proceed", "cancel")
OVERRIDE_ROLES = ("safety-lead",)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

move_checks = sa.Table(
    "move_checks",
    metadata,
    sa.Column("check_id", _ID, primary_key=True, autoincrement=True),
    sa.Column(
        "batch_id",
        sa.String(36),
        index=True,
        comment="The plan a move belongs to (batch checks); null for a single check.",
    ),
    sa.Column("line_no", sa.Integer, comment="The move's line in the plan."),
    sa.Column("checked_at", sa.DateTime, nullable=False, comment="UTC"),
    sa.Column("data_as_at", sa.DateTime, comment="The prison data's as-at time the check read."),
    sa.Column("rules_version", sa.String(40), nullable=False),
    sa.Column("checked_by", sa.String(100), nullable=False),
    sa.Column("prison_id", sa.String(12), nullable=False, index=True),
    sa.Column("prison_number", sa.String(20), nullable=False),
    sa.Column("prisoner_name", sa.String(200), comment="As the prison system had it at the check."),
    sa.Column("person_id", sa.String(64)),
    sa.Column("offender_book_id", _ID, nullable=False),
    sa.Column("from_cell", sa.String(40)),
    sa.Column("to_cell_id", _ID, nullable=False),
    sa.Column("to_cell", sa.String(40), nullable=False),
    sa.Column("stops", sa.Integer, nullable=False),
    sa.Column("warnings", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(10), comment="proceed or cancel; null until decided"),
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.DateTime, comment="UTC"),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decided_role", sa.String(20)),
)

move_check_conflicts = sa.Table(
    "move_check_conflicts",
    metadata,
    sa.Column("check_id", _ID, sa.ForeignKey("move_checks.check_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rule_id", sa.String(60), nullable=False, index=True),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("other_prison_number", sa.String(20)),
    sa.Column(
        "linked_only",
        sa.Boolean,
        nullable=False,
        comment="Found only through linked records (earlier prison numbers, courts).",
    ),
    sa.Column(
        "only_in_plan",
        sa.Boolean,
        nullable=False,
        comment="Batch: raised by the plan's other moves; a check of this move alone misses it.",
    ),
    sa.Column(
        "related_lines",
        sa.String(200),
        comment="Batch: the plan's lines whose moves take part, comma-separated.",
    ),
    sa.Column("message", sa.Text, nullable=False),
)


def add_missing_columns(engine: sa.Engine) -> list[str]:
    """Add the columns of move_checks and move_check_conflicts that a store made by an earlier
    version lacks (all nullable, so old checks keep their rows); the columns added."""
    added = []
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        present_tables = set(inspector.get_table_names())
        for table in (move_checks, move_check_conflicts):
            if table.name not in present_tables:
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=conn.dialect)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                    )
                    added.append(f"{table.name}.{column.name}")
    return added


class MoveInputError(Exception):
    """A planned move that cannot be checked (unknown prisoner or cell); `field` names the input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass
class MoveCheck:
    """One planned move and what the rules found."""

    mover: PersonSafety
    from_cell: Cell | None
    to_cell: Cell
    occupants: list[PersonSafety]
    conflicts: list[Conflict]
    line_no: int | None = None
    only_in_plan: set[tuple] = field(default_factory=set)  # conflict keys missed alone
    resolved_by_plan: list[Conflict] = field(default_factory=list)

    @property
    def stops(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.severity == "stop"]

    @property
    def warnings(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.severity == "warning"]


@dataclass
class PrisonNow:
    """An establishment as the checks see it: its cells, and who is where."""

    layout: PrisonLayout
    state: PrisonState
    person_of_number: dict[str, str]  # prison number -> person_id, people held here
    booking_of_person: dict[str, int]  # person_id -> offender_book_id


def load_prison_now(conn: sa.Connection, prison_id: str) -> PrisonNow:
    """The layout of `prison_id` and where everyone held there is now."""
    layout = load_layout(conn, prison_id)
    cb = current_bookings().subquery("cb")
    cell_of, numbers, bookings = {}, {}, {}
    for r in conn.execute(
        sa.select(
            cb.c.person_id, cb.c.offender_id_display, cb.c.living_unit_id, cb.c.offender_book_id
        )
        .where(cb.c.agy_loc_id == prison_id)
        .order_by(cb.c.booking_begin_date, cb.c.offender_book_id)
    ):
        if r.living_unit_id is not None:
            cell_of[r.person_id] = r.living_unit_id
        numbers[r.offender_id_display] = r.person_id
        bookings[r.person_id] = r.offender_book_id
    return PrisonNow(layout, PrisonState(layout, {}, cell_of), numbers, bookings)


def move_scope(rules: Rules, today: dt.date):
    """The facts the cell-move rules read (the flags' and the rules' own alerts and incidents)."""
    return flag_scope(
        rules,
        today,
        alerts=tuple(c for r in rules.move_rules for c in r.alerts),
        incident_types=tuple(t for r in rules.move_rules for t in r.incident_types),
    )


def load_facts_for(
    conn: sa.Connection,
    rules: Rules,
    now: PrisonNow,
    movers: list[tuple[str, Cell]],
    today: dt.date,
) -> None:
    """Load into `now.state.people` the facts of the movers and of everyone whose cell they
    would share (now or after the plan)."""
    wanted = {pid for pid, _ in movers}
    targets = {cell.cell_id for _, cell in movers}
    wanted |= {p for p, c in now.state.cell_of.items() if c in targets}
    now.state.people.update(
        load_people(
            conn, sorted(wanted - set(now.state.people)), today, scope=move_scope(rules, today)
        )
    )


def resolve_move(now: PrisonNow, prison_number: str, cell_text: str) -> tuple[str, Cell]:
    """(person_id, target cell) of a planned move typed by an officer; MoveInputError if not."""
    number = "".join(prison_number.split()).upper()
    if not number:
        raise MoveInputError("prison_number", "Enter the prison number of the person to move")
    person_id = now.person_of_number.get(number)
    if person_id is None:
        raise MoveInputError(
            "prison_number", f"No one with prison number {number} is held in {now.layout.name}"
        )
    if not cell_text.strip():
        raise MoveInputError("cell", "Enter the cell to move them to, for example A-1-012")
    cell = now.layout.find_cell(cell_text)
    if cell is None:
        raise MoveInputError(
            "cell",
            f"There is no cell {cell_text.strip()} in {now.layout.name}: "
            f"write it as wing-landing-cell, for example A-1-012",
        )
    if not cell.active:
        raise MoveInputError("cell", f"Cell {cell.label} is closed")
    if now.state.cell_of.get(person_id) == cell.cell_id:
        raise MoveInputError("cell", f"{number} is already in cell {cell.label}")
    return person_id, cell


def check_move(
    conn: sa.Connection,
    rules: Rules,
    prison_id: str,
    prison_number: str,
    cell_text: str,
    today: dt.date,
) -> MoveCheck:
    """Check one planned move against every rule (MoveInputError if it cannot be checked)."""
    now = load_prison_now(conn, prison_id)
    person_id, cell = resolve_move(now, prison_number, cell_text)
    load_facts_for(conn, rules, now, [(person_id, cell)], today)
    after = now.state.with_moves([(person_id, cell.cell_id)])
    return MoveCheck(
        mover=now.state.people[person_id],
        from_cell=now.state.cell(person_id),
        to_cell=cell,
        occupants=[now.state.people[p] for p in after.occupants(cell.cell_id) if p != person_id],
        conflicts=move_conflicts(rules, after, person_id, cell, today),
    )


def save_checks(
    conn: sa.Connection,
    checks: list[MoveCheck],
    *,
    prison_id: str,
    user_name: str,
    rules_version: str,
    data_as_at: dt.datetime | None,
    batch: bool = False,
) -> list[int]:
    """Record the checks (and their conflicts); their check ids in order."""
    batch_id = str(uuid.uuid4()) if batch else None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ids = []
    for check in checks:
        booking = check.mover.booking
        check_id = conn.execute(
            move_checks.insert().values(
                batch_id=batch_id,
                line_no=check.line_no,
                checked_at=now,
                data_as_at=data_as_at,
                rules_version=rules_version,
                checked_by=user_name,
                prison_id=prison_id,
                prison_number=booking.prison_number,
                prisoner_name=booking.name,
                person_id=check.mover.person_id,
                offender_book_id=booking.offender_book_id,
                from_cell=check.from_cell.label if check.from_cell else None,
                to_cell_id=check.to_cell.cell_id,
                to_cell=check.to_cell.label,
                stops=len(check.stops),
                warnings=len(check.warnings),
            )
        ).inserted_primary_key[0]
        if check.conflicts:
            conn.execute(
                move_check_conflicts.insert(),
                [
                    {
                        "check_id": check_id,
                        "seq": i,
                        "rule_id": c.rule.id,
                        "severity": c.severity,
                        "other_prison_number": c.other_prison_number,
                        "linked_only": c.linked_only,
                        "only_in_plan": c.key in check.only_in_plan,
                        "message": c.message,
                        "related_lines": ",".join(map(str, c.related_lines)) or None,
                    }
                    for i, c in enumerate(check.conflicts, start=1)
                ],
            )
        ids.append(int(check_id))
    return ids


@dataclass(frozen=True)
class SavedCheck:
    """A recorded check (or every move of a recorded plan) as the decision page needs it."""

    check_ids: tuple[int, ...]
    batch_id: str | None
    prison_id: str
    rows: tuple
    conflicts: tuple

    @property
    def stops(self) -> int:
        return sum(r.stops for r in self.rows)

    @property
    def warnings(self) -> int:
        return sum(r.warnings for r in self.rows)

    @property
    def decision(self) -> str | None:
        return self.rows[0].decision

    @property
    def prison_numbers(self) -> list[str]:
        return [r.prison_number for r in self.rows]


def load_check(conn: sa.Connection, check_id: int) -> SavedCheck | None:
    """The check `check_id`, with every move of its plan if it is part of one."""
    first = conn.execute(sa.select(move_checks).where(move_checks.c.check_id == check_id)).first()
    if first is None:
        return None
    if first.batch_id is not None:
        rows = tuple(
            conn.execute(
                sa.select(move_checks)
                .where(move_checks.c.batch_id == first.batch_id)
                .order_by(move_checks.c.line_no, move_checks.c.check_id)
            )
        )
    else:
        rows = (first,)
    ids = tuple(r.check_id for r in rows)
    conflicts = tuple(
        conn.execute(
            sa.select(move_check_conflicts)
            .where(move_check_conflicts.c.check_id.in_(ids))
            .order_by(move_check_conflicts.c.check_id, move_check_conflicts.c.seq)
        )
    )
    return SavedCheck(ids, first.batch_id, first.prison_id, rows, conflicts)


class DecisionError(Exception):
    """A decision the service refuses; `field` is the form field to point the error at."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def validate_decision(check: SavedCheck, decision: str, reason: str, role: str) -> None:
    """DecisionError unless `role` may record `decision` with `reason` on `check`."""
    if check.decision is not None:
        raise DecisionError("decision", f"This check was already decided: {check.decision}")
    if decision not in DECISIONS:
        raise DecisionError("decision", "Select whether to proceed with the move or cancel it")
    if check.stops and decision == "proceed" and role not in OVERRIDE_ROLES:
        raise DecisionError(
            "decision",
            "Only a safety lead can proceed with a move that has a "
            "stop. Cancel the move, or ask a safety lead to open this check",
        )
    if (check.stops or check.warnings) and not reason.strip():
        what = "proceeding despite" if decision == "proceed" else "cancelling because of"
        raise DecisionError("reason", f"Enter why you are {what} the warnings")
    if len(reason) > 2000:
        raise DecisionError("reason", "The reason must be 2,000 characters or fewer")


def record_decision(
    conn: sa.Connection, check: SavedCheck, decision: str, reason: str, *, user_name: str, role: str
) -> None:
    """Write the decision onto the check (every move of a plan); DecisionError if refused."""
    validate_decision(check, decision, reason, role)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    done = conn.execute(
        move_checks.update()
        .where(move_checks.c.check_id.in_(check.check_ids), move_checks.c.decision.is_(None))
        .values(
            decision=decision,
            reason=reason.strip() or None,
            decided_at=now,
            decided_by=user_name,
            decided_role=role,
        )
    )
    if done.rowcount == 0:
        # Someone decided between the page load and this request. A plan is always decided
        # whole, in one statement, so its rows are either all theirs or all ours.
        raise DecisionError("decision", "This check was decided by someone else meanwhile")
