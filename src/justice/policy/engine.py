"""The release-rules engine: which rule releases each sentence, on which day, and recall.

Order of precedence (docs/policy-rules.md says the same in prose):

1. Remand credit: the remand_credit rule in force on the sentence day that covers the sentence
   (the latest by `effective_from`, then `precedence`) credits `fraction` of the days on remand.
2. Release: every sentence starts under the earliest release rule that covers it. Each later rule
   (or tranche) that covers it takes over if the release day under the rule before it falls on
   or after the later rule's date: a rule governs releases on or after its date. A sentence
   whose new release point has already passed on that date is released on that date. Rules of
   one date are applied in `precedence` order, the highest last (it wins).
3. Release day = sentence day + round(fraction x length) - credited remand, never before the
   governing rule's date (for a rule that took over) nor before the sentence day.
4. Recall: a recall on a day when a fixed_term_recall rule covering the sentence is in force,
   of a person suitable for automatic release, is fixed-term (out after the band's days, never
   after the sentence ends); any other recall is a standard recall (to the sentence end, or an
   earlier re-release).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from justice.errors import PolicyError
from justice.policy.rulefiles import (
    MONTH_DAYS,
    SENTENCE_TYPES,
    Population,
    Rule,
    iso_date,
    known_offence_groups,
    package_rule_files,
    parse_rule_data,
    parse_rule_text,
    read_rule_file,
)

_STANDARD = SENTENCE_TYPES.index("standard_determinate")

OTHER_GROUP = "(any other offence group)"
"""Stands for an offence group the reference data does not know (or a missing one): only rules
that name no offence groups cover it, and no exclusion by group removes it."""

_NO_DATE = np.iinfo(np.int64).min // 4
NO_DAY = np.iinfo(np.int64).min
"""`automatic_day` of a sentence that is never released automatically (life, IPP)."""


@dataclass(frozen=True)
class ReleaseOutcome:
    """Per sentence: the day of release, the name of the rule that set it, and its fraction.

    Where the governing rule releases by the Parole Board (`parole_board` True), `release_day`
    is the earliest day the Board may direct release (parole eligibility, or the end of the
    minimum term of an indeterminate sentence) and `automatic_day` the day release becomes
    automatic if the Board has not directed it (NO_DAY: never, as for life and IPP). For
    automatic release both are the release day.
    """

    release_day: np.ndarray  # int64 day numbers
    rule: np.ndarray  # object: rule names
    fraction: np.ndarray  # float64
    parole_board: np.ndarray | None = None  # bool
    automatic_day: np.ndarray | None = None  # int64 day numbers (NO_DAY: never)


@dataclass(frozen=True)
class RecallOutcome:
    """Per recall: the day back out of custody, fixed-term or standard, the rule, days inside."""

    release_day: np.ndarray  # int64 day numbers
    kind: np.ndarray  # object: "fixed_term" or "standard"
    rule: np.ndarray  # object: rule names
    days_in_custody: np.ndarray  # int64


@dataclass(frozen=True)
class _Compiled:
    """A population ready to test arrays against: a bool per known offence group, then bounds."""

    groups: np.ndarray
    min_days: int
    max_days: int | None
    sentenced_from: int | None
    sentenced_before: int | None
    types: np.ndarray | None = None  # bool per SENTENCE_TYPES; None: every type

    def mask(self, codes: np.ndarray, length: np.ndarray, sentence_day: np.ndarray,
             types: np.ndarray | None = None) -> np.ndarray:
        m = self.groups[codes]
        if self.types is not None:
            m = m & self.types[_STANDARD if types is None else types]
        if self.min_days:
            m = m & (length >= self.min_days)
        if self.max_days is not None:
            m = m & (length < self.max_days)
        if self.sentenced_from is not None:
            m = m & (sentence_day >= self.sentenced_from)
        if self.sentenced_before is not None:
            m = m & (sentence_day < self.sentenced_before)
        return m


@dataclass(frozen=True)
class _Step:
    rule_index: int
    clause_index: int
    effective_from: int
    precedence: int
    include: _Compiled
    excludes: tuple[_Compiled, ...]

    def mask(self, codes: np.ndarray, length: np.ndarray, sentence_day: np.ndarray,
             types: np.ndarray | None = None) -> np.ndarray:
        m = self.include.mask(codes, length, sentence_day, types)
        for ex in self.excludes:
            m &= ~ex.mask(codes, length, sentence_day, types)
        return m


class ReleaseRules:
    """A validated set of release, remand-credit and recall rules, applied to numpy arrays.

    Example::

        rules = load_release_rules()
        out = rules.release(sentence_day=np.array([20_000]), length_days=np.array([730]),
                            offence_group=np.array(["04 Theft offences"], dtype=object),
                            remand_days=np.array([0]))
        out.release_day, out.rule, out.fraction
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.groups: tuple[str, ...] = tuple(sorted(known_offence_groups())) + (OTHER_GROUP,)
        self._group_index = {g: i for i, g in enumerate(self.groups)}
        self._names = np.array([r.name for r in self.rules] + [None], dtype=object)
        self._steps = {kind: self._ordered_steps(kind) for kind in
                       ("release", "remand_credit", "fixed_term_recall", "standard_recall")}
        self._fractions = np.array([r.fraction if r.fraction is not None else np.nan
                                    for r in self.rules] + [np.nan])
        self._parole = np.array([r.release_by == "parole_board" for r in self.rules] + [False])
        self._automatic = np.array([r.automatic_fraction if r.automatic_fraction is not None
                                    else np.nan for r in self.rules] + [np.nan])
        _validate(self)

    @property
    def names(self) -> tuple[str, ...]:
        """The rules' names, in load order."""
        return tuple(r.name for r in self.rules)

    def rule(self, name: str) -> Rule:
        """The rule called `name`."""
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)

    def _compile(self, pop: Population) -> _Compiled:
        if pop.offence_groups is None:
            groups = np.ones(len(self.groups), bool)
        else:
            groups = np.array([g in pop.offence_groups for g in self.groups])
        types = None if pop.sentence_types is None else np.array(
            [t in pop.sentence_types for t in SENTENCE_TYPES])
        return _Compiled(groups, pop.min_days, pop.max_days, pop.sentenced_from,
                         pop.sentenced_before, types)

    def _ordered_steps(self, kind: str) -> tuple[_Step, ...]:
        steps = [_Step(i, j, c.effective_from, r.precedence, self._compile(c.population),
                       tuple(self._compile(e) for e in c.excludes))
                 for i, r in enumerate(self.rules) if r.kind == kind
                 for j, c in enumerate(r.clauses)]
        return tuple(sorted(steps, key=lambda s: (s.effective_from, s.precedence, s.rule_index)))

    def group_codes(self, offence_group: object, n: int) -> np.ndarray:
        """Each sentence's offence group as an index into `groups` (unknown -> OTHER_GROUP)."""
        values = np.asarray(offence_group, dtype=object)
        if values.ndim == 0:
            return np.full(n, self._group_index.get(values.item(), len(self.groups) - 1),
                           dtype=np.int64)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        lookup = np.array([self._group_index.get(u, len(self.groups) - 1) for u in uniques]
                          + [len(self.groups) - 1], dtype=np.int64)
        return lookup[codes]  # the NA sentinel -1 picks the last entry: OTHER_GROUP

    @staticmethod
    def type_codes(sentence_type: object, n: int) -> np.ndarray:
        """Each sentence's type as an index into SENTENCE_TYPES (None: standard determinate)."""
        if sentence_type is None:
            return np.full(n, _STANDARD, dtype=np.int64)
        values = np.asarray(sentence_type, dtype=object)
        if values.ndim == 0:
            values = np.full(n, values.item(), dtype=object)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        unknown = sorted(str(u) for u in uniques if u not in SENTENCE_TYPES)
        if unknown or (codes < 0).any():
            raise PolicyError(f"unknown sentence type {', '.join(map(repr, unknown or ['(missing)']))}; "
                              f"expected one of {', '.join(SENTENCE_TYPES)}")
        lookup = np.array([SENTENCE_TYPES.index(u) for u in uniques], dtype=np.int64)
        return lookup[codes]

    def remand_credit_days(self, sentence_day, length_days, offence_group, remand_days,
                           sentence_type=None) -> np.ndarray:
        """Days on remand credited against each sentence (int64), by the rule in force then."""
        sentence_day, length, remand = _int_arrays(sentence_day, length_days, remand_days)
        codes = self.group_codes(offence_group, len(sentence_day))
        types = self.type_codes(sentence_type, len(sentence_day))
        return self._credit(codes, sentence_day, length, remand, types)

    def _credit(self, codes, sentence_day, length, remand, types=None) -> np.ndarray:
        fraction = np.zeros(len(sentence_day))
        for step in self._steps["remand_credit"]:
            applies = step.mask(codes, length, sentence_day, types) & (
                sentence_day >= step.effective_from)
            fraction = np.where(applies, self._fractions[step.rule_index], fraction)
        return np.round(fraction * remand).astype(np.int64)

    def release(self, sentence_day, length_days, offence_group, remand_days=0,
                sentence_type=None) -> ReleaseOutcome:
        """Release day, governing rule and fraction for each custodial sentence.

        `sentence_day` and `length_days` are int64 arrays (day numbers as
        justice.sim.reference.day_number counts them; a month of sentence is 30.4375 days),
        `offence_group` an object array of offence-group names (or one name), `remand_days` the
        days each spent on remand for it (or a scalar), `sentence_type` an object array of
        SENTENCE_TYPES names (or one; None: all standard determinate). The length of an extended
        sentence is its custodial term, of a life sentence or IPP its minimum term. Vectorised;
        arrays broadcast together.
        """
        sentence_day, length, remand = _int_arrays(sentence_day, length_days, remand_days)
        n = len(sentence_day)
        codes = self.group_codes(offence_group, n)
        types = self.type_codes(sentence_type, n)
        credit = self._credit(codes, sentence_day, length, remand, types)
        no_rule = len(self.rules)
        rule_index = np.full(n, no_rule, dtype=np.int64)
        fraction = np.zeros(n)
        has = np.zeros(n, bool)
        effective = np.full(n, _NO_DATE, dtype=np.int64)
        for step in self._steps["release"]:
            covered = step.mask(codes, length, sentence_day, types)
            current = sentence_day + np.round(fraction * length).astype(np.int64) - credit
            takes_over = covered & has & (current >= step.effective_from)
            first = covered & ~has  # the earliest rule covering a sentence governs it until then
            changed = takes_over | first
            rule_index[changed] = step.rule_index
            fraction[changed] = self._fractions[step.rule_index]
            effective[takes_over] = step.effective_from
            has |= covered
        served = np.round(fraction * length).astype(np.int64)
        release_day = np.maximum(np.maximum(sentence_day + served - credit, effective), sentence_day)
        fraction[~has] = np.nan
        parole = self._parole[rule_index]
        auto = self._automatic[rule_index]
        automatic_day = np.where(parole, np.where(np.isnan(auto), NO_DAY, np.maximum(
            sentence_day + np.round(np.nan_to_num(auto) * length).astype(np.int64) - credit,
            release_day)), release_day)
        return ReleaseOutcome(release_day, self._names[rule_index], fraction, parole, automatic_day)

    def recall(self, recall_day, sentence_day, length_days, offence_group,
               fixed_term_suitable=True, rerelease_day=None, sentence_type=None) -> RecallOutcome:
        """The day a recalled person is back out, and whether the recall is fixed-term or standard.

        `recall_day` is the day of return to custody. `fixed_term_suitable` (bool, per recall or
        one for all) is the Secretary of State's judgement under s.255A that the records do not
        hold; a recall is fixed-term if a fixed_term_recall rule covering the sentence is in
        force on the recall day and the person is suitable. A standard recall lasts to the
        sentence end, or to `rerelease_day` (int64, per recall) if given and earlier.
        `length_days` here runs to the licence's end; `sentence_type` as for release.
        """
        recall_day, sentence_day, length = _int_arrays(recall_day, sentence_day, length_days)
        n = len(recall_day)
        codes = self.group_codes(offence_group, n)
        types = self.type_codes(sentence_type, n)
        sentence_end = sentence_day + length
        no_rule = len(self.rules)
        fixed_rule = np.full(n, no_rule, dtype=np.int64)
        fixed_days = np.zeros(n, dtype=np.int64)
        for step in self._steps["fixed_term_recall"]:
            applies = step.mask(codes, length, sentence_day, types) & (
                recall_day >= step.effective_from)
            fixed_rule = np.where(applies, step.rule_index, fixed_rule)
            days = np.zeros(n, dtype=np.int64)
            for band, band_days in self.rules[step.rule_index].recall_days:
                days = np.where(self._compile(band).mask(codes, length, sentence_day), band_days,
                                days)
            fixed_days = np.where(applies, days, fixed_days)
        standard_rule = np.full(n, no_rule, dtype=np.int64)
        for step in self._steps["standard_recall"]:
            covered = step.mask(codes, length, sentence_day, types)
            first = covered & (standard_rule == no_rule)
            standard_rule = np.where(first | (covered & (recall_day >= step.effective_from)),
                                     step.rule_index, standard_rule)
        suitable = np.broadcast_to(np.asarray(fixed_term_suitable, dtype=bool), (n,))
        fixed = (fixed_rule != no_rule) & suitable
        standard_out = sentence_end
        if rerelease_day is not None:
            rerelease = np.broadcast_to(np.asarray(rerelease_day, dtype=np.int64), (n,))
            standard_out = np.minimum(sentence_end, rerelease)
        release_day = np.where(fixed, np.minimum(recall_day + fixed_days, sentence_end),
                               standard_out)
        release_day = np.maximum(release_day, recall_day)
        return RecallOutcome(
            release_day=release_day,
            kind=np.where(fixed, "fixed_term", "standard").astype(object),
            rule=self._names[np.where(fixed, fixed_rule, standard_rule)],
            days_in_custody=release_day - recall_day,
        )


