"""The generic matching API: validity by simulation, hand-computed numbers, options, errors."""

from __future__ import annotations

import math
import re
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from justice.errors import ConfigError
from justice.evaluate import Effect, MatchResult, match

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evaluation-api.md"


def population(n: int, rng: np.random.Generator, effect: float = 0.5) -> pd.DataFrame:
    """People selected into treatment on observed age, sex and prior count, with known effects.

    `y` gains exactly `effect` under treatment (so the ATT is `effect`); `reoffended` is a 0/1
    outcome treatment does not change (so the ATT is 0) but that depends on the same covariates.
    """
    age = rng.normal(35, 10, n)
    sex = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    prior = rng.poisson(2, n)
    male = sex == "M"
    propensity = 1 / (1 + np.exp(-(-2.5 + 0.05 * (age - 35) + 0.6 * male + 0.3 * prior)))
    treated = rng.random(n) < propensity
    y = 1 + 0.05 * age + 0.5 * prior + 0.3 * male + effect * treated + rng.normal(0, 1, n)
    risk = np.clip(0.15 + 0.05 * np.minimum(prior, 6) + 0.1 * male + 0.002 * (age - 35), 0.01, 0.95)
    return pd.DataFrame({
        "treated": treated, "age": age, "sex": sex, "prior": prior, "y": y,
        "reoffended": (rng.random(n) < risk).astype(int),
    })


# ---------------------------------------------------------------- validity by simulation


def test_confidence_intervals_cover_the_true_effect_and_a_null_effect_is_rarely_rejected():
    rng = np.random.default_rng(20261203)
    replications, truth = 200, 0.5
    covered = dr_covered = rejected = 0
    estimates = []
    for _ in range(replications):
        result = match(population(1500, rng, truth), "treated", ["age", "sex", "prior"],
                       ["y", "reoffended"], exact=["sex"])
        effect, null = result.effects["y"], result.effects["reoffended"]
        covered += effect.ci[0] <= truth <= effect.ci[1]
        dr_covered += effect.dr_ci[0] <= truth <= effect.dr_ci[1]
        rejected += null.p_value < 0.05
        estimates.append(effect.att)
    assert covered / replications >= 0.90
    assert dr_covered / replications >= 0.90
    assert rejected / replications <= 0.10
    # unbiased to within a few Monte Carlo standard errors (SD of the ATT is about 0.07)
    assert abs(np.mean(estimates) - truth) < 0.03


def test_doubly_robust_estimate_is_close_to_the_truth_when_the_outcome_model_is_wrong():
    rng = np.random.default_rng(7)
    n = 20_000
    frame = population(n, rng)
    treated = frame["treated"].to_numpy()
    # outcome curved in age (the linear outcome model is wrong) and a heterogeneous effect
    individual_effect = 0.5 + 0.2 * (frame["prior"].to_numpy() - 2)
    frame["y"] = (0.01 * (frame["age"] - 35) ** 2 + 0.5 * frame["prior"]
                  + individual_effect * treated + rng.normal(0, 1, n))
    result = match(frame, "treated", ["age", "sex", "prior"], "y", caliper=None,
                   common_support="none")
    truth = individual_effect[treated].mean()
    effect = result.effects["y"]
    assert abs(effect.dr_att - truth) < 3 * effect.dr_se
    assert abs(effect.dr_att - truth) < 0.1
    assert abs(effect.att - truth) < 3 * effect.se


# ---------------------------------------------------------------- hand-computed numbers

# Two exact cells (sex). Within a cell the logit is a + b * x, so nearest on the logit is nearest
# on x, and every match below can be read off by eye. F1 at x=1.95 is the nearest control to
# T2 (x=2.0) overall, but it is in the other cell.
TINY = pd.DataFrame({
    "name": ["T1", "T2", "T3", "C1", "C2", "C3", "C4", "C5", "C6"],
    "treated": [1, 1, 1, 0, 0, 0, 0, 0, 0],
    "x": [1.0, 2.0, 2.3, 0.0, 1.2, 1.95, 2.1, 3.0, 4.0],
    "sex": ["F", "M", "M", "F", "F", "F", "M", "M", "M"],
    "y": [5.0, 6.0, 9.0, 1.0, 2.0, 4.0, 3.0, 5.0, 7.0],
})


