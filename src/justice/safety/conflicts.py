"""The cell-move rules of rules.yaml evaluated on one move, in a given state of the prison.

A `PrisonState` says where each relevant person is (a cell of this establishment, or not here).
`move_conflicts` judges a move on the state *after* it: the single check passes the state with
just this move made; the batch check passes the plan's end state, so capacity and keep-apart
rules see every move of the plan at once.

Kinds of rule (the `kind` of a rule in rules.yaml):

    capacity                  more people than the cell's capacity
    non_association           someone the mover must be kept apart from would be within the
                              restriction (CELL: the same cell; LANDING: the same landing;
                              WING: the same wing)
    csra_shared_cell          anyone assessed at `level` would share the cell
    alert_with_cellmate_sex   someone with one of `alerts` would share with a person of
                              `cellmate_sex`
    alert_shared_cell         someone with one of `alerts` (active) would share the cell
    flag_shared_cell          someone carrying one of `flags` would share the cell
    incident_between          the mover and an occupant were both in an incident of these types
    flag_alone                the mover carries one of `flags` and would be alone
    flag_new_cellmate         an occupant carrying one of `flags` would get the mover as cellmate
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from justice.safety.facts import PersonSafety, Source
from justice.safety.flags import Evidence, flag_evidence, incident_words
from justice.safety.locations import Cell, PrisonLayout
from justice.safety.rules import MoveRule, Rules


@dataclass(frozen=True)
class Conflict:
    """A rule that fired on a move, with whom and why."""

    rule: MoveRule
    message: str
    evidence: tuple[Evidence, ...] = ()
    other_person_id: str | None = None
    other_prison_number: str | None = None
    other_name: str | None = None
    related_lines: tuple[int, ...] = ()  # batch: the other moves of the plan involved

    @property
    def severity(self) -> str:
        return self.rule.severity

    @property
    def linked_only(self) -> bool:
        """True when it was found only through linked records (earlier prison numbers, courts)."""
        return bool(self.evidence) and all(e.source.linked for e in self.evidence)

    @property
    def key(self) -> tuple[str, str | None]:
        """What makes two findings the same conflict (rule and other person)."""
        return self.rule.id, self.other_person_id


@dataclass
class PrisonState:
    """Who is in which cell of one establishment (person_id -> cell id)."""

    layout: PrisonLayout
    people: dict[str, PersonSafety]
    cell_of: dict[str, int] = field(default_factory=dict)

    def occupants(self, cell_id: int) -> list[str]:
        """The people in the cell, in a stable order."""
        return sorted(p for p, c in self.cell_of.items() if c == cell_id)

    def with_moves(self, moves: list[tuple[str, int]]) -> PrisonState:
        """A copy of the state with each (person, cell) move made."""
        cell_of = dict(self.cell_of)
        cell_of.update(moves)
        return PrisonState(self.layout, self.people, cell_of)

    def cell(self, person_id: str) -> Cell | None:
        """The cell the person is in, if in this establishment."""
        cell_id = self.cell_of.get(person_id)
        return self.layout.cells.get(cell_id) if cell_id is not None else None


def _alert_evidence(person: PersonSafety, codes: tuple[str, ...], today: dt.date) -> list[Evidence]:
    return [
        Evidence(f"{a.description} alert ({a.code})", a.alert_date, a.source)
        for a in person.alerts
        if a.code in codes and a.is_active(today)
    ]


def _words(evidence: list[Evidence] | tuple[Evidence, ...]) -> str:
    parts = []
    for e in evidence[:3]:
        linked = f", {e.source.short()}" if e.source.linked else ""
        when = f"{e.when.day} {e.when:%B %Y}" if e.when else ""
        parts.append(f"{e.text} ({when}{linked})" if when or linked else e.text)
    more = len(evidence) - 3
    return "; ".join(parts) + (f" and {more} more" if more > 0 else "")


def _same_scope(restriction: str, a: Cell, b: Cell) -> bool:
    if restriction == "CELL":
        return a.cell_id == b.cell_id
    if restriction == "LANDING":
        return a.landing_id is not None and a.landing_id == b.landing_id
    return a.wing_id is not None and a.wing_id == b.wing_id


class _Finder:
    """Builds the conflicts of one move; a rule's wording gets the names it needs."""

    def __init__(
        self,
        rules: Rules,
        state: PrisonState,
        mover: str,
        cell: Cell,
        today: dt.date,
        line_of: dict[str, int],
    ) -> None:
        self.rules, self.state, self.mover, self.cell, self.today = rules, state, mover, cell, today
        self.line_of = line_of
        self.occupants = [p for p in state.occupants(cell.cell_id) if p != mover]
        self.found: list[Conflict] = []

    def person(self, person_id: str) -> PersonSafety:
        return self.state.people.get(person_id) or PersonSafety(person_id=person_id)

    def add(
        self,
        rule: MoveRule,
        other: str | None,
        evidence,
        detail: str = "",
        *,
        named: tuple[str, str] | None = None,
        **words,
    ) -> None:
        """Record a conflict of `rule` with `other` (a person id); `named` is (name, prison
        number) for someone whose facts were not loaded (the other side of a non-association)."""
        booking = self.person(other).booking if other else None
        if named is not None:
            name, number = named
        else:
            name, number = (booking.name, booking.prison_number) if booking else (None, None)
        who = f"{name} ({number})" if name else (other or "")
        message = rule.wording.format_map(
            {"other": who, "cell": self.cell.label, "detail": detail or _words(evidence), **words}
        )
        related = tuple(
            sorted(
                {
                    self.line_of[p]
                    for p in (other, *words.get("_movers", ()))
                    if p and p in self.line_of and p != self.mover
                }
            )
        )
        self.found.append(Conflict(rule, message, tuple(evidence), other, number, name, related))

    def flags(self, person_id: str, names: tuple[str, ...]) -> list[Evidence]:
        person = self.person(person_id)
        return [e for n in names for e in flag_evidence(person, self.rules.flags[n], self.today)]