def _int_arrays(*values) -> list[np.ndarray]:
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in values))
    return [np.ascontiguousarray(a) for a in arrays]


def months_to_days(months) -> np.ndarray:
    """Sentence lengths in months as days, the simulator's way (round(months x 30.4375))."""
    return np.round(np.asarray(months, dtype=float) * MONTH_DAYS).astype(np.int64)


def load_release_rules(extra: Iterable[str | Path | Mapping] = (), without: Iterable[str] = ()
                       ) -> ReleaseRules:
    """The package's rule files, then each `extra` file in order, less the rules withdrawn.

    An extra file's `withdraw:` list removes rules loaded before it (the package's, or an earlier
    extra file's); `without` removes rules by name at the end. An extra item may be a path or an
    already-parsed mapping (a scenario's rules: `rules`, `withdraw`, `source`). Raises
    PolicyError for an invalid file, an unknown name to withdraw, a name defined twice, or a set
    of rules that overlap or leave a sentence without a release or standard recall rule.
    """
    files = [parse_rule_text(text, f"justice/policy/rules/{name}")
             for name, text in package_rule_files()]
    rules: list[Rule] = [r for f in files for r in f.rules]
    for i, item in enumerate(extra):
        if isinstance(item, Mapping):
            parsed = parse_rule_data(item, f"extra rules {i + 1}")
        else:
            parsed = read_rule_file(item)
        rules = _withdraw(rules, parsed.withdraw, parsed.file)
        for r in parsed.rules:
            clash = next((old for old in rules if old.name == r.name), None)
            if clash is not None:
                raise PolicyError(f"a rule of this name is already loaded from {clash.file}; "
                                  f"withdraw it first (withdraw: [{r.name}]) to replace it",
                                  file=r.file, rule=r.name)
            rules.append(r)
    rules = _withdraw(rules, tuple(without), "--without-rule")
    return ReleaseRules(rules)


