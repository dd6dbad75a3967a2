"""Measure the simulated world's headline figures the way the published statistics do.

Each measure takes the truth tables (columns of numpy arrays, dates as day numbers) and the
window, and returns a number comparable with the published figure in
`reference/calibration_targets.yaml`. They are per head, so their expected values do not depend
on the population size, but their spread does: each target's `min_persons` is the size from
which it was measured to stay within tolerance (docs/calibration.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
import yaml

from justice.sim import one_offs
from justice.sim import reference as ref
from justice.sim.courts import INDETERMINATE, NONE

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
    previous = d["previous_offences"][ok][in_range]
    dates = np.datetime64("1970-01-01") + idx.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    quarter = years * 4 + (dates.astype("datetime64[M]").astype(int) % 12) // 3
    order = np.lexsort((idx, person, quarter))
    person, idx, quarter, disposal, months, previous = (
        person[order], idx[order], quarter[order], disposal[order], months[order], previous[order])
    first = np.r_[True, (person[1:] != person[:-1]) | (quarter[1:] != quarter[:-1])]
    person, idx, quarter, disposal, months, previous = (
        person[first], idx[first], quarter[first], disposal[first], months[first], previous[first])

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
            "custody_months": months, "age": age, "sex": persons["sex"][pos], "reoffences": counts,
            "previous_offences": previous}


def _rate(c: dict[str, np.ndarray], mask: np.ndarray) -> float:
    return float(np.mean(c["reoffences"][mask] > 0)) if mask.any() else float("nan")


@measure
def proven_reoffending_overall(w: World) -> float:
    """Proven reoffending rate of the whole cohort."""
    c = w.cohort
    return _rate(c, np.ones(len(c["age"]), bool))


@measure
def proven_reoffending_adult(w: World) -> float:
    """Proven reoffending rate of cohort members aged 18 or over at the index date."""
    c = w.cohort
    return _rate(c, c["age"] >= 18)


@measure
def proven_reoffending_juvenile(w: World) -> float:
    """Proven reoffending rate of cohort members aged 10-17 at the index date."""
    c = w.cohort
    return _rate(c, c["age"] < 18)


@measure
def proven_reoffending_custody_under_12m(w: World) -> float:
    """Proven reoffending rate of adults released from custodial sentences under 12 months."""
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
    # Bounded at `end` too, so a year ending before the window's last day counts only its own days.
    n = np.count_nonzero((inc["incident_type"] == kind) & _last_year(inc["incident_date"], end))
    population = prisoner_days_last_year(t, end) / 365
    return 1000.0 * n / population if population else float("nan")


@measure
def self_harm_per_1000_prisoners(w: World) -> float:
    """Self-harm incidents in the last year per 1,000 prisoners (average population)."""
    return _incidents_per_1000(w.t, w.end, "SELF_HARM")


@measure
def assaults_per_1000_prisoners(w: World) -> float:
    """Assaults on prisoners and on staff in the last year per 1,000 prisoners."""
    return (_incidents_per_1000(w.t, w.end, "ASSAULT_ON_PRISONER")
            + _incidents_per_1000(w.t, w.end, "ASSAULT_ON_STAFF"))


@measure
def assaults_on_staff_per_1000_prisoners(w: World) -> float:
    """Assaults on staff in the last year per 1,000 prisoners."""
    return _incidents_per_1000(w.t, w.end, "ASSAULT_ON_STAFF")


@measure
def women_share_of_prison_population(w: World) -> float:
    """Women's share of prisoner-days in the last year."""
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
    """Median days from charge to completion of Crown Court trial cases completed in the last year."""
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
    """Crown Court cases open at June 2025 (or the window's end) over those open at end 2019."""
    a, b = ref.day_number("2019-12-31"), min(ref.day_number("2025-06-30"), w.end)
    before = open_cases_on(w.t, a, "crown")
    return open_cases_on(w.t, b, "crown") / before if before else float("nan")


def _last_year(days: np.ndarray, end: int) -> np.ndarray:
    return (days != NONE) & (days > end - 365) & (days <= end)


def _average_prison_population(t: Tables, end: int) -> float:
    return prisoner_days_last_year(t, end) / 365


