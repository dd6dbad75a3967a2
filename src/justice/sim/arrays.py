"""Small vectorised helpers on numpy arrays shared by the simulator's modules."""

from __future__ import annotations

import numpy as np


def composite(rec: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A sortable int64 key of (record, day) for searchsorted look-ups."""
    return np.asarray(rec, np.int64) * (1 << 32) + (np.asarray(day, np.int64) + (1 << 31))


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int array (np.unique is hash-based and slow on large ones)."""
    v = np.sort(values)
    return v[np.r_[True, v[1:] != v[:-1]]] if len(v) else v


def group_starts(sorted_groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) per group 0..n_groups-1 of an array sorted by group."""
    counts = np.bincount(sorted_groups, minlength=n_groups).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return starts, counts


def rank_within_runs(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of an already grouped `keys`."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    first = np.flatnonzero(start)
    return np.arange(n) - first[np.cumsum(start) - 1]
