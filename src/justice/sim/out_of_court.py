"""One-off out-of-court disposals: people dealt with once by the police, not at court.

The published count of "individuals formally dealt with by the criminal justice system" is the
defendants proceeded against at court and the out-of-court disposals the police issue: community
resolutions, cannabis and khat warnings, penalty notices for disorder and cautions (196,008 in
the twelve months to June 2023, data.justice.gov.uk "Individuals entering the criminal justice
system"; 1,219,142 defendants proceeded against in the same year, together the 1.42 million
dealt with). Most of them go to people with no other record: low-level, often first-time
offending resolved on the street or at the station.

The careers (`careers.py`) make their own cautions (a caution is a proven offence: it enters
the proven reoffending cohort and the record of anyone who offends again). This module makes the
rest, the disposals that leave no criminal record the courts, prisons or probation would hold,
each to a person with no other record in the world: community resolutions (from age 10),
cannabis warnings and penalty notices for disorder (adults). They are in no legacy extract (the
police systems that record them are not among the world's sources) and in no other truth table:
truth holds them as `out_of_court_disposals`, and the calibration counts them among the people
formally dealt with (docs/calibration.md).

They draw from their own random stream, so the careers' world and the one-off summary cases are
the same with or without them.
"""

from __future__ import annotations

import numpy as np

from justice.errors import SimulationError
from justice.sim import reference as ref
from justice.sim.one_offs import byte_ids, lognormal_days, world_number, world_shares

Columns = dict[str, np.ndarray]

WHERE = "one_off_out_of_court"
# The disposals made here; a caution is the careers' (it is a proven offence).
DISPOSALS = ("community_resolution", "cannabis_warning", "penalty_notice")


def _spec(w: dict) -> dict:
    spec = w.get(WHERE)
    if not isinstance(spec, dict):
        raise SimulationError(f"world file: {WHERE} is missing or not a mapping")
    return spec


def _per_disposal(spec: dict, key: str, disposals: list[str], low: float, high: float = float("inf")) -> np.ndarray:
    """`<WHERE>.<key>` as one number for each disposal, each checked."""
    values = spec.get(key)
    if not isinstance(values, dict) or set(disposals) - set(values):
        raise SimulationError(f"world file: {WHERE}.{key} needs a value for each of {disposals}, got {values!r}")
    return np.array([world_number(values, d, low, high, f"{WHERE}.{key}") for d in disposals])


def simulate(rng: np.random.Generator, w: dict, persons: int, courts: Columns, start: int, end: int) -> Columns:
    """The one-off out-of-court disposals issued in the window [start, end] (day numbers).

    Their number is `disposals_per_1000_persons_per_year` for each 1,000 of the world's people
    with careers (`persons`), as the one-off summary cases are, so they keep their proportion to
    the prisons at any size.
    """
    spec = _spec(w)
    disposals, disposal_p = world_shares(spec.get("disposals"), "disposals", WHERE)
    if unknown := sorted(set(disposals) - set(DISPOSALS)):
        raise SimulationError(f"world file: {WHERE}.disposals: unknown {unknown}; allowed: {list(DISPOSALS)} "
                              "(a caution is the careers': it is a proven offence)")
    offences = spec.get("offences")
    if not isinstance(offences, dict) or set(disposals) - set(offences):
        raise SimulationError(f"world file: {WHERE}.offences needs an offence mix for each of {disposals}")
    off = ref.offences()
    pos = {c: i for i, c in enumerate(off.code.tolist())}
    mixes = []
    for d in disposals:
        codes, p = world_shares(offences[d], f"offences.{d}", WHERE)
        if missing := [c for c in codes if c not in pos]:
            raise SimulationError(f"world file: {WHERE}.offences.{d}: not in offences.csv: {missing}")
        mixes.append((np.array([pos[c] for c in codes]), p))
    male_share = _per_disposal(spec, "male_share", disposals, 0.0, 1.0)
    min_age = _per_disposal(spec, "min_age", disposals, 10.0, 120.0)
    age = spec.get("age") or {}
    shape, scale = (world_number(age, k, 1e-9, where=f"{WHERE}.age") for k in ("gamma_shape", "gamma_scale"))
    rate = world_number(spec, "disposals_per_1000_persons_per_year", 0.0, where=WHERE)
    to_disposal = world_number(spec, "offence_to_disposal_median_days", 1.0, where=WHERE)
    sigma = world_number(spec, "days_sigma", 0.0, where=WHERE)

    years = (end - start + 1) / 365.25
    n = int(rng.poisson(rate * persons / 1000 * years))
    day = np.sort(rng.integers(start, end + 1, n))
    which = rng.choice(len(disposals), size=n, p=disposal_p)
    offence_idx = np.empty(n, dtype=np.int64)
    for k, (idx, p) in enumerate(mixes):
        sel = np.flatnonzero(which == k)
        offence_idx[sel] = idx[rng.choice(len(idx), size=len(sel), p=p)]
    offence_day = day - (lognormal_days(rng, to_disposal, sigma, n) - 1)
    male = rng.random(n) < male_share[which]
    age_years = min_age[which] + rng.gamma(shape, scale, n)
    dob = offence_day - np.round(age_years * 365.25).astype(np.int64)
    mags = np.flatnonzero(courts["court_type"] == "magistrates")
    region = courts["region"][mags[rng.integers(0, len(mags), n)]] if len(mags) else np.full(n, None, object)

    def labels(values, codes_: np.ndarray) -> np.ndarray:
        return np.array(list(values), dtype=object)[codes_]

    return {
        "disposal_id": byte_ids(b"OD", n),
        "person_id": byte_ids(b"PO", n),
        "disposal_type": labels(disposals, which),
        "offence_code": off.code[offence_idx].astype(object),
        "offence_group": off.group[offence_idx].astype(object),
        "sex": labels(["F", "M"], male.astype(np.int64)),
        "dob": dob,
        "region": region,
        "offence_date": offence_day,
        "disposal_date": day,
    }
