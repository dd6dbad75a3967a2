"""A plan of several cell moves checked as a whole.

Checked one at a time, each move of a plan is judged against the prison as it is now, so two
moves into the last free place, or two people who must be kept apart moved onto one landing,
both pass. Here every move is judged on the plan's *end state* (everyone moved), and a conflict
that the plan's other moves cause is marked as one a one-at-a-time check would miss, with the
lines involved. Capacity is judged on the end state too, so A moving into B's cell while B moves
out is no conflict; `move_order` then says which move must be made first, and when the plan
needs a spare cell (a swap between two full cells).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa

from justice.safety.cell_moves import (
    MoveCheck,
    MoveInputError,
    PrisonNow,
    load_facts_for,
    load_prison_now,
    resolve_move,
)
from justice.safety.conflicts import move_conflicts
from justice.safety.locations import Cell
from justice.safety.rules import Rules

MAX_MOVES = 200
_LINE = re.compile(r"^\s*([^\s,;]+)[\s,;]+([^\s,;]+)[\s,;]*$")


@dataclass(frozen=True)
class PlannedMove:
    """One line of a plan: who, to which cell."""

    line_no: int
    prison_number: str
    cell_text: str


@dataclass(frozen=True)
class LineError:
    """Why a line of a plan cannot be checked."""

    line_no: int
    message: str

    def __str__(self) -> str:
        return f"Line {self.line_no}: {self.message}"


@dataclass
class PlanCheck:
    """The checks of a plan's moves, judged together, and the order to make them in."""

    checks: list[MoveCheck]
    order: list[int]  # line numbers in a safe order
    needs_spare_cell: list[int]  # lines that cannot be made without a temporary move


def parse_plan(text: str) -> tuple[list[PlannedMove], list[LineError]]:
    """The moves of a plan written one ``PRISON_NUMBER CELL`` a line, and the lines that are
    not in that form. Blank lines are skipped."""
    moves, errors = [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            errors.append(
                LineError(
                    line_no,
                    f"write a prison number and a cell, like A1234BC A-1-012 "
                    f"(found {line.strip()[:40]!r})",
                )
            )
            continue
        moves.append(PlannedMove(line_no, match.group(1).upper(), match.group(2)))
    if not moves and not errors:
        errors.append(LineError(1, "enter at least one move, one a line: prison number then cell"))
    if len(moves) > MAX_MOVES:
        errors.append(
            LineError(
                moves[MAX_MOVES].line_no, f"a plan can hold at most {MAX_MOVES} moves; split it"
            )
        )
    return moves, errors


def resolve_plan(
    now: PrisonNow, moves: list[PlannedMove]
) -> tuple[list[tuple[int, str, Cell]], list[LineError]]:
    """(line, person_id, cell) of each planned move, and a LineError for each that cannot be."""
    resolved, errors, first_line = [], [], {}
    for move in moves:
        try:
            person_id, cell = resolve_move(now, move.prison_number, move.cell_text)
        except MoveInputError as exc:
            errors.append(LineError(move.line_no, exc.message))
            continue
        if person_id in first_line:
            errors.append(
                LineError(
                    move.line_no,
                    f"{move.prison_number} is already moved on line {first_line[person_id]}",
                )
            )
            continue
        first_line[person_id] = move.line_no
        resolved.append((move.line_no, person_id, cell))
    return resolved, errors


def move_order(
    now: PrisonNow, resolved: list[tuple[int, str, Cell]]
) -> tuple[list[int], list[int]]:
    """Lines in an order that never puts more people in a cell than it holds (plan order where
    it can), and the lines left over that need someone moved to a spare cell first."""
    count: dict[int, int] = {}
    for cell_id in now.state.cell_of.values():
        count[cell_id] = count.get(cell_id, 0) + 1
    end = dict(count)
    for _, person_id, cell in resolved:
        if (old := now.state.cell_of.get(person_id)) is not None:
            end[old] -= 1
        end[cell.cell_id] = end.get(cell.cell_id, 0) + 1
    pending = list(resolved)
    order: list[int] = []
    while pending:
        for i, (line_no, person_id, cell) in enumerate(pending):
            # A cell over capacity at the end is a conflict already: ordering cannot help it.
            if count.get(cell.cell_id, 0) < cell.capacity or end[cell.cell_id] > cell.capacity:
                if (old := now.state.cell_of.get(person_id)) is not None:
                    count[old] -= 1
                count[cell.cell_id] = count.get(cell.cell_id, 0) + 1
                order.append(line_no)
                del pending[i]
                break
        else:
            return order, [line_no for line_no, _, _ in pending]
    return order, []


def check_plan(
    conn: sa.Connection, rules: Rules, prison_id: str, moves: list[PlannedMove], today: dt.date
) -> tuple[PlanCheck | None, list[LineError]]:
    """The plan checked as a whole, or (None, the lines that cannot be checked)."""
    now = load_prison_now(conn, prison_id)
    resolved, errors = resolve_plan(now, moves)
    if errors:
        return None, errors
    load_facts_for(conn, rules, now, [(p, c) for _, p, c in resolved], today)
    end = now.state.with_moves([(p, c.cell_id) for _, p, c in resolved])
    line_of = {p: line_no for line_no, p, _ in resolved}
    checks = []
    for line_no, person_id, cell in resolved:
        conflicts = move_conflicts(rules, end, person_id, cell, today, line_of=line_of)
        alone = move_conflicts(
            rules, now.state.with_moves([(person_id, cell.cell_id)]), person_id, cell, today
        )
        plan_keys = {c.key for c in conflicts}
        alone_keys = {c.key for c in alone}
        checks.append(
            MoveCheck(
                mover=end.people[person_id],
                from_cell=now.state.cell(person_id),
                to_cell=cell,
                occupants=[end.people[p] for p in end.occupants(cell.cell_id) if p != person_id],
                conflicts=conflicts,
                line_no=line_no,
                only_in_plan={c.key for c in conflicts if c.key not in alone_keys},
                resolved_by_plan=[c for c in alone if c.key not in plan_keys],
            )
        )
    order, stuck = move_order(now, resolved)
    return PlanCheck(checks, order, stuck), []
