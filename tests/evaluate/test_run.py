"""`evaluate` on a built home: the steps joined up, the power said before any outcome is seen, and
the options checked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from justice.errors import CohortError, ConfigError
from justice.evaluate.cohort import read_cohort
from justice.evaluate.run import (
    OUTCOMES,
    PLACEBO,
    EvaluationOptions,
    _minimum_detectable_effect,
    evaluate,
)


def largest_provider_file(home: Path) -> Path:
    """The provider file with the most readable rows (as `justice demo` picks it)."""
    files = sorted((home / "legacy" / "interventions").glob("*.xlsx"))
    return max(files, key=lambda p: (len(read_cohort(p, on_row_problem="exclude").rows), p.name))


@pytest.fixture(scope="module")
def evaluation(built_home, linked_home):
    # built_home has the warehouse; the provider files stayed in linked_home's legacy/
    cohort = largest_provider_file(linked_home.home)
    return evaluate(built_home, cohort,
                    options=EvaluationOptions(min_matched=20, exclude_bad_rows=True))


def test_the_analysis_frame_and_the_figures_agree(evaluation):
    frame, summary, result = evaluation.frame, evaluation.summary, evaluation.result
    treated = frame[frame["treated"].astype(bool)]
    assert summary["treated"] == len(treated) == result.n_treated
    assert summary["identification"]["in_analysis"] == len(treated)
    assert summary["comparison"] == result.n_controls_used
    assert summary["mde"]["comparison_pool"] == result.n_controls
    # every outcome and the placebo were estimated, the placebo apart from the four
    assert set(result.effects) == {o.column for o in (*OUTCOMES, PLACEBO)}
    assert summary["placebo"]["column"] == PLACEBO.column
    # the identification table says, for every row read, whether it was analysed
    table = evaluation.identification_table
    assert len(table) == summary["identification"]["rows"]
    assert (table["analysis"] == "yes").sum() == len(treated)
    assert set(table.loc[table["analysis"] == "yes", "person_id"]) == set(treated["person_id"])


def test_participants_left_out_after_being_found_have_a_reason(evaluation):
    ident = evaluation.summary["identification"]
    left_out = ident["participations"] - ident["in_analysis"]
    assert ident["people"] <= ident["participations"]
    assert len(ident["excluded"]) == left_out
    assert all(e["reason"] for e in ident["excluded"])
    assert sum(ident["excluded_reasons"].values()) == left_out


def test_the_detectable_effect_does_not_look_at_participants_outcomes(evaluation):
    frame = evaluation.frame.copy()
    before = _minimum_detectable_effect(frame, EvaluationOptions())
    treated = frame["treated"].astype(bool)
    frame.loc[treated, "reoffended"] = 1 - frame.loc[treated, "reoffended"]
    assert _minimum_detectable_effect(frame, EvaluationOptions()) == before
    pool = evaluation.frame.loc[~treated, "reoffended"]
    assert before["base_rate"] == pytest.approx(pool.mean())
    # more participants, the same pool: a smaller detectable difference
    bigger = pd.concat([evaluation.frame, evaluation.frame[treated]], ignore_index=True)
    bigger_mde = _minimum_detectable_effect(bigger, EvaluationOptions())
    assert bigger_mde["difference"] < before["difference"]


def test_too_few_people_found_is_a_cohort_error(built_home, linked_home):
    cohort = largest_provider_file(linked_home.home)
    with pytest.raises(CohortError, match="needs at least 10000 people"):
        evaluate(built_home, cohort, options=EvaluationOptions(min_matched=10_000,
                                                               exclude_bad_rows=True))


@pytest.mark.parametrize("options, message", [
    ({"comparators": 0}, "comparators 0"),
    ({"caliper": 0}, "caliper 0"),
    ({"common_support": "hull"}, "choose minmax or none"),
    ({"min_matched": 1}, "min matched 1"),
    ({"alpha": 1.5}, "alpha 1.5"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        EvaluationOptions(**options)


def test_a_home_linked_but_not_built_says_to_build(linked_home):
    cohort = largest_provider_file(linked_home.home)
    with pytest.raises(ConfigError, match="run `justice build` first"):
        evaluate(linked_home, cohort, options=EvaluationOptions(min_matched=20,
                                                                exclude_bad_rows=True))
    assert not (linked_home.home / "reports" / "evaluation").exists()