@measure
def self_harm_people_per_1000_prisoners(w: World) -> float:
    """People who harmed themselves at least once in the last year, per 1,000 prisoners."""
    inc, parties = w.t["incidents"], w.t["incident_parties"]
    ids = inc["incident_id"][(inc["incident_type"] == "SELF_HARM") & _last_year(inc["incident_date"], w.end)]
    harmer = parties["role"] == "SELF_HARMER"
    # Fixed-width strings: numpy compares them in C, object arrays one Python call at a time.
    in_year = np.isin(parties["incident_id"][harmer].astype(str), ids.astype(str))
    harmers = np.unique(parties["person_id"][harmer][in_year].astype(str))
    population = _average_prison_population(w.t, w.end)
    return 1000.0 * len(harmers) / population if population else float("nan")


@measure
def self_harm_incidents_per_self_harmer(w: World) -> float:
    """Self-harm incidents in the last year over the people who had at least one."""
    people = self_harm_people_per_1000_prisoners(w)
    return self_harm_per_1000_prisoners(w) / people if people else float("nan")


def _crown_receipt_share(w: World, case_types: tuple[str, ...]) -> float:
    c = w.t["court_cases"]
    m = (c["court_type"] == "crown") & _last_year(c["receipt_date"], w.end)
    return float(np.mean(np.isin(c["case_type"][m], case_types))) if m.any() else float("nan")


@measure
def crown_receipts_trial_share(w: World) -> float:
    """Share of Crown Court receipts in the last year that are trial cases."""
    return _crown_receipt_share(w, ("trial_either_way", "trial_indictable_only"))


@measure
def crown_receipts_committal_share(w: World) -> float:
    """Share of Crown Court receipts in the last year that are committals for sentence."""
    return _crown_receipt_share(w, ("committed_for_sentence",))


@measure
def crown_receipts_appeal_share(w: World) -> float:
    """Share of Crown Court receipts in the last year that are appeals against magistrates' decisions."""
    return _crown_receipt_share(w, ("appeal",))


@measure
def crown_open_one_year_or_more_share(w: World) -> float:
    """Share of Crown Court cases open at June 2025 (or the window's end) received a year or more before."""
    c = w.t["court_cases"]
    day = min(ref.day_number("2025-06-30"), w.end)
    m = (c["court_type"] == "crown") & (c["receipt_date"] != NONE) & (c["receipt_date"] <= day)
    m &= (c["completion_date"] == NONE) | (c["completion_date"] > day)
    return float(np.mean(c["receipt_date"][m] <= day - 365)) if m.any() else float("nan")


def _spells_per_1000_prisoners(w: World, day_column: str, reasons: tuple[str, ...]) -> float:
    s = w.t["custody_spells"]
    n = np.count_nonzero(np.isin(s["reason"], reasons) & _last_year(s[day_column], w.end))
    population = _average_prison_population(w.t, w.end)
    return 1000.0 * n / population if population else float("nan")


@measure
def first_receptions_per_1000_prisoners(w: World) -> float:
    """Custody episodes begun in the last year (on remand, or sentenced straight from court), per 1,000."""
    return _spells_per_1000_prisoners(w, "reception_date", ("remand", "sentenced"))


@measure
def recalls_per_1000_prisoners(w: World) -> float:
    """Receptions on recall from licence in the last year, per 1,000 prisoners."""
    return _spells_per_1000_prisoners(w, "reception_date", ("recall",))


@measure
def releases_per_1000_prisoners(w: World) -> float:
    """Releases at the end of a sentenced custody episode in the last year, per 1,000 prisoners.

    Episodes that began on remand and ended in a custodial sentence count; releases of remand
    prisoners (acquitted, or given a non-custodial sentence) and from recall do not.
    """
    s = w.t["custody_spells"]
    sentenced = (s["sentence_date"] != NONE) & (s["reason"] != "recall")
    n = np.count_nonzero(sentenced & _last_year(s["release_date"], w.end))
    population = _average_prison_population(w.t, w.end)
    return 1000.0 * n / population if population else float("nan")


@measure
def proven_reoffending_custody_6m_or_less(w: World) -> float:
    """Proven reoffending rate of adults released from custodial sentences of 6 months or less."""
    c = w.cohort
    return _rate(c, (c["age"] >= 18) & (c["disposal"] == "custody") & (np.nan_to_num(c["custody_months"]) <= 6))


@measure
def proven_reoffending_adult_custody_or_court_order(w: World) -> float:
    """Adults released from custody or starting a community order or suspended sentence order."""
    c = w.cohort
    return _rate(c, (c["age"] >= 18) & np.isin(c["disposal"], ["custody", "community_order", "suspended_sentence"]))


