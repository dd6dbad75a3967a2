"""The Monte Carlo microsimulation: every person in custody on the origin day, plus receptions drawn
from recent flows, each released under the rules and perhaps recalled from licence; counted on
the same day of each month.

Each repetition draws everything that is uncertain (how many receptions, who they are, how long a
remand or a recall lasts, the sentence of someone on remand) from its own stream. Scenarios run
with the same seed, so the same people come in and differ only where the scenario makes them:
the difference from the baseline is then the scenario's effect, not noise between two draws.
Everything is vectorised over people and repetitions at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from justice.policy import load_release_rules
from justice.sim.reference import day_number

from . import rules as release_rules
from .data import OriginData
from .flows import Flows, licence_end
from .scenario import BASELINE, Scenario

CASE_TYPES = ("remand", "sentenced", "recall")
SENTENCE_BANDS = ("remand", "less than 12 months", "12 months to less than 4 years",
                  "4 years or more", "indeterminate", "recall")
SEXES = ("M", "F")
BAND_EDGES = np.array([365, 4 * 365 + 1])  # 12 months, 4 years (in days)
OVERDUE_DAYS = 14
"""Someone still held after the day the rules would have released them (a sentence the data
records shorter than it was, or not linked) leaves within this many days, evenly spread."""


@dataclass(frozen=True)
class Segments:
    """Spans of time people spend in custody in one status, over all repetitions."""

    rep: np.ndarray
    start: np.ndarray
    end: np.ndarray
    case_type: np.ndarray       # index into CASE_TYPES
    band: np.ndarray            # index into SENTENCE_BANDS
    sex: np.ndarray             # index into SEXES
    establishment: np.ndarray   # index into OriginData.establishments


@dataclass(frozen=True)
class People:
    """Each simulated person's whole stay (reception and release), over all repetitions."""

    rep: np.ndarray
    entry: np.ndarray
    exit: np.ndarray


@dataclass(frozen=True)
class Run:
    """One scenario's repetitions: the status spans and the people's stays."""

    scenario: Scenario
    segments: Segments
    people: People


def months_from(origin: dt.date, months: int) -> list[dt.date]:
    """The origin and the same day of each following month (the last day where shorter)."""
    out = []
    for m in range(months + 1):
        y, mo = divmod(origin.month - 1 + m, 12)
        year, month = origin.year + y, mo + 1
        last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        out.append(dt.date(year, month, min(origin.day, last)))
    return out


def simulate(data: OriginData, flows: Flows, scenario: Scenario, *, months: int,
             repetitions: int, seed: int, kept_returns: dict[str, np.ndarray] | None = None) -> Run:
    """Run `repetitions` futures of `months` months under `scenario`.

    With `kept_returns` (from `returns_in_flows`), the people released in the projection come
    back on new charges (`flows.returns`), and the court receptions that were such returns are
    thinned to the chance given for each day after the origin, so the modelled returns take
    their place rather than adding to them. Without it, receptions are the recent flows as they
    are and releases bring no returns.
    """
    rules = load_release_rules(extra=scenario.add_rules, without=scenario.withdraw_rules)
    origin = data.origin_day
    horizon = day_number(months_from(data.origin, months)[-1])
    change = day_number(scenario.start) if scenario.start else origin
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    est_index = {e: i for i, e in enumerate(data.establishments)}
    modelled = kept_returns is not None and flows.returns is not None and len(flows.returns.pool) > 0
    thin = kept_returns if modelled else None
    parts = [
        _stock(data, flows, scenario, rules, streams[0], repetitions, change),
        _remand_receptions(data, flows, scenario, rules, streams[1], repetitions, change, horizon,
                           thin),
        _sentenced_receptions(data, flows, scenario, rules, streams[2], repetitions, change,
                              horizon, thin),
    ]
    segs = [seg for part in parts for seg in part]
    if modelled:
        segs += _returns(data, flows, scenario, rules, streams[4], change, segs)
    segs += _recalls(data, flows, scenario, streams[3], repetitions, change, horizon, segs)
    s = data.spells
    # Codes a spell at a time (tens of thousands), then gathered for millions of segments.
    sex_code = (s.sex == "F").astype(np.int8)
    est_code = np.array([est_index[e] for e in s.establishment.tolist()], dtype=np.int32)
    spell = np.concatenate([g["spell"] for g in segs])
    seg = Segments(
        rep=np.concatenate([g["rep"] for g in segs]),
        start=np.concatenate([g["start"] for g in segs]),
        end=np.concatenate([g["end"] for g in segs]),
        case_type=np.concatenate([np.full(len(g["rep"]), CASE_TYPES.index(g["case_type"]), np.int8)
                                  for g in segs]),
        band=np.concatenate([g["band"] for g in segs]).astype(np.int8),
        sex=sex_code[spell],
        establishment=est_code[spell],
    )
    people = People(
        rep=np.concatenate([g["rep"] for g in segs if g["whole"]]),
        entry=np.concatenate([g["entry"] for g in segs if g["whole"]]),
        exit=np.concatenate([g["exit"] for g in segs if g["whole"]]),
    )
    return Run(scenario, seg, people)


