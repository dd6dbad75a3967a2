"""Common random numbers: a same-seed world under another policy is the same world up to the day
the policy starts, and differs only downstream of the releases the policy moves."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams
from justice.sim.world import simulate

SDS40 = ref.day_number("2024-09-10")


@pytest.fixture(scope="module")
def two_worlds():
    params = {"persons": 4_000, "seed": 5, "start": dt.date(2019, 1, 1), "end": dt.date(2025, 12, 31)}
    return (simulate(SimulationParams(**params)),
            simulate(SimulationParams(**params, withdrawn_rules=("sds40",))))


def _rows(table: dict, columns: list[str], keep: np.ndarray) -> list[tuple]:
    """The table's rows (those kept) as sorted tuples of the given columns: ids given in
    sequence (case, spell numbers) are left out, since they count rows over the whole window."""
    def plain(v):
        return None if isinstance(v, float) and np.isnan(v) else v  # nan != nan

    return sorted((tuple(plain(v) for v in row) for row in zip(
        *(table[c][keep].tolist() for c in columns))), key=repr)


def _before_rule(day: np.ndarray) -> np.ndarray:
    return (day != NONE) & (day < SDS40)


def _clip(day: np.ndarray) -> np.ndarray:
    """A date as known before the rule: the date if before it, else "not yet"."""
    return np.where(_before_rule(day), day, NONE)


def test_same_people_in_both_worlds(two_worlds):
    a, b = (w.tables["persons"] for w in two_worlds)
    for column in ("person_id", "surname", "dob", "sex", "risk_score", "pnc_id", "prison_number"):
        assert a[column].tolist() == b[column].tolist(), column


def test_offences_and_sentences_before_the_rule_are_the_same(two_worlds):
    a, b = (w.tables for w in two_worlds)
    cols = ["person_id", "offence_code", "offence_date", "disposal", "custody_months"]
    assert _rows(a["offences"], cols, _before_rule(a["offences"]["offence_date"])) == _rows(
        b["offences"], cols, _before_rule(b["offences"]["offence_date"]))
    cols = ["person_id", "disposal_type", "disposal_date", "custody_months", "order_months"]
    assert _rows(a["disposals"], cols, _before_rule(a["disposals"]["disposal_date"])) == _rows(
        b["disposals"], cols, _before_rule(b["disposals"]["disposal_date"]))
    for t in (a, b):
        t["court_cases"]["completion_known"] = _clip(t["court_cases"]["completion_date"])
    cols = ["person_id", "court_type", "case_type", "court_code", "receipt_date", "completion_known"]
    assert _rows(a["court_cases"], cols, _before_rule(a["court_cases"]["receipt_date"])) == _rows(
        b["court_cases"], cols, _before_rule(b["court_cases"]["receipt_date"]))


def test_custody_spells_before_the_rule_are_the_same(two_worlds):
    a, b = (w.tables["custody_spells"] for w in two_worlds)
    for s in (a, b):
        s["release_known"] = _clip(s["release_date"])
    cols = ["person_id", "reception_date", "release_known", "reason", "sentence_date",
            "sentence_months", "establishment_code"]
    before_a, before_b = _before_rule(a["reception_date"]), _before_rule(b["reception_date"])
    assert before_a.sum() > 500
    assert _rows(a, cols, before_a) == _rows(b, cols, before_b)


def test_the_worlds_differ_after_the_rule_starts(two_worlds):
    a, b = (w.tables["custody_spells"] for w in two_worlds)
    released_by_sds40 = a["release_rule"] == "sds40"
    assert released_by_sds40.sum() > 20
    assert not (b["release_rule"] == "sds40").any()

    def in_custody(s, day):
        return int(((s["reception_date"] <= day) & ((s["release_date"] == NONE)
                                                     | (s["release_date"] > day))).sum())

    # Without the rule more people are inside on the first day and a month on; the day before
    # it the two worlds hold exactly the same people.
    assert in_custody(a, SDS40 - 1) == in_custody(b, SDS40 - 1)
    assert in_custody(b, SDS40 + 30) > in_custody(a, SDS40 + 30)


def test_keyed_draws_do_not_depend_on_the_batch():
    keys = np.arange(10, dtype=np.uint64) * 7919
    whole = KeyedRandom(keys)
    part = KeyedRandom(keys[[8, 2, 5]])
    for name, args in (("random", ()), ("normal", (0.0, 1.0)), ("integers", (0, 45))):
        w, p = getattr(whole, name)(*args, size=10), getattr(part, name)(*args, size=3)
        assert np.array_equal(w[[8, 2, 5]], p), name
    u = KeyedRandom(np.arange(200_000, dtype=np.uint64)).random(200_000)
    assert abs(u.mean() - 0.5) < 0.005 and 0 <= u.min() and u.max() < 1
    lam = np.full(200_000, 3.5)
    k = KeyedRandom(np.arange(200_000, dtype=np.uint64)).poisson(lam)
    assert abs(k.mean() - 3.5) < 0.03 and abs(k.var() - 3.5) < 0.1
    with pytest.raises(ValueError, match="one value per key"):
        KeyedRandom(keys).random(3)
