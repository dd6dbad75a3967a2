"""Statistics for evaluations: power, sensitivity, balance and the propensity model.

Everything here is plain numpy arithmetic with the formula named in each docstring, so a
reviewer can check a number by hand. Normal quantiles come from `statistics.NormalDist`.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from justice.errors import ConfigError

_STANDARD_NORMAL = NormalDist()


def normal_quantile(probability: float) -> float:
    """The standard normal quantile z with P(Z <= z) = probability."""
    return _STANDARD_NORMAL.inv_cdf(probability)


def normal_interval(estimate: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """Wald interval estimate -/+ z_{(1+level)/2} * se (the normal approximation)."""
    z = normal_quantile(0.5 + level / 2)
    return (estimate - z * se, estimate + z * se)


def two_sided_p_value(estimate: float, se: float) -> float:
    """Two-sided p-value 2 * (1 - Phi(|estimate / se|)) of the Wald test of a zero effect.

    A zero standard error gives 1.0 for a zero estimate and 0.0 otherwise (no sampling noise).
    """
    if not math.isfinite(estimate) or not math.isfinite(se):
        return math.nan
    if se <= 0:
        return 1.0 if estimate == 0 else 0.0
    return 2.0 * (1.0 - _STANDARD_NORMAL.cdf(abs(estimate) / se))


def _check_power_inputs(n_treated: float, n_comparison: float, alpha: float, power: float) -> None:
    if not n_treated > 0 or not n_comparison > 0:
        raise ConfigError(
            f"minimum detectable effect: group sizes must be positive, got n_treated={n_treated}, "
            f"n_comparison={n_comparison}"
        )
    if not 0 < alpha < 1:
        raise ConfigError(f"minimum detectable effect: alpha must lie in (0, 1), got {alpha}")
    if not 0 < power < 1:
        raise ConfigError(f"minimum detectable effect: power must lie in (0, 1), got {power}")


def _power_multiplier(alpha: float, power: float) -> float:
    """z_{1-alpha/2} + z_{power}: 2.80 for a two-sided 5% test at 80% power (Bloom 1995)."""
    return normal_quantile(1 - alpha / 2) + normal_quantile(power)


def minimum_detectable_effect(
    n_treated: float,
    n_comparison: float,
    base_rate: float,
    alpha: float = 0.05,
    power: float = 0.80,
) -> float:
    """Smallest absolute difference in proportions a two-sided test detects with this power.

    Bloom (1995), "Minimum detectable effects", Evaluation Review 19(5): MDE = (z_{1-alpha/2} +
    z_{power}) * sqrt(p (1 - p) (1/n_treated + 1/n_comparison)), with p the comparison group's
    base rate standing in for both groups' rates (the usual planning approximation). Matching
    with replacement and weights lowers the effective comparison size; pass that (e.g. the Kish
    effective size) as n_comparison when it is known.
    """
    if not 0 <= base_rate <= 1:
        raise ConfigError(
            f"minimum detectable effect: base_rate must lie in [0, 1], got {base_rate}"
        )
    # A proportion is a mean of 0/1 outcomes with standard deviation sqrt(p (1 - p)).
    return minimum_detectable_mean_difference(n_treated, n_comparison,
                                              math.sqrt(base_rate * (1 - base_rate)), alpha, power)


def minimum_detectable_mean_difference(
    n_treated: float,
    n_comparison: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.80,
) -> float:
    """Smallest difference in means a two-sided test detects with this power (Bloom 1995).

    MDE = (z_{1-alpha/2} + z_{power}) * sd * sqrt(1/n_treated + 1/n_comparison), with `sd` the
    outcome's standard deviation (assumed the same in both groups).
    """
    _check_power_inputs(n_treated, n_comparison, alpha, power)
    if not sd >= 0:
        raise ConfigError(f"minimum detectable effect: sd must be non-negative, got {sd}")
    return _power_multiplier(alpha, power) * sd * math.sqrt(1 / n_treated + 1 / n_comparison)


def participants_needed(
    effect: float,
    n_comparison: float,
    base_rate: float,
    alpha: float = 0.05,
    power: float = 0.80,
) -> float:
    """Treated group size at which `minimum_detectable_effect` falls to |effect| (Bloom 1995).

    Solves MDE(n_treated) = |effect| for n_treated with the comparison size fixed:
    1/n_treated = (effect / (z_{1-alpha/2} + z_power))^2 / (p (1 - p)) - 1/n_comparison.
    Returns math.inf when no treated group size is enough (the comparison group is the limit)
    and 0.0 when the base rate is 0 or 1 (no variation to detect against).
    """
    _check_power_inputs(1, n_comparison, alpha, power)
    if not 0 <= base_rate <= 1:
        raise ConfigError(f"participants needed: base_rate must lie in [0, 1], got {base_rate}")
    if effect == 0:
        return math.inf
    variance = base_rate * (1 - base_rate)
    if variance == 0:
        return 0.0
    inverse = (effect / _power_multiplier(alpha, power)) ** 2 / variance - 1 / n_comparison
    return math.inf if inverse <= 0 else 1 / inverse


class EValue(NamedTuple):
    """E-values for an observed risk ratio: `point` for the estimate, `ci_limit` for the CI."""

    point: float
    ci_limit: float | None


def _e_value_of_ratio(risk_ratio: float) -> float:
    ratio = risk_ratio if risk_ratio >= 1 else 1 / risk_ratio
    return ratio + math.sqrt(ratio * (ratio - 1))


def e_value(risk_ratio: float, ci: tuple[float, float] | None = None) -> EValue:
    """E-values of a risk ratio and of its confidence interval (VanderWeele & Ding 2017).

    VanderWeele & Ding, "Sensitivity analysis in observational research: introducing the
    E-value", Annals of Internal Medicine 167(4). With RR* = RR (or 1/RR when RR < 1),
    E = RR* + sqrt(RR* (RR* - 1)): the minimum strength of association, on the risk-ratio scale,
    that an unmeasured confounder would need with both treatment and outcome to explain the
    estimate away. For the CI the same formula is applied to the limit closer to 1; when the
    interval includes 1 the CI E-value is 1.
    """
    if not (math.isfinite(risk_ratio) and risk_ratio > 0):
        raise ConfigError(f"e_value: risk_ratio must be a positive number, got {risk_ratio}")
    point = _e_value_of_ratio(risk_ratio)
    if ci is None:
        return EValue(point, None)
    lower, upper = ci
    if not (lower > 0 and upper >= lower):
        raise ConfigError(f"e_value: ci must be (lower, upper) with 0 < lower <= upper, got {ci}")
    if lower <= 1 <= upper:
        return EValue(point, 1.0)
    return EValue(point, _e_value_of_ratio(lower if lower > 1 else upper))


def weighted_mean_and_variance(
    values: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Column means and variances of `values` (rows x columns), optionally weighted.

    Unweighted: the sample variance with n - 1. Weighted: frequency-free (reliability) weights,
    sum w (x - mean)^2 / (sum w - sum w^2 / sum w), which equals the n - 1 form at equal weights.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if weights is None:
        weights = np.ones(values.shape[0])
    weights = np.asarray(weights, dtype=float)
    total = weights.sum()
    mean = weights @ values / total
    squares = weights @ (values - mean) ** 2
    denominator = total - (weights @ weights) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(denominator > 0, squares / denominator, np.nan)
    return mean, variance


def smd(
    treated: np.ndarray,
    comparison: np.ndarray,
    comparison_weights: np.ndarray | None = None,
    scale: float | np.ndarray | None = None,
) -> np.ndarray:
    """Standardised mean difference (treated - comparison) / scale, per column.

    Austin (2009), "Balance diagnostics for comparing the distribution of baseline covariates
    between treatment groups in propensity-score matched samples", Stat Med 28: the scale is
    sqrt((s_t^2 + s_c^2) / 2) of the groups *before* matching; pass it as `scale` when comparing
    a matched sample so before and after share one yardstick. A zero scale gives 0 for equal
    means and +/-inf otherwise.
    """
    treated_mean, treated_variance = weighted_mean_and_variance(treated)
    comparison_mean, comparison_variance = weighted_mean_and_variance(
        comparison, comparison_weights
    )
    if scale is None:
        scale = np.sqrt((treated_variance + comparison_variance) / 2)
    difference = treated_mean - comparison_mean
    scale = np.broadcast_to(np.asarray(scale, dtype=float), difference.shape)
    # A column constant in both groups has a zero scale up to rounding (a weighted mean of ones
    # is not always exactly one): such differences and scales count as zero.
    tiny = 1e-9 * (1.0 + np.abs(treated_mean) + np.abs(comparison_mean))
    difference = np.where(np.abs(difference) <= tiny, 0.0, difference)
    scale = np.where(scale <= tiny, 0.0, scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = difference / np.where(scale > 0, scale, 1.0)
        result = np.where(scale > 0, ratio, np.sign(difference) * np.inf)
    return np.where((scale == 0) & (difference == 0), 0.0, result)


def variance_ratio(
    treated: np.ndarray,
    comparison: np.ndarray,
    comparison_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Variance ratio s_t^2 / s_c^2 per column (Austin 2009; balanced when within [0.5, 2]).

    Both variances zero gives 1 (identical constant columns); only the comparison's zero gives inf.
    """
    treated_mean, treated_variance = weighted_mean_and_variance(treated)
    comparison_mean, comparison_variance = weighted_mean_and_variance(comparison,
                                                                      comparison_weights)
    # Variances of a constant column are zero up to rounding (see smd).
    tiny = 1e-18 * (1.0 + treated_mean**2 + comparison_mean**2)
    treated_variance = np.where(treated_variance <= tiny, 0.0, treated_variance)
    comparison_variance = np.where(comparison_variance <= tiny, 0.0, comparison_variance)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = treated_variance / comparison_variance
    both_zero = (treated_variance == 0) & (comparison_variance == 0)
    return np.where(both_zero, 1.0, ratio)