def _one_offs(w: World) -> dict[str, np.ndarray]:
    """The one-off summary cases (sim/one_offs.py); none in a world made without them."""
    empty = {"receipt_date": np.empty(0, np.int64), "completion_date": np.empty(0, np.int64),
             "disposal_date": np.empty(0, np.int64), "outcome": np.empty(0, object),
             "disposal_type": np.empty(0, object)}
    return w.t.get("one_off_cases", empty)


def _disposal_share(w: World, kind: str, leave_out: tuple[str, ...] = ("caution",)) -> float:
    """`kind`'s share of the sentences passed in the last year, the one-off summary cases' too."""
    d, o = w.t["disposals"], _one_offs(w)
    m = _last_year(d["disposal_date"], w.end) & ~np.isin(d["disposal_type"], leave_out)
    mo = _last_year(o["disposal_date"], w.end) & ~np.isin(o["disposal_type"], leave_out)
    mo &= np.not_equal(o["disposal_type"], None)
    n = int(m.sum() + mo.sum())
    hits = int(np.count_nonzero(d["disposal_type"][m] == kind) + np.count_nonzero(o["disposal_type"][mo] == kind))
    return hits / n if n else float("nan")


@measure
def sentenced_fine_share(w: World) -> float:
    """Share of offenders sentenced in the last year (cautions excluded) who were fined."""
    return _disposal_share(w, "fine")


# The mix of the sentences other than fines, as well as the fine share: the one-off summary
# cases' fines dominate the published mix of all sentences, so the other sentences are compared
# among themselves too (the one-off cases add only their few discharges to them).
NOT_FINES = ("caution", "fine")


@measure
def sentenced_custody_share_of_non_fines(w: World) -> float:
    """Immediate custody's share of the sentences other than fines passed in the last year."""
    return _disposal_share(w, "custody", NOT_FINES)


@measure
def sentenced_community_order_share_of_non_fines(w: World) -> float:
    """Community orders' share of the sentences other than fines passed in the last year."""
    return _disposal_share(w, "community_order", NOT_FINES)


@measure
def sentenced_suspended_share_of_non_fines(w: World) -> float:
    """Suspended sentence orders' share of the sentences other than fines passed in the last year."""
    return _disposal_share(w, "suspended_sentence", NOT_FINES)


@measure
def sentenced_discharge_share_of_non_fines(w: World) -> float:
    """Discharges' share of the sentences other than fines passed in the last year."""
    return _disposal_share(w, "discharge", NOT_FINES)


@measure
def indictable_custody_mean_months(w: World) -> float:
    """Mean custodial sentence length (months) for indictable offences sentenced in the last year.

    Indictable means either-way or indictable-only, as in the published series; determinate
    sentences only (standard and extended, the custodial term), as published: life and IPP
    are left out.
    """
    d, off = w.t["disposals"], w.t["offences"]
    m = _last_year(d["disposal_date"], w.end) & (d["disposal_type"] == "custody")
    m &= ~np.isin(d["sentence_type"], INDETERMINATE)
    # The principal offence is the most serious, so a case is indictable when any offence is.
    indictable = np.unique(off["episode_id"][off["mode_of_trial"] != "summary"])
    months = d["custody_months"][m & np.isin(d["episode_id"], indictable)]
    return float(np.mean(months)) if len(months) else float("nan")


@measure
def proven_reoffending_no_previous_offences(w: World) -> float:
    """Proven reoffending rate of cohort members with no previous proven offence at the index date."""
    c = w.cohort
    return _rate(c, c["previous_offences"] == 0)


@measure
def proven_reoffending_11_or_more_previous(w: World) -> float:
    """Proven reoffending rate of cohort members with 11 or more previous proven offences."""
    c = w.cohort
    return _rate(c, c["previous_offences"] >= 11)


def _on(start: np.ndarray, stop: np.ndarray, day: int) -> np.ndarray:
    """Rows whose period (start inclusive, stop exclusive; no stop: still open) covers `day`."""
    return (start != NONE) & (start <= day) & ((stop == NONE) | (stop > day))


@measure
def probation_caseload_per_prisoner(w: World) -> float:
    """People on the probation caseload at 31 December 2024 per person in prison that day.

    As OMSQ counts it: people supervised on a court order (community order or suspended
    sentence order with requirements), on licence or post-sentence supervision after release
    ("post-release"), and sentenced prisoners who will be supervised on release ("pre-release":
    in custody under sentence or on recall), each person once.
    """
    t = w.t
    day = min(ref.day_number("2024-12-31"), w.end)
    sup = t["supervision"]
    on_order = sup["person_id"][_on(sup["start_date"], sup["end_date"], day)]
    s = t["custody_spells"]
    inside = _on(s["reception_date"], s["release_date"], day)
    sentenced = inside & ((s["reason"] == "recall") | (
        (s["sentence_date"] != NONE) & (s["sentence_date"] <= day)))
    caseload = np.unique(np.concatenate([on_order, s["person_id"][sentenced]]).astype(str))
    prisoners = np.count_nonzero(inside)
    return len(caseload) / prisoners if prisoners else float("nan")


