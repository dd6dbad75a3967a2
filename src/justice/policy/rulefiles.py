"""Reading and checking rule files: YAML in, validated :class:`Rule` objects out.

Every check names the file, the rule and what is wrong (:class:`justice.errors.PolicyError`).
The format is documented in docs/policy-rules.md; the package's own files are in `rules/`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from justice import reference as ref
from justice.errors import PolicyError

MONTH_DAYS = 30.4375
"""Days in a month of sentence, the simulator's convention (365.25 / 12)."""

KINDS = ("release", "remand_credit", "fixed_term_recall", "standard_recall")
SENTENCE_TYPES = ("standard_determinate", "extended_determinate", "life", "ipp")
"""The sentence types a rule may name (`sentence_types:`). A rule's eligibility that names none
covers standard determinate sentences only: the rules written before sentence types existed are
about them. `life` and `ipp` are indeterminate: their length is the minimum term (tariff)."""
INDETERMINATE_TYPES = ("life", "ipp")
"""The sentence types with no fixed end (release only when the Parole Board directs it)."""
DEFAULT_SENTENCE_TYPES = frozenset({"standard_determinate"})
RELEASE_BY = ("automatic", "parole_board")
_FILE_KEYS = {"version", "description", "source", "rules", "withdraw"}
_RULE_KEYS = {"name", "kind", "effective_from", "fraction", "precedence", "eligibility", "tranches",
              "days", "source", "note", "release_by", "automatic_fraction"}
_POPULATION_KEYS = {"offence_groups", "sentence_months_at_least", "sentence_months_under",
                    "sentenced_from", "sentenced_before", "sentence_types"}
_SOURCE_KEYS = {"title", "provision", "url", "note"}
_EARLIEST = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class Population:
    """Sentences a rule covers: offence groups, a sentence-length range and a sentencing-date range.

    ``offence_groups`` None means every group (including groups the reference data does not
    know); lengths are in days, ``min_days`` inclusive and ``max_days`` exclusive; dates are day
    numbers (``justice.sim.reference.day_number``), ``sentenced_from`` inclusive and
    ``sentenced_before`` exclusive. None means unbounded. ``sentence_types`` None means every
    type (SENTENCE_TYPES); a rule's eligibility is given DEFAULT_SENTENCE_TYPES when it names none.
    """

    offence_groups: frozenset[str] | None = None
    min_days: int = 0
    max_days: int | None = None
    sentenced_from: int | None = None
    sentenced_before: int | None = None
    sentence_types: frozenset[str] | None = None

    def intersect(self, other: Population) -> Population:
        """The sentences both populations cover."""
        groups = (other.offence_groups if self.offence_groups is None else self.offence_groups
                  if other.offence_groups is None else self.offence_groups & other.offence_groups)
        types = (other.sentence_types if self.sentence_types is None else self.sentence_types
                 if other.sentence_types is None else self.sentence_types & other.sentence_types)
        return Population(groups, max(self.min_days, other.min_days),
                          _min_or_none(self.max_days, other.max_days),
                          _max_or_none(self.sentenced_from, other.sentenced_from),
                          _min_or_none(self.sentenced_before, other.sentenced_before), types)


