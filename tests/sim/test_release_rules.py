"""Release from custody follows the effective-dated rules of justice.policy (policy/rules/)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from justice.policy import default_release_rules
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams
from justice.sim.world import simulate

SDS40 = ref.day_number("2024-09-10")
TRANCHE2 = ref.day_number("2024-10-22")


@pytest.fixture(scope="module")
def late_world():
    # A window around the SDS40 change, with enough custody to see both rules.
    return simulate(SimulationParams(persons=20_000, seed=3, start=dt.date(2020, 1, 1), end=dt.date(2025, 12, 31)))


def _sentenced_without_remand(world):
    """Standard determinate sentences served from the sentence day (extended, life and IPP have
    their own rules: tests/sim/test_sentence_types.py)."""
    s = world.tables["custody_spells"]
    m = (s["reason"] == "sentenced") & (s["release_date"] != NONE) & (s["sentence_type"] == "standard_determinate")
    length = np.round(s["sentence_months"][m] * 30.4375).astype(np.int64)
    return s, m, length


def test_simulator_reads_the_policy_rules():
    rules = default_release_rules()
    assert {"standard_determinate_half", "sds40"} <= set(rules.names)
    sds40 = rules.rule("sds40")
    assert sds40.fraction == 0.4 and min(c.effective_from for c in sds40.clauses) == SDS40
    # One copy of the rules: the simulator's reference data no longer holds its own.
    assert not hasattr(ref, "release_rules")


def test_release_at_half_before_and_forty_percent_after(late_world):
    s, m, length = _sentenced_without_remand(late_world)
    sentence, release, rule = s["sentence_date"][m], s["release_date"][m], s["release_rule"][m]
    half = sentence + np.round(0.5 * length).astype(np.int64)
    # SDS40's second tranche: sentences of five years or more imposed before 10 September 2024
    # came under it on 22 October 2024.
    start = np.where((s["sentence_months"][m] >= 60) & (sentence < SDS40), TRANCHE2, SDS40)
    forty = np.maximum(sentence + np.round(0.4 * length).astype(np.int64), start)
    std = rule == "standard_determinate_half"
    # Serious violent and sexual sentences of four years or more at two-thirds (sds_two_thirds).
    two_thirds = rule == "sds_two_thirds"
    assert np.array_equal(release[two_thirds], sentence[two_thirds] + np.round(
        0.6666667 * length[two_thirds]).astype(np.int64))
    assert {"standard_determinate_half", "sds40"} <= set(rule) <= {"standard_determinate_half", "sds40",
                                                                   "sds_two_thirds"}
    # Two-thirds releases are few in a window this short (a four-year term served to two-thirds
    # is out by 2025 only if passed by ~2022; 11 of 116 in this world, none of them without
    # remand since the twenty-year burn-in's retuning): require them among all sentenced spells.
    released = (s["release_date"] != NONE) & (s["sentence_type"] == "standard_determinate")
    assert "sds_two_thirds" in set(s["release_rule"][released])
    forty_rule = rule == "sds40"
    assert std.sum() > 50 and forty_rule.sum() > 20
    assert np.array_equal(release[std], np.maximum(half[std], sentence[std]))
    assert np.array_equal(release[forty_rule], forty[forty_rule])
    # Nobody is released under SDS40 before it came into force.
    assert np.all(release[forty_rule] >= SDS40)
    # Before the change, every release used the halfway point (or two-thirds).
    assert np.all(rule[release < SDS40] != "sds40")


def test_excluded_offences_stay_at_half(late_world):
    s, m, _ = _sentenced_without_remand(late_world)
    cases = late_world.tables["court_cases"]
    group = dict(zip(cases["case_id"], cases["offence_group"]))
    sexual = np.array([group.get(c) == "02 Sexual offences" for c in s["case_id"][m]])
    assert np.all(s["release_rule"][m][sexual] != "sds40")


def test_a_rule_file_changes_releases_with_no_code_change(tmp_path):
    """A policy change is a data edit: a 1/3 release point from 2018 shows up in the world."""
    (tmp_path / "third.yaml").write_text("""
source: {title: "Test: release at one third from 2018"}
withdraw: [sds40, sds_two_thirds]  # both would take precedence over the new rule for some sentences
rules:
  - name: one_third_from_2018
    kind: release
    effective_from: 2018-01-01
    fraction: 0.3333333333333333
""")
    w = simulate(SimulationParams(persons=5_000, seed=3, start=dt.date(2016, 1, 1), end=dt.date(2025, 12, 31),
                                  policy_files=(str(tmp_path / "third.yaml"),)))
    s, m, length = _sentenced_without_remand(w)
    later = s["sentence_date"][m] >= ref.day_number("2018-06-01")
    assert later.sum() > 100
    assert np.all(s["release_rule"][m][later] == "one_third_from_2018")
    expected = s["sentence_date"][m] + np.round(length / 3).astype(np.int64)
    assert np.array_equal(s["release_date"][m][later], expected[later])


def _recalls(world):
    """Recalls from standard determinate sentences (their licence ends with the sentence)."""
    s = world.tables["custody_spells"]
    m = (s["reason"] == "recall") & (s["release_date"] != NONE) & (s["sentence_type"] == "standard_determinate")
    days = s["release_date"][m] - s["reception_date"][m]
    sentence_end = s["sentence_date"][m] + np.round(s["sentence_months"][m] * 30.4375).astype(np.int64)
    return s, m, days, sentence_end


def test_time_on_recall_follows_the_recall_rules(late_world):
    s, m, days, sentence_end = _recalls(late_world)
    months = s["sentence_months"][m]
    assert m.sum() > 300
    # Recall is from licence: back out by the sentence end at the latest.
    assert np.all(s["release_date"][m] <= sentence_end) and np.all(days >= 1)
    # Fixed-term recalls: 14 days for sentences under 12 months, 28 otherwise (unless the
    # sentence ends first); no 28-day fixed term on a short sentence.
    uncut = s["release_date"][m] < sentence_end
    short, long = uncut & (months < 12), uncut & (months >= 12)
    assert (days[short] == 14).mean() > 0.5 and (days[long] == 28).mean() > 0.3
    assert (days[short] == 28).mean() < 0.01


def test_withdrawing_fixed_term_recall_makes_every_recall_standard():
    w = simulate(SimulationParams(persons=8_000, seed=3, start=dt.date(2020, 1, 1), end=dt.date(2025, 12, 31),
                                  withdrawn_rules=("fixed_term_recall",)))
    s, m, days, sentence_end = _recalls(w)
    uncut = s["release_date"][m] < sentence_end
    long = uncut & (s["sentence_months"][m] >= 12)
    # Only a Parole Board stay drawn to the day could last exactly 28 days now.
    assert long.sum() > 30 and (days[long] == 28).mean() < 0.02