@measure
def people_dealt_with_per_prisoner(w: World) -> float:
    """Individuals formally dealt with in the last year (prosecuted or cautioned) per prisoner.

    Each episode brought to the magistrates' court (first listing) or cautioned in the last
    year counts once, as the CJS statistics count each proceeding, and each one-off summary
    case received in it and one-off out-of-court disposal issued in it (the published count is
    the defendants proceeded against and the out-of-court disposals); over the average prison
    population of the same year.
    """
    t = w.t
    c = t["court_cases"]
    prosecuted = c["episode_id"][(c["court_type"] == "magistrates") & _last_year(c["receipt_date"], w.end)]
    d = t["disposals"]
    cautioned = d["episode_id"][(d["disposal_type"] == "caution") & _last_year(d["disposal_date"], w.end)]
    n = len(np.unique(np.concatenate([prosecuted, cautioned])))
    n += int(np.count_nonzero(_last_year(_one_offs(w)["receipt_date"], w.end)))
    n += int(np.count_nonzero(_last_year(_out_of_court(w)["disposal_date"], w.end)))
    population = _average_prison_population(t, w.end)
    return n / population if population else float("nan")


def _out_of_court(w: World) -> dict[str, np.ndarray]:
    """The one-off out-of-court disposals (sim/out_of_court.py); none in a world made without them."""
    return w.t.get("out_of_court_disposals", {"disposal_date": np.empty(0, dtype=np.int64)})


@measure
def out_of_court_disposals_per_prisoner(w: World) -> float:
    """Out-of-court disposals issued in the last year per prisoner (average population).

    The careers' cautions and the one-off community resolutions, cannabis warnings and penalty
    notices for disorder, as the CJS statistics count out-of-court disposals.
    """
    d = w.t["disposals"]
    n = int(np.count_nonzero((d["disposal_type"] == "caution") & _last_year(d["disposal_date"], w.end)))
    n += int(np.count_nonzero(_last_year(_out_of_court(w)["disposal_date"], w.end)))
    population = _average_prison_population(w.t, w.end)
    return n / population if population else float("nan")


@measure
def magistrates_receipts_per_prisoner(w: World) -> float:
    """Cases received at the magistrates' courts in the last year per prisoner (average population).

    The careers' cases (one per episode brought to court) and the one-off summary cases, as the
    Criminal Court Statistics count receipts.
    """
    c = w.t["court_cases"]
    n = int(np.count_nonzero((c["court_type"] == "magistrates") & _last_year(c["receipt_date"], w.end)))
    n += int(np.count_nonzero(_last_year(_one_offs(w)["receipt_date"], w.end)))
    population = _average_prison_population(w.t, w.end)
    return n / population if population else float("nan")


@measure
def conviction_ratio(w: World) -> float:
    """Convictions over prosecutions completed in the last year, each case counted once.

    A prosecution completes at the magistrates' court, or at the Crown Court for a case sent
    there for trial; it is a conviction when any offence in it is proven by conviction. The
    one-off summary cases completed in the year count too (convicted on a plea, in absence or
    at trial).
    """
    c, off = w.t["court_cases"], w.t["offences"]
    done = _last_year(c["completion_date"], w.end) & (
        ((c["court_type"] == "magistrates") & (c["outcome"] != "sent_to_crown"))
        | ((c["court_type"] == "crown") & np.isin(c["case_type"], ["trial_either_way", "trial_indictable_only"])))
    episodes = np.unique(c["episode_id"][done])
    convicted = np.unique(off["episode_id"][off["proven"] & (off["method_of_proof"] == "conviction")])
    o = _one_offs(w)
    o_done = _last_year(o["completion_date"], w.end)
    n = len(episodes) + int(o_done.sum())
    hits = int(np.isin(episodes, convicted).sum()) + int(np.isin(o["outcome"][o_done], one_offs.CONVICTED).sum())
    return hits / n if n else float("nan")


