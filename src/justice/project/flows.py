"""The flows a projection carries forward, learnt from the data known on the origin day.

Three kinds of reception (remand, sentenced, recall), each with a daily rate from the last year
and a pool of recent receptions to draw people like them from (sex, establishment, sentence). How
long people stay is learnt with censoring handled: a spell still open on the origin day counts as
"at least this long" (Kaplan-Meier), so recent long remands are not lost. A remand ends either in
a custodial sentence (the person stays, now sentenced) or in release; which, and the sentence,
come from remand spells that ended after a similar time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import FLOW_DAYS, OriginData

MAX_DAYS = 10 * 365
"""Longest stay learnt (ten years); a longer recorded stay counts as this long."""

WINDOW_DAYS = 365
"""Stays are learnt from what happened in the last year: the hazard of leaving after each
duration as it was then (a period measure), so lengthening court waits show at once."""

TAIL_MEAN_DAYS = 180.0
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
        served = np.asarray(served, dtype=np.int64)
        floor = self.cdf_at(served)
        target = floor + rng.random(len(served)) * (1.0 - floor)
        idx = np.searchsorted(self.cdf, target, side="left")
        inside = idx < len(self.times)
        stay = self.times[np.minimum(idx, len(self.times) - 1)]
        # Beyond the longest recorded stay: a little longer, not forever.
        tail = np.maximum(self.times[-1], served) + 1 + rng.exponential(TAIL_MEAN_DAYS, len(served))
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

    remand = s.reason == "remand"
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
    lengths = np.sort(s.length_days[s.length_days > 0])
    if len(lengths) == 0:
        lengths = np.array([180])
    return Flows(daily, pools, remand_duration, outcomes, recall_duration, lengths)
