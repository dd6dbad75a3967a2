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

from justice.sim.reference import day_number

from .data import FLOW_DAYS, LOOKBACK_YEARS, OriginData

MAX_DAYS = 10 * 365
"""Longest stay learnt (ten years); a longer recorded stay counts as this long."""

WINDOW_DAYS = 365
"""Stays are learnt from what happened in the last year: the hazard of leaving after each
duration as it was then (a period measure), so lengthening court waits show at once."""

TAIL_MEAN_DAYS = 180.0

SUPERVISION_FROM = day_number("2015-02-01")
"""Offender Rehabilitation Act 2014: sentences under two years passed from this day are followed
by supervision to at least a year after release."""


def licence_end(sentence_day: np.ndarray, length_days: np.ndarray, release_day: np.ndarray) -> np.ndarray:
    """Last day a released prisoner can be recalled: the sentence's end (licence), or a year
    after release for a sentence under two years passed from February 2015 (supervision)."""
    end = sentence_day + length_days
    supervised = (length_days < 730) & (sentence_day >= SUPERVISION_FROM)
    return np.where(supervised, np.maximum(end, release_day + 365), end)
"""Mean of the extra days drawn for someone who has waited longer than any recorded stay."""


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

    def draw(self, rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
        """Index of an ended remand of about the same length for each of `days`."""
        n = len(self.days)
        width = max(1, n // 40)
        pos = np.searchsorted(self.days, days) + rng.integers(-width, width + 1, len(days))
        return np.clip(pos, 0, n - 1)


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


def learn_flows(data: OriginData) -> Flows:
    """Rates, pools and stay distributions from the spells known on the origin day."""
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
        offence_group=s.offence_group[e_idx])
    if len(e_idx) == 0:
        outcomes = RemandOutcomes(np.array([90]), np.array([False]), np.array([0]),
                                  np.array([""], dtype=object))

    recall = np.flatnonzero(s.reason == "recall")
    recall_end = np.where(s.end[recall] >= 0, s.end[recall], origin)
    recall_duration = Duration.fit(window - s.start[recall], recall_end - s.start[recall],
                                   s.end[recall] >= 0)
    lengths = np.sort(s.length_days[(s.length_days > 0) & current])
    if len(lengths) == 0:
        lengths = np.array([180])

    # Recalls come from licences: each licence ends in a recall with one chance, on a day spread
    # evenly over it (as the recall statistics' licence populations are modelled). The chance
    # is the last year's recalls over the licence-time that year, each licence-day weighted by
    # one over its licence's length.
    released = np.flatnonzero((s.sentence_day >= 0) & (s.end >= 0) & (s.reason != "recall"))
    last = licence_end(s.sentence_day[released], s.length_days[released], s.end[released])
    span = np.maximum(last - s.end[released], 1)
    seen = np.clip(np.minimum(last, origin) - np.maximum(s.end[released], window), 0, None)
    exposure = float((seen / span).sum())
    recalls = float((recent & (s.reason == "recall")).sum())
    probability = min(1.0, recalls / exposure) if exposure > 0 else 0.0
    running = last > origin
    return Flows(daily, pools, remand_duration, outcomes, recall_duration, lengths, probability,
                 released[running], last[running])
