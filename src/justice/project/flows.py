"""The flows a projection carries forward, learnt from the data known on the origin day.

Receptions from court (remand, sentenced) come at the last year's daily rate, each a copy of a
recent reception (sex, establishment, sentence). Recalls come from licences: the chance that a
licence ends in a recall is learnt from the last year. How long people stay is learnt with
censoring handled: a spell still open on the origin day counts as "at least this long"
(Kaplan-Meier, over the last year's exits), so recent long remands are not lost. A remand ends
either in a custodial sentence (the person stays, now sentenced) or in release; which, and the
sentence, come from remand spells that ended after a similar time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from justice.policy import ReleaseOutcome, ReleaseRules, load_release_rules
from justice.policy.engine import NO_DAY

from .data import FLOW_DAYS, LOOKBACK_YEARS, OriginData
from .rules import is_indeterminate, release

MAX_DAYS = 10 * 365
"""Longest stay learnt (ten years); a longer recorded stay counts as this long."""

WINDOW_DAYS = 365
"""Stays are learnt from what happened in the last year: the hazard of leaving after each
duration as it was then (a period measure), so lengthening court waits show at once."""

TAIL_MEAN_DAYS = 180.0
"""Mean of the extra days drawn for someone who has waited longer than any recorded stay."""


def licence_end(sentence_day: np.ndarray, length_days: np.ndarray, release_day: np.ndarray) -> np.ndarray:
    """Last day a released prisoner can be recalled: the sentence's end, where the licence ends.

    The supervision that follows a sentence under two years (Offender Rehabilitation Act 2014)
    runs to a year after release, but breaking it is dealt with by a court, not by recall
    (Criminal Justice Act 2003 s.256AC), and a recall lasts at most to the sentence's end."""
    return np.maximum(sentence_day + length_days, release_day)


@dataclass(frozen=True)
class Duration:
    """A length-of-stay distribution learnt with censoring (Kaplan-Meier), to draw from."""

    times: np.ndarray   # distinct event times (days), ascending
    cdf: np.ndarray     # P(stay <= times[k])

    @classmethod
    def fit(cls, entry: np.ndarray, exit: np.ndarray, ended: np.ndarray) -> Duration:
        """Fit from stays watched from `entry` days in to `exit` days in (`ended` false where the
        stay was still going on at `exit`), so a stay that began before the window counts only
        for the durations the window saw (left truncation)."""
        entry = np.maximum(np.asarray(entry, dtype=np.int64), 0)
        exit = np.minimum(np.maximum(np.asarray(exit, dtype=np.int64), 1), MAX_DAYS)
        seen = exit > entry
        entry, exit, ended = entry[seen], exit[seen], np.asarray(ended)[seen]
        if not ended.any():
            return cls(np.array([int(exit.max()) if len(exit) else 90]), np.array([1.0]))
        # At risk at duration t when entry < t <= exit; an event at t when it ended at exit = t.
        change = np.bincount(entry + 1, minlength=MAX_DAYS + 2) - np.bincount(exit + 1, minlength=MAX_DAYS + 2)
        at_risk = np.cumsum(change)[: MAX_DAYS + 1]
        events = np.bincount(exit[ended], minlength=MAX_DAYS + 1)[: MAX_DAYS + 1]
        times = np.flatnonzero(events)
        survival = np.cumprod(1.0 - events[times] / at_risk[times])
        return cls(times, 1.0 - survival)

    def cdf_at(self, days: np.ndarray) -> np.ndarray:
        """P(stay <= days)."""
        idx = np.searchsorted(self.times, days, side="right") - 1
        return np.where(idx >= 0, self.cdf[np.maximum(idx, 0)], 0.0)

    def draw(self, rng: np.random.Generator, served: np.ndarray) -> np.ndarray:
        """Total stay of people who have been in `served` days so far (0 for a new reception),
        drawn from the distribution given that it is longer than that."""
        return self.at(rng.random(len(served)), served)

    def at(self, u: np.ndarray, served: np.ndarray) -> np.ndarray:
        """The stays at uniform draws `u` (the inverse of the distribution given `served`)."""
        served = np.asarray(served, dtype=np.int64)
        floor = self.cdf_at(served)
        target = floor + u * (1.0 - floor)
        idx = np.searchsorted(self.cdf, target, side="left")
        inside = idx < len(self.times)
        stay = self.times[np.minimum(idx, len(self.times) - 1)]
        # Beyond the longest recorded stay: a little longer, not forever (an exponential tail
        # drawn from the same uniform, rescaled to the mass left beyond it).
        left = np.clip((target - self.cdf[-1]) / np.maximum(1.0 - self.cdf[-1], 1e-12), 0, 1 - 1e-12)
        tail = np.maximum(self.times[-1], served) + 1 - TAIL_MEAN_DAYS * np.log1p(-left)
        stay = np.where(inside, stay, np.round(tail).astype(np.int64))
        return np.maximum(stay, served + 1)