def tiny_match(comparators: int) -> MatchResult:
    return match(TINY, "treated", ["x", "sex"], "y", exact=["sex"], comparators=comparators,
                 caliper=None, common_support="none", variance_neighbours=1)


def named_pairs(result: MatchResult) -> list[tuple[str, str, float]]:
    names = TINY["name"].to_numpy()
    return [(names[row.treated_row], names[row.control_row], row.weight)
            for row in result.pairs.itertuples()]


def test_one_comparator_matches_effect_and_abadie_imbens_variance_by_hand():
    result = tiny_match(comparators=1)
    assert named_pairs(result) == [("T1", "C2", 1.0), ("T2", "C4", 1.0), ("T3", "C4", 1.0)]
    # ATT = mean of (5-2, 6-3, 9-3) = 4. sigma2 with J=1: C2 vs C3, C4 vs C5: 1/2 (2)^2 = 2.
    # V = [(3-4)^2 + (3-4)^2 + (6-4)^2 + (K_C4^2 - K'_C4) sigma2_C4] / 3^2 = (6 + 2*2) / 9
    assert result.att == pytest.approx(4.0)
    assert result.se == pytest.approx(math.sqrt(10 / 9))
    assert result.ci == pytest.approx((4 - 1.959964 * math.sqrt(10 / 9),
                                       4 + 1.959964 * math.sqrt(10 / 9)), rel=1e-6)
    z = 4 / math.sqrt(10 / 9)
    assert result.p_value == pytest.approx(2 * (1 - statistics.NormalDist().cdf(z)))
    assert (result.n_treated, result.n_matched, result.n_controls, result.n_controls_used) \
        == (3, 3, 6, 2)


def test_two_comparators_weights_effect_variance_and_balance_by_hand():
    result = tiny_match(comparators=2)
    assert named_pairs(result) == [
        ("T1", "C2", 0.5), ("T1", "C3", 0.5),
        ("T2", "C4", 0.5), ("T2", "C5", 0.5),
        ("T3", "C4", 0.5), ("T3", "C5", 0.5),
    ]
    # Yhat(0): 3, 4, 4 -> differences 2, 2, 5, ATT 3. K = .5, .5, 1, 1; K' = .25, .25, .5, .5;
    # every sigma2 (J=1) is 1/2 * 2^2 = 2. V = [1 + 1 + 4 + (0 + 0 + .5 + .5) * 2] / 9 = 8/9.
    effect = result.effects["y"]
    assert isinstance(effect, Effect)
    assert (effect.treated_mean, effect.comparison_mean) == pytest.approx((20 / 3, 11 / 3))
    assert effect.att == pytest.approx(3.0)
    assert effect.se == pytest.approx(math.sqrt(8 / 9))
    assert result.effective_comparison == pytest.approx(3**2 / (0.25 + 0.25 + 1 + 1))

    matched = result.matched.set_index("name")
    assert list(matched.index) == ["T1", "T2", "T3", "C2", "C3", "C4", "C5"]
    assert matched["_weight"].to_dict() == {"T1": 1, "T2": 1, "T3": 1, "C2": 0.5, "C3": 0.5,
                                            "C4": 1.0, "C5": 1.0}
    assert list(matched["_row"]) == [0, 1, 2, 4, 5, 6, 7]
    assert np.allclose(matched["_pscore"], 1 / (1 + np.exp(-matched["_logit"])))

    balance = result.balance.set_index("covariate")
    treated_x, control_x = [1.0, 2.0, 2.3], [0.0, 1.2, 1.95, 2.1, 3.0, 4.0]
    used_x, used_weight = np.array([1.2, 1.95, 2.1, 3.0]), np.array([0.5, 0.5, 1.0, 1.0])
    scale = math.sqrt((statistics.variance(treated_x) + statistics.variance(control_x)) / 2)
    mean_after = (used_weight @ used_x) / used_weight.sum()
    # reliability-weighted variance: sum w (x - m)^2 / (sum w - sum w^2 / sum w)
    variance_after = (used_weight @ (used_x - mean_after) ** 2) / (
        used_weight.sum() - (used_weight @ used_weight) / used_weight.sum())
    x = balance.loc["x"]
    assert x.treated_mean == pytest.approx(statistics.mean(treated_x))
    assert x.comparison_mean_before == pytest.approx(statistics.mean(control_x))
    assert x.comparison_mean_after == pytest.approx(mean_after)
    assert x.smd_before == pytest.approx((statistics.mean(treated_x) - statistics.mean(control_x))
                                         / scale)
    assert x.smd_after == pytest.approx((statistics.mean(treated_x) - mean_after) / scale)
    assert x.vr_before == pytest.approx(statistics.variance(treated_x)
                                        / statistics.variance(control_x))
    assert x.vr_after == pytest.approx(statistics.variance(treated_x) / variance_after)
    # exact matching balances sex perfectly: 1 of 3 treated and weight 1 of 3 are female
    female = balance.loc["sex=F"]
    assert female.treated_mean == pytest.approx(1 / 3)
    assert female.comparison_mean_before == pytest.approx(3 / 6)
    assert female.comparison_mean_after == pytest.approx(1 / 3)
    assert female.smd_after == pytest.approx(0.0)
    assert not female.flagged
    assert list(balance.index) == ["x", "sex=F", "sex=M", "propensity_logit"]
    assert list(result.balance.columns[:9]) == [
        "covariate", "treated_mean", "comparison_mean_before", "comparison_mean_after",
        "smd_before", "smd_after", "vr_before", "vr_after", "flagged"]