def _min_or_none(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _max_or_none(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class Clause:
    """One effective-dated piece of a rule: the rule itself, or one of its tranches."""

    effective_from: int
    population: Population
    excludes: tuple[Population, ...]


@dataclass(frozen=True)
class Rule:
    """One named rule from a rule file, validated on its own (see docs/policy-rules.md)."""

    name: str
    kind: str
    file: str
    effective_from: int
    fraction: float | None
    precedence: int
    source: Mapping
    clauses: tuple[Clause, ...]
    recall_days: tuple[tuple[Population, int], ...] = ()
    """Fixed-term recall only: (sentence lengths, days back in custody) bands."""
    release_by: str = "automatic"
    """Release only: `automatic` (out on the day the fraction gives) or `parole_board` (the
    fraction gives the earliest day the Parole Board may direct release)."""
    automatic_fraction: float | None = None
    """Release by the Parole Board only: the point of the sentence at which release is automatic
    if the Board has not directed it before (None: never automatic, as for life and IPP)."""


@dataclass(frozen=True)
class RuleFile:
    """A parsed rule file: its rules and the rule names it withdraws from those loaded before it."""

    file: str
    rules: tuple[Rule, ...]
    withdraw: tuple[str, ...]


def iso_date(day: int) -> str:
    """A day number as an ISO date."""
    return (ref.EPOCH + dt.timedelta(days=int(day))).isoformat()


def known_offence_groups() -> frozenset[str]:
    """The offence groups of the offence catalogue (justice.reference)."""
    return frozenset(str(g) for g in ref.offences().group)


def package_rule_files() -> list[tuple[str, str]]:
    """(name, text) of every rule file shipped in justice/policy/rules, by name."""
    folder = resources.files("justice.policy").joinpath("rules")
    return sorted((f.name, f.read_text("utf-8")) for f in folder.iterdir()
                  if f.name.endswith((".yaml", ".yml")))


def read_rule_file(path: str | Path) -> RuleFile:
    """Parse and check one rule file from disk."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot be read ({exc.strerror or exc})", file=str(path)) from exc
    return parse_rule_text(text, str(path))


def parse_rule_text(text: str, file: str) -> RuleFile:
    """Parse and check the YAML text of a rule file; `file` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        # PyYAML reads 2026-13-01 as a timestamp and fails with a bare ValueError.
        raise PolicyError(f"not valid YAML ({exc})", file=file) from exc
    return parse_rule_data(data, file)


def parse_rule_data(data: object, file: str) -> RuleFile:
    """Check an already-parsed rule file (a mapping with `source`, `rules`, `withdraw`)."""
    if not isinstance(data, Mapping):
        raise PolicyError("expected a mapping with `rules` (and `source`, `withdraw`) at the top",
                          file=file)
    _unknown_keys(data, _FILE_KEYS, file, None, "at the top level")
    withdraw = data.get("withdraw") or []
    if not isinstance(withdraw, list) or not all(isinstance(n, str) for n in withdraw):
        raise PolicyError("`withdraw` must be a list of rule names", file=file)
    rules_data = data.get("rules") or []
    if not isinstance(rules_data, list):
        raise PolicyError("`rules` must be a list of rules", file=file)
    if not rules_data and not withdraw:
        raise PolicyError("no `rules` and nothing to `withdraw`", file=file)
    file_source = data.get("source")
    if file_source is not None:
        _check_source(file_source, file, None)
    groups = known_offence_groups()
    rules = []
    for i, raw in enumerate(rules_data):
        rules.append(_parse_rule(raw, i, file, file_source, groups))
    names = [r.name for r in rules]
    for name in names:
        if names.count(name) > 1:
            raise PolicyError("the name is used by more than one rule in this file", file=file,
                              rule=name)
    return RuleFile(file, tuple(rules), tuple(withdraw))


def _unknown_keys(data: Mapping, allowed: set[str], file: str, rule: str | None, where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise PolicyError(f"unknown key {', '.join(map(repr, unknown))} {where}; expected one of "
                          f"{', '.join(sorted(allowed))}", file=file, rule=rule)


def _check_source(source: object, file: str, rule: str | None) -> None:
    if not isinstance(source, Mapping) or not str(source.get("title") or "").strip():
        raise PolicyError("`source` must be a mapping with at least a `title` (the Act or "
                          "instrument; `provision` and `url` where known)", file=file, rule=rule)
    _unknown_keys(source, _SOURCE_KEYS, file, rule, "in `source`")
    url = source.get("url")
    if url is not None and not str(url).startswith(("https://", "http://")):
        raise PolicyError(f"source url {url!r} is not a web address", file=file, rule=rule)


def _date(value: object, what: str, file: str, rule: str) -> int:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, dt.date):
        raise PolicyError(f"{what} {value!r} is not a date (YYYY-MM-DD)", file=file, rule=rule)
    if value < _EARLIEST:
        raise PolicyError(f"{what} {value} is before {_EARLIEST}", file=file, rule=rule)
    return ref.day_number(value)


def _months(value: object, what: str, file: str, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PolicyError(f"{what} {value!r} must be a number of months, 0 or more", file=file,
                          rule=rule)
    return round(value * MONTH_DAYS)


def _population(data: object, file: str, rule: str, where: str, groups: frozenset[str],
                extra_keys: set[str] = frozenset()) -> Population:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where} must be a mapping", file=file, rule=rule)
    _unknown_keys(data, _POPULATION_KEYS | extra_keys, file, rule, f"in {where}")
    offence_groups = None
    if "offence_groups" in data:
        named = data["offence_groups"]
        if not isinstance(named, list) or not named or not all(isinstance(g, str) for g in named):
            raise PolicyError(f"{where}: offence_groups must be a non-empty list of offence group "
                              "names", file=file, rule=rule)
        unknown = sorted(set(named) - groups)
        if unknown:
            raise PolicyError(
                f"{where}: unknown offence group {', '.join(map(repr, unknown))}; the offence "
                f"reference (sim/reference/offences.csv) has {', '.join(sorted(groups))}",
                file=file, rule=rule)
        offence_groups = frozenset(named)
    low = _months(data["sentence_months_at_least"], f"{where}: sentence_months_at_least", file,
                  rule) if "sentence_months_at_least" in data else 0
    high = _months(data["sentence_months_under"], f"{where}: sentence_months_under", file,
                   rule) if "sentence_months_under" in data else None
    if high is not None and high <= low:
        raise PolicyError(f"{where}: sentence_months_under must be more than "
                          "sentence_months_at_least", file=file, rule=rule)
    since = _date(data["sentenced_from"], f"{where}: sentenced_from", file,
                  rule) if "sentenced_from" in data else None
    before = _date(data["sentenced_before"], f"{where}: sentenced_before", file,
                   rule) if "sentenced_before" in data else None
    if since is not None and before is not None and before <= since:
        raise PolicyError(f"{where}: dates out of order: sentenced_before must be after "
                          "sentenced_from", file=file, rule=rule)
    types = None
    if "sentence_types" in data:
        named = data["sentence_types"]
        if not isinstance(named, list) or not named or not all(isinstance(t, str) for t in named):
            raise PolicyError(f"{where}: sentence_types must be a non-empty list of sentence "
                              f"types ({', '.join(SENTENCE_TYPES)})", file=file, rule=rule)
        unknown = sorted(set(named) - set(SENTENCE_TYPES))
        if unknown:
            raise PolicyError(f"{where}: unknown sentence type {', '.join(map(repr, unknown))}; "
                              f"expected one of {', '.join(SENTENCE_TYPES)}", file=file, rule=rule)
        types = frozenset(named)
    return Population(offence_groups, low, high, since, before, types)


def _parse_rule(raw: object, index: int, file: str, file_source: object,
                groups: frozenset[str]) -> Rule:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"rule {index + 1} must be a mapping", file=file)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"rule {index + 1} has no `name`", file=file)
    _unknown_keys(raw, _RULE_KEYS, file, name, "in the rule")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise PolicyError(f"kind {kind!r} must be one of {', '.join(KINDS)}", file=file, rule=name)
    source = raw.get("source", file_source)
    if source is None:
        raise PolicyError("no legal `source` (give one for the file or for the rule)", file=file,
                          rule=name)
    _check_source(source, file, name)
    if "effective_from" not in raw:
        raise PolicyError("no `effective_from` date", file=file, rule=name)
    effective_from = _date(raw["effective_from"], "effective_from", file, name)
    precedence = raw.get("precedence", 0)
    if isinstance(precedence, bool) or not isinstance(precedence, int):
        raise PolicyError(f"precedence {precedence!r} must be a whole number", file=file, rule=name)

    fraction = None
    if kind in ("release", "remand_credit"):
        if "fraction" not in raw:
            raise PolicyError(f"a {kind} rule needs a `fraction`", file=file, rule=name)
        fraction = raw["fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not (
                0 < fraction <= 1):
            raise PolicyError(f"fraction {fraction!r} must be in (0, 1]", file=file, rule=name)
        fraction = float(fraction)
    elif "fraction" in raw:
        raise PolicyError(f"a {kind} rule takes no `fraction`", file=file, rule=name)
    release_by = raw.get("release_by", "automatic")
    if "release_by" in raw and kind != "release":
        raise PolicyError(f"a {kind} rule takes no `release_by`", file=file, rule=name)
    if release_by not in RELEASE_BY:
        raise PolicyError(f"release_by {release_by!r} must be one of {', '.join(RELEASE_BY)}",
                          file=file, rule=name)
    automatic = raw.get("automatic_fraction")
    if automatic is not None:
        if release_by != "parole_board":
            raise PolicyError("`automatic_fraction` is for rules with release_by: parole_board",
                              file=file, rule=name)
        if isinstance(automatic, bool) or not isinstance(automatic, int | float) or not (
                fraction < automatic <= 1):
            raise PolicyError(f"automatic_fraction {automatic!r} must be more than `fraction` "
                              "and at most 1", file=file, rule=name)
        automatic = float(automatic)

    elig = raw.get("eligibility") or {}
    population = _population(elig, file, name, "eligibility", groups, {"exclude"})
    if population.sentence_types is None:
        population = Population(population.offence_groups, population.min_days,
                                population.max_days, population.sentenced_from,
                                population.sentenced_before, DEFAULT_SENTENCE_TYPES)
    excludes_raw = elig.get("exclude") or []
    if not isinstance(excludes_raw, list):
        raise PolicyError("eligibility: exclude must be a list of populations", file=file, rule=name)
    excludes = tuple(_population(e, file, name, f"eligibility: exclude {i + 1}", groups)
                     for i, e in enumerate(excludes_raw))

    tranches_raw = raw.get("tranches") or []
    if not isinstance(tranches_raw, list):
        raise PolicyError("tranches must be a list", file=file, rule=name)
    clauses = []
    previous = effective_from
    for i, t in enumerate(tranches_raw):
        where = f"tranche {i + 1}"
        if not isinstance(t, Mapping) or "from" not in t:
            raise PolicyError(f"{where} needs a `from` date", file=file, rule=name)
        start = _date(t["from"], f"{where}: from", file, name)
        if start < previous:
            before = "the rule's effective_from" if i == 0 else f"tranche {i}"
            raise PolicyError(f"dates out of order: {where} starts {iso_date(start)}, before "
                              f"{before} ({iso_date(previous)})", file=file, rule=name)
        previous = start
        narrowed = population.intersect(_population(t, file, name, where, groups, {"from"}))
        clauses.append(Clause(start, narrowed, excludes))
    if not clauses:
        clauses.append(Clause(effective_from, population, excludes))

    recall_days: tuple[tuple[Population, int], ...] = ()
    if kind == "fixed_term_recall":
        bands = raw.get("days")
        if not isinstance(bands, list) or not bands:
            raise PolicyError("a fixed_term_recall rule needs `days`: a list of sentence-length "
                              "bands, each with `days`", file=file, rule=name)
        parsed = []
        for i, band in enumerate(bands):
            where = f"days band {i + 1}"
            pop = _population(band, file, name, where, groups, {"days"})
            days = band.get("days")
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise PolicyError(f"{where}: days {days!r} must be a whole number, 1 or more",
                                  file=file, rule=name)
            if pop.offence_groups is not None or pop.sentenced_from is not None or (
                    pop.sentenced_before is not None) or pop.sentence_types is not None:
                raise PolicyError(f"{where}: bands are by sentence length only", file=file,
                                  rule=name)
            parsed.append((pop, days))
        recall_days = tuple(parsed)
    elif "days" in raw:
        raise PolicyError(f"a {kind} rule takes no `days`", file=file, rule=name)
    return Rule(name, kind, file, effective_from, fraction, precedence, source, tuple(clauses),
                recall_days, release_by, automatic)