def _band(length_days: np.ndarray, sentence_type: np.ndarray) -> np.ndarray:
    """SENTENCE_BANDS index of each sentence: by its term, or indeterminate (life, IPP)."""
    return np.where(release_rules.is_indeterminate(sentence_type), SENTENCE_BANDS.index("indeterminate"),
                    1 + np.searchsorted(BAND_EDGES, length_days, side="right"))


def _segment(rep, spell, start, end, case_type, band, *, entry=None, exit=None,
             licence_end=None) -> dict:
    """A block of status spans; with entry/exit it is also each person's whole stay, and with
    licence_end a release on licence (which may end in a recall)."""
    return {"rep": rep, "spell": spell, "start": start, "end": end, "case_type": case_type,
            "band": band, "whole": entry is not None, "entry": entry, "exit": exit,
            "licence_end": licence_end}


def _sentenced_stays(rules, flows: Flows, rep, spell, sentence_day, length, group, sentence_type,
                     remand_days, remand_start, entry, origin, rng, outcome=None) -> list[dict]:
    """Status spans of people sentenced on `sentence_day`: remand up to it (if any), then
    sentenced to the release day the rules give (`outcome`, if already worked out); where they
    leave it to the Parole Board, after a delay drawn as the Board has released of late."""
    if outcome is None:
        outcome = release_rules.release(rules, sentence_day=sentence_day, length_days=length,
                                        offence_group=group, remand_days=remand_days,
                                        sentence_type=sentence_type)
    release = outcome.release_day
    if flows.parole is not None:
        release = flows.parole.release_days(outcome, sentence_type, rng, origin)
    release = np.maximum(release, sentence_day)
    # Still held past the rules' release day on the origin: out within a fortnight.
    overdue = release <= origin
    release = np.where(overdue, origin + 1 + rng.integers(0, OVERDUE_DAYS, len(release)), release)
    band = _band(length, sentence_type)
    remanded = remand_days > 0
    return [
        _segment(rep[remanded], spell[remanded], remand_start[remanded], sentence_day[remanded],
                 "remand", np.zeros(remanded.sum(), np.int64)),
        _segment(rep, spell, sentence_day, release, "sentenced", band, entry=entry, exit=release,
                 licence_end=licence_end(sentence_day, length, release)),
    ]


def _court_time(start: np.ndarray, outcome: np.ndarray, change: int, capacity: float) -> np.ndarray:
    """Outcome days once courts sit `capacity` times as much from `change`: the part of the wait
    after it shrinks (or grows) in proportion."""
    if capacity == 1.0:
        return outcome
    pivot = np.maximum(start, change)
    after = outcome > pivot
    return np.where(after, pivot + np.ceil((outcome - pivot) / capacity).astype(np.int64), outcome)


def _remand_pathways(flows: Flows, scenario: Scenario, rules, rng, rep, spell, start, served,
                     origin, change, entry) -> list[dict]:
    """People on remand: when the remand ends, and whether in a custodial sentence (then served
    under the rules) or in release."""
    days = flows.remand_duration.draw(rng, served)
    outcome = _court_time(np.maximum(start, origin), start + days, change, scenario.court_sitting_capacity)
    pick = flows.remand_outcomes.draw(rng, days)
    sentenced = flows.remand_outcomes.sentenced[pick]
    length = flows.remand_outcomes.length_days[pick]
    length = np.where(outcome >= change, np.round(length * scenario.stretch), length).astype(np.int64)
    s, r = sentenced, ~sentenced
    out = [_segment(rep[r], spell[r], start[r], outcome[r], "remand", np.zeros(r.sum(), np.int64),
                    entry=entry[r], exit=outcome[r])]
    out += _sentenced_stays(rules, flows, rep[s], spell[s], outcome[s], length[s],
                            flows.remand_outcomes.offence_group[pick][s],
                            flows.remand_outcomes.sentence_type[pick][s], outcome[s] - start[s],
                            start[s], entry[s], origin, rng)
    return out