def test_propensity_coefficients_are_on_the_covariates_scale():
    result = tiny_match(comparators=1)
    coefficients = result.pscore_coefficients
    assert set(coefficients) == {"intercept", "x", "sex=M"}
    matched = result.matched
    recomputed = (coefficients["intercept"] + coefficients["x"] * matched["x"]
                  + coefficients["sex=M"] * (matched["sex"] == "M"))
    assert np.allclose(recomputed, matched["_logit"])
    every_row = (coefficients["intercept"] + coefficients["x"] * TINY["x"]
                 + coefficients["sex=M"] * (TINY["sex"] == "M"))
    assert np.allclose(result.pscore, 1 / (1 + np.exp(-every_row)))


# ---------------------------------------------------------------- options


def all_logits(result: MatchResult, frame: pd.DataFrame) -> np.ndarray:
    coefficients = result.pscore_coefficients
    return (coefficients["intercept"] + coefficients["age"] * frame["age"]
            + coefficients["sex=M"] * (frame["sex"] == "M")
            + coefficients["prior"] * frame["prior"]).to_numpy()


def test_matching_equals_brute_force_nearest_within_cell_and_caliper():
    frame = population(600, np.random.default_rng(3))
    result = match(frame, "treated", ["age", "sex", "prior"], "y", exact=["sex"], comparators=3,
                   caliper=0.05, common_support="none")
    logit = all_logits(result, frame)
    width = result.options["caliper_width_logit"]
    assert width == pytest.approx(0.05 * result.options["logit_sd"])
    treated = frame["treated"].to_numpy()
    sex = frame["sex"].to_numpy()
    expected, unmatched = {}, 0
    for row in np.flatnonzero(treated):
        controls = np.flatnonzero(~treated & (sex == sex[row]))
        distance = np.abs(logit[controls] - logit[row])
        nearest = controls[np.argsort(distance, kind="stable")[:3]]
        within = {int(c) for c in nearest if abs(logit[c] - logit[row]) <= width}
        if within:
            expected[int(row)] = within
        else:
            unmatched += 1
    found = result.pairs.groupby("treated_row")["control_row"].apply(set).to_dict()
    assert found == expected
    assert result.dropped_caliper == unmatched > 0
    assert result.n_matched == len(expected)
    weights = result.pairs.groupby("treated_row")["weight"]
    assert np.allclose(weights.sum(), 1.0)


