"""Measure the simulated world's headline figures the way the published statistics do.

Each measure takes the truth tables (columns of numpy arrays, dates as day numbers) and the
window, and returns a number comparable with the published figure in
`reference/calibration_targets.yaml`. They are per head, so they hold at any population size
once it is large enough for the rates to settle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
import yaml

from justice.sim import reference as ref
from justice.sim.courts import NONE

Tables = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class World:
    """Truth tables and the window (day numbers) that every measure reads."""

    t: Tables
    start: int
    end: int

    @cached_property
    def cohort(self) -> dict[str, np.ndarray]:
        """The proven reoffending cohort, built once for all reoffending measures."""
        return proven_reoffending_cohort(self.t, self.start, self.end)


Measure = Callable[[World], float]
MEASURES: dict[str, Measure] = {}


def measure(fn: Measure) -> Measure:
    """Register a calibration measure under its function name."""
    MEASURES[fn.__name__] = fn
    return fn


def proven_reoffending_cohort(t: Tables, start: int, end: int) -> dict[str, np.ndarray]:
    """The MoJ proven reoffending cohort from truth, one row per offender per quarterly cohort.

    An offender enters a quarter's cohort at their first index event in it: release from
    custody, a non-custodial court sentence, or a caution, for a recordable offence. A proven
    reoffence is a recordable offence committed in the 12 months after the index date and
    proven (convicted or cautioned) by the end of a further six months. Only cohorts whose
    follow-up and waiting period have passed are included, and the first two years of the
    window are skipped so that history is complete.
    """
    d = t["disposals"]
    off = t["offences"]
    ok = (d["index_date"] != NONE) & np.isin(d["disposal_type"], ["caution", "discharge", "fine", "community_order",
                                                                 "suspended_sentence", "custody"])
    # Index events must be for a recordable offence: use the principal offence of the episode.
    rec_eps = np.unique(off["episode_id"][off["recordable"] & off["proven"]])
    ok &= np.isin(d["episode_id"], rec_eps)
    idx = d["index_date"][ok]
    last_cohort_day = end - 365 - 183
    in_range = (idx >= start + 730) & (idx <= last_cohort_day)
    person = d["person_id"][ok][in_range]
    idx = idx[in_range]
    disposal = d["disposal_type"][ok][in_range]
    months = d["custody_months"][ok][in_range]
    dates = np.datetime64("1970-01-01") + idx.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    quarter = years * 4 + (dates.astype("datetime64[M]").astype(int) % 12) // 3
    order = np.lexsort((idx, person, quarter))
    person, idx, quarter, disposal, months = person[order], idx[order], quarter[order], disposal[order], months[order]
    first = np.r_[True, (person[1:] != person[:-1]) | (quarter[1:] != quarter[:-1])]
    person, idx, quarter, disposal, months = person[first], idx[first], quarter[first], disposal[first], months[first]

    # Reoffences: recordable proven offences per person, sorted by offence date.
    # Reoffences: recordable proven offences, keyed by (person number, offence day) so that a
    # cohort member's follow-up year is one contiguous range of the sorted keys.
    persons = t["persons"]
    r = off["proven"] & off["recordable"]
    day_span = 1 << 20  # more days than any window
    rkey = np.searchsorted(persons["person_id"], off["person_id"][r]) * day_span + off["offence_date"][r]
    order = np.argsort(rkey, kind="stable")
    rkey, rproven = rkey[order], off["proven_date"][r][order]
    pkey = np.searchsorted(persons["person_id"], person) * day_span
    lo = np.searchsorted(rkey, pkey + idx + 1)
    hi = np.searchsorted(rkey, pkey + idx + 366)
    # Count only those proven within the 18 months after the index date.
    deadline = idx + 365 + 183
    member = np.repeat(np.arange(len(person)), hi - lo)
    row = lo[member] + (np.arange(len(member)) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo))
    counts = np.bincount(member, weights=rproven[row] <= deadline[member], minlength=len(person)).astype(np.int64)
    pos = np.searchsorted(persons["person_id"], person)
    age = (idx - persons["dob"][pos]) / 365.25
    return {"person_id": person, "index_date": idx, "quarter": quarter, "disposal": disposal,
            "custody_months": months, "age": age, "sex": persons["sex"][pos], "reoffences": counts}


def _rate(c: dict[str, np.ndarray], mask: np.ndarray) -> float:
    return float(np.mean(c["reoffences"][mask] > 0)) if mask.any() else float("nan")


@measure
def proven_reoffending_overall(w: World) -> float:
    c = w.cohort
    return _rate(c, np.ones(len(c["age"]), bool))


@measure
def proven_reoffending_adult(w: World) -> float:
    c = w.cohort
    return _rate(c, c["age"] >= 18)


@measure
def proven_reoffending_juvenile(w: World) -> float:
    c = w.cohort
    return _rate(c, c["age"] < 18)


@measure
def proven_reoffending_custody_under_12m(w: World) -> float:
    c = w.cohort
    return _rate(c, (c["age"] >= 18) & (c["disposal"] == "custody") & (np.nan_to_num(c["custody_months"]) < 12))


def prisoner_days_last_year(t: Tables, end: int, mask: np.ndarray | None = None) -> float:
    """Prisoner-days in the last 365 days of the window (optionally for some spells only)."""
    s = t["custody_spells"]
    rel = np.where(s["release_date"] == NONE, end + 1, s["release_date"])
    days = np.clip(np.minimum(rel, end + 1) - np.maximum(s["reception_date"], end - 364), 0, None)
    return float(days[mask].sum() if mask is not None else days.sum())


def _incidents_per_1000(t: Tables, end: int, kind: str) -> float:
    inc = t["incidents"]
    n = np.count_nonzero((inc["incident_type"] == kind) & (inc["incident_date"] > end - 365))
    population = prisoner_days_last_year(t, end) / 365
    return 1000.0 * n / population if population else float("nan")


@measure
def self_harm_per_1000_prisoners(w: World) -> float:
    return _incidents_per_1000(w.t, w.end, "SELF_HARM")


@measure
def assaults_per_1000_prisoners(w: World) -> float:
    return (_incidents_per_1000(w.t, w.end, "ASSAULT_ON_PRISONER")
            + _incidents_per_1000(w.t, w.end, "ASSAULT_ON_STAFF"))


@measure
def assaults_on_staff_per_1000_prisoners(w: World) -> float:
    return _incidents_per_1000(w.t, w.end, "ASSAULT_ON_STAFF")


@measure
def women_share_of_prison_population(w: World) -> float:
    t, end = w.t, w.end
    s = t["custody_spells"]
    p = t["persons"]
    sex = p["sex"][np.searchsorted(p["person_id"], s["person_id"])]
    return prisoner_days_last_year(t, end, sex == "F") / max(prisoner_days_last_year(t, end), 1)


@measure
def remand_share_of_prison_population(w: World) -> float:
    """Remand days: from reception to sentence (or release) of spells that began on remand."""
    t, end = w.t, w.end
    s = t["custody_spells"]
    rem = s["reason"] == "remand"
    rel = np.where(s["release_date"] == NONE, end + 1, s["release_date"])
    stop = np.where(s["sentence_date"] != NONE, np.minimum(s["sentence_date"], rel), rel)
    days = np.clip(np.minimum(stop, end + 1) - np.maximum(s["reception_date"], end - 364), 0, None)
    return float(days[rem].sum()) / max(prisoner_days_last_year(t, end), 1)


@measure
def crown_median_charge_to_completion_days(w: World) -> float:
    c, end = w.t["court_cases"], w.end
    m = (c["court_type"] == "crown") & np.isin(c["case_type"], ["trial_either_way", "trial_indictable_only"]) & (
        c["completion_date"] != NONE) & (c["completion_date"] > end - 365)
    return float(np.median(c["completion_date"][m] - c["charge_date"][m])) if m.any() else float("nan")


def open_cases_on(t: Tables, day: int, court_type: str) -> int:
    """Cases received on or before `day` and not completed by it."""
    c = t["court_cases"]
    m = (c["court_type"] == court_type) & (c["receipt_date"] != NONE) & (c["receipt_date"] <= day)
    return int(np.count_nonzero(m & ((c["completion_date"] == NONE) | (c["completion_date"] > day))))


@measure
def crown_open_caseload_ratio_2025q2_to_2019q4(w: World) -> float:
    a, b = ref.day_number("2019-12-31"), min(ref.day_number("2025-06-30"), w.end)
    before = open_cases_on(w.t, a, "crown")
    return open_cases_on(w.t, b, "crown") / before if before else float("nan")


def targets() -> list[dict]:
    """The calibration targets file, in order."""
    text = resources.files("justice.sim").joinpath("reference", "calibration_targets.yaml").read_text("utf-8")
    return yaml.safe_load(text)["targets"]


def calibrate(t: Tables, start: int, end: int) -> list[dict]:
    """Every headline figure: simulated value, target, tolerance, whether it is within, source."""
    world = World(t, start, end)
    out = []
    for target in targets():
        value = MEASURES[target["measure"]](world)
        ok = bool(np.isfinite(value) and abs(value - target["target"]) <= target["tolerance"])
        out.append({"figure": target["measure"], "simulated": round(float(value), 4) if np.isfinite(value) else None,
                    "target": target["target"], "tolerance": target["tolerance"], "within_tolerance": ok,
                    "source": target["source"]})
    return out