@cache
def default_release_rules() -> ReleaseRules:
    """The package's rule files alone (loaded once per process)."""
    return load_release_rules()


def _withdraw(rules: list[Rule], names: Sequence[str], where: str) -> list[Rule]:
    loaded = {r.name for r in rules}
    for name in names:
        if name not in loaded:
            raise PolicyError(f"withdraw: no rule named {name!r} is loaded (rules: "
                              f"{', '.join(sorted(loaded))})", file=where)
    return [r for r in rules if r.name not in set(names)]


# ---- checks on a whole set of rules ----------------------------------------------------------

def _validate(rules: ReleaseRules) -> None:
    """Overlaps at one date and precedence, gaps in cover, and fixed-term day bands."""
    codes, length, sentence_day, types = _grid(rules)
    for kind, steps in rules._steps.items():
        for a_i, a in enumerate(steps):
            for b in steps[a_i + 1:]:
                if (a.effective_from, a.precedence) != (b.effective_from, b.precedence):
                    continue
                both = (a.mask(codes, length, sentence_day, types)
                        & b.mask(codes, length, sentence_day, types))
                if not both.any():
                    continue
                first, second = sorted((a, b), key=lambda s: (s.rule_index, s.clause_index))
                later, earlier = rules.rules[second.rule_index], rules.rules[first.rule_index]
                cell = _describe_cell(rules, codes, length, sentence_day, types,
                                      np.flatnonzero(both)[0])
                other = (f"its tranche {first.clause_index + 1}" if later is earlier
                         else f"rule {earlier.name!r} ({earlier.file})")
                raise PolicyError(
                    f"overlaps {other}: both cover {cell}; both come into force on "
                    f"{iso_date(a.effective_from)} with the same precedence ({a.precedence}); give "
                    "one a higher `precedence`, a different date, or narrower eligibility",
                    file=later.file, rule=later.name)
    for kind in ("release", "standard_recall"):
        steps = rules._steps[kind]
        if not steps:
            raise PolicyError(f"no {kind} rule is loaded; every sentence needs one (was it "
                              "withdrawn?)")
        covered = np.zeros(len(codes), bool)
        for step in steps:
            covered |= step.mask(codes, length, sentence_day, types)
        if not covered.all():
            cell = _describe_cell(rules, codes, length, sentence_day, types,
                                  np.flatnonzero(~covered)[0])
            raise PolicyError(f"no {kind} rule covers {cell}; every sentence needs one")
    lengths = np.unique(length)
    for r in rules.rules:
        if r.kind != "fixed_term_recall":
            continue
        count = np.zeros(len(lengths), np.int64)
        for band, _ in r.recall_days:
            count += rules._compile(band).mask(np.zeros(len(lengths), np.int64), lengths,
                                               np.zeros(len(lengths), np.int64))
        if (count != 1).any():
            bad = lengths[np.flatnonzero(count != 1)[0]]
            raise PolicyError(f"days bands must cover every sentence length exactly once; "
                              f"{'none covers' if count[count != 1][0] == 0 else 'several cover'}"
                              f" sentences of {bad / MONTH_DAYS:.1f} months", file=r.file,
                              rule=r.name)


