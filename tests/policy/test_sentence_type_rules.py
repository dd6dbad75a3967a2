"""Release rules by sentence type: extended sentences, life and IPP, and SDS at two-thirds."""

from __future__ import annotations

import numpy as np
import pytest

from justice.errors import PolicyError
from justice.policy import load_release_rules, months_to_days
from justice.policy.engine import NO_DAY
from justice.sim.reference import day_number

VIOLENCE, THEFT = "01 Violence against the person", "04 Theft offences"


@pytest.fixture(scope="module")
def rules():
    return load_release_rules()


def release(rules, sentenced: str, months: float, kind: str, group: str = VIOLENCE, remand: int = 0):
    return rules.release(np.array([day_number(sentenced)]), months_to_days([months]),
                         np.array([group], dtype=object), np.array([remand]),
                         np.array([kind], dtype=object))


def test_eds_before_2015_under_ten_years_is_automatic_at_two_thirds(rules):
    out = release(rules, "2014-01-01", 60, "extended_determinate")
    assert out.rule[0] == "eds_automatic_two_thirds" and not out.parole_board[0]
    assert out.release_day[0] == day_number("2014-01-01") + round(months_to_days([60])[0] * 0.6666667)
    assert out.automatic_day[0] == out.release_day[0]


def test_eds_from_2015_and_long_eds_are_for_the_parole_board_until_the_custodial_term_ends(rules):
    for sentenced, months in (("2016-01-01", 60), ("2014-01-01", 132)):
        out = release(rules, sentenced, months, "extended_determinate", remand=30)
        length = months_to_days([months])[0]
        assert out.rule[0] == "eds_parole_board" and out.parole_board[0]
        assert out.release_day[0] == day_number(sentenced) + round(length * 0.6666667) - 30
        assert out.automatic_day[0] == day_number(sentenced) + length - 30


def test_life_and_ipp_are_released_only_by_the_parole_board_after_the_minimum_term(rules):
    for kind in ("life", "ipp"):
        out = release(rules, "2011-05-01", 120, kind, remand=200)
        assert out.rule[0] == "indeterminate_parole_board" and out.parole_board[0]
        assert out.release_day[0] == day_number("2011-05-01") + months_to_days([120])[0] - 200
        assert out.automatic_day[0] == NO_DAY  # never automatic
    # SDS40 does not reach indeterminate or extended sentences.
    assert release(rules, "2024-10-01", 36, "life", THEFT).rule[0] == "indeterminate_parole_board"


def test_serious_violent_sds_is_released_at_two_thirds_from_its_dates(rules):
    assert release(rules, "2021-01-01", 96, "standard_determinate").rule[0] == "sds_two_thirds"
    assert release(rules, "2021-01-01", 60, "standard_determinate").rule[0] == "standard_determinate_half"
    assert release(rules, "2023-01-01", 60, "standard_determinate").rule[0] == "sds_two_thirds"
    assert release(rules, "2023-01-01", 60, "standard_determinate", THEFT).rule[0] == "sds40"


def test_no_fixed_term_recall_for_extended_or_indeterminate_sentences(rules):
    kinds = np.array(["standard_determinate", "extended_determinate", "life", "ipp"], dtype=object)
    back = rules.recall(recall_day=np.full(4, day_number("2020-01-01")),
                        sentence_day=np.full(4, day_number("2015-01-01")),
                        length_days=np.full(4, 4000), offence_group=VIOLENCE,
                        fixed_term_suitable=True, rerelease_day=np.full(4, day_number("2021-01-01")),
                        sentence_type=kinds)
    assert list(back.kind) == ["fixed_term", "standard", "standard", "standard"]
    assert list(back.release_day[1:]) == [day_number("2021-01-01")] * 3


def test_an_unknown_sentence_type_is_refused(rules):
    with pytest.raises(PolicyError, match="unknown sentence type 'hospital_order'"):
        release(rules, "2020-01-01", 12, "hospital_order")
    bad = {"source": {"title": "t"}, "rules": [{"name": "x", "kind": "release", "fraction": 0.5,
           "effective_from": "2020-01-01", "eligibility": {"sentence_types": ["lifer"]}}]}
    with pytest.raises(PolicyError, match="unknown sentence type 'lifer'"):
        load_release_rules(extra=[bad])


def test_withdrawing_the_indeterminate_rule_leaves_life_sentences_uncovered():
    with pytest.raises(PolicyError, match=r"no release rule covers .*\(life sentences\)"):
        load_release_rules(without=["indeterminate_parole_board"])


def test_a_parole_board_rule_needs_an_automatic_point_after_eligibility():
    bad = {"source": {"title": "t"}, "rules": [{
        "name": "x", "kind": "release", "fraction": 0.6, "automatic_fraction": 0.5,
        "release_by": "parole_board", "effective_from": "2020-01-01",
        "eligibility": {"sentence_types": ["extended_determinate"]}}]}
    with pytest.raises(PolicyError, match="automatic_fraction 0.5 must be more than"):
        load_release_rules(extra=[bad])