def logistic_fit(
    design: np.ndarray,
    target: np.ndarray,
    ridge: float = 1e-6,
    max_iterations: int = 100,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Coefficients of a logistic regression by Newton-Raphson (IRLS) with a small ridge.

    Maximises sum[y x'b - log(1 + exp(x'b))] - ridge/2 * |b|^2 (the ridge, also on the intercept
    column, keeps the Hessian invertible under separation or collinear dummies); each step is
    halved until the penalised log-likelihood does not fall. `design` should carry its own
    intercept column and be standardised so the ridge treats every column alike.
    """
    design = np.asarray(design, dtype=float)
    target = np.asarray(target, dtype=float)
    n_columns = design.shape[1]
    beta = np.zeros(n_columns)
    penalty = ridge * np.eye(n_columns)

    def objective(coefficients: np.ndarray) -> float:
        linear = design @ coefficients
        return float(target @ linear - np.logaddexp(0.0, linear).sum()
                     - ridge / 2 * coefficients @ coefficients)

    current = objective(beta)
    for _ in range(max_iterations):
        linear = design @ beta
        probability = np.exp(-np.logaddexp(0.0, -linear))
        gradient = design.T @ (target - probability) - ridge * beta
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while True:
            candidate = beta + size * step
            value = objective(candidate)
            if value >= current - 1e-12 * abs(current) or size < 1e-8:
                break
            size /= 2
        beta, improvement, current = candidate, value - current, value
        converged = abs(improvement) <= tolerance * (abs(current) + 1)
        if converged and np.max(np.abs(size * step)) < 1e-6:
            break
    return beta
