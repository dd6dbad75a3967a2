"""One evaluation of a provider's cohort file, from the file to the figures of the report.

    evaluation = evaluate(settings, "participants.xlsx")
    write_report(evaluation, settings.reports_dir / "evaluation" / "participants")

The steps: read the file (`cohort`), find each participant in the person index (`identify`),
build the analysis frame of participants and the comparison pool from the warehouse (`groups`),
say what the analysis can detect before looking at any outcome (the minimum detectable effect),
match on the propensity score and estimate every outcome (`matching`), then the sensitivity of
the headline result to unmeasured confounding (E-value) and the conclusions in words (`report`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from justice.errors import ConfigError
from justice.evaluate import report, stats
from justice.evaluate.charts import ScoreGroup
from justice.evaluate.report import write_report
from justice.settings import Settings

__all__ = ["OUTCOMES", "PLACEBO", "Evaluation", "EvaluationOptions", "Outcome", "evaluate",
           "write_report"]


@dataclass(frozen=True, kw_only=True)
class EvaluationOptions:
    """How an evaluation matches, and what it needs before it starts.

    Example::

        EvaluationOptions(comparators=3, caliper=0.1, min_matched=30)
    """

    comparators: int = 5
    """Comparison people per participant, at most (nearest on the propensity score, with
    replacement). Several halve the variance of one; beyond about five, worse matches add bias."""

    caliper: float = 0.2
    """Widest match allowed, in standard deviations of the propensity score's logit (Austin
    2011)."""

    common_support: str = "minmax"
    """'minmax': leave out participants whose score lies outside the comparison pool's range;
    'none': keep everyone."""

    exact: tuple[str, ...] = ("sex", "disposal_type")
    """Characteristics a comparison must share exactly with the participant."""

    min_matched: int = 60
    """Fewest participants found in the records for an evaluation to go ahead (the Justice Data
    Lab's minimum)."""

    exclude_bad_rows: bool = False
    """Leave out rows with problems (an unreadable or future date, a duplicate), listed in the
    report, instead of refusing the whole file; a problem with the file itself still refuses it."""

    include_doubtful: bool = False
    """Take doubtful identifications into the analysis too (they are always reported)."""

    belongs_days: int = 183
    """A programme belongs to the latest sentence or release at most this many days before its
    start; failing one, the first index event after the start counts."""

    alpha: float = 0.05
    """Significance level of the tests and 1 - the confidence level of the intervals."""

    power: float = 0.80
    """Power at which the minimum detectable effect is stated."""

    def __post_init__(self) -> None:
        if self.comparators < 1:
            raise ConfigError(f"comparators {self.comparators}: give 1 or more (--comparators)")
        if not self.caliper > 0:
            raise ConfigError(f"caliper {self.caliper}: give a positive number of standard "
                              "deviations of the logit (--caliper)")
        if self.common_support not in ("minmax", "none"):
            raise ConfigError(f"common support {self.common_support!r}: choose minmax or none")
        if self.min_matched < 2:
            raise ConfigError(f"min matched {self.min_matched}: give 2 or more (--min-matched)")
        if not 0 < self.alpha < 1 or not 0 < self.power < 1:
            raise ConfigError(f"alpha {self.alpha} and power {self.power} must lie between 0 and 1")
        object.__setattr__(self, "exact", tuple(self.exact))


@dataclass(frozen=True)
class Outcome:
    """One outcome of the report: its key in the JSON, its column in the analysis frame."""

    key: str
    column: str
    label: str
    kind: str
    """'rate' (a 0/1 outcome, shown as a percentage), 'count' or 'days'."""


OUTCOMES = (
    Outcome("reoffending_rate", "reoffended", "Proven reoffending within one year", "rate"),
    Outcome("reoffences_per_person", "reoffences", "Proven reoffences per person within one year",
            "count"),
    Outcome("days_to_first_reoffence", "days_to_first_reoffence",
            "Days to the first proven reoffence (365 for none)", "days"),
    Outcome("custody_on_reoffending", "custody_on_reoffending",
            "Custodial sentence for a proven reoffence within one year", "rate"),
)
PLACEBO = Outcome("offending_in_year_before", "offended_in_year_before",
                  "Proven offence in the year before the index date", "rate")
"""An outcome the programme cannot have changed: the groups should not differ in it."""


@dataclass
class Evaluation:
    """An evaluation's figures (`summary`, the JSON) and the tables and scores the report draws."""

    summary: dict[str, Any]
    """Everything report.json holds: the contract's keys (no names or dates of birth)."""
    balance: pd.DataFrame
    """Balance of every covariate before and after matching (one row per covariate level)."""
    identification_table: pd.DataFrame
    """One row per cohort row: row, status, person_id, weights, in the analysis or why not."""
    score_groups: list[ScoreGroup] = field(default_factory=list)
    """Propensity scores for the overlap chart."""
    result: Any = None
    """The MatchResult the figures came from."""
    frame: pd.DataFrame | None = None
    """The analysis frame (participants and the comparison pool)."""

    def to_json(self) -> dict[str, Any]:
        """The evaluation as report.json holds it."""
        return self.summary


def evaluate(settings: Settings, cohort_path: str | Path, *, programme: str | None = None,
             options: EvaluationOptions | None = None) -> Evaluation:
    """Evaluate one cohort file against the warehouse; raise CohortError or ConfigError, naming
    the row and column, before anything is computed from a bad file."""
    from justice.evaluate import groups, identify, matching
    from justice.evaluate.cohort import read_cohort

    options = options or EvaluationOptions()
    cohort = read_cohort(cohort_path,
                         on_row_problem="exclude" if options.exclude_bad_rows else "raise")
    identification = identify.identify(settings, cohort, min_matched=options.min_matched,
                                       include_doubtful=options.include_doubtful)
    try:
        frame, excluded = groups.analysis_frame(settings, identification, options)
    except duckdb.CatalogException as exc:
        # A home linked but never built has the person index and no marts.
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"the warehouse in {settings.home} lacks what an evaluation reads "
                          f"({first_line}): run `justice build` first") from exc
    covariates = [c for c in groups.COVARIATES if c in frame.columns]
    exact = [c for c in options.exact if c in covariates]
    mde = _minimum_detectable_effect(frame, options)
    outcomes = [o for o in (*OUTCOMES, PLACEBO) if o.column in frame.columns]
    result = matching.match(frame, treatment="treated", covariates=covariates,
                            outcome=[o.column for o in outcomes], exact=exact,
                            comparators=options.comparators, caliper=options.caliper,
                            common_support=options.common_support)
    return assemble(programme=programme or cohort.programme, provider=cohort.provider,
                    cohort_file=Path(cohort_path).name, identification=identification,
                    excluded=excluded, frame=frame, rows_left_out=cohort.problems,
                    covariates=covariates, mde=mde,
                    result=result, options=options)