def test_exact_matching_never_crosses_cells():
    frame = population(2000, np.random.default_rng(4))
    frame["region"] = np.random.default_rng(5).choice(["north", "south", "east"], len(frame))
    result = match(frame, "treated", ["age", "prior"], "y", exact=["sex", "region"])
    cells = frame["sex"] + "/" + frame["region"]
    treated_cell = cells.to_numpy()[result.pairs["treated_row"]]
    control_cell = cells.to_numpy()[result.pairs["control_row"]]
    assert len(result.pairs) > 0
    assert (treated_cell == control_cell).all()
    # exact columns join the propensity model and the balance table, where they balance exactly
    assert result.options["covariates"] == ["age", "prior", "sex", "region"]
    balance = result.balance.set_index("covariate")
    assert np.allclose(balance.loc[["sex=M", "region=north"], "smd_after"], 0.0)


def test_controls_tied_with_the_kth_nearest_are_all_kept_unless_ties_is_false():
    # coarse covariate: every control in a group has the same propensity score
    frame = pd.DataFrame({
        "treated": [1, 1, 1, 1] + [0] * 14,
        "group": ["a", "a", "b", "b"] + ["a"] * 10 + ["b"] * 4,
        "y": [1.0, 2.0, 3.0, 4.0] + list(np.arange(10.0)) + [0.0, 1.0, 2.0, 3.0],
    })
    kept = match(frame, "treated", ["group"], "y", comparators=2, caliper=None)
    per_treated = kept.pairs.groupby("treated_row")["weight"].agg(["size", "first"])
    assert per_treated["size"].tolist() == [10, 10, 4, 4]
    assert per_treated["first"].tolist() == pytest.approx([0.1, 0.1, 0.25, 0.25])
    # a's controls average 4.5, b's 1.5: ATT = mean(1-4.5, 2-4.5, 3-1.5, 4-1.5) = -0.5
    assert kept.att == pytest.approx(-0.5)
    first_two = match(frame, "treated", ["group"], "y", comparators=2, caliper=None, ties=False)
    assert first_two.pairs.groupby("treated_row").size().tolist() == [2, 2, 2, 2]
    assert first_two.n_controls_used == 4


def test_a_treated_unit_whose_cell_has_no_control_is_dropped_and_counted():
    frame = TINY.copy()
    frame.loc[len(frame)] = ["T4", 1, 1.5, "X", 4.0]
    result = match(frame, "treated", ["x"], "y", exact=["sex"], caliper=None,
                   common_support="none")
    assert result.dropped_exact == 1
    assert result.n_matched == 3
    assert 9 not in set(result.pairs["treated_row"])


def test_tighter_caliper_drops_more_treated():
    frame = population(1500, np.random.default_rng(8))
    drops = [match(frame, "treated", ["age", "sex", "prior"], "y", caliper=caliper).dropped_caliper
             for caliper in (0.2, 0.01, 0.001)]
    assert drops[0] <= drops[1] <= drops[2]
    assert drops[2] > drops[0]
    none = match(frame, "treated", ["age", "sex", "prior"], "y", caliper=None)
    assert none.dropped_caliper == 0


def test_common_support_drops_treated_outside_the_controls_range():
    # one covariate, so the logit is monotone in x: outside the controls' x range is outside
    # their propensity range
    rng = np.random.default_rng(9)
    control_x = rng.normal(0, 1, 400)
    treated_x = np.concatenate([rng.normal(0.5, 1, 60), [control_x.max() + 1, control_x.max() + 2,
                                                         control_x.min() - 1]])
    frame = pd.DataFrame({
        "treated": np.r_[np.zeros(400), np.ones(len(treated_x))].astype(int),
        "x": np.r_[control_x, treated_x],
    })
    frame["y"] = frame["x"] + rng.normal(0, 1, len(frame))
    expected = int(((treated_x > control_x.max()) | (treated_x < control_x.min())).sum())
    assert expected >= 3
    result = match(frame, "treated", ["x"], "y", caliper=None)
    assert result.dropped_support == expected
    assert result.n_matched == len(treated_x) - expected
    kept = match(frame, "treated", ["x"], "y", caliper=None, common_support="none")
    assert kept.dropped_support == 0 and kept.n_matched == len(treated_x)


