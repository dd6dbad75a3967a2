"""Power, E-values, balance measures and the logistic fit, against hand and simulated answers."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import norm

from justice.errors import ConfigError
from justice.evaluate import (
    e_value,
    minimum_detectable_effect,
    minimum_detectable_mean_difference,
    participants_needed,
)
from justice.evaluate.stats import (
    logistic_fit,
    normal_interval,
    smd,
    two_sided_p_value,
    variance_ratio,
    weighted_mean_and_variance,
)

MULTIPLIER = norm.ppf(0.975) + norm.ppf(0.80)  # 2.8016


def test_minimum_detectable_effect_for_proportions_by_hand():
    expected = MULTIPLIER * math.sqrt(0.3 * 0.7 * (1 / 100 + 1 / 1000))
    assert minimum_detectable_effect(100, 1000, 0.3) == pytest.approx(expected)
    assert expected == pytest.approx(0.1347, abs=1e-4)
    looser = minimum_detectable_effect(100, 1000, 0.3, alpha=0.10, power=0.9)
    assert looser == pytest.approx((norm.ppf(0.95) + norm.ppf(0.9))
                                   * math.sqrt(0.21 * 0.011))


def test_minimum_detectable_effect_has_the_promised_power_in_simulation():
    rng = np.random.default_rng(1)
    n_treated, n_comparison, base = 400, 2000, 0.3
    effect = minimum_detectable_effect(n_treated, n_comparison, base)
    draws = 20_000
    treated = rng.binomial(n_treated, base - effect, draws) / n_treated
    comparison = rng.binomial(n_comparison, base, draws) / n_comparison
    pooled = (treated * n_treated + comparison * n_comparison) / (n_treated + n_comparison)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_treated + 1 / n_comparison))
    power = np.mean(np.abs(treated - comparison) / se > norm.ppf(0.975))
    assert 0.77 < power < 0.86


def test_minimum_detectable_mean_difference_by_hand_and_in_simulation():
    effect = minimum_detectable_mean_difference(50, 200, sd=2.0)
    assert effect == pytest.approx(MULTIPLIER * 2.0 * math.sqrt(1 / 50 + 1 / 200))
    rng = np.random.default_rng(2)
    difference = rng.normal(effect, 2.0 * math.sqrt(1 / 50 + 1 / 200), 20_000)
    power = np.mean(np.abs(difference) / (2.0 * math.sqrt(1 / 50 + 1 / 200)) > norm.ppf(0.975))
    assert power == pytest.approx(0.80, abs=0.015)


def test_participants_needed_inverts_the_minimum_detectable_effect():
    needed = participants_needed(0.05, 5000, 0.4)
    assert minimum_detectable_effect(needed, 5000, 0.4) == pytest.approx(0.05)
    # a difference smaller than the comparison group alone can resolve needs infinitely many
    assert participants_needed(0.01, 500, 0.4) == math.inf
    assert participants_needed(0.0, 500, 0.4) == math.inf


def test_power_inputs_are_checked():
    with pytest.raises(ConfigError, match="group sizes must be positive"):
        minimum_detectable_effect(0, 100, 0.3)
    with pytest.raises(ConfigError, match="base_rate must lie in"):
        minimum_detectable_effect(10, 100, 1.3)
    with pytest.raises(ConfigError, match="power must lie in"):
        minimum_detectable_mean_difference(10, 100, 1.0, power=1.0)
    with pytest.raises(ConfigError, match="alpha must lie in"):
        minimum_detectable_effect(10, 100, 0.3, alpha=0)


def test_e_value_matches_vanderweele_and_ding_worked_example():
    # their example: RR 3.9 (95% CI 1.8 to 8.7) gives E-values 7.26 and 3.00
    point, limit = e_value(3.9, (1.8, 8.7))
    assert point == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert point == pytest.approx(7.26, abs=0.005)
    assert limit == pytest.approx(3.0)


def test_e_value_for_a_protective_effect_uses_the_inverse_and_the_upper_limit():
    point, limit = e_value(0.5, (0.3, 0.8))
    assert point == pytest.approx(2 + math.sqrt(2))
    assert limit == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))


def test_e_value_is_one_when_the_interval_includes_one():
    assert e_value(0.8, (0.6, 1.1)).ci_limit == 1.0
    assert e_value(1.3, (0.9, 1.8)).ci_limit == 1.0
    assert e_value(1.0, (0.9, 1.1)) == (1.0, 1.0)
    assert e_value(1.5).ci_limit is None


def test_e_value_inputs_are_checked():
    with pytest.raises(ConfigError, match="risk_ratio must be a positive"):
        e_value(0.0)
    with pytest.raises(ConfigError, match="ci must be"):
        e_value(1.5, (2.0, 1.0))


def test_smd_and_variance_ratio_by_hand():
    treated = np.array([1.0, 2.0, 6.0])
    comparison = np.array([0.0, 1.0, 1.0, 2.0])
    scale = math.sqrt((statistics.variance(treated) + statistics.variance(comparison)) / 2)
    assert smd(treated, comparison)[0] == pytest.approx((3.0 - 1.0) / scale)
    assert variance_ratio(treated, comparison)[0] == pytest.approx(
        statistics.variance(treated) / statistics.variance(comparison))
    # weighted comparison with a given scale: mean (0*1 + 2*3) / 4 = 1.5
    weights = np.array([1.0, 0.0, 0.0, 3.0])
    assert smd(treated, comparison, weights, scale=2.0)[0] == pytest.approx((3.0 - 1.5) / 2.0)
    # constant columns: equal means are balanced, different means infinitely imbalanced
    assert smd(np.ones(3), np.ones(4))[0] == 0.0
    # A constant column stays balanced under weights whose mean of ones rounds off one.
    weights = np.full(24, 1 / 3)
    assert weighted_mean_and_variance(np.ones((24, 1)), weights)[0][0] != 1.0  # the rounding
    assert smd(np.ones((3, 1)), np.ones((24, 1)), weights, scale=0.0)[0] == 0.0
    assert smd(np.ones((3, 1)), np.ones((24, 1)), weights)[0] == 0.0
    assert variance_ratio(np.ones((3, 1)), np.ones((24, 1)), weights)[0] == 1.0
    assert smd(np.ones(3), np.zeros(4))[0] == math.inf
    assert variance_ratio(np.ones(3), np.ones(4))[0] == 1.0


def test_weighted_variance_equals_sample_variance_at_equal_weights():
    values = np.array([[1.0, 5.0], [2.0, 3.0], [4.0, 0.0]])
    mean, variance = weighted_mean_and_variance(values, np.full(3, 0.7))
    assert mean == pytest.approx(values.mean(axis=0))
    assert variance == pytest.approx(values.var(axis=0, ddof=1))


def test_logistic_fit_solves_the_score_equations_and_recovers_the_truth():
    rng = np.random.default_rng(3)
    n = 50_000
    design = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    truth = np.array([-1.0, 0.8, -0.5])
    target = (rng.random(n) < 1 / (1 + np.exp(-design @ truth))).astype(float)
    beta = logistic_fit(design, target)
    fitted = 1 / (1 + np.exp(-design @ beta))
    assert np.abs(design.T @ (target - fitted) - 1e-6 * beta).max() < 1e-6
    assert beta == pytest.approx(truth, abs=0.05)


def test_logistic_fit_stays_finite_under_perfect_separation():
    design = np.column_stack([np.ones(6), [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]])
    beta = logistic_fit(design, np.array([0, 0, 0, 1, 1, 1.0]))
    assert np.isfinite(beta).all()
    assert beta[1] > 5


def test_normal_interval_and_p_value():
    assert normal_interval(1.0, 0.5) == pytest.approx((1 - 0.98, 1 + 0.98), abs=1e-3)
    assert two_sided_p_value(1.96, 1.0) == pytest.approx(0.05, abs=1e-4)
    assert two_sided_p_value(0.0, 0.0) == 1.0
    assert two_sided_p_value(0.2, 0.0) == 0.0
