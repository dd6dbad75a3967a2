"""Do the warnings help? For each rule: how many checks it fired on, and how many of those moves
went ahead or were cancelled, beside the same counts for checks with no conflict at all.

A rule whose moves are cancelled far more often than clean moves is changing decisions; one
that is nearly always overridden is noise officers learn to click past, and a candidate for
rewording or a lower severity.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from justice.safety.cell_moves import move_check_conflicts, move_checks
from justice.safety.rules import Rules


@dataclass(frozen=True)
class RuleEvidence:
    """The decisions on the checks where one rule fired."""

    rule_id: str
    title: str
    severity: str
    checks: int
    proceeded: int
    cancelled: int
    undecided: int
    linked_only: int  # checks where the rule fired only through linked records

    @property
    def cancel_rate(self) -> float | None:
        """Cancelled as a share of decided checks (None: none decided)."""
        decided = self.proceeded + self.cancelled
        return self.cancelled / decided if decided else None


def rule_evidence(
    conn: sa.Connection, rules: Rules, prison_ids: list[str]
) -> tuple[list[RuleEvidence], RuleEvidence]:
    """Per rule, and for checks with no conflict (the baseline), in the given establishments."""
    mc, cc = move_checks, move_check_conflicts
    # One row per (check, rule): a rule that fired twice on a check (two occupants) counts once.
    fired = (
        sa.select(
            cc.c.check_id,
            cc.c.rule_id,
            sa.func.min(sa.cast(cc.c.linked_only, sa.Integer)).label("linked_only"),
        )
        .group_by(cc.c.check_id, cc.c.rule_id)
        .subquery("fired")
    )
    rows = conn.execute(
        sa.select(
            fired.c.rule_id,
            mc.c.decision,
            sa.func.count().label("n"),
            sa.func.sum(fired.c.linked_only).label("linked"),
        )
        .join(mc, mc.c.check_id == fired.c.check_id)
        .where(mc.c.prison_id.in_(prison_ids))
        .group_by(fired.c.rule_id, mc.c.decision)
    ).all()
    tally: dict[str, dict] = {}
    for r in rows:
        t = tally.setdefault(r.rule_id, {"proceed": 0, "cancel": 0, None: 0, "linked": 0})
        t[r.decision] += r.n
        t["linked"] += int(r.linked or 0)
    titles = {rule.id: (rule.title, rule.severity) for rule in rules.move_rules}
    out = []
    for rule_id in [*titles, *sorted(set(tally) - set(titles))]:  # retired rules still count
        t = tally.get(rule_id, {"proceed": 0, "cancel": 0, None: 0, "linked": 0})
        title, severity = titles.get(rule_id, (f"{rule_id} (no longer in the rules)", ""))
        out.append(
            RuleEvidence(
                rule_id,
                title,
                severity,
                t["proceed"] + t["cancel"] + t[None],
                t["proceed"],
                t["cancel"],
                t[None],
                t["linked"],
            )
        )
    clean = dict(
        conn.execute(
            sa.select(mc.c.decision, sa.func.count())
            .where(mc.c.prison_id.in_(prison_ids), mc.c.stops == 0, mc.c.warnings == 0)
            .group_by(mc.c.decision)
        ).all()
    )
    baseline = RuleEvidence(
        "none",
        "No conflict found",
        "",
        sum(clean.values()),
        clean.get("proceed", 0),
        clean.get("cancel", 0),
        clean.get(None, 0),
        0,
    )
    return out, baseline