def test_several_outcomes_first_is_primary():
    frame = population(1500, np.random.default_rng(10))
    result = match(frame, "treated", ["age", "sex", "prior"], ["reoffended", "y"])
    assert list(result.effects) == ["reoffended", "y"]
    assert result.att == result.effects["reoffended"].att
    assert result.p_value == result.effects["reoffended"].p_value
    assert result.effects["y"].n_treated == result.n_matched
    text = result.summary()
    assert "reoffended" in text and "effective comparison size" in text


def test_bool_and_zero_one_treatment_and_polars_input_give_the_same_result():
    frame = population(1500, np.random.default_rng(11))
    arguments = {"treatment": "treated", "covariates": ["age", "sex", "prior"],
                 "outcome": ["y", "reoffended"], "exact": ["sex"], "comparators": 4}
    from_pandas = match(frame, **arguments)
    from_polars = match(pl.from_pandas(frame), **arguments)
    as_integer = frame.assign(treated=frame["treated"].astype(int))
    from_integers = match(as_integer, **arguments)
    for other in (from_polars, from_integers):
        assert other.effects == from_pandas.effects
        pd.testing.assert_frame_equal(other.pairs, from_pandas.pairs)
        pd.testing.assert_frame_equal(other.balance, from_pandas.balance)
        assert other.pscore_coefficients == from_pandas.pscore_coefficients


def test_categorical_dtype_levels_and_bool_covariates():
    frame = population(1200, np.random.default_rng(12))
    frame["band"] = pd.Categorical(np.where(frame["prior"] > 2, "high", "low"),
                                   categories=["low", "high", "unused"])
    frame["employed"] = frame["age"] > 30
    result = match(frame, "treated", ["age", "band", "employed"], "y")
    names = list(result.balance["covariate"])
    assert names == ["age", "band=low", "band=high", "employed=False", "employed=True",
                     "propensity_logit"]
    assert set(result.pscore_coefficients) == {"intercept", "age", "band=high", "employed=True"}


def test_a_thousand_treated_against_half_a_million_controls_takes_seconds():
    rng = np.random.default_rng(13)
    n = 501_000
    frame = pd.DataFrame({
        "treated": np.r_[np.ones(1_000), np.zeros(500_000)].astype(int),
        "age": rng.normal(35, 10, n),
        "sex": rng.choice(["F", "M"], n),
        "region": rng.choice(list("ABCDEFGH"), n),
        "prior": rng.poisson(2, n),
        "reoffended": (rng.random(n) < 0.3).astype(int),
    })
    started = time.perf_counter()
    result = match(frame, "treated", ["age", "sex", "region", "prior"], "reoffended",
                   exact=["sex", "region"])
    elapsed = time.perf_counter() - started
    assert result.n_matched == 1_000
    assert elapsed < 15, f"matching took {elapsed:.1f} s"


# ---------------------------------------------------------------- errors


def small() -> pd.DataFrame:
    return population(300, np.random.default_rng(14))


def test_unknown_column_is_named_with_the_frame_columns():
    with pytest.raises(ConfigError, match=r"covariate 'agee'.*columns \['treated', 'age'"):
        match(small(), "treated", ["agee", "sex"], "y")
    with pytest.raises(ConfigError, match="outcome 'reoffend'"):
        match(small(), "treated", ["age"], "reoffend")
    with pytest.raises(ConfigError, match="treatment 'treat'"):
        match(small(), "treat", ["age"], "y")


