"""Trial listings as Criminal Court Statistics count them: each listing may be ineffective and
the trial is re-listed later; a case that cracks or is withdrawn has its last listing vacated."""

from __future__ import annotations

import numpy as np
import pytest

from justice.sim import courts
from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom, derive_keys
from justice.sim.courts import NONE


def _listings(p: float, n: int = 200_000):
    keys = derive_keys(np.uint64(7), np.arange(n))
    first = np.full(n, 20_000, dtype=np.int64)
    listed = np.arange(n) % 4 != 0  # a quarter not contested: no trial listed
    days, k = courts._trial_listings(KeyedRandom(keys), KeyedRandom(keys, 13), first, listed, p, 60, 0.5)
    return days, k, listed


def test_ineffectiveness_is_per_listing_so_the_share_of_listings_is_the_probability():
    _, k, listed = _listings(0.23)
    assert (k[~listed] == 0).all()
    kl = k[listed]
    # P(at least j ineffective listings) = p^j: geometric, not one re-listing per trial.
    for j in (1, 2, 3):
        assert np.mean(kl >= j) == pytest.approx(0.23 ** j, rel=0.05)
    listings = kl + 1
    assert kl.sum() / listings.sum() == pytest.approx(0.23, abs=0.005)


def test_each_re_listing_is_later_and_only_ineffective_listings_are_re_listed():
    days, k, listed = _listings(0.4)
    for j in range(1, len(days)):
        has = days[j] != NONE
        assert (has == (listed & (k >= j))).all()
        assert (days[j][has] > days[j - 1][has]).all()
    last = courts._last_listing(days, k)
    assert (last[listed & (k == 0)] == 20_000).all()
    assert (last[listed & (k == 2)] == days[2][listed & (k == 2)]).all()


@pytest.fixture(scope="module")
def hearings_and_cases(small_world):
    t = small_world.tables
    return t["hearings"], t["court_cases"]


def test_truth_lists_every_trial_listing_with_its_outcome(hearings_and_cases):
    h, c = hearings_and_cases
    trial = h["hearing_type"] == "trial"
    assert set(h["outcome"][trial]) == {"effective", "ineffective", "vacated"}
    # Withdrawn magistrates' cases had a trial listed (fixed at the first hearing), vacated; its
    # listed day may lie after the window for a case withdrawn near the end.
    end = ref.day_number("2025-12-31")
    mags_withdrawn = (c["court_type"] == "magistrates") & (c["outcome"] == "withdrawn")
    withdrawn = set(c["case_id"][mags_withdrawn & (c["completion_date"] < end - 500)])
    vacated = set(h["case_id"][trial & (h["outcome"] == "vacated")])
    assert withdrawn and withdrawn <= vacated
    # Every ineffective listing of a case is followed by a later listing of it, unless the
    # re-listing falls after the window: the listing is ineffective on its own day.
    case, day, out = h["case_id"][trial], h["hearing_date"][trial], h["outcome"][trial]
    order = np.lexsort((day, case.astype(str)))
    case, day, out = case[order], day[order], out[order]
    followed = np.r_[case[1:] == case[:-1], False]
    ineffective = out == "ineffective"
    assert (followed | (day > end - 400))[ineffective].all()
    assert 0.15 < np.mean(ineffective) < 0.30

