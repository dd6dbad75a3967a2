"""Propensity-score matching with replacement: the generic engine behind every evaluation.

`match` takes any table (pandas, or a frame speaking the Arrow PyCapsule protocol such as
Polars) with a 0/1 treatment column, covariates and outcomes, and returns a `MatchResult`:
the average treatment effect on the treated (ATT) for each outcome with an Abadie-Imbens
standard error, a doubly robust (AIPW) check, and a before/after balance table. It knows
nothing about justice data.

The method, step by step:

1. Propensity score: logistic regression of treatment on the standardised covariates
   (categoricals one-hot encoded, first level dropped) by Newton/IRLS (`stats.logistic_fit`).
2. Common support ("minmax"): treated units whose logit lies outside the controls' range are
   dropped and counted.
3. Matching: within each exact cell, each treated unit takes its `comparators` nearest controls
   on the logit, with replacement, keeping only those within `caliper` x the pooled SD of the
   logit (Austin 2011), plus any control tied with the k-th nearest (Abadie & Imbens 2006); a
   treated unit left with none is dropped and counted. A treated unit with k matches gives each
   of them weight 1/k.
4. Effect: ATT = mean over matched treated of (Y_i - weighted mean of its controls), variance
   by Abadie & Imbens (2006) for matching with replacement, generalised to weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from justice.errors import ConfigError
from justice.evaluate.stats import (
    logistic_fit,
    normal_interval,
    smd,
    two_sided_p_value,
    variance_ratio,
    weighted_mean_and_variance,
)

COMMON_SUPPORT_RULES = ("minmax", "none")
SMD_THRESHOLD = 0.1
VARIANCE_RATIO_RANGE = (0.5, 2.0)
LOGIT_ROW = "propensity_logit"
MAX_PAIRS = 20_000_000
"""More treated-control pairs than this (only reachable through ties in coarse data) is refused
with a ConfigError rather than allowed to exhaust memory."""


@dataclass(frozen=True)
class Effect:
    """The estimated effect of treatment on one outcome, among the matched treated."""

    outcome: str
    treated_mean: float
    """Mean outcome of the matched treated units."""
    comparison_mean: float
    """Mean over the matched treated of their controls' weighted mean outcome."""
    att: float
    """treated_mean - comparison_mean: the matching estimate of the ATT."""
    se: float
    """Abadie-Imbens (2006) standard error of `att` for matching with replacement."""
    ci: tuple[float, float]
    """95% normal confidence interval of `att`."""
    p_value: float
    """Two-sided p-value of `att` against no effect."""
    dr_att: float
    """Doubly robust (AIPW) ATT over the treated in common support: a check on `att`."""
    dr_se: float
    """Influence-function standard error of `dr_att`."""
    dr_ci: tuple[float, float]
    dr_p_value: float
    n_treated: int
    """Number of matched treated units the effect is averaged over."""