def _minimum_detectable_effect(frame: pd.DataFrame, options: EvaluationOptions) -> dict[str, Any]:
    """The smallest difference in the reoffending rate this cohort can detect, from the sizes and
    the pool's base rate only: no outcome of a participant is looked at."""
    participants = int(frame["treated"].sum())
    pool = frame.loc[~frame["treated"].astype(bool), "reoffended"]
    if participants < 1 or len(pool) < 1:
        raise ConfigError(f"the analysis has {participants} participants and {len(pool)} people "
                          "in the comparison pool; it needs at least one of each")
    base_rate = float(pool.mean())
    difference = stats.minimum_detectable_effect(participants, len(pool), base_rate,
                                                 alpha=options.alpha, power=options.power)
    return {"participants": participants, "comparison_pool": len(pool),
            "base_rate": base_rate, "difference": difference, "alpha": options.alpha,
            "power": options.power}


def _needed(effect: Any, options: EvaluationOptions) -> int | None:
    """Participants it would take to detect a true difference of the size estimated, at the
    stated power, with the comparison group growing in step: the standard error observed here,
    shrinking with the square root of the group's size (None: no difference to detect)."""
    if effect.att == 0 or not math.isfinite(effect.se) or effect.se <= 0:
        return None
    multiplier = (stats.normal_quantile(1 - options.alpha / 2)
                  + stats.normal_quantile(options.power))
    return math.ceil(effect.n_treated * (multiplier * effect.se / abs(effect.att)) ** 2)


