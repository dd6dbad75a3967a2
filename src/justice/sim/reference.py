"""Reference data of the simulated world: offences, policy rules and behavioural rates.

All of it lives in versioned files under `reference/`, so a policy change (new magistrates'
sentencing powers) is a data edit, not a code change. Release and recall rules live in the
policy package's rule files (justice.policy, docs/policy-rules.md).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from justice.errors import ConfigError
from justice.reference import EPOCH, OffenceTable, day_number, offences  # noqa: F401 - re-exported


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