@measure
def crown_remanded_in_custody_share(w: World) -> float:
    """Share of Crown Court trial cases received in the last year whose defendant was remanded in custody."""
    c = w.t["court_cases"]
    m = (c["court_type"] == "crown") & np.isin(c["case_type"], ["trial_either_way", "trial_indictable_only"])
    m &= _last_year(c["receipt_date"], w.end)
    return float(np.mean(c["remanded_in_custody"][m].astype(bool))) if m.any() else float("nan")


def _ineffective_share(w: World, court_type: str) -> float:
    c, h = w.t["court_cases"], w.t["hearings"]
    cases = c["case_id"][c["court_type"] == court_type].astype(str)
    m = (h["hearing_type"] == "trial") & _last_year(h["hearing_date"], w.end)
    m &= np.isin(h["case_id"].astype(str), cases)
    return float(np.mean(h["outcome"][m] == "ineffective")) if m.any() else float("nan")


@measure
def magistrates_ineffective_trial_share(w: World) -> float:
    """Share of magistrates' trial listings in the last year that were ineffective (put off on the day)."""
    return _ineffective_share(w, "magistrates")


@measure
def crown_ineffective_trial_share(w: World) -> float:
    """Share of Crown Court trial listings in the last year that were ineffective.

    Listings are effective, ineffective or vacated (a cracked trial: late plea or prosecution
    dropped), as Criminal Court Statistics count trials listed.
    """
    return _ineffective_share(w, "crown")


def _mags_offence_to_completion(w: World, year: int) -> float:
    """Median days from offence to completion of magistrates' cases completed in `year`.

    The case's earliest offence date; cases sent or committed to the Crown Court are left out
    (they complete there), as the published series of cases completed in magistrates' courts.
    """
    c, off = w.t["court_cases"], w.t["offences"]
    a, b = ref.day_number(f"{year}-01-01"), ref.day_number(f"{year}-12-31")
    m = (c["court_type"] == "magistrates") & (c["completion_date"] != NONE)
    m &= (c["completion_date"] >= a) & (c["completion_date"] <= b)
    m &= ~np.isin(c["outcome"], ["sent_to_crown", "committed_for_sentence"])
    if not m.any():
        return float("nan")
    order = np.lexsort((off["offence_date"], off["episode_id"]))
    ep, day = off["episode_id"][order], off["offence_date"][order]
    first = np.r_[True, ep[1:] != ep[:-1]]
    ep, day = ep[first], day[first]
    pos = np.searchsorted(ep, c["episode_id"][m])
    found = (pos < len(ep)) & (ep[np.minimum(pos, len(ep) - 1)] == c["episode_id"][m])
    return float(np.median((c["completion_date"][m] - day[np.minimum(pos, len(ep) - 1)])[found]))


@measure
def magistrates_median_offence_to_completion_days(w: World) -> float:
    """Median days from the earliest offence to completion of magistrates' cases completed in 2023."""
    return _mags_offence_to_completion(w, 2023)


@measure
def magistrates_median_offence_to_completion_days_2019(w: World) -> float:
    """The same for cases completed in 2019, before the pandemic's delays."""
    return _mags_offence_to_completion(w, 2019)


@measure
def prisoners_aged_40_or_over_share(w: World) -> float:
    """Share of prisoner-days in the last year of people aged 40 or over (age at mid-year)."""
    t, end = w.t, w.end
    s, p = t["custody_spells"], t["persons"]
    dob = p["dob"][np.searchsorted(p["person_id"], s["person_id"])]
    old = (end - 182 - dob) / 365.25 >= 40
    return prisoner_days_last_year(t, end, old) / max(prisoner_days_last_year(t, end), 1)


def targets() -> list[dict]:
    """The calibration targets file, in order."""
    text = resources.files("justice.sim").joinpath("reference", "calibration_targets.yaml").read_text("utf-8")
    return yaml.safe_load(text)["targets"]


def calibrate(t: Tables, start: int, end: int) -> list[dict]:
    """Every headline figure: simulated value, target, tolerance, whether it is within, source.

    `min_persons` (the smallest world at which the figure holds on every seed measured) and
    `known_gap` (why a figure is not yet reproduced) are copied from the targets file, or None.
    """
    world = World(t, start, end)
    out = []
    for target in targets():
        value = MEASURES[target["measure"]](world)
        ok = bool(np.isfinite(value) and abs(value - target["target"]) <= target["tolerance"])
        out.append({"figure": target["measure"], "simulated": round(float(value), 4) if np.isfinite(value) else None,
                    "target": target["target"], "tolerance": target["tolerance"], "within_tolerance": ok,
                    "min_persons": target.get("min_persons"), "known_gap": target.get("known_gap"),
                    "source": target["source"]})
    return out