def _estimate(outcome: Outcome, effect: Any, options: EvaluationOptions) -> dict[str, Any]:
    """One outcome's figures, conclusion and headline for the JSON and the page."""
    ci = [float(effect.ci[0]), float(effect.ci[1])]
    dr_ci = [float(effect.dr_ci[0]), float(effect.dr_ci[1])]
    conclusion = report.classify(effect.att, effect.p_value, options.alpha)
    dr_conclusion = report.classify(effect.dr_att, effect.dr_p_value, options.alpha)
    figures: dict[str, Any] = {
        "label": outcome.label, "kind": outcome.kind, "column": outcome.column,
        "treated": float(effect.treated_mean), "comparison": float(effect.comparison_mean),
        "difference": float(effect.att), "se": float(effect.se), "ci": ci,
        "p_value": float(effect.p_value), "conclusion": conclusion,
        "doubly_robust": {
            "difference": float(effect.dr_att), "se": float(effect.dr_se), "ci": dr_ci,
            "p_value": float(effect.dr_p_value), "conclusion": dr_conclusion,
            # The check agrees when it says the same thing: inside the matching interval and
            # the same one of the three conclusions.
            "agrees": bool(ci[0] <= effect.dr_att <= ci[1] and dr_conclusion == conclusion)},
    }
    figures["participants_needed"] = (
        _needed(effect, options) if conclusion == report.INCONCLUSIVE else None)
    figures["headline"] = report.headline(outcome.key, figures)
    return figures


def _sensitivity(rate: dict[str, Any]) -> dict[str, Any]:
    """E-value of the reoffending rate's risk ratio; its interval from the difference's interval
    with the comparison rate held fixed (an approximation the page states)."""
    comparison = rate["comparison"]
    if comparison <= 0 or rate["treated"] <= 0:
        return {"risk_ratio": None, "risk_ratio_ci": None, "e_value": None, "e_value_ci": None,
                "outcome": "reoffending_rate"}
    ratio = rate["treated"] / comparison
    low = max((comparison + rate["ci"][0]) / comparison, 1e-6)
    high = max((comparison + rate["ci"][1]) / comparison, low)
    value = stats.e_value(ratio, (low, high))
    return {"outcome": "reoffending_rate", "risk_ratio": ratio, "risk_ratio_ci": [low, high],
            "e_value": value.point, "e_value_ci": value.ci_limit}


def _identification_table(identification: Any, excluded: dict[int, str],
                          used_rows: set[int]) -> pd.DataFrame:
    """One row per cohort row, without names or dates of birth."""
    records = []
    for r in identification.rows:
        if r.row in used_rows:
            analysis = "yes"
        elif r.row in excluded:
            analysis = f"no: {excluded[r.row]}"
        elif r.status == "unmatched":
            analysis = "no: not found in the justice system's records"
        elif r.status == "doubtful":
            analysis = f"no: doubtful match ({r.note})" if r.note else "no: doubtful match"
        else:
            analysis = f"no: {r.note or r.status}"
        records.append({"row": r.row, "status": r.status, "person_id": r.person_id,
                        "match_weight": r.match_weight, "runner_up_weight": r.runner_up_weight,
                        "analysis": analysis})
    return pd.DataFrame.from_records(
        records, columns=["row", "status", "person_id", "match_weight", "runner_up_weight",
                          "analysis"])


