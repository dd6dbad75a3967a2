"""Sentence types: life (mandatory for murder), IPP, extended and standard determinate sentences.

Who gets which (courts.sentence_types, world.yaml sentencing: sentence_types), when they are
released (policy/rules/extended_determinate.yaml, indeterminate.yaml and the Parole Board draws)
and how long their licences run.
"""

from __future__ import annotations

import numpy as np
import pytest

from justice.policy import months_to_days
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams
from justice.sim.world import simulate

IPP_FROM, IPP_UNTIL = ref.day_number("2005-04-04"), ref.day_number("2012-12-03")
IPP_FOUR_YEARS = ref.day_number("2008-07-14")
EDS_FROM, CJCA_2015 = ref.day_number("2012-12-03"), ref.day_number("2015-04-13")


@pytest.fixture(scope="module")
def world():
    # 30,000 people over 2009-2025 (five years of burn-in): enough grave offences for every type.
    return simulate(SimulationParams(persons=30_000, seed=4))


@pytest.fixture(scope="module")
def custody(world):
    """Custodial sentences, one row per case: disposals joined to their custody spell."""
    d = world.tables["disposals"]
    m = d["disposal_type"] == "custody"
    return {k: v[m] for k, v in d.items()}


def test_every_custodial_sentence_has_a_type_and_nothing_else_does(world, custody):
    d = world.tables["disposals"]
    assert set(custody["sentence_type"]) == {"standard_determinate", "extended_determinate", "life", "ipp"}
    assert all(t is None for t in d["sentence_type"][d["disposal_type"] != "custody"])


def test_murder_is_always_life_and_life_is_only_for_the_gravest(world):
    # The case's sentence type is carried on its principal (most serious) offence.
    off = world.tables["offences"]
    custody = off["disposal"] == "custody"
    murder_cases = np.unique(off["episode_id"][custody & (off["offence_code"] == "VA01001")])
    assert len(murder_cases) >= 5
    d = world.tables["disposals"]
    assert (d["sentence_type"][np.isin(d["episode_id"], murder_cases)] == "life").all()
    # Other life sentences are discretionary: only for offences of severity 9 or more.
    ref_off = ref.offences()
    severity = dict(zip(ref_off.code, ref_off.severity, strict=True))
    other_life = (off["sentence_type"] == "life") & (off["offence_code"] != "VA01001")
    assert other_life.sum() >= 1
    assert all(severity[c] >= 9 for c in off["offence_code"][other_life])


def test_ipp_only_while_it_existed_and_eds_only_since_laspo(custody):
    day, kind, months = custody["disposal_date"], custody["sentence_type"], custody["custody_months"]
    ipp = kind == "ipp"
    assert ipp.sum() >= 5
    assert ((day[ipp] >= IPP_FROM) & (day[ipp] < IPP_UNTIL)).all()
    # From 14 July 2008 only for a notional term of four years: a minimum term of two or more.
    assert (months[ipp & (day >= IPP_FOUR_YEARS)] >= 24).all()
    eds = kind == "extended_determinate"
    assert eds.sum() >= 20
    assert (day[eds] >= EDS_FROM).all() and (months[eds] >= 48).all()


def test_shares_of_custodial_sentences_are_near_the_published_volumes(custody):
    # Sentencing Statistics: ~2,000-2,500 EDS and ~350-450 life sentences a year against
    # ~70,000 immediate custodial sentences (3% and 0.6%); the world's custody holds more of the
    # grave cases (its mass of short summary custody is smaller), so the bounds are loose.
    since = custody["disposal_date"] >= ref.day_number("2016-01-01")
    kind = custody["sentence_type"][since]
    eds, life = np.mean(kind == "extended_determinate"), np.mean(kind == "life")
    assert 0.01 < eds < 0.06, eds
    assert 0.002 < life < 0.02, life
    assert not np.any(kind == "ipp")


def _spells(world):
    s = world.tables["custody_spells"]
    m = (s["reason"] != "recall") & (s["sentence_date"] != NONE) & (s["release_date"] != NONE)
    return {k: v[m] for k, v in s.items()}


def test_lifers_and_ipp_prisoners_are_never_released_before_their_minimum_term(world):
    s = _spells(world)
    indeterminate = np.isin(s["sentence_type"], ["life", "ipp"])
    assert indeterminate.sum() >= 5
    tariff = months_to_days(s["sentence_months"][indeterminate])
    remand = np.where(s["reason"][indeterminate] == "remand",
                      s["sentence_date"][indeterminate] - s["reception_date"][indeterminate], 0)
    earliest = s["sentence_date"][indeterminate] + tariff - remand
    assert (s["release_date"][indeterminate] >= earliest).all()
    assert set(s["release_rule"][indeterminate]) == {"indeterminate_parole_board"}
    # The Parole Board releases after the tariff, not on it: most wait a year or more.
    assert np.median(s["release_date"][indeterminate] - earliest) > 365


def test_extended_sentences_are_released_between_two_thirds_and_the_custodial_term(world):
    s = _spells(world)
    eds = s["sentence_type"] == "extended_determinate"
    assert eds.sum() >= 10
    term = months_to_days(s["sentence_months"][eds])
    remand = np.where(s["reason"][eds] == "remand", s["sentence_date"][eds] - s["reception_date"][eds], 0)
    start = s["sentence_date"][eds] - remand
    served = s["release_date"][eds] - start
    assert (served >= np.round(term * 0.6666667) - 1).all()
    assert (served <= term + 1).all()
    # Since 13 April 2015 every EDS is for the Parole Board, and most are not released by it:
    # automatic release at the end of the custodial term is the commonest outcome.
    late = s["sentence_date"][eds] >= CJCA_2015
    assert set(s["release_rule"][eds][late]) == {"eds_parole_board"}
    assert np.mean(np.abs(served[late] - term[late]) <= 1) > 0.5


def test_standard_sentences_are_still_released_at_the_standard_points(world):
    s = _spells(world)
    sds = s["sentence_type"] == "standard_determinate"
    assert set(s["release_rule"][sds]) <= {"standard_determinate_half", "sds40", "sds_two_thirds"}