@dataclass
class MatchResult:
    """What `match` found: effects, balance, the matched sample and what was dropped."""

    att: float
    """ATT of the primary (first) outcome; likewise `se`, `ci` and `p_value`."""
    se: float
    ci: tuple[float, float]
    p_value: float
    effects: dict[str, Effect]
    """One `Effect` per outcome, in the order given."""
    balance: pd.DataFrame
    """Covariate balance before and after matching (see `match`)."""
    matched: pd.DataFrame
    """Input rows of the matched treated and used controls, with `_row` (position in the
    input), `_weight` (a control's total weight K_j; 1 for treated), `_pscore` and `_logit`."""
    pairs: pd.DataFrame
    """treated_row, control_row (positions in the input, sorted by both) and the pair's weight
    1/k."""
    n_treated: int
    """Treated units in the input."""
    n_matched: int
    """Treated units with at least one comparator."""
    n_controls: int
    """Controls in the input."""
    n_controls_used: int
    """Distinct controls matched at least once."""
    dropped_support: int
    """Treated units outside the controls' propensity range (common support)."""
    dropped_caliper: int
    """Treated units whose nearest control lay beyond the caliper."""
    dropped_exact: int
    """Treated units whose exact cell holds no control at all."""
    effective_comparison: float
    """Kish effective size of the weighted controls: (sum K_j)^2 / sum K_j^2."""
    options: dict[str, Any]
    pscore_coefficients: dict[str, float]
    """Logit coefficients on the covariates' own scale (per unit, per level vs the first)."""
    pscore: np.ndarray
    """Propensity score of every input row, in input order (for overlap charts)."""
    notes: list[str] = field(default_factory=list)
    """Warnings worth reading (e.g. a constant covariate left out of the propensity model)."""

    def summary(self) -> str:
        """A plain-text report: counts, effects with CIs and the flagged balance rows."""
        options = self.options
        lines = [
            (f"Treated {self.n_treated:,}; matched {self.n_matched:,} "
             f"(dropped: {self.dropped_support:,} outside common support, "
             f"{self.dropped_exact:,} with no control in their exact cell, "
             f"{self.dropped_caliper:,} beyond the caliper)"),
            (f"Controls {self.n_controls:,}; used {self.n_controls_used:,} "
             f"(effective comparison size {self.effective_comparison:,.1f})"),
            (f"Options: comparators={options['comparators']}, caliper={options['caliper']}, "
             f"common_support={options['common_support']}, exact={options['exact']}"),
            "",
            (f"{'outcome':<28}{'treated':>10}{'comparison':>12}{'ATT':>10}{'95% CI':>22}"
             f"{'p':>8}{'DR ATT':>10}"),
        ]
        for effect in self.effects.values():
            interval = f"[{effect.ci[0]:.4g}, {effect.ci[1]:.4g}]"
            lines.append(
                f"{effect.outcome:<28}{effect.treated_mean:>10.4g}{effect.comparison_mean:>12.4g}"
                f"{effect.att:>10.4g}{interval:>22}{effect.p_value:>8.3f}{effect.dr_att:>10.4g}"
            )
        flagged = self.balance[self.balance["flagged"]]
        lines.append("")
        if flagged.empty:
            lines.append(f"Balance: every covariate within |SMD| <= {SMD_THRESHOLD} after matching")
        else:
            lines.append("Balance: flagged after matching (|SMD| > 0.1 or variance ratio outside "
                         "[0.5, 2]):")
            for row in flagged.itertuples():
                lines.append(f"  {row.covariate}: SMD {row.smd_after:.3f}, VR {row.vr_after:.2f}")
        lines.extend(self.notes)
        return "\n".join(lines)