def _json_number(value: Any) -> Any:
    """A figure as JSON can hold it: numpy scalars unwrapped, NaN and infinity as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def assemble(*, programme: str, provider: str | None, cohort_file: str, identification: Any,
             excluded: dict[int, str], frame: pd.DataFrame, covariates: list[str],
             rows_left_out: list[Any] = (),
             mde: dict[str, Any], result: Any, options: EvaluationOptions) -> Evaluation:
    """The evaluation's figures and tables from its parts (the steps of `evaluate`)."""
    outcomes = {o.key: _estimate(o, result.effects[o.column], options)
                for o in OUTCOMES if o.column in result.effects}
    if "reoffending_rate" not in outcomes:
        raise ConfigError("the analysis frame has no 'reoffended' outcome column")
    placebo = None
    if PLACEBO.column in result.effects:
        placebo = _estimate(PLACEBO, result.effects[PLACEBO.column], options)
        # Passing means no difference beyond chance in what the programme cannot have changed.
        placebo["passed"] = placebo["conclusion"] == report.INCONCLUSIVE
    balance = result.balance.reset_index(drop=True)
    balance_records = [{k: _json_number(v) for k, v in row.items()}
                       for row in balance.to_dict("records")]
    counts = identification.counts
    treated_rows = frame.loc[frame["treated"].astype(bool)]
    used_rows = {int(r) for r in treated_rows["cohort_row"]}
    summary: dict[str, Any] = {
        "programme": programme,
        "provider": provider,
        "cohort_file": cohort_file,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "treated": int(result.n_treated),
        "matched": int(result.n_matched),
        "comparison": int(result.n_controls_used),
        "identification": {
            "rows": counts["rows"], "matched": counts["matched"], "doubtful": counts["doubtful"],
            "unmatched": counts["unmatched"], "repeat": counts.get("repeat", 0),
            "match_rate": identification.match_rate, "threshold": identification.threshold,
            "doubtful_included": options.include_doubtful, "people": counts["people"],
            # A person on the programme at two sentences is two participations.
            "participations": len(identification.participants),
            "in_analysis": len(treated_rows),
            "excluded": [{"row": row, "reason": reason}
                         for row, reason in sorted(excluded.items())],
            "excluded_reasons": _tally(_reason_kind(r) for r in excluded.values()),
            "rows_left_out": [{"row": p.row, "column": p.column, "problem": _withheld(p.message)}
                              for p in rows_left_out],
        },
        "mde": mde,
        "outcomes": outcomes,
        "placebo": placebo,
        "sensitivity": _sensitivity(outcomes["reoffending_rate"]),
        "balance": balance_records,
        "matching": {"comparison_pool": int(result.n_controls), "dropped_support":
                     int(result.dropped_support), "dropped_caliper": int(result.dropped_caliper),
                     "dropped_exact": int(result.dropped_exact),
                     "effective_comparison": float(result.effective_comparison)},
        "comparison_pool": {key: _json_number(frame.attrs[key]) for key in (
            "pool_window_people", "pool_excluded_other_programmes", "pool_excluded_identified",
            "published_quarters") if key in frame.attrs},
        "covariates": covariates,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
    }
    return Evaluation(summary=_clean(summary), balance=balance,
                      identification_table=_identification_table(identification, excluded,
                                                                 used_rows),
                      score_groups=_score_groups(result, frame), result=result, frame=frame)


_REASON_KINDS = (
    ("not yet published", ("started after the last published reoffending cohort (a full year's "
                          "follow-up is not yet possible)")),
    ("before the first", "started before the first reoffending cohort the data cover"),
    ("no sentence or release", "no sentence or release from custody the programme could belong to"),
    ("not the first in its quarter", ("followed a sentence or release the reoffending cohort "
                                      "does not hold (a person's second or later in a quarter)")),
    ("belongs to the same", "belongs to the same sentence or release as another row of the person"),
)


def _reason_kind(reason: str) -> str:
    """A reason for leaving a participant out, without the dates that make each one unique."""
    return next((kind for key, kind in _REASON_KINDS if key in reason), reason)


_QUOTED = re.compile(r"'[^']*'")
_DATE = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b")


def _withheld(message: str) -> str:
    """A cohort problem without the values taken from the file (a date of birth, a name)."""
    return _DATE.sub("(date withheld)", _QUOTED.sub("(value withheld)", message))


def _tally(reasons: Any) -> dict[str, int]:
    tally: dict[str, int] = {}
    for reason in reasons:
        tally[reason] = tally.get(reason, 0) + 1
    return dict(sorted(tally.items(), key=lambda kv: -kv[1]))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return _json_number(value)


def _score_groups(result: Any, frame: pd.DataFrame) -> list[ScoreGroup]:
    """Propensity scores of the treatment group, the whole comparison pool and the matched
    comparison group (weighted), for the overlap chart."""
    matched = result.matched
    treated = matched["treated"].astype(bool).to_numpy()
    scores = matched["_pscore"].to_numpy(dtype=float)
    weights = matched["_weight"].to_numpy(dtype=float)
    pool = np.asarray(result.pscore, dtype=float)[~frame["treated"].astype(bool).to_numpy()]
    return [ScoreGroup("treatment group (matched)", scores[treated], np.ones(int(treated.sum()))),
            ScoreGroup("comparison pool (before matching)", pool, np.ones(len(pool))),
            ScoreGroup("matched comparison (weighted)", scores[~treated], weights[~treated])]
