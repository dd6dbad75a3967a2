"""Reference data shared by the simulator, the policy rules and the pipeline: the day numbering
the simulator and the rule files count in, and the offence catalogue (its codes, groups and modes
of trial). The files live with the simulator's other reference data (sim/reference/); this module
sits below both the simulator and justice.policy, so neither imports the other's way round."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from justice.errors import ConfigError

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date | str) -> int:
    """Days since 1970-01-01, the simulator's internal date."""
    if isinstance(d, str):
        d = dt.date.fromisoformat(d)
    return (d - EPOCH).days


def _reference_text(name: str) -> str:
    return resources.files("justice.sim").joinpath("reference", name).read_text("utf-8")


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
