"""Counting the simulated people on each month's day, and the tidy tables made from the counts.

A person counts on a day if received on or before it and released after it (released on the day
means out that day), as marts.prison_population counts prisoner-days. Counts are per repetition;
tables give the mean and the 95% interval across repetitions (2.5th and 97.5th percentiles).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .engine import CASE_TYPES, SENTENCE_BANDS, SEXES, Run

LOWER, UPPER = 2.5, 97.5


def levels(establishments: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each breakdown and its levels, in table order."""
    return {"total": ("all",), "case_type": CASE_TYPES, "sentence_band": SENTENCE_BANDS,
            "sex": SEXES, "establishment": establishments}


def count(run: Run, snapshots: np.ndarray, reps: int,
          establishments: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Population on each snapshot day by breakdown: {breakdown: array (reps, levels, days)}."""
    seg = run.segments
    first = np.searchsorted(snapshots, seg.start, side="left")  # first day counted
    stop = np.searchsorted(snapshots, seg.end, side="left")     # first day no longer counted
    m = len(snapshots)
    codes = {"total": np.zeros(len(seg.rep), np.int64), "case_type": seg.case_type,
             "sentence_band": seg.band, "sex": seg.sex, "establishment": seg.establishment}
    out = {}
    for name, values in levels(establishments).items():
        n_levels = len(values)
        base = (seg.rep * n_levels + codes[name]) * (m + 1)
        size = reps * n_levels * (m + 1)
        change = (np.bincount(base + first, minlength=size)
                  - np.bincount(base + stop, minlength=size)).reshape(reps, n_levels, m + 1)
        out[name] = np.cumsum(change, axis=2)[:, :, :m]
    return out


def flows(run: Run, snapshots: np.ndarray, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """(receptions, releases) in each month up to each snapshot day: arrays (reps, days); the
    first column (the origin) is zero."""
    p = run.people
    m = len(snapshots)
    after = p.entry > snapshots[0]
    rec = np.bincount(p.rep[after] * (m + 1) + np.searchsorted(snapshots, p.entry[after]),
                      minlength=reps * (m + 1)).reshape(reps, m + 1)[:, :m]
    out = p.exit > snapshots[0]
    rel = np.bincount(p.rep[out] * (m + 1) + np.searchsorted(snapshots, p.exit[out]),
                      minlength=reps * (m + 1)).reshape(reps, m + 1)[:, :m]
    return rec, rel


def summarise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lower, upper) over the first axis (repetitions)."""
    lower, upper = np.percentile(values, [LOWER, UPPER], axis=0)
    return values.mean(axis=0), lower, upper


def tidy(counts: dict[str, np.ndarray], establishments: tuple[str, ...], dates: list,
         scenario: str) -> pd.DataFrame:
    """One row per month, breakdown and level: mean, lower and upper."""
    frames = []
    for name, values in levels(establishments).items():
        mean, lower, upper = summarise(counts[name])
        n_levels, m = mean.shape
        frames.append(pd.DataFrame({
            "month": np.tile(np.arange(m), n_levels),
            "date": np.tile(np.array(dates, dtype="datetime64[D]"), n_levels),
            "scenario": scenario,
            "breakdown": name,
            "level": np.repeat(np.array(values, dtype=object), m),
            "mean": mean.ravel().round(1),
            "lower": lower.ravel().round(1),
            "upper": upper.ravel().round(1),
        }))
    return pd.concat(frames, ignore_index=True)