def move_conflicts(
    rules: Rules,
    state: PrisonState,
    mover: str,
    cell: Cell,
    today: dt.date,
    *,
    line_of: dict[str, int] | None = None,
) -> list[Conflict]:
    """Every conflict of moving `mover` into `cell`, judged on `state` (the state after the
    move, and any others of a plan). `line_of` maps a batch's movers to their line numbers."""
    f = _Finder(rules, state, mover, cell, today, line_of or {})
    me = f.person(mover)
    shared = bool(f.occupants)
    everyone = [mover, *f.occupants]
    for rule in rules.move_rules:
        if rule.kind == "capacity":
            count = len(everyone)
            if count > cell.capacity:
                f.add(
                    rule,
                    None,
                    (),
                    capacity=cell.capacity,
                    count=count,
                    _movers=tuple(p for p in f.occupants if p in f.line_of),
                )
        elif rule.kind == "non_association":
            for na in me.non_associations:
                if na.restriction != rule.restriction:
                    continue
                there = f.state.cell(na.other_person_id)
                if there is None or not _same_scope(rule.restriction, cell, there):
                    continue
                evidence = [
                    Evidence(
                        f"Non-association ({na.reason.lower()}), recorded against "
                        f"{na.source.record}",
                        na.effective_date,
                        na.source,
                    )
                ]
                if na.other_record_is_earlier:
                    evidence.append(
                        Evidence(
                            f"It names {na.recorded_other_number}, an earlier prison number of the "
                            f"other prisoner",
                            na.effective_date,
                            Source("prison", na.recorded_other_number, linked=True),
                        )
                    )
                roles = ""
                if {na.role, na.other_role} - {"NOT_RELEVANT", "UNKNOWN"}:
                    roles = (
                        f" (the prisoner moving is recorded as {_role(na.role)}, "
                        f"they as {_role(na.other_role)})"
                    )
                f.add(
                    rule,
                    na.other_person_id,
                    evidence,
                    named=(na.other_name, na.other_prison_number),
                    detail=f"{na.reason.lower()}{roles}; they are in {there.label}",
                )
        elif rule.kind == "csra_shared_cell" and shared:
            for pid in everyone:
                csra = f.person(pid).current_csra
                if csra is not None and csra.level == rule.level:
                    f.add(
                        rule,
                        pid,
                        [Evidence(f"CSRA {csra.level.lower()}", csra.assessment_date, csra.source)],
                        detail=f"assessed {csra.assessment_date:%-d %B %Y}",
                    )
        elif rule.kind == "alert_with_cellmate_sex" and shared:
            for pid in everyone:
                evidence = _alert_evidence(f.person(pid), rule.alerts, today)
                others = [q for q in everyone if q != pid and (pid == mover or q == mover)]
                if evidence and any(_sex(f.person(q)) == rule.cellmate_sex for q in others):
                    f.add(rule, pid, evidence)
        elif rule.kind == "alert_shared_cell" and shared:
            for pid in everyone:
                if evidence := _alert_evidence(f.person(pid), rule.alerts, today):
                    f.add(rule, pid, evidence)
        elif rule.kind == "flag_shared_cell" and shared:
            for pid in everyone:
                if evidence := f.flags(pid, rule.flags):
                    f.add(rule, pid, evidence)
        elif rule.kind == "incident_between":
            mine = {i.incident_id: i for i in me.incidents if i.type in rule.incident_types}
            for pid in f.occupants:
                both = [
                    (mine[i.incident_id], i)
                    for i in f.person(pid).incidents
                    if i.incident_id in mine
                ]
                if both and not any(na.other_person_id == pid for na in me.non_associations):
                    ev = [
                        Evidence(
                            f"{incident_words(a.type, a.role)} / {b.role.lower()}",
                            a.incident_date,
                            a.source if a.source.linked else b.source,
                        )
                        for a, b in both
                    ]
                    f.add(rule, pid, ev)
        elif rule.kind == "flag_alone" and not shared:
            if evidence := f.flags(mover, rule.flags):
                f.add(rule, mover, evidence)
        elif rule.kind == "flag_new_cellmate":
            for pid in f.occupants:
                if evidence := f.flags(pid, rule.flags):
                    f.add(rule, pid, evidence)
    return f.found


def _sex(person: PersonSafety) -> str | None:
    if person.booking is not None:
        return person.booking.sex_code
    return person.records[0].sex_code if person.records else None


def _role(code: str) -> str:
    return {"VICTIM": "the victim", "PERPETRATOR": "the perpetrator"}.get(
        code, code.lower().replace("_", " ")
    )