def _all_populations(rules: ReleaseRules) -> list[Population]:
    pops = []
    for r in rules.rules:
        for c in r.clauses:
            pops.append(c.population)
            pops.extend(c.excludes)
        pops.extend(band for band, _ in r.recall_days)
    return pops


def _grid(rules: ReleaseRules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sentence for every distinct combination of offence group, length band and date band."""
    pops = _all_populations(rules)
    lengths = sorted({0} | {p.min_days for p in pops} | {p.max_days for p in pops
                                                          if p.max_days is not None})
    days = sorted({_NO_DATE} | {d for p in pops for d in (p.sentenced_from, p.sentenced_before)
                                if d is not None})
    codes, length, day, types = np.meshgrid(np.arange(len(rules.groups)), lengths, days,
                                            np.arange(len(SENTENCE_TYPES)), indexing="ij")
    return (codes.ravel(), length.ravel().astype(np.int64), day.ravel().astype(np.int64),
            types.ravel().astype(np.int64))


def _months(days: int) -> str:
    return f"{round(days / MONTH_DAYS, 1):g}"


def _describe_cell(rules: ReleaseRules, codes, length, sentence_day, types, i: int) -> str:
    lengths = np.unique(length)
    upper = lengths[lengths > length[i]]
    band = (f"sentences of {_months(length[i])} months or more" if not len(upper) else
            f"sentences from {_months(length[i])} to under {_months(upper[0])} months")
    days = np.unique(sentence_day)
    later = days[days > sentence_day[i]]
    when = "" if len(days) == 1 else (
        f", sentenced before {iso_date(later[0])}" if sentence_day[i] == _NO_DATE else
        f", sentenced from {iso_date(sentence_day[i])}" + (
            f" to before {iso_date(later[0])}" if len(later) else ""))
    kind = SENTENCE_TYPES[types[i]].replace("_", " ")
    return f"offence group {rules.groups[codes[i]]!r}, {band}{when} ({kind} sentences)"