def _stock(data: OriginData, flows: Flows, scenario: Scenario, rules, rng, reps: int,
           change: int) -> list[dict]:
    """The people in custody on the origin day, as each repetition sees them."""
    s = data.spells
    origin = data.origin_day
    stock = np.flatnonzero(data.in_custody())
    known = stock[(s.sentence_day[stock] >= 0) & (s.reason[stock] != "recall")]
    unknown_sentence = stock[(s.sentence_day[stock] < 0) & (s.reason[stock] == "sentenced")]
    remand = stock[(s.sentence_day[stock] < 0) & (s.reason[stock] == "remand")]
    recall = stock[s.reason[stock] == "recall"]

    def tiled(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.repeat(np.arange(reps), len(idx)), np.tile(idx, reps)

    out: list[dict] = []
    # What the rules say of their release is the same in every repetition: worked out once (a
    # Parole Board's decision is drawn in each).
    remand_days = np.where(s.reason[known] == "remand", s.sentence_day[known] - s.start[known], 0)
    outcome = release_rules.release(
        rules, sentence_day=s.sentence_day[known], length_days=s.length_days[known],
        offence_group=s.offence_group[known], remand_days=remand_days,
        sentence_type=s.sentence_type[known])
    rep, spell = tiled(known)
    out += _sentenced_stays(rules, flows, rep, spell, s.sentence_day[spell], s.length_days[spell],
                            None, s.sentence_type[spell], np.tile(remand_days, reps), s.start[spell],
                            s.start[spell], origin, rng, outcome=release_rules.tile(outcome, reps))

    # A sentenced reception whose sentence the courts' data does not show (not linked): a recent
    # sentence long enough to still be serving at half-time.
    rep, spell = tiled(unknown_sentence)
    served = origin - s.start[spell]
    lengths = flows.sentence_lengths
    low = np.searchsorted(lengths, 2 * served, side="right")
    pick = np.minimum(low + (rng.random(len(spell)) * (len(lengths) - low)).astype(np.int64),
                      len(lengths) - 1)
    out += _sentenced_stays(rules, flows, rep, spell, s.start[spell], lengths[pick],
                            np.full(len(spell), "", dtype=object), np.full(len(spell), "", dtype=object),
                            np.zeros(len(spell), np.int64), s.start[spell], s.start[spell], origin, rng)

    rep, spell = tiled(remand)
    out += _remand_pathways(flows, scenario, rules, rng, rep, spell, s.start[spell],
                            origin - s.start[spell], origin, change, s.start[spell])

    rep, spell = tiled(recall)
    end = s.start[spell] + flows.recall_duration.draw(rng, origin - s.start[spell])
    if flows.recall_licence_end is not None:
        # The stay learnt runs past the licence's end; a recall ends there at the latest.
        last = flows.recall_licence_end[spell]
        end = np.where(last > origin, np.minimum(end, last), end)
    out.append(_segment(rep, spell, s.start[spell], end, "recall",
                        np.full(len(spell), SENTENCE_BANDS.index("recall")),
                        entry=s.start[spell], exit=end))
    return out


def _arrivals(flows: Flows, reason: str, rng, reps: int, origin: int, horizon: int,
              multiplier_from: float, change: int,
              thin: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(repetition, reception day, pool spell) of the receptions of one kind after the origin:
    a Poisson number each day at the recent rate, times the scenario's multiplier from its date;
    with `thin`, a copy of a return (flows.returns.pool) is kept with the day's chance in it."""
    days = np.arange(origin + 1, horizon + 1)
    pool = flows.pools[reason]
    if len(pool) == 0 or len(days) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    lam = np.where(days >= change, multiplier_from, 1.0) * flows.daily_rate[reason]
    counts = rng.poisson(np.broadcast_to(lam, (reps, len(days))))
    rep = np.repeat(np.arange(reps), counts.sum(axis=1))
    day = np.repeat(np.tile(days, reps), counts.ravel())
    spell = pool[rng.integers(0, len(pool), len(day))]
    if thin is not None:
        u = rng.random(len(day))
        is_return = np.isin(spell, flows.returns.pool)
        keep = ~is_return | (u < thin[reason][day - origin - 1])
        rep, day, spell = rep[keep], day[keep], spell[keep]
    return rep, day, spell


def _remand_receptions(data, flows, scenario, rules, rng, reps, change, horizon,
                       thin=None) -> list[dict]:
    mult = scenario.charges * scenario.remand_rate
    rep, day, spell = _arrivals(flows, "remand", rng, reps, data.origin_day, horizon, mult, change,
                                thin)
    return _remand_pathways(flows, scenario, rules, rng, rep, spell, day, np.zeros(len(day), np.int64),
                            data.origin_day, change, day)


def _sentenced_receptions(data, flows, scenario, rules, rng, reps, change, horizon,
                          thin=None) -> list[dict]:
    mult = scenario.charges * scenario.court_sitting_capacity
    rep, day, spell = _arrivals(flows, "sentenced", rng, reps, data.origin_day, horizon, mult,
                                change, thin)
    return _sentenced_from(data, flows, scenario, rules, rng, rep, day, spell, change)


def _sentenced_from(data, flows, scenario, rules, rng, rep, day, spell, change) -> list[dict]:
    """Sentenced receptions on `day`, each a copy of the reception `spell`."""
    s = data.spells
    length = s.length_days[spell]
    if (length <= 0).any():
        fill = flows.sentence_lengths[rng.integers(0, len(flows.sentence_lengths), len(day))]
        length = np.where(length > 0, length, fill)
    length = np.where(day >= change, np.round(length * scenario.stretch), length).astype(np.int64)
    return _sentenced_stays(rules, flows, rep, spell, day, length, s.offence_group[spell],
                            s.sentence_type[spell], np.zeros(len(day), np.int64), day, day,
                            data.origin_day, rng)


def _return_draws(flows: Flows, rng, segs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(repetition, reception day, pool spell) of the returns on a new charge of everyone
    released from a sentence in the projection. Every release gets its draws, returning or not,
    so a scenario that moves some releases leaves every other return as the baseline has it."""
    released = [g for g in segs if g["licence_end"] is not None]
    rep = np.concatenate([g["rep"] for g in released])
    out = np.concatenate([g["exit"] for g in released])
    after = flows.returns.after(rng.random(len(rep)))
    pick = rng.integers(0, len(flows.returns.pool), len(rep))
    r = after >= 0
    return rep[r], out[r] + after[r], flows.returns.pool[pick[r]]


def _returns(data, flows, scenario, rules, rng, change, segs) -> list[dict]:
    """Custody of the people released in the projection who come back on a new charge: a copy of
    a recent return, remanded (then sentenced or released) or sentenced, from the return day.
    Returns beyond the horizon are kept (counted nowhere) so every scenario draws alike."""
    rep, day, spell = _return_draws(flows, rng, segs)
    remand = data.spells.reason[spell] == "remand"
    r, s = remand, ~remand
    out = _remand_pathways(flows, scenario, rules, rng, rep[r], spell[r], day[r],
                           np.zeros(r.sum(), np.int64), data.origin_day, change, day[r])
    out += _sentenced_from(data, flows, scenario, rules, rng, rep[s], day[s], spell[s], change)
    return out


def returns_in_flows(data: OriginData, flows: Flows, *, months: int, repetitions: int,
                     seed: int) -> dict[str, np.ndarray] | None:
    """By reason, the chance on each day after the origin that a court reception which was a
    return (a copy from flows.returns.pool) is kept, once modelled returns come in its place.

    The baseline is run once without returns; its releases' returns, expected by day (a 31-day
    moving mean over the repetitions), are the part of each day's returns the model now makes,
    out of the recent flow's returns (its `share` of the daily rate). None if nothing returns."""
    ret = flows.returns
    if ret is None or len(ret.pool) == 0:
        return None
    origin = data.origin_day
    horizon = day_number(months_from(data.origin, months)[-1])
    run_segs = _baseline_segments(data, flows, months=months, repetitions=repetitions, seed=seed)
    _, day, spell = _return_draws(flows, np.random.default_rng([seed, 4]), run_segs)
    n = horizon - origin
    inside = (day > origin) & (day <= horizon)
    kernel = np.ones(31) / 31
    kept = {}
    for reason in ("remand", "sentenced"):
        of_reason = inside & (data.spells.reason[spell] == reason)
        expected = np.bincount(day[of_reason] - origin - 1, minlength=n)[:n] / repetitions
        expected = np.convolve(np.pad(expected, 15, mode="edge"), kernel, mode="valid")
        in_flow = ret.share[reason] * flows.daily_rate[reason]
        kept[reason] = (np.clip(1.0 - expected / in_flow, 0.0, 1.0) if in_flow > 0
                        else np.ones(n))
    return kept


def _baseline_segments(data, flows, *, months, repetitions, seed) -> list[dict]:
    """The baseline's segments without returns (to see when its releases come)."""
    rules = load_release_rules()
    origin = data.origin_day
    horizon = day_number(months_from(data.origin, months)[-1])
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    parts = [
        _stock(data, flows, BASELINE, rules, streams[0], repetitions, origin),
        _remand_receptions(data, flows, BASELINE, rules, streams[1], repetitions, origin, horizon),
        _sentenced_receptions(data, flows, BASELINE, rules, streams[2], repetitions, origin,
                              horizon),
    ]
    return [seg for part in parts for seg in part]


def _recalls(data, flows, scenario, rng, reps, change, horizon, segs) -> list[dict]:
    """Recalls from licence: of each release in the projection, and of the licences already
    running on the origin, at the chance learnt from the data (times the scenario's `rate` from
    its date), on a day spread evenly over the licence; back in custody for a stay drawn from
    recent recalls (times `time_on_recall`), never past the licence's end."""
    origin = data.origin_day
    released = [g for g in segs if g["licence_end"] is not None]
    rep = np.concatenate([np.repeat(np.arange(reps), len(flows.on_licence))]
                         + [g["rep"] for g in released])
    spell = np.concatenate([np.tile(flows.on_licence, reps)] + [g["spell"] for g in released])
    last = np.concatenate([np.tile(flows.on_licence_end, reps)] + [g["licence_end"] for g in released])
    out = np.concatenate([np.tile(data.spells.end[flows.on_licence], reps)]
                         + [g["exit"] for g in released])
    # Only the part of a licence after the origin can still hold a recall.
    span = np.maximum(last - out, 1)
    begin = np.maximum(out, origin)
    if flows.recall_timing is None:
        chance = flows.recall_probability * np.clip(last - begin, 0, None) / span
        day = begin + 1 + np.floor(rng.random(len(rep)) * np.maximum(last - begin, 0)).astype(np.int64)
    else:
        # When in the licence, as learnt: a licence already running on the origin has its
        # remaining chance, given no recall so far.
        timing = flows.recall_timing
        gone = np.clip((begin - out) / span, 0, 1)
        before = timing.at(gone)
        chance = (timing.probability - before) / np.maximum(1.0 - before, 1e-12)
        target = before + rng.random(len(rep)) * (timing.probability - before)
        day = out + np.ceil(timing.fraction_at(target) * span).astype(np.int64)
        day = np.clip(day, begin + 1, np.maximum(last, begin + 1))
    chance = np.where(day >= change, chance * scenario.recall_rate, chance)
    # Every draw is made for every licence, recalled or not, so a scenario that moves some
    # releases leaves everyone else's recall as the baseline has it.
    u = rng.random(len(rep))
    r = np.flatnonzero((rng.random(len(rep)) < chance) & (day <= horizon) & (last > begin))
    rep, spell, day, last = rep[r], spell[r], day[r], last[r]
    stay = flows.recall_duration.at(u[r], np.zeros(len(r), np.int64))
    stay = np.where(day >= change, np.maximum(1, np.round(stay * scenario.time_on_recall)), stay)
    end = np.minimum(day + stay.astype(np.int64), np.maximum(last, day + 1))
    return [_segment(rep, spell, day, end, "recall",
                     np.full(len(r), SENTENCE_BANDS.index("recall")), entry=day, exit=end)]
