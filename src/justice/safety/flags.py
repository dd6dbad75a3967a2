"""The safety flags a person carries (rules.yaml `flags`), each with the evidence behind it.

A flag found only in linked records (an earlier prison number, a court record) says so: the
officer sees it, and sees that it came through the person index and how sure that link is.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from justice.safety.facts import FactScope, PersonSafety, Source
from justice.safety.rules import FlagRule, Rules

INCIDENT_WORDS = {
    "SELF_HARM": "self-harm",
    "ASSAULT_ON_STAFF": "assault on staff",
    "ASSAULT_ON_PRISONER": "assault on a prisoner",
}
ROLE_WORDS = {"SELF_HARMER": "", "PERPETRATOR": "perpetrator", "VICTIM": "victim"}


@dataclass(slots=True)
class Evidence:
    """One fact behind a flag or a conflict, with where it was recorded."""

    text: str
    when: dt.date | None
    source: Source


@dataclass(slots=True)
class Flag:
    """A flag the person carries, and why."""

    rule: FlagRule
    evidence: tuple[Evidence, ...]

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def linked_only(self) -> bool:
        """True when every piece of evidence comes from a linked record."""
        return all(e.source.linked for e in self.evidence)

    def summary(self) -> str:
        """The evidence in one line (newest first, at most three facts)."""
        facts = sorted(self.evidence, key=lambda e: e.when or dt.date.min, reverse=True)
        words = [
            f"{e.text}{f' on {e.when.day} {e.when:%B %Y}' if e.when else ''}"
            f"{f' ({e.source.short()})' if e.source.linked else ''}"
            for e in facts[:3]
        ]
        more = len(facts) - 3
        return "; ".join(words) + (f" and {more} more" if more > 0 else "")


@functools.cache
def incident_words(kind: str, role: str) -> str:
    """'assault on a prisoner (perpetrator)' for an incident type and role."""
    what = INCIDENT_WORDS.get(kind, kind.replace("_", " ").lower())
    role_words = ROLE_WORDS.get(role, role.replace("_", " ").lower())
    return f"{what} ({role_words})" if role_words else what


def flag_evidence(person: PersonSafety, rule: FlagRule, today: dt.date) -> tuple[Evidence, ...]:
    """The facts that raise `rule`'s flag on `person` (empty: no flag)."""
    found: list[Evidence] = []
    for alert in person.alerts:
        if alert.code not in rule.alerts:
            continue
        if rule.alert_scope == "current" and not alert.on_current_booking:
            continue
        if rule.alert_status == "active" and not alert.is_active(today):
            continue
        found.append(
            Evidence(f"{alert.description} alert ({alert.code})", alert.alert_date, alert.source)
        )
    wanted = rule.incident_keys
    for incident in person.incidents if wanted else ():
        if (incident.type, incident.role) in wanted and incident.incident_date <= today:
            found.append(
                Evidence(
                    incident_words(incident.type, incident.role).capitalize(),
                    incident.incident_date,
                    incident.source,
                )
            )
    if rule.violent_convictions:
        for event in person.linked_events:
            if event.kind == "court_conviction" and event.is_violence:
                found.append(
                    Evidence(f"Conviction: {event.description}", event.event_date, event.source)
                )
    if rule.csra is not None:
        csra = person.current_csra
        if csra is not None and csra.level == rule.csra:
            found.append(Evidence(f"CSRA {csra.level.lower()}", csra.assessment_date, csra.source))
    return tuple(found)


def person_flags(person: PersonSafety, rules: Rules, today: dt.date) -> dict[str, Flag]:
    """The flags `person` carries, by flag name, in rules.yaml order."""
    out = {}
    for name, rule in rules.flags.items():
        evidence = flag_evidence(person, rule, today)
        if evidence:
            out[name] = Flag(rule, evidence)
    return out


def incidents_within(person: PersonSafety, today: dt.date, days: int) -> int:
    """How many incidents the person took part in within `days` days up to `today`."""
    start = today - dt.timedelta(days=days)
    return len({i.incident_id for i in person.incidents if start < i.incident_date <= today})


def flag_scope(
    rules: Rules,
    today: dt.date,
    *,
    alerts: tuple[str, ...] = (),
    incident_types: tuple[str, ...] = (),
) -> FactScope:
    """The facts the flags (and the incident counts) read, plus any `alerts` and
    `incident_types` a caller needs besides: what the roll loads instead of everything."""
    flags = rules.flags.values()
    return FactScope(
        alert_codes=frozenset(c for f in flags for c in f.alerts) | frozenset(alerts),
        incident_types=frozenset(i.type for f in flags for i in f.incidents)
        | frozenset(incident_types),
        incidents_since=today - dt.timedelta(days=max(rules.incident_windows)),
        csra_current_only=True,  # a flag reads the latest CSRA of this custody spell only
        linked_violence_only=True,
    )  # and, of linked records, violent convictions only
