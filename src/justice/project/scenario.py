"""Scenarios: what a policy or volume change alters, as a small YAML file.

Example (every key optional)::

    name: sds45                     # defaults to the file's name
    description: Release at 45% of sentences under four years from March 2026
    from: 2026-03-01                # first day of the volume, sentence and recall changes
    rules:
      add: [sds45_rule.yaml]        # release-rule files (justice.policy format), relative paths
      withdraw: [sds40]             # rules taken away, by name
    volumes:
      charges: 1.10                 # x receptions from court (remand and sentenced)
      court_sitting_capacity: 1.05  # x sentenced receptions, remand time to outcome / this
      remand_rate: 0.90             # x remand receptions
    sentence_lengths:
      stretch: 1.10                 # x lengths of sentences passed from `from`
    recalls:
      rate: 1.0                     # x the chance a licence ends in a recall
      time_on_recall: 1.0           # x days back in custody on recall

Rule files carry their own effective dates, so `from` does not move them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from justice.errors import ConfigError


class ScenarioError(ConfigError):
    """A scenario file cannot be used: unreadable, an unknown key, a bad value, a date outside
    the data. The message names the file and the key."""


SECTIONS: dict[str, tuple[str, ...]] = {
    "volumes": ("charges", "court_sitting_capacity", "remand_rate"),
    "sentence_lengths": ("stretch",),
    "recalls": ("rate", "time_on_recall"),
    "rules": ("add", "withdraw"),
}
TOP_LEVEL = ("name", "description", "from", *SECTIONS)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One scenario: a name, the rule changes and the multipliers, and from when they apply.

    Example::

        Scenario(name="more charges", start=dt.date(2026, 3, 1), charges=1.1)
    """

    name: str
    """Short name shown in tables and charts."""

    description: str = ""
    """One line saying what the scenario changes."""

    start: dt.date | None = None
    """First day of the volume, sentence-length and recall changes (None: the origin)."""

    add_rules: tuple[Path, ...] = ()
    """Release-rule files added to the package's rules."""

    withdraw_rules: tuple[str, ...] = ()
    """Names of release rules withdrawn."""

    charges: float = 1.0
    """Multiplier on receptions from court (remand and sentenced)."""

    court_sitting_capacity: float = 1.0
    """Multiplier on court throughput: sentenced receptions x it, remand time to outcome / it."""

    remand_rate: float = 1.0
    """Multiplier on remand receptions."""

    stretch: float = 1.0
    """Multiplier on the lengths of custodial sentences passed from `start`."""

    recall_rate: float = 1.0
    """Multiplier on the chance that a licence ends in a recall (recalls from `start`)."""

    time_on_recall: float = 1.0
    """Multiplier on the days a recalled person spends back in custody."""

    source: Path | None = field(default=None, compare=False)
    """The file the scenario was read from, if any (named in errors)."""

    @property
    def changes_rules(self) -> bool:
        """Whether the scenario adds or withdraws release rules."""
        return bool(self.add_rules or self.withdraw_rules)


BASELINE = Scenario(name="baseline", description="The rules in force and recent flows carried on")


def load_scenario(path: Path | str) -> Scenario:
    """Read and check one scenario file; a ScenarioError names the file and the key at fault."""
    path = Path(path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{where}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{where}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of keys ({', '.join(TOP_LEVEL)}) "
                            "at the top level")
    for key in data:
        if key not in TOP_LEVEL:
            raise ScenarioError(f"{where}: unknown key {key!r} (allowed: {', '.join(TOP_LEVEL)})")
    values: dict = {"name": str(data.get("name") or path.stem), "source": path,
                    "description": str(data.get("description") or "")}
    if "from" in data:
        values["start"] = _date(data["from"], where, "from")
    for section, keys in SECTIONS.items():
        body = data.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ScenarioError(f"{where}: {section} must be a mapping of {', '.join(keys)}")
        for key in body:
            if key not in keys:
                raise ScenarioError(f"{where}: unknown key {section}.{key} "
                                    f"(allowed: {', '.join(keys)})")
        if section == "rules":
            values["add_rules"] = tuple(_rule_file(p, path, where)
                                        for p in _strings(body.get("add"), where, "rules.add"))
            values["withdraw_rules"] = tuple(_strings(body.get("withdraw"), where, "rules.withdraw"))
            continue
        for key, value in body.items():
            name = {"rate": "recall_rate"}.get(key, key)
            values[name] = _multiplier(value, where, f"{section}.{key}")
    return Scenario(**values)


def _date(value, where: str, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def _multiplier(value, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where}: {key} {value!r} must be a number (a multiplier, 1 = no change)")
    if not 0 < value <= 10:
        raise ScenarioError(f"{where}: {key} {value} must be more than 0 and at most 10 "
                            "(a multiplier, 1 = no change)")
    return float(value)


def _strings(value, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ScenarioError(f"{where}: {key} must be a list of names")
    return list(value)


def _rule_file(name: str, scenario_path: Path, where: str) -> Path:
    path = Path(name)
    if not path.is_absolute():
        path = scenario_path.parent / path
    if not path.is_file():
        raise ScenarioError(f"{where}: rules.add names {name!r}, but there is no such file "
                            f"({path})")
    return path
