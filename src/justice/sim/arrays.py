"""Small vectorised helpers on numpy arrays shared by the simulator's modules."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


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


# ---- keyed random draws (common random numbers) -----------------------------------------------
# A draw is a hash of (key, call number) rather than the next number of one shared sequence: a
# person's k-th episode, or a spell, draws the same numbers whatever else is in the batch. Two
# same-seed worlds that differ in one policy then stay identical except downstream of the people
# the policy touches (a sequential stream shifts every later draw once one batch changes size).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective, well-scrambled uint64 hash, element by element."""
    x = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def derive_keys(keys: np.ndarray, index: np.ndarray | int) -> np.ndarray:
    """Child keys: one for each (key, index), e.g. a person's k-th episode or an offence's n-th."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(keys, np.uint64) + (np.asarray(index, np.uint64) + np.uint64(1)) * _GOLDEN)


class KeyedRandom:
    """Draws for the rows of a batch, each row's draws a function of its key and the call number.

    The subset of numpy's Generator API the simulator uses, always one value a row (`size` must
    be the number of keys). The n-th call on any batch gives a row the same number for the same
    key, so the order and size of the batch do not matter.
    """

    def __init__(self, keys: np.ndarray, stream: int = 0):
        self.keys = np.asarray(keys, dtype=np.uint64)
        self._stream = int(stream) << 20
        self._call = 0

    def _bits(self, size) -> np.ndarray:
        n = len(self.keys)
        if size is not None and (size if isinstance(size, int) else size[0]) != n:
            raise ValueError(f"keyed draws give one value per key ({n} keys), not {size}")
        self._call += 1
        return derive_keys(self.keys, self._stream + self._call)

    def random(self, size=None) -> np.ndarray:
        """Uniform on [0, 1)."""
        return (self._bits(size) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def normal(self, loc=0.0, scale=1.0, size=None) -> np.ndarray:
        """Normal, by the inverse of its distribution function on one uniform."""
        u = (self._bits(size) >> np.uint64(11)).astype(np.float64) * 2.0**-53 + 2.0**-54
        return loc + scale * ndtri(u)

    def integers(self, low, high=None, size=None) -> np.ndarray:
        """Whole numbers in [low, high)."""
        if high is None:
            low, high = 0, low
        low, high = np.asarray(low, np.int64), np.asarray(high, np.int64)
        return low + np.floor(self.random(size) * (high - low)).astype(np.int64)

    def exponential(self, scale=1.0, size=None) -> np.ndarray:
        """Exponential with mean `scale`."""
        return -np.asarray(scale) * np.log1p(-self.random(size))

    def poisson(self, lam, size=None) -> np.ndarray:
        """Poisson with mean `lam` (one a row), by inverting its distribution function."""
        lam = np.broadcast_to(np.asarray(lam, np.float64), self.keys.shape)
        u = self.random(size if size is not None else len(self.keys))
        k = np.zeros(len(u), dtype=np.int64)
        # Large means by the normal approximation, where the inversion would take many steps.
        big = lam > 200
        k[big] = np.maximum(0, np.round(lam[big] + np.sqrt(lam[big]) * ndtri(u[big])))
        todo = np.flatnonzero(~big)
        pmf = np.exp(-lam[todo])
        cdf = pmf.copy()
        step = 0
        while len(todo):
            more = u[todo] >= cdf
            todo, pmf, cdf = todo[more], pmf[more], cdf[more]
            step += 1
            k[todo] = step
            pmf = pmf * lam[todo] / step
            cdf = cdf + pmf
            if step > 1_000:  # float round-off: the remaining mass is below 1e-16
                break
        return k

    def choice(self, a: int, size=None, p=None) -> np.ndarray:
        """Index in range(a), with probabilities p (uniform if None)."""
        u = self.random(size)
        if p is None:
            return np.minimum(np.floor(u * a).astype(np.int64), a - 1)
        cum = np.cumsum(np.asarray(p, np.float64))
        return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), a - 1)

    def child(self, parent_row: np.ndarray, ordinal: np.ndarray) -> KeyedRandom:
        """Draws for sub-rows (e.g. each offence of an episode), keyed by their parent row and
        their ordinal within it, in a stream of their own for this call."""
        self._call += 1
        keys = derive_keys(derive_keys(self.keys[parent_row], self._stream + self._call), ordinal)
        return KeyedRandom(keys)