@dataclass(frozen=True)
class RemandOutcomes:
    """Remands that ended by the origin, ordered by their length: how each ended (a custodial
    sentence or release) and the sentence, to draw from by remand length."""

    days: np.ndarray          # days on remand until the outcome
    sentenced: np.ndarray     # ended in a custodial sentence
    length_days: np.ndarray   # the sentence's term (0 if none)
    offence_group: np.ndarray
    sentence_type: np.ndarray  # the sentence's type ('' if none)

    def draw(self, rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
        """Index of an ended remand of about the same length for each of `days`."""
        n = len(self.days)
        width = max(1, n // 40)
        pos = np.searchsorted(self.days, days) + rng.integers(-width, width + 1, len(days))
        return np.clip(pos, 0, n - 1)


@dataclass(frozen=True)
class ParoleDelays:
    """How long after the first day the Parole Board may release someone it does: learnt from the
    sentences past that day in the last year (Kaplan-Meier, as the stays: someone still held on
    the origin counts as "at least this long"; someone out on the day release became automatic
    as "at least this long" there, since the Board did not release them first), apart for
    indeterminate sentences (life, IPP) and extended ones, whose Boards release at very different
    rates. A kind with no release seen borrows the other's; with none seen at all, release is on
    the first day the Board may (and `observed` says so)."""

    indeterminate: Duration | None
    extended: Duration | None
    observed: dict[str, int]   # releases by the Board seen in the last year, by kind

    def release_days(self, rel: ReleaseOutcome, sentence_type: np.ndarray, rng: np.random.Generator,
                     origin: int) -> np.ndarray:
        """Release day of each sentence: the rules' day, or where the Board decides, the first
        day it may plus a delay drawn given the time already waited by the origin, no later
        than the day release becomes automatic."""
        day = rel.release_day.copy()
        p = np.flatnonzero(rel.parole_board)
        if len(p) == 0:
            return day
        waited = np.maximum(origin - rel.release_day[p], 0)
        indeterminate = is_indeterminate(np.asarray(sentence_type, dtype=object)[p])
        delay = np.zeros(len(p), np.int64)
        for mask, own, other in ((indeterminate, self.indeterminate, self.extended),
                                 (~indeterminate, self.extended, self.indeterminate)):
            fitted = own or other
            if mask.any() and fitted is not None:
                delay[mask] = fitted.draw(rng, waited[mask])
        out = rel.release_day[p] + delay
        automatic = rel.automatic_day[p]
        day[p] = np.where(automatic != NO_DAY, np.minimum(out, np.maximum(automatic, rel.release_day[p])), out)
        return day


def learn_parole_delays(data: OriginData, rules: ReleaseRules | None = None) -> ParoleDelays:
    """Parole Board release delays from the sentences known on the origin day, whose first
    possible release day the rules in force (`rules`, default the current rule files) give."""
    s = data.spells
    origin = data.origin_day
    window = origin - WINDOW_DAYS
    idx = np.flatnonzero((s.reason != "recall") & (s.sentence_day >= 0) & (s.length_days > 0)
                         & (s.sentence_type != ""))
    remand_days = np.where(s.reason[idx] == "remand", s.sentence_day[idx] - s.start[idx], 0)
    rel = release(rules or load_release_rules(), sentence_day=s.sentence_day[idx],
                  length_days=s.length_days[idx], offence_group=s.offence_group[idx],
                  remand_days=remand_days, sentence_type=s.sentence_type[idx])
    eligible = rel.parole_board & (rel.release_day <= origin)
    spell, first, automatic = idx[eligible], rel.release_day[eligible], rel.automatic_day[eligible]
    out = np.where(s.end[spell] >= 0, s.end[spell], origin)
    at_automatic = (automatic != NO_DAY) & (out >= automatic - 1)
    released = (s.end[spell] >= 0) & ~at_automatic
    indeterminate = is_indeterminate(s.sentence_type[spell])
    fitted, observed = {}, {}
    for kind, mask in (("indeterminate", indeterminate), ("extended", ~indeterminate)):
        # Watched from the window's start (or eligibility, if later) to release or the origin.
        seen = mask & (out >= window)
        observed[kind] = int((released & seen & (out > window)).sum())
        fitted[kind] = Duration.fit(window - first[seen], out[seen] - first[seen],
                                    released[seen]) if observed[kind] else None
    return ParoleDelays(fitted["indeterminate"], fitted["extended"], observed)


RECALL_BINS = 100
"""The licence is cut into this many equal parts to learn when in it recalls come."""


@dataclass(frozen=True)
class RecallTiming:
    """When in a licence recalls come: `incidence[k]` is the chance that a licence has ended in
    a recall by the fraction k / RECALL_BINS of its length (from release to its last day)."""

    incidence: np.ndarray

    @property
    def probability(self) -> float:
        """The chance a whole licence ends in a recall."""
        return float(self.incidence[-1])

    def at(self, fraction: np.ndarray) -> np.ndarray:
        """Chance of a recall by `fraction` of the licence."""
        return np.interp(fraction, np.linspace(0, 1, RECALL_BINS + 1), self.incidence)

    def fraction_at(self, target: np.ndarray) -> np.ndarray:
        """The fraction of the licence by which the chance of a recall reaches `target`."""
        grid = np.linspace(0, 1, RECALL_BINS + 1)
        # np.interp needs rising x: flat stretches (no recalls there) are nudged apart.
        rising = self.incidence + grid * 1e-12
        return np.interp(target, rising, grid)


def learn_recall_timing(data: OriginData, released: np.ndarray, last: np.ndarray) -> RecallTiming:
    """The recall incidence over the licence, from the licences of `released` spells (ending on
    `last`) watched over the last RETURN_YEARS years: Kaplan-Meier on the fraction of the
    licence gone, a licence entering when the window opens (left truncation) and leaving at its
    first recall, its end or the origin (censored)."""
    s = data.spells
    origin = data.origin_day
    window = origin - 365 * RETURN_YEARS
    span = np.maximum(last - s.end[released], 1).astype(float)
    # The person's first recall after the release, within the licence.
    recalls = np.flatnonzero((s.reason == "recall") & (s.person >= 0))
    recalls = recalls[np.lexsort((s.start[recalls], s.person[recalls]))]
    key = s.person[recalls] * (1 << 32) + s.start[recalls]
    nxt = np.searchsorted(key, s.person[released] * (1 << 32) + s.end[released], side="right")
    hit = recalls[np.minimum(nxt, max(len(recalls) - 1, 0))] if len(recalls) else nxt
    found = (nxt < len(recalls)) & (s.person[hit] == s.person[released]) if len(recalls) else (
        np.zeros(len(released), bool))
    recall_day = np.where(found, s.start[hit] if len(recalls) else 0, -1)
    event = found & (recall_day <= np.minimum(last, origin))
    stop = np.where(event, recall_day, np.minimum(last, origin))
    enter = np.maximum(s.end[released], window)
    seen = stop > enter
    bins = RECALL_BINS
    a = np.clip(((enter - s.end[released]) / span * bins).astype(np.int64), 0, bins - 1)[seen]
    b = np.clip(((stop - s.end[released]) / span * bins).astype(np.int64), 0, bins - 1)[seen]
    ev = event[seen]
    at_risk = np.cumsum(np.bincount(a, minlength=bins + 1) - np.bincount(b + 1, minlength=bins + 1))[:bins]
    events = np.bincount(b[ev], minlength=bins)[:bins]
    hazard = np.where(at_risk > 0, events / np.maximum(at_risk, 1), 0.0)
    return RecallTiming(np.r_[0.0, 1.0 - np.cumprod(1.0 - hazard)])


def recall_licence_end(s, recall: np.ndarray) -> np.ndarray:
    """The last day of the licence each recall spell in `recall` is from: the licence of the
    person's latest release from a sentence before it; -1 where there is none."""
    released = np.flatnonzero((s.reason != "recall") & (s.sentence_day >= 0) & (s.end >= 0)
                              & (s.person >= 0))
    released = released[np.lexsort((s.end[released], s.person[released]))]
    key = s.person[released] * (1 << 32) + s.end[released]
    prev = np.searchsorted(key, s.person[recall] * (1 << 32) + s.start[recall], side="right") - 1
    spell = released[np.maximum(prev, 0)] if len(released) else np.zeros(len(recall), np.int64)
    found = (prev >= 0) & (s.person[spell] == s.person[recall]) if len(released) else (
        np.zeros(len(recall), bool))
    last = licence_end(s.sentence_day[spell], s.length_days[spell], s.end[spell])
    return np.where(found & (last > s.start[recall]), last, -1)


RETURN_YEARS = 3
"""How long after a release a new reception on a new charge counts as that release's return:
the return-time distribution is learnt over this long, and releases this recent are watched."""


@dataclass(frozen=True)
class Returns:
    """People released from a sentence coming back into custody on a new charge (not recall):
    when, after their release, and as whom.

    `cdf` is the chance of a return by each of `times` days after release, learnt from the
    releases of the last RETURN_YEARS years (Kaplan-Meier, a release still out on the origin
    counting as "not yet"); it stays below one, the rest never return within RETURN_YEARS.
    `pool` are last year's remand and sentenced receptions that were such returns (indices into
    OriginData.spells): a modelled return is a copy of one. `share` is, by reason, the part of
    last year's receptions that were returns: the part of the court flow the model takes over.
    """

    times: np.ndarray
    cdf: np.ndarray
    pool: np.ndarray
    share: dict[str, float]

    def after(self, u: np.ndarray) -> np.ndarray:
        """Days from release to return at uniform draws `u`; -1 where `u` falls in "no return"."""
        idx = np.searchsorted(self.cdf, u, side="right")
        inside = idx < len(self.times)
        return np.where(inside, self.times[np.minimum(idx, len(self.times) - 1)], -1)


def learn_returns(data: OriginData) -> Returns:
    """How released prisoners come back on a new charge, from the spells known on the origin."""
    s = data.spells
    origin = data.origin_day
    since = origin - 365 * RETURN_YEARS
    court = (s.reason != "recall") & (s.person >= 0)
    # Receptions from court ordered by person and day, to find each release's next one.
    rec = np.flatnonzero(court)
    rec = rec[np.lexsort((s.start[rec], s.person[rec]))]
    key = s.person[rec] * (1 << 32) + s.start[rec]
    released = np.flatnonzero(court & (s.sentence_day >= 0) & (s.end >= since) & (s.end < origin))
    nxt = np.searchsorted(key, s.person[released] * (1 << 32) + s.end[released], side="right")
    found = nxt < len(rec)
    nxt_rec = rec[np.minimum(nxt, len(rec) - 1)]
    found &= s.person[nxt_rec] == s.person[released]
    back = np.where(found, s.start[nxt_rec] - s.end[released], -1)
    watched = origin - s.end[released]
    returned = found & (back <= np.minimum(watched, 365 * RETURN_YEARS))
    exit = np.where(returned, back, np.minimum(watched, 365 * RETURN_YEARS))
    if returned.any():
        fitted = Duration.fit(np.zeros(len(exit), np.int64), exit, returned)
        times, cdf = fitted.times, fitted.cdf
    else:
        times, cdf = np.array([1]), np.array([0.0])

    # Last year's receptions that came within RETURN_YEARS of a release from a sentence: the
    # returns among the flows. The previous release is the person's latest spell end before.
    recent = rec[s.start[rec] > origin - FLOW_DAYS]
    ends = np.flatnonzero(court & (s.sentence_day >= 0) & (s.end >= 0))
    ends = ends[np.lexsort((s.end[ends], s.person[ends]))]
    end_key = s.person[ends] * (1 << 32) + s.end[ends]
    prev = np.searchsorted(end_key, s.person[recent] * (1 << 32) + s.start[recent], side="right") - 1
    if len(ends):
        prev_spell = ends[np.maximum(prev, 0)]
        is_return = ((prev >= 0) & (s.person[prev_spell] == s.person[recent])
                     & (s.start[recent] - s.end[prev_spell] <= 365 * RETURN_YEARS))
    else:  # nobody released from a sentence: no returns
        is_return = np.zeros(len(recent), bool)
    pool = recent[is_return]
    # A sentenced copy needs a known sentence, as the sentenced receptions' pool.
    pool = pool[(s.reason[pool] == "remand") | (s.length_days[pool] > 0)]
    share = {}
    for reason in ("remand", "sentenced"):
        of_reason = s.reason[recent] == reason
        share[reason] = float(is_return[of_reason].mean()) if of_reason.any() else 0.0
    return Returns(times, cdf, pool, share)


@dataclass(frozen=True)
class Flows:
    """Everything learnt from the origin's data that drives the projection."""

    daily_rate: dict[str, float]             # receptions a day by reason, last year
    pools: dict[str, np.ndarray]             # indices into OriginData.spells of last year's receptions
    remand_duration: Duration
    remand_outcomes: RemandOutcomes
    recall_duration: Duration
    sentence_lengths: np.ndarray             # known custodial terms of recent spells, sorted
    recall_probability: float                # chance a licence ends in a recall
    on_licence: np.ndarray                   # spells released by the origin whose licence runs on
    on_licence_end: np.ndarray               # ... and the last day of it
    returns: Returns | None = None           # returns on a new charge after release
    recall_timing: RecallTiming | None = None  # when in a licence recalls come
    recall_licence_end: np.ndarray | None = None  # by spell: a recall's licence end, or -1
    parole: ParoleDelays | None = None       # when the Parole Board releases, after it may


def learn_flows(data: OriginData, rules: ReleaseRules | None = None) -> Flows:
    """Rates, pools and stay distributions from the spells known on the origin day (`rules`,
    default the current rule files, say when the Parole Board may first release)."""
    s = data.spells
    origin = data.origin_day
    recent = s.start > origin - FLOW_DAYS
    daily, pools = {}, {}
    for reason in ("remand", "sentenced", "recall"):
        idx = np.flatnonzero(recent & (s.reason == reason))
        if reason == "sentenced":
            # New people are drawn with a sentence: only receptions whose sentence is known.
            known = idx[s.length_days[idx] > 0]
            idx = known if len(known) else idx
        daily[reason] = float((recent & (s.reason == reason)).sum()) / FLOW_DAYS
        pools[reason] = idx

    # The spells of the last few years, and any still open or ended in the last year: the older
    # ones read for their licences stay out of what teaches sentences and remand outcomes.
    current = (s.start > origin - 365 * LOOKBACK_YEARS) | (s.end < 0) | (s.end >= origin - WINDOW_DAYS)
    remand = (s.reason == "remand") & current
    sentenced_by_origin = remand & (s.sentence_day >= 0)
    ended = remand & ((s.end >= 0) | sentenced_by_origin)
    outcome_day = np.where(sentenced_by_origin, s.sentence_day, np.where(s.end >= 0, s.end, origin))
    window = origin - WINDOW_DAYS
    r_idx = np.flatnonzero(remand)
    remand_duration = Duration.fit(window - s.start[r_idx], outcome_day[r_idx] - s.start[r_idx],
                                   ended[r_idx])
    e_idx = np.flatnonzero(ended)
    order = np.argsort(outcome_day[e_idx] - s.start[e_idx], kind="stable")
    e_idx = e_idx[order]
    outcomes = RemandOutcomes(
        days=(outcome_day[e_idx] - s.start[e_idx]),
        sentenced=sentenced_by_origin[e_idx],
        length_days=s.length_days[e_idx],
        offence_group=s.offence_group[e_idx],
        sentence_type=s.sentence_type[e_idx])
    if len(e_idx) == 0:
        outcomes = RemandOutcomes(np.array([90]), np.array([False]), np.array([0]),
                                  np.array([""], dtype=object), np.array([""], dtype=object))

    recall = np.flatnonzero(s.reason == "recall")
    recall_end = np.where(s.end[recall] >= 0, s.end[recall], origin)
    # A recall ends at the Parole Board's re-release or at the licence's end, whichever is
    # first: one released at its licence's end would have stayed longer, so it counts as
    # censored there and the stay learnt is the one before the cap, which the projection then
    # caps at each recall's own licence end (early in a long licence, long stays are possible).
    recall_last = recall_licence_end(s, recall)
    capped = (recall_last >= 0) & (recall_end >= recall_last - 1)
    recall_duration = Duration.fit(window - s.start[recall], recall_end - s.start[recall],
                                   (s.end[recall] >= 0) & ~capped)
    lengths = np.sort(s.length_days[(s.length_days > 0) & current])
    if len(lengths) == 0:
        lengths = np.array([180])

    # Recalls come from licences: each licence ends in a recall with one chance, at a point in it
    # drawn from when recalls come (the shape of `learn_recall_timing`'s curve). The chance is
    # the last year's recall receptions over the licence-time that year, each licence's part
    # weighted by that shape (evenly spread, it is its seen days over its length). Every recall
    # counts, also those the data cannot tie to a licence (a release whose sentence is not
    # linked), so the recall flow is not lost with the links.
    released = np.flatnonzero((s.sentence_day >= 0) & (s.end >= 0) & (s.reason != "recall"))
    last = licence_end(s.sentence_day[released], s.length_days[released], s.end[released])
    span = np.maximum(last - s.end[released], 1)
    timing = learn_recall_timing(data, released, last)
    if timing.probability > 0:
        shape = RecallTiming(timing.incidence / timing.probability)
    else:
        shape = RecallTiming(np.linspace(0, 1, RECALL_BINS + 1))
    first = np.clip((np.maximum(s.end[released], window) - s.end[released]) / span, 0, 1)
    upto = np.clip((np.minimum(last, origin) - s.end[released]) / span, 0, 1)
    exposure = float(np.clip(shape.at(upto) - shape.at(first), 0, None).sum())
    recalls = float((recent & (s.reason == "recall")).sum())
    probability = min(1.0, recalls / exposure) if exposure > 0 else 0.0
    timing = RecallTiming(shape.incidence * probability)
    running = last > origin
    licence_of = np.full(len(s), -1, np.int64)
    licence_of[recall] = recall_last
    return Flows(daily, pools, remand_duration, outcomes, recall_duration, lengths, probability,
                 released[running], last[running], learn_returns(data), timing, licence_of,
                 learn_parole_delays(data, rules))
