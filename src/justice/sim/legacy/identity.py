"""How a person's identity looks in one legacy system's record: the truth, with that system's mess.

Every emitter calls `messy_identity` for its person-bearing records, so the kinds and rates of
error are the same everywhere and each record's applied mess is known for the answer key.
"""

from __future__ import annotations

import numpy as np

from justice.sim import mess
from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]
IDENTITY_FIELDS = ("forename", "middle_name", "surname", "sex", "dob", "postcode",
                   "pnc_id", "cro_number", "prison_number", "crn")


def person_rows(tables: dict[str, Columns], person_ids: np.ndarray) -> Columns:
    """The true identity fields of each person in `person_ids` (which may repeat)."""
    persons = tables["persons"]
    pos = np.searchsorted(persons["person_id"], person_ids)
    out = {f: persons[f][pos].copy() for f in IDENTITY_FIELDS}
    out["person_id"] = np.asarray(person_ids, dtype=object)
    return out


def _dob_as_datetime(days: np.ndarray) -> np.ndarray:
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = days != NONE
    out[ok] = days[ok].astype("datetime64[D]")
    return out


def messy_identity(rng: np.random.Generator, rows: Columns, rates: dict[str, float], *,
                   surname_pool: np.ndarray, ids: tuple[str, ...] = ("pnc_id", "cro_number"),
                   upper_case: bool = False) -> tuple[Columns, np.ndarray]:
    """Apply name, date-of-birth, identifier and formatting mess to identity rows.

    Returns the messy rows (dob as datetime64[D] with NaT for missing) and, per row, the
    comma-separated sorted list of mess kinds actually applied ("" when clean). Identifier
    columns not named in `ids` are blanked: a system only holds the identifiers it knows.
    """
    n = len(rows["person_id"])
    labels: list[list[str]] = [[] for _ in range(n)]
    out = dict(rows)

    def note(kind: str, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            labels[i].append(kind)

    fore, sur = out["forename"], out["surname"]
    fore, m = mess.nickname(rng, fore, rates["nickname"]); note("nickname", m)
    sur, m = mess.surname_change(rng, sur, surname_pool, rates["surname_change"]); note("surname_change", m)
    fore, sur, m = mess.swap_names(rng, fore, sur, rates["name_swap"]); note("name_swap", m)
    which = rng.random(n) < 0.5
    f2, m1 = mess.typo(rng, fore, np.where(which, rates["name_typo"], 0.0) > rng.random(n))
    s2, m2 = mess.typo(rng, sur, (~which) & (rng.random(n) < rates["name_typo"]))
    fore, sur = f2, s2
    note("name_typo", m1 | m2)

    dob = _dob_as_datetime(out["dob"])
    dob, m = mess.dob_day_month_swap(rng, dob, rates["dob_day_month_swap"]); note("dob_day_month_swap", m)
    dob, m = mess.dob_first_of_january(rng, dob, rates["dob_first_jan"]); note("dob_first_jan", m)
    dob, m = mess.dob_shift(rng, dob, rates["dob_shift"]); note("dob_shift", m)
    dob, m = mess.blank(rng, dob, rates["dob_missing"]); note("dob_missing", m)

    for col in ("pnc_id", "cro_number", "prison_number", "crn"):
        if col not in ids:
            out[col] = np.full(n, None, dtype=object)
    if "pnc_id" in ids:
        out["pnc_id"], m = mess.blank(rng, out["pnc_id"], rates["pnc_missing"]); note("pnc_missing", m)
        out["pnc_id"], m = mess.bad_check_char(rng, out["pnc_id"], rates["pnc_bad_check"]); note("pnc_bad_check", m)
    if "cro_number" in ids:
        out["cro_number"], m = mess.blank(rng, out["cro_number"], rates["cro_missing"]); note("cro_missing", m)

    if upper_case:
        fore = np.array([v.upper() if isinstance(v, str) else v for v in fore], dtype=object)
        sur = np.array([v.upper() if isinstance(v, str) else v for v in sur], dtype=object)
        mid = np.array([v.upper() if isinstance(v, str) else v for v in out["middle_name"]], dtype=object)
        out["middle_name"] = mid
    sur, m = mess.whitespace(rng, sur, rates["whitespace"]); note("whitespace", m)
    sur, m = mess.mojibake(rng, sur, rates["encoding_error"]); note("encoding_error", m)
    out["forename"], out["surname"], out["dob"] = fore, sur, dob
    return out, np.array([",".join(sorted(set(x))) for x in labels], dtype=object)
