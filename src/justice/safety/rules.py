"""The safety rules as data: `rules.yaml` read and checked into typed objects.

`load_rules()` reads the packaged file once; `parse_rules(data, where)` checks any mapping (tests
use it for variants). A wrong file fails with a ConfigError naming the rule and the key.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from justice.errors import ConfigError

SEVERITIES = ("stop", "warning")
RESTRICTIONS = ("CELL", "LANDING", "WING")
# What each kind of cell-move rule needs besides id, kind, severity, title and wording.
MOVE_RULE_KINDS: dict[str, tuple[str, ...]] = {
    "capacity": (),
    "non_association": ("restriction",),
    "csra_shared_cell": ("level",),
    "alert_with_cellmate_sex": ("alerts", "cellmate_sex"),
    "alert_shared_cell": ("alerts",),
    "flag_shared_cell": ("flags",),
    "incident_between": ("incident_types",),
    "flag_alone": ("flags",),
    "flag_new_cellmate": ("flags",),
}
TAG_COLOURS = (
    "grey",
    "green",
    "turquoise",
    "blue",
    "light-blue",
    "purple",
    "pink",
    "red",
    "orange",
    "yellow",
)


@dataclass(frozen=True)
class IncidentRole:
    """An incident type and the person's role in it (SELF_HARM as SELF_HARMER)."""

    type: str
    role: str


@dataclass(frozen=True)
class FlagRule:
    """A safety flag shown as a tag: what it reads and how it is worded."""

    name: str
    label: str
    colour: str
    hint: str
    alerts: tuple[str, ...] = ()
    alert_scope: str = "person"  # current custody spell, or any record of the person
    alert_status: str = "active"  # active alerts only, or any
    incidents: tuple[IncidentRole, ...] = ()
    violent_convictions: bool = False
    csra: str | None = None

    @functools.cached_property
    def incident_keys(self) -> frozenset[tuple[str, str]]:
        """The (incident type, role) pairs the flag reads."""
        return frozenset((i.type, i.role) for i in self.incidents)


@dataclass(frozen=True)
class MoveRule:
    """A cell-move rule: a kind of conflict, its parameters, severity and wording."""

    id: str
    kind: str
    severity: str
    title: str
    wording: str
    restriction: str | None = None
    level: str | None = None
    alerts: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    cellmate_sex: str | None = None
    incident_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rules:
    """The whole rule set: version, flags, incident windows and cell-move rules."""

    version: str
    effective_from: dt.date
    flags: dict[str, FlagRule]
    incident_windows: tuple[int, ...]
    move_rules: tuple[MoveRule, ...]


