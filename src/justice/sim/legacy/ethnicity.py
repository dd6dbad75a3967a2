"""Ethnicity as the prison records it: a NOMIS-style code on each OFFENDERS row (RACE_CODE).

The codes, their ONS groups and the recording mess are data (``reference/ethnicity_codes.yaml``).
Each person has a usual code, one of their group's codes picked by a hash of their person id;
each OFFENDERS row then records that code, or ``NS`` (not stated) at rate ``not_stated``, or
another code at rate ``recoded``, by hashes of the row's OFFENDER_ID. Probation records it the
same way on each CRN (a person's duplicate CRN is a record of its own), keyed by the CRN's text.

Hashes rather than the emitter's random generator: the draws are the same in the batch emitter
and the live feed for the same person, and adding the column moved no other column's values.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import numpy as np
import yaml

from justice.errors import SimulationError

NOT_STATED = "NS"
GROUPS = ("White", "Mixed", "Asian", "Black", "Other")
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@functools.cache
def reference() -> dict:
    """The code list and recording rates, checked: every group's shares sum to 1."""
    text = resources.files("justice.sim").joinpath("reference", "ethnicity_codes.yaml").read_text("utf-8")
    ref = yaml.safe_load(text)
    codes = ref["codes"]
    for group in GROUPS:
        total = sum(float(c["share"]) for c in codes if c["group"] == group)
        if abs(total - 1) > 1e-9:
            raise SimulationError(f"reference/ethnicity_codes.yaml: the shares of group {group} "
                                  f"sum to {total}, not 1")
        as_ = ref["recoded_as"].get(group)
        if not as_ or abs(sum(as_.values()) - 1) > 1e-9 or set(as_) - set(GROUPS):
            raise SimulationError(f"reference/ethnicity_codes.yaml: recoded_as.{group} must give "
                                  f"shares of the groups {', '.join(GROUPS)} summing to 1")
    return ref


def code_groups() -> dict[str, str]:
    """Every recordable code -> its ONS group (NS -> Unknown)."""
    return {c["code"]: c["group"] for c in reference()["codes"]}


def _tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group: its codes and their cumulative shares."""
    out = {}
    for group in GROUPS:
        rows = [c for c in reference()["codes"] if c["group"] == group]
        out[group] = (np.array([c["code"] for c in rows], dtype=object),
                      np.cumsum([float(c["share"]) for c in rows]))
    return out


def _unit(keys: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) per integer key (splitmix64 of the key and the salt)."""
    with np.errstate(over="ignore"):
        z = (keys.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def text_keys(values: np.ndarray, namespace: str = "") -> np.ndarray:
    """A 64-bit key per text value (a person id, a CRN), the same in every run and process."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(f"{namespace}:{v}".encode(),
                                                       digest_size=8).digest(), "little")
                        for v in np.asarray(values, dtype=object).tolist()),
                       dtype=np.uint64, count=len(values))


def _pick(tables: dict, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A code of each row's group chosen by the uniform `u` and the group's shares."""
    out = np.full(len(groups), None, dtype=object)
    for group, (codes, cum) in tables.items():
        sel = groups == group
        if sel.any():
            out[sel] = codes[np.minimum(np.searchsorted(cum, u[sel], side="right"), len(codes) - 1)]
    return out


def recorded_codes(person_ids: np.ndarray, ethnicity: np.ndarray,
                   row_keys: np.ndarray) -> np.ndarray:
    """The code each record holds: per record, the person's (id, true group) and the record's
    key (an OFFENDER_ID, or :func:`text_keys` of a CRN)."""
    person_ids = np.asarray(person_ids, dtype=object)
    ethnicity = np.asarray(ethnicity, dtype=object)
    offender_ids = np.asarray(row_keys).astype(np.uint64)
    unknown = set(ethnicity.tolist()) - set(GROUPS)
    if unknown:
        raise SimulationError(f"ethnicity {sorted(map(str, unknown))} of the world's people has no "
                              f"codes in reference/ethnicity_codes.yaml (groups: {', '.join(GROUPS)})")
    ref, tables = reference(), _tables()
    person_key = text_keys(person_ids, "person")
    codes = _pick(tables, ethnicity, _unit(person_key, 1))

    recoded = _unit(offender_ids, 3) < float(ref["recoded"])
    if recoded.any():
        idx = np.flatnonzero(recoded)
        u = _unit(offender_ids[idx], 5)
        to_group = np.empty(len(idx), dtype=object)
        for group in GROUPS:
            sel = ethnicity[idx] == group
            names = list(ref["recoded_as"][group])
            cum = np.cumsum([float(ref["recoded_as"][group][g]) for g in names])
            to_group[sel] = np.array(names, dtype=object)[
                np.minimum(np.searchsorted(cum, u[sel], side="right"), len(names) - 1)]
        other = _pick(tables, to_group, _unit(offender_ids[idx], 7))
        # Drawn back to the usual code: take the next code of that group, so a recoded row
        # always differs (a group of one code cannot differ within itself, and none has one).
        same = other == codes[idx]
        for i in np.flatnonzero(same):
            group_codes = tables[to_group[i]][0].tolist()
            other[i] = group_codes[(group_codes.index(other[i]) + 1) % len(group_codes)]
        codes[idx] = other
    codes[_unit(offender_ids, 9) < float(ref["not_stated"])] = NOT_STATED
    return codes