def match(
    data: Any,
    treatment: str,
    covariates: list[str] | str,
    outcome: list[str] | str,
    *,
    exact: list[str] | str | None = None,
    comparators: int = 5,
    caliper: float | None = 0.2,
    common_support: str = "minmax",
    variance_neighbours: int = 2,
    ties: bool = True,
) -> MatchResult:
    """Estimate the ATT of `treatment` on each outcome by propensity-score matching.

    `data`: pandas DataFrame or an Arrow PyCapsule frame (Polars). `treatment`: a 0/1 or bool
    column. `covariates`: numeric or categorical (object, string, category, bool) columns.
    `outcome`: a column or a list of them (the first is primary). `exact`: columns a treated
    unit must share with its controls (also entered in the propensity model). `comparators`:
    at most this many controls per treated unit. `caliper`: the widest allowed logit distance
    in pooled standard deviations of the logit (None: no limit). `common_support`: "minmax"
    drops treated units outside the controls' propensity range, "none" keeps all.
    `variance_neighbours`: J, the controls each used control is compared with to estimate its
    conditional outcome variance (Abadie & Imbens 2006). `ties`: keep every control exactly as
    close as the k-th nearest (so a treated unit may get more than `comparators`; Abadie &
    Imbens 2006); False takes the first k in sorted order.

    Raises ConfigError for unknown columns, missing values, a non-binary treatment, fewer than
    two treated or no controls, invalid options, or when no treated unit can be matched.
    """
    frame = _as_pandas(data)
    covariates = _as_list(covariates, "covariates")
    outcomes = _as_list(outcome, "outcome")
    exact = _as_list(exact, "exact") if exact is not None else []
    _check_options(comparators, caliper, common_support, variance_neighbours)
    if not isinstance(ties, (bool, np.bool_)):
        raise ConfigError(f"match: ties must be True or False, got {ties!r}")
    _check_columns(frame, treatment, covariates, outcomes, exact)
    model_covariates = covariates + [name for name in exact if name not in covariates]

    is_treated = _treatment_indicator(frame, treatment)
    outcome_values = {name: _outcome_values(frame, name) for name in outcomes}
    for name in model_covariates:
        _check_complete(frame, name, "covariate" if name in covariates else "exact column")
    n_treated, n_controls = int(is_treated.sum()), int((~is_treated).sum())
    if n_treated < 2:
        raise ConfigError(f"match: treatment column '{treatment}' marks {n_treated} treated "
                          "row(s); matching needs at least 2")
    if n_controls == 0:
        raise ConfigError(f"match: treatment column '{treatment}' marks no control rows (every "
                          "row is treated); matching needs a pool of untreated rows")

    design = _encode(frame, model_covariates)
    logit, coefficients, notes = _propensity(design, is_treated)
    pscore = np.exp(-np.logaddexp(0.0, -logit))  # 1 / (1 + e^-logit) without overflow
    treated_logit, control_logit = logit[is_treated], logit[~is_treated]
    logit_sd = math.sqrt((treated_logit.var(ddof=1) + control_logit.var(ddof=1)) / 2)
    caliper_width = math.inf if caliper is None else caliper * logit_sd

    in_support = np.ones(len(frame), dtype=bool)
    if common_support == "minmax":
        in_support = (logit >= control_logit.min()) & (logit <= control_logit.max())
    dropped_support = int((is_treated & ~in_support).sum())

    cells = _exact_cells(frame, exact)
    matching = _match_within_cells(
        logit, is_treated & in_support, ~is_treated, cells, comparators, caliper_width,
        variance_neighbours, ties,
    )
    n_matched = len(matching.treated_rows)
    if n_matched == 0:
        raise ConfigError(
            f"match: no treated row found a control: {dropped_support} outside common support, "
            f"{matching.dropped_exact} with no control in their exact cell, "
            f"{matching.dropped_caliper} beyond the caliper ({caliper} SD of the logit); "
            "widen the caliper, drop exact columns or enlarge the comparison pool"
        )

    effects = {}
    for name, values in outcome_values.items():
        estimate = _matching_effect(values, matching, ~is_treated)
        robust = _doubly_robust_effect(values, design.model, logit, is_treated, in_support)
        effects[name] = Effect(outcome=name, n_treated=n_matched, **estimate, **robust)
    primary = effects[outcomes[0]]

    control_weight = matching.control_weight
    balance = _balance_table(design, logit, is_treated, matching)
    return MatchResult(
        att=primary.att,
        se=primary.se,
        ci=primary.ci,
        p_value=primary.p_value,
        effects=effects,
        balance=balance,
        matched=_matched_rows(frame, matching, pscore, logit),
        pairs=pd.DataFrame({
            "treated_row": matching.pair_treated_rows,
            "control_row": matching.pair_control_rows,
            "weight": matching.pair_weights,
        }),
        n_treated=n_treated,
        n_matched=n_matched,
        n_controls=n_controls,
        n_controls_used=len(matching.control_rows),
        dropped_support=dropped_support,
        dropped_caliper=matching.dropped_caliper,
        dropped_exact=matching.dropped_exact,
        effective_comparison=float(control_weight.sum() ** 2 / (control_weight @ control_weight)),
        options={
            "treatment": treatment,
            "covariates": model_covariates,
            "outcomes": outcomes,
            "exact": exact,
            "comparators": comparators,
            "caliper": caliper,
            "caliper_width_logit": caliper_width,
            "logit_sd": logit_sd,
            "common_support": common_support,
            "variance_neighbours": variance_neighbours,
            "ties": ties,
        },
        pscore_coefficients=coefficients,
        pscore=pscore,
        notes=notes,
    )


# ---------------------------------------------------------------- input checking