def _need(mapping: dict, key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise ConfigError(f"{where}: '{key}' is missing")
    return mapping[key]


def _codes(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: must be a list of codes, got {value!r}")
    return tuple(value)


def _flag(name: str, spec: Any, where: str) -> FlagRule:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: must be a mapping")
    known = {
        "label",
        "colour",
        "hint",
        "alerts",
        "alert_scope",
        "alert_status",
        "incidents",
        "violent_convictions",
        "csra",
    }
    if unknown := sorted(set(spec) - known):
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    colour = _need(spec, "colour", where)
    if colour not in TAG_COLOURS:
        raise ConfigError(
            f"{where}: colour {colour!r} is not a GOV.UK tag colour ({', '.join(TAG_COLOURS)})"
        )
    scope = spec.get("alert_scope", "person")
    status = spec.get("alert_status", "active")
    if scope not in ("current", "person"):
        raise ConfigError(f"{where}: alert_scope must be current or person, got {scope!r}")
    if status not in ("active", "any"):
        raise ConfigError(f"{where}: alert_status must be active or any, got {status!r}")
    incidents = []
    for i, item in enumerate(spec.get("incidents") or []):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}.incidents[{i}]: must be a mapping with type and role")
        incidents.append(
            IncidentRole(
                _need(item, "type", f"{where}.incidents[{i}]"),
                _need(item, "role", f"{where}.incidents[{i}]"),
            )
        )
    return FlagRule(
        name=name,
        label=_need(spec, "label", where),
        colour=colour,
        hint=_need(spec, "hint", where),
        alerts=_codes(spec.get("alerts", []), f"{where}.alerts"),
        alert_scope=scope,
        alert_status=status,
        incidents=tuple(incidents),
        violent_convictions=bool(spec.get("violent_convictions", False)),
        csra=spec.get("csra"),
    )


def _move_rule(spec: Any, where: str, flags: dict[str, FlagRule]) -> MoveRule:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: must be a mapping")
    rule_id = _need(spec, "id", where)
    where = f"{where} ({rule_id})"
    kind = _need(spec, "kind", where)
    if kind not in MOVE_RULE_KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r} (known: {', '.join(MOVE_RULE_KINDS)})")
    severity = _need(spec, "severity", where)
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be stop or warning, got {severity!r}")
    for key in MOVE_RULE_KINDS[kind]:
        _need(spec, key, where)
    known = {"id", "kind", "severity", "title", "wording", *MOVE_RULE_KINDS[kind]}
    if unknown := sorted(set(spec) - known):
        raise ConfigError(f"{where}: key(s) {', '.join(unknown)} do not apply to kind {kind}")
    restriction = spec.get("restriction")
    if restriction is not None and restriction not in RESTRICTIONS:
        raise ConfigError(f"{where}: restriction must be one of {', '.join(RESTRICTIONS)}")
    rule_flags = _codes(spec["flags"], f"{where}.flags") if "flags" in spec else ()
    if missing := [f for f in rule_flags if f not in flags]:
        raise ConfigError(f"{where}: flag(s) {', '.join(missing)} are not defined under flags")
    return MoveRule(
        id=rule_id,
        kind=kind,
        severity=severity,
        title=_need(spec, "title", where),
        wording=" ".join(str(_need(spec, "wording", where)).split()),
        restriction=restriction,
        level=spec.get("level"),
        alerts=_codes(spec["alerts"], f"{where}.alerts") if "alerts" in spec else (),
        flags=rule_flags,
        cellmate_sex=spec.get("cellmate_sex"),
        incident_types=(
            _codes(spec["incident_types"], f"{where}.incident_types")
            if "incident_types" in spec
            else ()
        ),
    )


def parse_rules(data: Any, where: str = "rules.yaml") -> Rules:
    """Rules from the mapping `data` (as read from YAML); ConfigError naming `where` if wrong."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with version, flags and cell_move_rules")
    version = str(_need(data, "version", where))
    effective = _need(data, "effective_from", where)
    if not isinstance(effective, dt.date):
        raise ConfigError(f"{where}: effective_from must be a date (YYYY-MM-DD), got {effective!r}")
    raw_flags = _need(data, "flags", where)
    if not isinstance(raw_flags, dict):
        raise ConfigError(f"{where}: flags must be a mapping of flag name to its definition")
    flags = {name: _flag(name, spec, f"{where}: flags.{name}") for name, spec in raw_flags.items()}
    windows = data.get("incident_windows", [30, 90])
    if not (
        isinstance(windows, list) and windows and all(isinstance(w, int) and w > 0 for w in windows)
    ):
        raise ConfigError(f"{where}: incident_windows must be a list of whole numbers of days")
    raw_rules = _need(data, "cell_move_rules", where)
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{where}: cell_move_rules must be a list")
    rules = tuple(
        _move_rule(spec, f"{where}: cell_move_rules[{i}]", flags)
        for i, spec in enumerate(raw_rules)
    )
    ids = [r.id for r in rules]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise ConfigError(f"{where}: rule id(s) used twice: {', '.join(dupes)}")
    return Rules(
        version=version,
        effective_from=effective,
        flags=flags,
        incident_windows=tuple(windows),
        move_rules=rules,
    )


@functools.cache
def load_rules() -> Rules:
    """The packaged rules (`justice/safety/rules.yaml`), read and checked once."""
    text = resources.files("justice.safety").joinpath("rules.yaml").read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"justice/safety/rules.yaml is not valid YAML: {exc}") from None
    return parse_rules(data, "justice/safety/rules.yaml")


@functools.cache
def alert_descriptions() -> dict[str, str]:
    """Alert code -> description: the platform's alert code seed, then the prison system's own
    code table for codes the seed does not list yet."""
    import csv

    out: dict[str, str] = {}
    for package, parts in (
        ("justice.sim", ("reference", "alert_codes.csv")),
        ("justice.transform", ("seeds", "alert_codes.csv")),
    ):
        try:
            text = resources.files(package).joinpath(*parts).read_text("utf-8")
        except (FileNotFoundError, ModuleNotFoundError):
            continue
        out.update(
            {row["alert_code"]: row["description"] for row in csv.DictReader(text.splitlines())}
        )
    return out
