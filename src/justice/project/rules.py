"""Release dates for the projection, from the release-rules engine `justice.policy`.

The projection asks one question of the rules: on which day is each sentenced prisoner released?
`justice.policy` (the rules as effective-dated data, with their legal sources) answers it. Where
that package is not installed yet, a stand-in with the same signature reads the simulator's
reference rules (`justice.sim.reference.release_rules`), so the projection runs either way; it
cannot add rule files, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from justice.errors import ConfigError


class ReleaseRuleSet(Protocol):
    """What the projection needs of a rule set: release days for arrays of sentences."""

    def release(self, *, sentence_day: np.ndarray, length_days: np.ndarray,
                offence_group: np.ndarray, remand_days: np.ndarray): ...


def load_rules(extra: Sequence[Path] = (), without: Sequence[str] = ()) -> ReleaseRuleSet:
    """The release rules in force for a scenario: the package's rule files, plus `extra` rule
    files, less the rules named in `without`."""
    try:
        from justice.policy import load_release_rules
    except ImportError:
        return _ReferenceRules.load(extra, without)
    return load_release_rules(extra=list(extra), without=list(without))


def release_days(rules: ReleaseRuleSet, *, sentence_day: np.ndarray, length_days: np.ndarray,
                 offence_group: np.ndarray, remand_days: np.ndarray) -> np.ndarray:
    """Release day of each sentence under `rules` (int64 day numbers)."""
    if len(sentence_day) == 0:
        return np.zeros(0, dtype=np.int64)
    out = rules.release(sentence_day=np.asarray(sentence_day, dtype=np.int64),
                        length_days=np.asarray(length_days, dtype=np.int64),
                        offence_group=np.asarray(offence_group, dtype=object),
                        remand_days=np.asarray(remand_days, dtype=np.int64))
    return np.asarray(out.release_day, dtype=np.int64)


@dataclass(frozen=True)
class _Outcome:
    release_day: np.ndarray
    rule: np.ndarray
    fraction: np.ndarray


@dataclass(frozen=True)
class _ReferenceRules:
    """Stand-in for `justice.policy` while it is absent: the simulator's reference rules,
    applied as the simulator applies them (the latest eligible rule whose date the old release
    point reaches; a release point already passed on a rule's first day is that day)."""

    rules: tuple

    @classmethod
    def load(cls, extra: Sequence[Path], without: Sequence[str]) -> _ReferenceRules:
        from justice.sim import reference

        if extra:
            raise ConfigError("adding rule files needs the release-rules engine justice.policy, "
                              "which is not installed in this tree")
        rules = reference.release_rules()
        unknown = sorted(set(without) - {r.name for r in rules})
        if unknown:
            raise ConfigError(f"no release rule named {', '.join(unknown)} to withdraw "
                              f"(rules: {', '.join(r.name for r in rules)})")
        kept = tuple(r for r in rules if r.name not in set(without))
        if not kept:
            raise ConfigError("withdrawing every release rule leaves none to release anyone by")
        return cls(kept)

    def release(self, *, sentence_day, length_days, offence_group, remand_days) -> _Outcome:
        months = length_days / 30.4375
        first = self.rules[0]
        fraction = np.full(len(sentence_day), first.fraction)
        rule = np.full(len(sentence_day), first.name, dtype=object)
        effective = np.zeros(len(sentence_day), dtype=np.int64)
        for r in self.rules[1:]:
            eligible = ~np.isin(offence_group, r.exclude_offence_groups)
            if r.exclude_violent_with_sentence_months_at_least is not None:
                eligible &= ~(np.isin(offence_group, r.violent_offence_groups)
                              & (months >= r.exclude_violent_with_sentence_months_at_least))
            old = sentence_day + np.round(fraction * length_days) - remand_days
            applies = eligible & (old >= r.effective_from)
            fraction = np.where(applies, r.fraction, fraction)
            rule = np.where(applies, r.name, rule)
            effective = np.where(applies, r.effective_from, effective)
        day = sentence_day + np.round(fraction * length_days).astype(np.int64) - remand_days
        day = np.maximum(np.maximum(day, effective), sentence_day)
        return _Outcome(day, rule, fraction)
