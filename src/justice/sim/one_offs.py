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
row per case, each to a person with no other record in the world (3.2% of them twins of another,
as in the careers). Ids are fixed-width bytes (``SC`` and ``PS`` and eight digits), written to
Parquet as text; `truth_rows` turns a slice of them into rows of the careers' truth tables
(persons, court_cases, offences, hearings, disposals), which the truth writer appends.

The magistrates' extract (`legacy/magistrates.py`) writes them after the careers' cases, so
ingest, the court statistics and linkage see them.
"""

from __future__ import annotations

import numpy as np

from justice.errors import SimulationError
from justice.sim import people
from justice.sim import reference as ref
from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]

# The careers' magistrates' outcomes, and one of their own: convicted in the defendant's absence
# (a notice not answered is proved on the papers).
OUTCOMES = ("convicted_guilty_plea", "convicted_in_absence", "convicted_at_trial", "acquitted", "withdrawn")
CONVICTED = ("convicted_guilty_plea", "convicted_in_absence", "convicted_at_trial")
# A written charge or Single Justice Procedure notice is issued this many days before the case
# is first listed (A: the defendant has 21 days to answer).
NOTICE_DAYS = 28
PROCEDURES = ("single_justice", "open_court")
# Offence days are drawn from this long before the window, so the cases received in the
# window's first months are there (offence to receipt is a few months, rarely over a year).
LEAD_DAYS = 730


def world_shares(spec: dict, what: str, where: str = "one_off_summary") -> tuple[list, np.ndarray]:
    """Keys and probabilities of a `{key: weight}` mapping from world.yaml (weights sum to 1)."""
    name = f"world file: {where}.{what} must be non-negative shares summing to 1, got {spec!r}"
    if not isinstance(spec, dict) or not spec:
        raise SimulationError(name)
    keys = list(spec)
    try:
        p = np.array([float(spec[k]) for k in keys])
    except (TypeError, ValueError):
        raise SimulationError(name) from None
    if (p < 0).any() or abs(p.sum() - 1) > 1e-6:
        raise SimulationError(name)
    return keys, p / p.sum()


def world_number(spec: dict, key: str, low: float, high: float = float("inf"), where: str = "one_off_summary") -> float:
    """`<where>.<key>` of the world file as a number in [low, high], or a clear error naming it."""
    name = f"world file: {where}.{key}"
    try:
        value = float(spec[key])
    except KeyError:
        raise SimulationError(f"{name} is missing") from None
    except (TypeError, ValueError):
        raise SimulationError(f"{name} must be a number, got {spec[key]!r}") from None
    if not low <= value <= high:
        raise SimulationError(f"{name} must be between {low} and {high}, got {value}")
    return value


def byte_ids(prefix: bytes, n: int) -> np.ndarray:
    """``prefix`` and an eight-digit number, 1..n, as fixed-width bytes (9-10 bytes a row, not a
    50-byte string object: a million-person world holds three million of each)."""
    if n == 0:
        return np.empty(0, dtype=f"S{len(prefix) + 8}")
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype("S8"), 8))


def lognormal_days(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(1, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)


def simulate(rng: np.random.Generator, w: dict, persons: int, courts: Columns,
             start: int, end: int, pools: dict, postcodes: np.ndarray) -> Columns:
    """The one-off summary cases received in the window [start, end] (day numbers).

    Their number is `cases_per_1000_persons_per_year` for each 1,000 of the world's people with
    careers (`persons`), so they keep their proportion to the prisons at any size. Names come
    from the careers' pools (`people.name_pools`) and addresses from the world's postcodes.
    """
    spec = w["one_off_summary"]
    codes, code_p = world_shares(spec["offences"], "offences")
    outcomes, outcome_p = world_shares(spec["outcomes"], "outcomes")
    disposals, disposal_p = world_shares(spec["disposals"], "disposals")
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

    male = spec.get("male_share") or {}
    if set(codes) - set(male):
        raise SimulationError(f"world file: one_off_summary.male_share has no share for {sorted(set(codes) - set(male))}")
    male_share = np.array([world_number(male, c, 0.0, 1.0, "one_off_summary.male_share") for c in codes])
    age = spec.get("age") or {}
    age_min, age_shape, age_scale = (world_number(age, k, low, where="one_off_summary.age")
                                     for k, low in (("min", 18.0), ("gamma_shape", 1e-9), ("gamma_scale", 1e-9)))
    rate = world_number(spec, "cases_per_1000_persons_per_year", 0.0)
    to_receipt, to_completion = (world_number(spec, "offence_to_receipt_median_days", 1.0),
                                 world_number(spec, "receipt_to_completion_median_days", 1.0))
    sigma = world_number(spec, "days_sigma", 0.0)
    single_share = world_number(spec, "single_justice_share", 0.0, 1.0)
    try:
        sjp_from = ref.day_number(str(spec["single_justice_from"]))
    except (KeyError, ValueError):
        raise SimulationError("world file: one_off_summary.single_justice_from must be a date (YYYY-MM-DD), "
                              f"got {spec.get('single_justice_from')!r}") from None

    # Offences over the window and a lead before it; the cases received in the window are kept.
    first, last = start - LEAD_DAYS, end
    years = (last - first + 1) / 365.25
    n = int(rng.poisson(rate * persons / 1000 * years))
    offence_day = rng.integers(first, last + 1, n)
    receipt = offence_day + lognormal_days(rng, to_receipt, sigma, n)
    keep = (receipt >= start) & (receipt <= end)
    n = int(keep.sum())
    offence_day, receipt = offence_day[keep], receipt[keep]
    order = np.argsort(receipt, kind="stable")
    offence_day, receipt = offence_day[order], receipt[order]

    which = rng.choice(len(codes), size=n, p=code_p)
    sex = np.where(rng.random(n) < male_share[which], "M", "F")
    age_years = age_min + rng.gamma(age_shape, age_scale, n)
    dob = offence_day - np.round(age_years * 365.25).astype(np.int64)

    pop = w["population"]
    eth_names = list(pop["ethnicity"])
    eth_p = np.array([float(pop["ethnicity"][k]) for k in eth_names])
    eth = rng.choice(len(eth_names), size=n, p=eth_p / eth_p.sum())
    forename, middle, surname = people.draw_names(rng, sex, np.array(eth_names, dtype=object)[eth],
                                                  eth_names, pools)
    postcode = postcodes[rng.integers(0, len(postcodes), n)]
    twin_of = _twins(rng, float(pop["twin_share"]), sex, eth, dob, offence_day, surname, postcode,
                     forename, pools, eth_names)

    mags = np.flatnonzero(courts["court_type"] == "magistrates")
    court = mags[rng.integers(0, len(mags), n)]

    single = (receipt >= sjp_from) & (rng.random(n) < single_share)
    outcome = rng.choice(len(outcomes), size=n, p=outcome_p)
    completion = receipt + lognormal_days(rng, to_completion, sigma, n)
    completed = completion <= end
    completion = np.where(completed, completion, NONE)
    convicted = completed & np.isin(np.array(outcomes, dtype=object)[outcome], CONVICTED)
    disposal = rng.choice(len(disposals), size=n, p=disposal_p)

    def labels(values: list[str], codes_: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        pool = np.array(list(values) + [None], dtype=object)
        return pool[np.where(mask, codes_, len(values)) if mask is not None else codes_]

    group = off.group[idx][which]
    groups = sorted(set(off.group[idx].tolist()))
    person_id = byte_ids(b"PS", n)
    return {
        "case_id": byte_ids(b"SC", n),
        "person_id": person_id,
        "procedure": labels(list(PROCEDURES), np.where(single, 0, 1)),
        "court_code": courts["court_code"][court],
        "region": courts["region"][court],
        "sex": labels(["M", "F"], np.where(sex == "M", 0, 1)),
        "dob": dob,
        "ethnicity": labels(eth_names, eth),
        "forename": forename,
        "middle_name": middle,
        "surname": surname,
        "postcode": postcode,
        "twin_of": np.where(twin_of >= 0, person_id[np.maximum(twin_of, 0)], b""),
        "offence_code": labels(codes, which),
        "offence_group": labels(groups, np.searchsorted(groups, group)),
        "case_type": labels(["summary_motoring", "summary_non_motoring"],
                            np.where(group == "12 Summary motoring", 0, 1)),
        "offence_date": offence_day,
        "charge_date": np.maximum(offence_day, receipt - NOTICE_DAYS),
        "receipt_date": receipt,
        "completion_date": completion,
        "outcome": labels(outcomes, outcome, completed),
        "disposal_type": labels(disposals, disposal, convicted),
        "disposal_date": np.where(convicted, completion, NONE),
    }


def _twins(rng: np.random.Generator, share: float, sex: np.ndarray, eth: np.ndarray, dob: np.ndarray,
           offence_day: np.ndarray, surname: np.ndarray, postcode: np.ndarray, forename: np.ndarray,
           pools: dict, eth_names: list[str]) -> np.ndarray:
    """Pair a `share` of the people as twins, in place: the second of a pair takes the first's
    surname, date of birth, address and ethnicity and keeps a forename of their own (two thirds
    the same sex). Returns each person's twin (the first of the pair) or -1. A pair is only made
    where the second is an adult at their offence with the first's date of birth."""
    n = len(sex)
    twin_of = np.full(n, -1, dtype=np.int64)
    k = int(rng.binomial(n // 2, min(1.0, share))) if n >= 2 else 0
    if not k:
        return twin_of
    paired = rng.permutation(n)[: 2 * k]
    first, second = paired[:k], paired[k:]
    ok = offence_day[second] - dob[first] >= 18 * 365.25
    first, second = first[ok], second[ok]
    twin_of[second] = first
    same_sex = rng.random(len(first)) < 0.66
    sex[second] = np.where(same_sex, sex[first], sex[second])
    for col in (surname, postcode, dob, eth):
        col[second] = col[first]
    for e, name in enumerate(eth_names):
        for s_ in ("M", "F"):
            sel = second[(eth[second] == e) & (sex[second] == s_)]
            draws = pools[(name, s_)].sample(rng, len(sel))
            # A twin's forename is their own: redraw until none is the first twin's (a common
            # name may come up twice running).
            clash = draws == forename[twin_of[sel]]
            while clash.any() and len(pools[(name, s_)].names) > 1:
                draws[clash] = pools[(name, s_)].sample(rng, int(clash.sum()))
                clash = draws == forename[twin_of[sel]]
            forename[sel] = draws
    return twin_of


# ---- truth rows ---------------------------------------------------------------------------------
# The careers' tables the one-off cases add rows to, and the plea of each outcome at the first
# listing (an in-absence conviction has none: the notice was not answered).
TRUTH_TABLES = ("persons", "court_cases", "offences", "hearings", "disposals")
_FIRST_LISTING = {"convicted_guilty_plea": "guilty_plea", "convicted_in_absence": "no_plea",
                  "convicted_at_trial": "not_guilty_plea", "acquitted": "not_guilty_plea",
                  "withdrawn": "no_plea"}


def _text(values: np.ndarray) -> np.ndarray:
    """Fixed-width byte ids as text objects; an empty id is None."""
    out = np.char.decode(values, "ascii").astype(object)
    out[values == b""] = None
    return out


def truth_rows(c: Columns, lo: int, hi: int, first: int = 0) -> dict[str, Columns]:
    """Rows of the careers' truth tables for the one-off cases lo..hi-1 (one person, case,
    offence and, when convicted, disposal each; a first listing and, when completed later, the
    decision's hearing). `c` may be a slice of the cases whose row 0 is case `first` (ids are
    numbered by the case's place among all of them). Columns the careers have and these cases do
    not are absent; the writer fills them with nulls."""
    c = {k: v[lo - first:hi - first] for k, v in c.items()}
    n = hi - lo
    case_id, person_id = _text(c["case_id"]), _text(c["person_id"])
    number = np.arange(lo + 1, hi + 1)
    done = c["completion_date"] != NONE
    convicted = done & np.isin(c["outcome"], CONVICTED)
    outcome = c["outcome"]
    persons = {"person_id": person_id, "forename": c["forename"], "middle_name": c["middle_name"],
               "surname": c["surname"], "sex": c["sex"], "dob": c["dob"], "ethnicity": c["ethnicity"],
               "postcode": c["postcode"], "region": c["region"], "twin_of": _text(c["twin_of"])}
    cases = {"case_id": case_id, "person_id": person_id,
             "court_type": np.full(n, "magistrates", dtype=object), "case_type": c["case_type"],
             "court_code": c["court_code"], "region": c["region"], "charge_date": c["charge_date"],
             "receipt_date": c["receipt_date"], "completion_date": c["completion_date"],
             "outcome": outcome, "principal_offence_code": c["offence_code"],
             "offence_group": c["offence_group"], "remanded_in_custody": np.zeros(n, bool)}
    offences = {"offence_id": _text(np.char.add(b"SO", np.char.zfill(number.astype("S9"), 9))),
                "person_id": person_id, "case_id": case_id, "offence_code": c["offence_code"],
                "offence_group": c["offence_group"], "mode_of_trial": np.full(n, "summary", dtype=object),
                "recordable": np.zeros(n, bool), "offence_date": c["offence_date"],
                "charge_date": c["charge_date"], "proven": convicted,
                "proven_date": np.where(convicted, c["completion_date"], NONE),
                "method_of_proof": np.where(convicted, "conviction", None).astype(object),
                "disposal": c["disposal_type"], "custody_months": np.full(n, np.nan)}
    d = np.flatnonzero(convicted)
    disposals = {"disposal_id": _text(np.char.add(b"SD", np.char.zfill(number[d].astype("S8"), 8))),
                 "person_id": person_id[d], "case_id": case_id[d], "disposal_type": c["disposal_type"][d],
                 "disposal_date": c["disposal_date"][d], "custody_months": np.full(len(d), np.nan),
                 "order_months": np.full(len(d), np.nan), "supervised": np.zeros(len(d), bool),
                 "previous_offences": np.zeros(len(d), np.int64)}
    # The first listing; a case completed after it has the decision's hearing on that day.
    later = done & (c["completion_date"] > c["receipt_date"])
    first_plea = np.array([_FIRST_LISTING.get(o, "no_plea") for o in outcome.tolist()] + [None],
                          dtype=object)[:-1]
    decided = np.where(np.isin(outcome, ["convicted_at_trial", "acquitted"]), "trial",
                       np.where(outcome == "withdrawn", "mention", "sentence")).astype(object)
    decided_out = np.where(decided == "trial", "effective",
                           np.where(decided == "mention", "withdrawn", "sentenced")).astype(object)
    h_case = np.concatenate([case_id, case_id[later]])
    h_day = np.concatenate([c["receipt_date"], c["completion_date"][later]])
    order = np.lexsort((np.r_[np.zeros(n, int), np.ones(int(later.sum()), int)], np.r_[np.arange(n), np.flatnonzero(later)]))
    h_number = np.arange(2 * lo + 1, 2 * lo + 1 + len(order))  # unique across slices: two per case at most
    hearings = {"hearing_id": _text(np.char.add(b"SH", np.char.zfill(h_number.astype("S9"), 9))),
                "case_id": h_case[order], "hearing_date": h_day[order],
                "hearing_type": np.concatenate([np.full(n, "first_hearing", dtype=object), decided[later]])[order],
                "outcome": np.concatenate([first_plea, decided_out[later]])[order]}
    return {"persons": persons, "court_cases": cases, "offences": offences, "hearings": hearings,
            "disposals": disposals}


# ---- read back from truth -----------------------------------------------------------------------
# The text columns `simulate` makes as fixed-width byte ids (`byte_ids`: two letters, eight digits).
BYTE_IDS = ("case_id", "person_id", "twin_of")


def read_truth(path, lo_day: int | None = None, hi_day: int | None = None) -> Columns:
    """The one-off cases as `simulate` made them, read back from truth's `one_off_cases.parquet`
    (all of them, or those received in [lo_day, hi_day)): byte ids, day numbers (a null date is
    NONE) and text columns whose repeated values share one string object each, as made."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    dates = {f.name for f in schema if pa.types.is_date32(f.type)}
    text = [n for n in schema.names if n not in dates and n not in BYTE_IDS]
    filters = None
    if lo_day is not None:
        day = pc.field("receipt_date")
        filters = (day >= pa.scalar(int(lo_day), pa.date32())) & (day < pa.scalar(int(hi_day), pa.date32()))
    t = pq.read_table(path, read_dictionary=text, filters=filters)
    out: Columns = {}
    for name in schema.names:
        col = t.column(name).combine_chunks()
        if name in BYTE_IDS:
            out[name] = np.array(col.fill_null("").to_pylist(), dtype="S10")
        elif name in dates:
            days = pc.cast(col, pa.int32()).fill_null(0).to_numpy().astype(np.int64)
            out[name] = np.where(col.is_null().to_numpy(zero_copy_only=False), NONE, days)
        else:
            pool = np.array(col.dictionary.to_pylist() + [None], dtype=object)
            out[name] = pool[col.indices.fill_null(len(pool) - 1).to_numpy()]
    return out
