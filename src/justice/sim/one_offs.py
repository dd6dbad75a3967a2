"""One-off summary defendants: the mass of people prosecuted once for a minor, non-imprisonable matter.

Most of the people the criminal courts deal with in a year are not offenders with careers but
drivers caught speeding or uninsured, people without a TV licence, fare dodgers: prosecuted once,
by post, for a summary-only, non-imprisonable, non-recordable offence, and fined. Since 13 April
2015 most of these cases are decided on the papers by a single magistrate (the Single Justice
Procedure, Criminal Justice and Courts Act 2015 s.48); before then they were listed in open court
and mostly proved in the defendant's absence. About 57% of the cases through the magistrates'
courts in 2019 were Single Justice Procedure cases.

They are what brings the published figures per prisoner (magistrates' receipts, people formally
dealt with, the fine share of all sentences) within reach: the careers in `careers.py` make the
people who go to prison and their summary matters, not this mass (docs/calibration.md).

The cases are simulated here, apart from the careers, as one compact table of numbers and a few
shared labels (a million-person world holds about three million of them): `one_off_cases`, one
row per case, each to a person with no other record in the world. Ids are fixed-width bytes
(``OC`` and ``O`` and eight digits), written to Parquet as text.

Not yet in the legacy extracts: the magistrates' extract (Libra) carries the careers' cases only,
so linkage, ingest and the court statistics built from the extracts do not see these (issue 13).
"""

from __future__ import annotations

import numpy as np

from justice.errors import SimulationError
from justice.sim import reference as ref
from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]

OUTCOMES = ("guilty_plea", "proved_in_absence", "convicted_at_trial", "acquitted", "withdrawn")
CONVICTED = ("guilty_plea", "proved_in_absence", "convicted_at_trial")
PROCEDURES = ("single_justice", "open_court")
# Offence days are drawn from this long before the window, so the cases received in the
# window's first months are there (offence to receipt is a few months, rarely over a year).
LEAD_DAYS = 730


def _shares(spec: dict, what: str) -> tuple[list, np.ndarray]:
    """Keys and probabilities of a `{key: weight}` mapping from world.yaml (weights sum to 1)."""
    keys = list(spec)
    p = np.array([float(spec[k]) for k in keys])
    if not keys or (p < 0).any() or abs(p.sum() - 1) > 1e-6:
        raise SimulationError(f"world file: one_off_summary.{what} must be non-negative shares summing to 1, "
                              f"got {spec}")
    return keys, p / p.sum()


def _ids(prefix: bytes, n: int) -> np.ndarray:
    """``prefix`` and an eight-digit number, 1..n, as fixed-width bytes (9-10 bytes a row, not a
    50-byte string object: a million-person world holds three million of each)."""
    if n == 0:
        return np.empty(0, dtype=f"S{len(prefix) + 8}")
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype("S8"), 8))


def _lognormal_days(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(1, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)


def simulate(rng: np.random.Generator, w: dict, persons: int, courts: Columns,
             start: int, end: int) -> Columns:
    """The one-off summary cases received in the window [start, end] (day numbers).

    Their number is `cases_per_1000_persons_per_year` for each 1,000 of the world's people with
    careers (`persons`), so they keep their proportion to the prisons at any size.
    """
    spec = w["one_off_summary"]
    codes, code_p = _shares(spec["offences"], "offences")
    outcomes, outcome_p = _shares(spec["outcomes"], "outcomes")
    disposals, disposal_p = _shares(spec["disposals"], "disposals")
    if set(outcomes) - set(OUTCOMES):
        raise SimulationError(f"world file: one_off_summary.outcomes: unknown {sorted(set(outcomes) - set(OUTCOMES))}")
    if set(disposals) - {"fine", "discharge"}:
        raise SimulationError("world file: one_off_summary.disposals: a one-off summary case is fined or discharged")
    off = ref.offences()
    pos = {c: i for i, c in enumerate(off.code.tolist())}
    missing = [c for c in codes if c not in pos]
    if missing:
        raise SimulationError(f"world file: one_off_summary.offences: not in offences.csv: {missing}")
    idx = np.array([pos[c] for c in codes])
    eligible = (off.mode_of_trial[idx] == "summary") & (off.max_penalty_months[idx] == 0) & ~off.recordable[idx]
    if not eligible.all():
        raise SimulationError("world file: one_off_summary.offences must be summary-only, non-imprisonable and "
                              f"non-recordable: {[c for c, ok in zip(codes, eligible, strict=True) if not ok]}")

    # Offences over the window and a lead before it; the cases received in the window are kept.
    first, last = start - LEAD_DAYS, end
    years = (last - first + 1) / 365.25
    expected = float(spec["cases_per_1000_persons_per_year"]) * persons / 1000 * years
    n = int(rng.poisson(expected))
    offence_day = rng.integers(first, last + 1, n)
    receipt = offence_day + _lognormal_days(rng, spec["offence_to_receipt_median_days"], spec["days_sigma"], n)
    keep = (receipt >= start) & (receipt <= end)
    n = int(keep.sum())
    offence_day, receipt = offence_day[keep], receipt[keep]
    order = np.argsort(receipt, kind="stable")
    offence_day, receipt = offence_day[order], receipt[order]

    which = rng.choice(len(codes), size=n, p=code_p)
    male_share = np.array([float(spec["male_share"][c]) for c in codes])
    sex = np.where(rng.random(n) < male_share[which], "M", "F")
    age = spec["age"]
    age_years = age["min"] + rng.gamma(age["gamma_shape"], age["gamma_scale"], n)
    dob = offence_day - np.round(age_years * 365.25).astype(np.int64)

    mags = np.flatnonzero(courts["court_type"] == "magistrates")
    court = mags[rng.integers(0, len(mags), n)]

    sjp_from = ref.day_number(str(spec["single_justice_from"]))
    single = (receipt >= sjp_from) & (rng.random(n) < float(spec["single_justice_share"]))
    outcome = rng.choice(len(outcomes), size=n, p=outcome_p)
    completion = receipt + _lognormal_days(rng, spec["receipt_to_completion_median_days"], spec["days_sigma"], n)
    completed = completion <= end
    completion = np.where(completed, completion, NONE)
    convicted = completed & np.isin(np.array(outcomes, dtype=object)[outcome], CONVICTED)
    disposal = rng.choice(len(disposals), size=n, p=disposal_p)

    def labels(values: list[str], codes_: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        pool = np.array(list(values) + [None], dtype=object)
        return pool[np.where(mask, codes_, len(values)) if mask is not None else codes_]

    group = off.group[idx][which]
    return {
        "case_id": _ids(b"OC", n),
        "person_id": _ids(b"O", n),
        "procedure": labels(list(PROCEDURES), np.where(single, 0, 1)),
        "court_code": courts["court_code"][court],
        "region": courts["region"][court],
        "sex": labels(["M", "F"], np.where(sex == "M", 0, 1)),
        "dob": dob,
        "offence_code": labels(codes, which),
        "offence_group": labels(sorted(set(off.group[idx].tolist())),
                                np.searchsorted(sorted(set(off.group[idx].tolist())), group)),
        "case_type": labels(["summary_motoring", "summary_non_motoring"],
                            np.where(group == "12 Summary motoring", 0, 1)),
        "offence_date": offence_day,
        "receipt_date": receipt,
        "completion_date": completion,
        "outcome": labels(outcomes, outcome, completed),
        "disposal_type": labels(disposals, disposal, convicted),
        "disposal_date": np.where(convicted, completion, NONE),
    }
