"""Reference data of the simulated world: offences, policy rules and behavioural rates.

All of it lives in versioned files under `reference/`, so a policy change (new magistrates'
sentencing powers) is a data edit, not a code change. Release and recall rules live in the
policy package's rule files (justice.policy, docs/policy-rules.md).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from justice.errors import ConfigError

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date | str) -> int:
    """Days since 1970-01-01, the simulator's internal date."""
    if isinstance(d, str):
        d = dt.date.fromisoformat(d)
    return (d - EPOCH).days


def _reference_text(name: str) -> str:
    return resources.files("justice.sim").joinpath("reference", name).read_text("utf-8")


def _load_yaml(name: str) -> dict:
    try:
        data = yaml.safe_load(_reference_text(name))
    except yaml.YAMLError as exc:
        raise ConfigError(f"reference/{name}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"reference/{name}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class OffenceTable:
    """The offence codes the simulator draws from, as parallel arrays (row i is one offence)."""

    code: np.ndarray
    description: np.ndarray
    group: np.ndarray
    mode_of_trial: np.ndarray
    max_penalty_months: np.ndarray
    severity: np.ndarray
    recordable: np.ndarray
    crown_custody_median_months: np.ndarray
    weight_low_risk: np.ndarray
    weight_high_risk: np.ndarray

    def __len__(self) -> int:
        return len(self.code)


_MODES = {"summary", "either_way", "indictable_only"}


@cache
def offences() -> OffenceTable:
    """The offence reference table (`reference/offences.csv`), validated."""
    rows = list(csv.DictReader(_reference_text("offences.csv").splitlines()))
    for line, row in enumerate(rows, start=2):
        if row["mode_of_trial"] not in _MODES:
            raise ConfigError(
                f"reference/offences.csv line {line}: mode_of_trial {row['mode_of_trial']!r} "
                f"is not one of {sorted(_MODES)}"
            )
    col = lambda k, t=object: np.array([t(r[k]) if t is not object else r[k] for r in rows],
                                       dtype=t if t is not object else object)
    return OffenceTable(
        code=col("offence_code"),
        description=col("description"),
        group=col("offence_group"),
        mode_of_trial=col("mode_of_trial"),
        max_penalty_months=col("max_penalty_months", int),
        severity=col("severity", int),
        recordable=np.array([r["recordable"] == "true" for r in rows]),
        crown_custody_median_months=col("crown_custody_median_months", float),
        weight_low_risk=col("weight_low_risk", float),
        weight_high_risk=col("weight_high_risk", float),
    )


def _deep_merge(base: dict, override: dict, where: str = "") -> dict:
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            raise ConfigError(f"world file: unknown key {where}{key!r}; see reference/world.yaml")
        if isinstance(value, dict) and isinstance(base[key], dict):
            out[key] = _deep_merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def world(override_file: str | Path | None = None) -> dict:
    """Behavioural rates (`reference/world.yaml`), with an optional override file merged in."""
    base = _load_yaml("world.yaml")
    if override_file is None:
        return base
    path = Path(override_file)
    try:
        override = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"world file {path}: cannot be read ({exc})") from exc
    if not isinstance(override, dict):
        raise ConfigError(f"world file {path}: expected a mapping at the top level")
    return _deep_merge(base, override)


@cache
def magistrates_max_custody() -> tuple[np.ndarray, np.ndarray]:
    """(effective_from day numbers, months) of magistrates' maximum custody per offence."""
    data = _load_yaml("sentencing_powers.yaml")["magistrates_max_custody_months"]
    days = np.array([day_number(str(r["effective_from"])) for r in data])
    months = np.array([float(r["months"]) for r in data])
    order = np.argsort(days)
    return days[order], months[order]


def effective_value(days: np.ndarray, table_days: np.ndarray, table_values: np.ndarray) -> np.ndarray:
    """The value in force on each day of `days`, from an effective-dated table."""
    idx = np.searchsorted(table_days, days, side="right") - 1
    return table_values[np.clip(idx, 0, len(table_values) - 1)]


def piecewise_linear(days: np.ndarray, points: list) -> np.ndarray:
    """Interpolate a [[date, value], ...] series from world.yaml at each day."""
    xs = np.array([day_number(str(p[0])) for p in points], dtype=float)
    ys = np.array([float(p[1]) for p in points])
    return np.interp(days.astype(float), xs, ys)