def test_missing_values_are_reported_with_column_and_count():
    frame = small()
    frame.loc[[3, 8], "age"] = np.nan
    with pytest.raises(ConfigError, match=r"covariate 'age' has 2 missing value\(s\) \(rows 3, 8\)"):
        match(frame, "treated", ["age", "sex"], "y")
    frame = small()
    frame.loc[5, "y"] = np.nan
    with pytest.raises(ConfigError, match="outcome 'y' has 1 missing"):
        match(frame, "treated", ["age"], "y")
    frame = small().astype({"treated": object})
    frame.loc[0, "treated"] = None
    with pytest.raises(ConfigError, match="treatment column 'treated' has 1 missing"):
        match(frame, "treated", ["age"], "y")
    frame = small()
    frame.loc[1, "sex"] = None
    with pytest.raises(ConfigError, match="exact column 'sex' has 1 missing"):
        match(frame, "treated", ["age"], "y", exact=["sex"])


def test_too_few_treated_or_no_controls():
    frame = small()
    with pytest.raises(ConfigError, match="no control rows"):
        match(frame.assign(treated=1), "treated", ["age"], "y")
    one = frame.assign(treated=False)
    one.loc[0, "treated"] = True
    with pytest.raises(ConfigError, match="1 treated row.*at least 2"):
        match(one, "treated", ["age"], "y")


def test_bad_treatment_values_types_and_options():
    frame = small()
    with pytest.raises(ConfigError, match="must hold 0/1 or True/False; found"):
        match(frame.assign(treated=frame["treated"] * 2), "treated", ["age"], "y")
    with pytest.raises(ConfigError, match="covariate 'when' has type datetime64"):
        match(frame.assign(when=pd.Timestamp("2020-01-01")), "treated", ["age", "when"], "y")
    with pytest.raises(ConfigError, match="outcome 'sex' must be numeric"):
        match(frame, "treated", ["age"], "sex")
    with pytest.raises(ConfigError, match="comparators must be a whole number"):
        match(frame, "treated", ["age"], "y", comparators=0)
    with pytest.raises(ConfigError, match="caliper must be a positive number"):
        match(frame, "treated", ["age"], "y", caliper=-1)
    with pytest.raises(ConfigError, match="common_support must be one of"):
        match(frame, "treated", ["age"], "y", common_support="trim")
    with pytest.raises(ConfigError, match="outcome and as covariate"):
        match(frame, "treated", ["age", "y"], "y")
    with pytest.raises(ConfigError, match="ties must be True or False"):
        match(frame, "treated", ["age"], "y", ties="yes")
    with pytest.raises(ConfigError, match="covariates is empty"):
        match(frame, "treated", [], "y")
    with pytest.raises(ConfigError, match="pandas DataFrame or an Arrow"):
        match(frame.to_dict(), "treated", ["age"], "y")


def test_no_treated_unit_within_the_caliper_is_an_error_not_an_empty_result():
    frame = pd.DataFrame({"treated": [1, 1, 0, 0], "x": [0.0, 1.0, 10.0, 11.0],
                          "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ConfigError, match="no treated row found a control.*2 beyond the caliper"):
        match(frame, "treated", ["x"], "y", common_support="none", caliper=0.01)


# ---------------------------------------------------------------- the API guide runs


def test_the_worked_example_in_the_api_guide_runs_and_prints_what_the_guide_shows(capsys):
    guide = DOCS.read_text()
    code = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    shown = re.findall(r"```text\n(.*?)```", guide, flags=re.DOTALL)
    assert code and shown, f"no python or text block in {DOCS}"
    namespace: dict = {}
    # running the guide's own code, as a reader would paste it, is the point of this test
    exec(compile("\n".join(code), str(DOCS), "exec"), namespace)  # noqa: S102
    assert capsys.readouterr().out == "".join(shown)
    assert isinstance(namespace["result"], MatchResult)


def test_the_public_api_is_pinned():
    import justice.evaluate

    # other modules and users code against these names: changing them must be deliberate
    assert sorted(justice.evaluate.__all__) == [
        "EValue", "Effect", "MatchResult", "e_value", "match", "minimum_detectable_effect",
        "minimum_detectable_mean_difference", "participants_needed"]
    assert list(Effect.__dataclass_fields__) == [
        "outcome", "treated_mean", "comparison_mean", "att", "se", "ci", "p_value", "dr_att",
        "dr_se", "dr_ci", "dr_p_value", "n_treated"]