def _as_pandas(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        import pyarrow as pa

        return pa.table(data).to_pandas()
    raise ConfigError(
        f"match: data must be a pandas DataFrame or an Arrow-compatible frame such as Polars, "
        f"got {type(data).__name__}"
    )


def _as_list(names: Any, argument: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ConfigError(f"match: {argument} is empty; give at least one column name")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ConfigError(f"match: {argument} names {duplicated} more than once")
    return names


def _check_options(comparators: Any, caliper: Any, common_support: Any, neighbours: Any) -> None:
    if isinstance(comparators, bool) or not isinstance(comparators, (int, np.integer)) \
            or comparators < 1:
        raise ConfigError(f"match: comparators must be a whole number >= 1, got {comparators!r}")
    if caliper is not None and (isinstance(caliper, bool) or not isinstance(caliper, (int, float))
                                or not math.isfinite(caliper) or caliper <= 0):
        raise ConfigError(f"match: caliper must be a positive number of SDs of the logit or None, "
                          f"got {caliper!r}")
    if common_support not in COMMON_SUPPORT_RULES:
        raise ConfigError(f"match: common_support must be one of {list(COMMON_SUPPORT_RULES)}, "
                          f"got {common_support!r}")
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) \
            or neighbours < 1:
        raise ConfigError(f"match: variance_neighbours must be a whole number >= 1, "
                          f"got {neighbours!r}")


def _check_columns(
    frame: pd.DataFrame, treatment: str, covariates: list[str], outcomes: list[str],
    exact: list[str],
) -> None:
    wanted = [("treatment", treatment)] + [("covariate", name) for name in covariates] \
        + [("outcome", name) for name in outcomes] + [("exact column", name) for name in exact]
    unknown = [(role, name) for role, name in wanted if name not in frame.columns]
    if unknown:
        listed = ", ".join(f"{role} '{name}'" for role, name in unknown)
        raise ConfigError(f"match: no column for {listed}; the data has columns "
                          f"{[str(column) for column in frame.columns]}")
    if treatment in covariates or treatment in outcomes or treatment in exact:
        raise ConfigError(f"match: treatment column '{treatment}' is also given as a covariate, "
                          "outcome or exact column")
    overlap = [name for name in outcomes if name in covariates or name in exact]
    if overlap:
        raise ConfigError(f"match: {overlap} given both as outcome and as covariate/exact column; "
                          "an outcome cannot be adjusted for")


def _check_complete(frame: pd.DataFrame, name: str, role: str) -> None:
    missing = frame[name].isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        shown = ", ".join(str(row) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise ConfigError(f"match: {role} '{name}' has {len(rows):,} missing value(s) (rows "
                          f"{shown}); fill or drop them, or encode 'unknown' as a category")


def _treatment_indicator(frame: pd.DataFrame, treatment: str) -> np.ndarray:
    _check_complete(frame, treatment, "treatment column")
    column = frame[treatment]
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool)
    values = set(pd.unique(column).tolist())
    if not values <= {0, 1}:
        shown = sorted(map(repr, values))[:6]
        raise ConfigError(f"match: treatment column '{treatment}' must hold 0/1 or True/False; "
                          f"found {', '.join(shown)}")
    return column.to_numpy() == 1


def _outcome_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    _check_complete(frame, name, "outcome")
    column = frame[name]
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise ConfigError(f"match: outcome '{name}' must be numeric or bool, got {column.dtype}")
    values = column.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ConfigError(f"match: outcome '{name}' has infinite values")
    return values


# ---------------------------------------------------------------- design and propensity


@dataclass
class _Design:
    """Covariates as numbers: every level for balance, first level dropped for the models."""

    balance: np.ndarray
    balance_names: list[str]
    binary: np.ndarray
    """Per balance column: does it only hold 0/1 (a variance ratio means little there)?"""
    model: np.ndarray
    """Standardised model columns with a leading intercept; constant columns left out."""
    model_names: list[str]
    model_means: np.ndarray
    model_sds: np.ndarray
    constant: list[str]


def _is_categorical(column: pd.Series) -> bool:
    return (pd.api.types.is_bool_dtype(column) or pd.api.types.is_object_dtype(column)
            or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def _levels(column: pd.Series) -> list[Any]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.unique().tolist())
        return [level for level in column.cat.categories if level in present]
    values = pd.unique(column).tolist()
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _encode(frame: pd.DataFrame, covariates: list[str]) -> _Design:
    balance_columns, balance_names, model_columns, model_names = [], [], [], []
    for name in covariates:
        column = frame[name]
        if _is_categorical(column):
            levels = _levels(column)
            codes = pd.Categorical(column, categories=levels).codes
            for position, level in enumerate(levels):
                dummy = (codes == position).astype(float)
                balance_columns.append(dummy)
                balance_names.append(f"{name}={level}")
                if position > 0:
                    model_columns.append(dummy)
                    model_names.append(f"{name}={level}")
        elif pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise ConfigError(f"match: covariate '{name}' has infinite values")
            balance_columns.append(values)
            balance_names.append(name)
            model_columns.append(values)
            model_names.append(name)
        else:
            raise ConfigError(f"match: covariate '{name}' has type {column.dtype}; give numbers "
                              "or categories (convert dates to e.g. a year or an age)")
    balance = np.column_stack(balance_columns)
    binary = np.array([np.isin(np.unique(column), (0.0, 1.0)).all() for column in balance.T])
    raw = np.column_stack(model_columns) if model_columns else np.empty((len(frame), 0))
    means, sds = raw.mean(axis=0), raw.std(axis=0)
    varying = sds > 0
    constant = [name for name, keep in zip(model_names, varying) if not keep]
    standardised = (raw[:, varying] - means[varying]) / sds[varying]
    return _Design(
        balance=balance,
        balance_names=balance_names,
        binary=binary,
        model=np.column_stack([np.ones(len(frame)), standardised]),
        model_names=[name for name, keep in zip(model_names, varying) if keep],
        model_means=means[varying],
        model_sds=sds[varying],
        constant=constant,
    )


def _propensity(design: _Design, is_treated: np.ndarray) -> tuple[np.ndarray, dict, list[str]]:
    beta = logistic_fit(design.model, is_treated.astype(float))
    logit = design.model @ beta
    # report per unit of each covariate (what a reader can interpret), not per SD
    slopes = beta[1:] / design.model_sds
    coefficients = {"intercept": float(beta[0] - slopes @ design.model_means)}
    coefficients.update({name: float(value) for name, value in zip(design.model_names, slopes)})
    notes = []
    if design.constant:
        notes.append(f"Note: constant in the data, left out of the propensity model: "
                     f"{', '.join(design.constant)}")
    return logit, coefficients, notes


def _exact_cells(frame: pd.DataFrame, exact: list[str]) -> np.ndarray:
    if not exact:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(exact, sort=True, observed=True).ngroup().to_numpy()


# ---------------------------------------------------------------- matching


@dataclass
class _Matching:
    """Matched pairs and, per used control, its weights and its own nearest controls."""

    treated_rows: np.ndarray
    """Input positions of matched treated units (ascending)."""
    pair_treated_rows: np.ndarray
    pair_control_rows: np.ndarray
    pair_weights: np.ndarray
    pair_treated_index: np.ndarray
    """Per pair: index into treated_rows."""
    control_rows: np.ndarray
    """Input positions of used controls (ascending)."""
    pair_control_index: np.ndarray
    """Per pair: index into control_rows."""
    control_weight: np.ndarray
    """K_j = sum_i w_ij per used control."""
    control_weight_squares: np.ndarray
    """K'_j = sum_i w_ij^2 per used control."""
    neighbour_rows: np.ndarray
    """Per used control: input positions of its J nearest other controls in its cell (-1: none)."""
    dropped_caliper: int
    dropped_exact: int


def _cell_members(cells: np.ndarray, members: np.ndarray):
    """Yield (cell, members in it, ascending) for the given members, after one sort: a scan per
    cell would cost rows x cells, which many exact cells make quadratic."""
    if len(members) == 0:
        return
    member_cells = cells[members]
    order = np.argsort(member_cells, kind="stable")
    sorted_cells = member_cells[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends):
        yield sorted_cells[start], members[order[start:end]]


def _nearest(
    sorted_values: np.ndarray,
    queries: np.ndarray,
    k: int,
    query_positions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `sorted_values` of the k nearest to each query, and their distances.

    The k nearest of a sorted 1-D array lie within k places either side of the query's insertion
    point, so only those 2k candidates are compared: O(n k) after one O(n log n) sort. When
    `query_positions` is given each query is that element of the array and skips itself.
    Missing neighbours (fewer than k candidates) have position -1 and distance inf.
    """
    size = len(sorted_values)
    if query_positions is None:
        anchors = np.searchsorted(sorted_values, queries)
        offsets = np.arange(-k, k)
    else:
        anchors = query_positions
        offsets = np.concatenate([np.arange(-k, 0), np.arange(1, k + 1)])
    candidates = anchors[:, None] + offsets[None, :]
    valid = (candidates >= 0) & (candidates < size)
    clipped = np.clip(candidates, 0, max(size - 1, 0))
    distance = np.where(valid, np.abs(sorted_values[clipped] - queries[:, None]), np.inf)
    # stable: equal distances keep the left-to-right order, so results are deterministic
    order = np.argsort(distance, axis=1, kind="stable")[:, :k]
    chosen_distance = np.take_along_axis(distance, order, axis=1)
    chosen = np.where(np.isfinite(chosen_distance), np.take_along_axis(clipped, order, axis=1), -1)
    return chosen, chosen_distance


def _match_within_cells(
    logit: np.ndarray,
    is_candidate_treated: np.ndarray,
    is_control: np.ndarray,
    cells: np.ndarray,
    comparators: int,
    caliper_width: float,
    variance_neighbours: int,
    ties: bool,
) -> _Matching:
    pair_treated, pair_control, pair_weight = [], [], []
    dropped_caliper = dropped_exact = n_pairs = 0
    control_cells = {}
    for cell, rows in _cell_members(cells, np.flatnonzero(is_candidate_treated | is_control)):
        treated_rows = rows[is_candidate_treated[rows]]
        control_rows = rows[is_control[rows]]
        if len(control_rows) == 0:
            dropped_exact += len(treated_rows)
            continue
        order = np.argsort(logit[control_rows], kind="stable")
        sorted_rows, sorted_logit = control_rows[order], logit[control_rows][order]
        control_cells[cell] = (sorted_rows, sorted_logit)
        if len(treated_rows) == 0:
            continue
        positions, distance = _nearest(sorted_logit, logit[treated_rows], comparators)
        if ties:
            treated_index, control_position = _matches_with_ties(
                sorted_logit, logit[treated_rows], distance[:, -1], caliper_width
            )
        else:
            treated_index, slot = np.nonzero(np.isfinite(distance) & (distance <= caliper_width))
            control_position = positions[treated_index, slot]
        n_pairs += len(treated_index)
        if n_pairs > MAX_PAIRS:
            raise ConfigError(
                f"match: more than {MAX_PAIRS:,} treated-control pairs, because many rows share "
                "exactly the same propensity score (coarse covariates) and ties are kept; add a "
                "more detailed covariate or pass ties=False"
            )
        matches = np.bincount(treated_index, minlength=len(treated_rows))
        dropped_caliper += int((matches == 0).sum())
        pair_treated.append(treated_rows[treated_index])
        pair_control.append(sorted_rows[control_position])
        pair_weight.append(1.0 / matches[treated_index])

    if pair_treated:
        pair_treated_rows = np.concatenate(pair_treated)
        pair_control_rows = np.concatenate(pair_control)
        pair_weights = np.concatenate(pair_weight)
        order = np.lexsort((pair_control_rows, pair_treated_rows))
        pair_treated_rows = pair_treated_rows[order]
        pair_control_rows = pair_control_rows[order]
        pair_weights = pair_weights[order]
    else:
        pair_treated_rows = pair_control_rows = np.empty(0, dtype=np.int64)
        pair_weights = np.empty(0)

    treated_rows, pair_treated_index = np.unique(pair_treated_rows, return_inverse=True)
    control_rows, pair_control_index = np.unique(pair_control_rows, return_inverse=True)
    control_weight = np.bincount(pair_control_index, pair_weights, minlength=len(control_rows))
    control_weight_squares = np.bincount(
        pair_control_index, pair_weights**2, minlength=len(control_rows)
    )
    neighbour_rows = _control_neighbours(control_rows, cells, logit, control_cells,
                                         variance_neighbours)
    return _Matching(
        treated_rows=treated_rows,
        pair_treated_rows=pair_treated_rows,
        pair_control_rows=pair_control_rows,
        pair_weights=pair_weights,
        pair_treated_index=pair_treated_index,
        control_rows=control_rows,
        pair_control_index=pair_control_index,
        control_weight=control_weight,
        control_weight_squares=control_weight_squares,
        neighbour_rows=neighbour_rows,
        dropped_caliper=dropped_caliper,
        dropped_exact=dropped_exact,
    )


def _matches_with_ties(
    sorted_values: np.ndarray,
    queries: np.ndarray,
    kth_distance: np.ndarray,
    caliper_width: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Every control at least as close as the k-th nearest and within the caliper, per query.

    This is Abadie & Imbens's (2006) matched set J_M(i), which keeps controls tied with the M-th
    nearest: with coarse covariates many rows share one score, and taking the first k of a tie
    would reuse the same few controls for every treated unit with that score. The set is a
    contiguous run of the sorted array, found by two binary searches per query.
    Returns (query index, position in sorted_values) per pair.
    """
    radius = np.minimum(kth_distance, caliper_width)
    # a hair of slack keeps controls whose distance equals the k-th exactly but not after
    # rounding t - d; the caliper itself is then applied exactly
    reach = radius * (1 + 1e-9) + 1e-12
    low = np.searchsorted(sorted_values, queries - reach, side="left")
    high = np.searchsorted(sorted_values, queries + reach, side="right")
    counts = high - low
    query_index = np.repeat(np.arange(len(queries)), counts)
    first_of_query = np.cumsum(counts) - counts
    position = np.repeat(low - first_of_query, counts) + np.arange(counts.sum())
    within = np.abs(sorted_values[position] - queries[query_index]) <= caliper_width
    return query_index[within], position[within]


def _control_neighbours(
    control_rows: np.ndarray,
    cells: np.ndarray,
    logit: np.ndarray,
    control_cells: dict,
    neighbours: int,
) -> np.ndarray:
    """Each used control's J nearest other controls in its exact cell, on the logit."""
    result = np.full((len(control_rows), neighbours), -1, dtype=np.int64)
    for cell, which in _cell_members(cells[control_rows], np.arange(len(control_rows))):
        sorted_rows, sorted_logit = control_cells[cell]
        rows = control_rows[which]
        # position of each used control in its cell's logit order
        by_row = np.argsort(sorted_rows)
        positions = by_row[np.searchsorted(sorted_rows[by_row], rows)]
        found, _ = _nearest(sorted_logit, logit[rows], neighbours, query_positions=positions)
        result[which] = np.where(found >= 0, sorted_rows[np.maximum(found, 0)], -1)
    return result


# ---------------------------------------------------------------- effects


def _matching_effect(values: np.ndarray, matching: _Matching, is_control: np.ndarray) -> dict:
    """ATT and its Abadie-Imbens (2006) variance for matching with replacement, with weights.

    V = (1/N1^2) [ sum_i (Y_i - Yhat_i(0) - att)^2 + sum_j (K_j^2 - K'_j) sigma2_j ], with
    K_j = sum_i w_ij and K'_j = sum_i w_ij^2 (Abadie & Imbens 2006, Econometrica 74(1), eq. for
    the ATT with K_M(j)/M generalised to weights), and sigma2_j = J_j/(J_j+1) (Y_j - mean of its
    J_j nearest controls)^2 (their matching estimator of the conditional variance). A control
    alone in its cell has no neighbour; its sigma2 falls back to the variance of all controls.
    """
    n_matched = len(matching.treated_rows)
    treated_values = values[matching.treated_rows]
    expected_untreated = np.bincount(
        matching.pair_treated_index,
        matching.pair_weights * values[matching.pair_control_rows],
        minlength=n_matched,
    )
    differences = treated_values - expected_untreated
    att = float(differences.mean())

    neighbour_rows = matching.neighbour_rows
    has_neighbour = neighbour_rows >= 0
    counts = has_neighbour.sum(axis=1)
    neighbour_sum = np.where(has_neighbour, values[np.maximum(neighbour_rows, 0)], 0.0).sum(axis=1)
    own = values[matching.control_rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        neighbour_mean = neighbour_sum / counts
        sigma2 = counts / (counts + 1) * (own - neighbour_mean) ** 2
    pool = values[is_control]
    fallback = float(pool.var(ddof=1)) if len(pool) > 1 else 0.0
    sigma2 = np.where(counts > 0, sigma2, fallback)

    reuse = matching.control_weight**2 - matching.control_weight_squares
    variance = (((differences - att) ** 2).sum() + reuse @ sigma2) / n_matched**2
    se = math.sqrt(max(variance, 0.0))
    return {
        "treated_mean": float(treated_values.mean()),
        "comparison_mean": float(expected_untreated.mean()),
        "att": att,
        "se": se,
        "ci": normal_interval(att, se),
        "p_value": two_sided_p_value(att, se),
    }


def _doubly_robust_effect(
    values: np.ndarray,
    model: np.ndarray,
    logit: np.ndarray,
    is_treated: np.ndarray,
    in_support: np.ndarray,
) -> dict:
    """ATT by augmented inverse probability weighting, with an influence-function SE.

    With m0(x) a linear regression of Y on the covariates fitted on controls and odds
    r = e/(1-e) = exp(logit): att = (1/N1) sum_i [T_i - (1-T_i) r_i] (Y_i - m0(X_i)) over the
    treated in common support and all controls; it is consistent if either model is right
    (Robins, Rotnitzky & Zhao 1994; the ATT form as in Moodie et al. 2018, Stat Med 37). The
    score is Neyman-orthogonal, so the SE treats the fitted models as known (Chernozhukov et al.
    2018): V = sum_i (a_i - T_i att)^2 / N1^2 with a_i the summand above.
    """
    sample = in_support | ~is_treated
    treated = is_treated[sample]
    controls = ~is_treated
    coefficients, *_ = np.linalg.lstsq(model[controls], values[controls], rcond=None)
    residual = values[sample] - model[sample] @ coefficients
    odds = np.exp(np.minimum(logit[sample], 700.0))
    summand = np.where(treated, 1.0, -odds) * residual
    n_treated = treated.sum()
    att = float(summand.sum() / n_treated)
    se = float(math.sqrt(((summand - treated * att) ** 2).sum()) / n_treated)
    return {
        "dr_att": att,
        "dr_se": se,
        "dr_ci": normal_interval(att, se),
        "dr_p_value": two_sided_p_value(att, se),
    }


# ---------------------------------------------------------------- balance and output


def _balance_table(
    design: _Design, logit: np.ndarray, is_treated: np.ndarray, matching: _Matching
) -> pd.DataFrame:
    """Means, SMD and variance ratio per covariate level and the logit, before and after.

    Before: all treated vs all controls. After: matched treated vs used controls weighted by K_j.
    Both SMDs divide by sqrt of the mean of the two groups' variances before matching (Austin
    2009), so a change in SMD is a change in the mean difference alone. Flagged: |SMD after| >
    0.1, or, for non-binary rows, a variance ratio after outside [0.5, 2].
    """
    values = np.column_stack([design.balance, logit])
    names = design.balance_names + [LOGIT_ROW]
    binary = np.append(design.binary, False)
    treated_all, controls_all = values[is_treated], values[~is_treated]
    treated_after, controls_after = values[matching.treated_rows], values[matching.control_rows]
    weights = matching.control_weight

    treated_mean_before, treated_variance = weighted_mean_and_variance(treated_all)
    comparison_mean_before, comparison_variance = weighted_mean_and_variance(controls_all)
    scale = np.sqrt((treated_variance + comparison_variance) / 2)
    treated_mean, _ = weighted_mean_and_variance(treated_after)
    comparison_mean_after, _ = weighted_mean_and_variance(controls_after, weights)
    smd_after = smd(treated_after, controls_after, weights, scale=scale)
    vr_after = variance_ratio(treated_after, controls_after, weights)
    low, high = VARIANCE_RATIO_RANGE
    with np.errstate(invalid="ignore"):
        vr_outside = ~binary & ((vr_after < low) | (vr_after > high))
    return pd.DataFrame({
        "covariate": names,
        "treated_mean": treated_mean,
        "comparison_mean_before": comparison_mean_before,
        "comparison_mean_after": comparison_mean_after,
        "smd_before": smd(treated_all, controls_all, scale=scale),
        "smd_after": smd_after,
        "vr_before": variance_ratio(treated_all, controls_all),
        "vr_after": vr_after,
        "flagged": (np.abs(smd_after) > SMD_THRESHOLD) | vr_outside,
        "treated_mean_before": treated_mean_before,
    })


def _matched_rows(
    frame: pd.DataFrame, matching: _Matching, pscore: np.ndarray, logit: np.ndarray
) -> pd.DataFrame:
    rows = np.concatenate([matching.treated_rows, matching.control_rows])
    weights = np.concatenate([np.ones(len(matching.treated_rows)), matching.control_weight])
    order = np.argsort(rows, kind="stable")
    rows, weights = rows[order], weights[order]
    matched = frame.iloc[rows].copy()
    matched["_row"] = rows
    matched["_weight"] = weights
    matched["_pscore"] = pscore[rows]
    matched["_logit"] = logit[rows]
    return matched
