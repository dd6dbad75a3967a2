"""The evaluation report: plain-English sentences, the HTML page, and the files beside it.

`write_report` writes, into one folder, `report.html` (works without JavaScript, no external
requests), `report.json` (the evaluation's figures; no names or dates of birth), the charts as
SVG, `balance.csv` and `identification.csv`. It writes into a temporary folder beside the target
and renames it into place, so a reader never sees a half-written report.

The sentences follow the Justice Data Lab's way of putting a result to a provider: the difference
per 100 typical participants, then one of three conclusions (a statistically significant
reduction, a statistically significant increase, or inconclusive), then what the result does and
does not show.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from justice.evaluate import charts

if TYPE_CHECKING:
    from justice.evaluate.run import Evaluation

REDUCTION = "significant reduction"
INCREASE = "significant increase"
INCONCLUSIVE = "inconclusive"

# What each outcome counts, in the words of the headline sentence.
_PEOPLE_WHO = {
    "reoffending_rate": "committed a proven reoffence within a year",
    "custody_on_reoffending": "received a custodial sentence for a proven reoffence within a year",
}


def classify(difference: float, p_value: float, alpha: float) -> str:
    """The Justice Data Lab's three conclusions: significant reduction, significant increase, or
    inconclusive."""
    if not (p_value < alpha):  # also catches a p-value that could not be computed (nan)
        return INCONCLUSIVE
    return REDUCTION if difference < 0 else INCREASE


def _amount(value: float, digits: int = 1) -> str:
    text = f"{abs(value):,.{digits}f}"
    return text.removesuffix(".0")


def headline(key: str, outcome: dict[str, Any]) -> str:
    """The headline sentence of one outcome, e.g. 'For every 100 typical people in the treatment
    group, the equivalent of 4 fewer people committed a proven reoffence within a year than in
    the comparison group.'"""
    difference = outcome["difference"]
    if key == "days_to_first_reoffence":
        days = _amount(difference)
        if days == "0":
            return ("People in the treatment group went about as long before a first proven "
                    "reoffence as those in the comparison group (counting a full year for anyone "
                    "who did not reoffend).")
        direction = "longer" if difference > 0 else "less time"
        return (f"On average, people in the treatment group went {days} days {direction} before a "
                "first proven reoffence than people in the comparison group (counting a full year, "
                "365 days, for anyone who did not reoffend).")
    per_100 = difference * 100
    amount = _amount(per_100)
    if key == "reoffences_per_person":
        if amount == "0":
            return ("For every 100 typical people in the treatment group, about the same number of "
                    "proven reoffences were committed within a year as in the comparison group.")
        more = "fewer" if per_100 < 0 else "more"
        return (f"For every 100 typical people in the treatment group, the equivalent of {amount} "
                f"{more} proven reoffences were committed within a year than in the comparison "
                "group.")
    who = _PEOPLE_WHO.get(key, f"had the outcome '{outcome.get('label', key)}'")
    if amount == "0":
        return (f"For every 100 typical people in the treatment group, about the same number of "
                f"people {who} as in the comparison group.")
    more = "fewer" if per_100 < 0 else "more"
    people = "person" if amount == "1" else "people"
    return (f"For every 100 typical people in the treatment group, the equivalent of {amount} "
            f"{more} {people} {who} than in the comparison group.")


def _range(key: str, ci: list[float]) -> str:
    """The confidence interval in the headline's units, as 'between A fewer and B more'."""
    scale = 1.0 if key == "days_to_first_reoffence" else 100.0
    words = ("less", "longer") if key == "days_to_first_reoffence" else ("fewer", "more")

    def side(value: float) -> str:
        amount = _amount(value * scale)
        if amount == "0":
            return "no difference"
        return f"{amount} {words[0] if value < 0 else words[1]}"

    low, high = side(ci[0]), side(ci[1])
    unit = "days" if key == "days_to_first_reoffence" else "per 100 people"
    return f"between {low} and {high} ({unit})"


def conclusion_sentence(key: str, outcome: dict[str, Any], alpha: float) -> str:
    """The conclusion of one outcome in words, with its confidence interval and, when
    inconclusive, how many participants it would take to know."""
    confidence = round((1 - alpha) * 100)
    p_text = f"p {p_value(outcome['p_value'])}"
    interval = (f"The true difference is likely ({confidence}% confidence interval) to lie "
                f"{_range(key, outcome['ci'])}.")
    if outcome["conclusion"] == REDUCTION:
        return (f"This is a statistically significant reduction ({p_text}): a difference this "
                f"large is unlikely to be due to chance alone. {interval}")
    if outcome["conclusion"] == INCREASE:
        return (f"This is a statistically significant increase ({p_text}): a difference this "
                f"large is unlikely to be due to chance alone. {interval}")
    text = (f"This result is inconclusive ({p_text}): the difference could be due to chance. "
            f"{interval}")
    needed = outcome.get("participants_needed")
    if needed:
        text += (f" To detect a difference of this size, the analysis would need about "
                 f"{needed:,} participants (with a comparison group growing in step).")
    elif needed is None and outcome.get("difference") is not None:
        text += (" The estimated difference is so close to none that no realistic number of "
                 "participants would tell it apart from chance.")
    return text


def mde_sentence(mde: dict[str, Any]) -> str:
    """What the analysis can detect, said before the results."""
    return (f"With {mde['participants']:,} matched people and a base rate of "
            f"{mde['base_rate'] * 100:.0f}% in the comparison pool, this analysis can detect a "
            f"difference of {mde['difference'] * 100:.1f} percentage points or more in the "
            f"one-year proven reoffending rate at {mde['power'] * 100:.0f}% power.")


def placebo_sentence(placebo: dict[str, Any] | None) -> str:
    """The placebo check in words: groups should not differ on something before the programme."""
    if placebo is None:
        return "Not run: the analysis frame has no measure of offending before the index date."
    ci = placebo["ci"]
    interval = (f"{placebo['difference'] * 100:+.1f} percentage points, 95% confidence interval "
                f"{ci[0] * 100:+.1f} to {ci[1] * 100:+.1f}")
    if placebo["passed"]:
        return (f"Passed. The programme cannot have changed offending before it began, so the "
                f"matched groups should not differ in it. They do not, beyond chance: "
                f"{placebo['treated'] * 100:.1f}% of the treatment group and "
                f"{placebo['comparison'] * 100:.1f}% of the comparison group had a proven offence "
                f"in the year before the index date (difference {interval}).")
    return (f"Failed. The matched groups differ in offending in the year before the index date, "
            f"which the programme cannot have caused ({placebo['treated'] * 100:.1f}% against "
            f"{placebo['comparison'] * 100:.1f}%, difference {interval}). The groups were not "
            "alike before the programme in some way the matching missed, so the results above may "
            "be biased; read them with great caution.")


def sensitivity_sentence(sensitivity: dict[str, Any]) -> str:
    """The E-value in plain words (VanderWeele and Ding, 2017)."""
    if sensitivity.get("e_value") is None:
        return "The sensitivity analysis could not be computed (no reoffending in one group)."
    e_point = sensitivity["e_value"]
    e_ci = sensitivity["e_value_ci"]
    text = (f"For a characteristic the data do not record (such as motivation) to explain away the "
            f"estimated difference in reoffending on its own, it would have to make people about "
            f"{e_point:.2f} times as likely to take part and {e_point:.2f} times as likely to "
            f"reoffend, over and above everything matched on. ")
    if e_ci is None or e_ci <= 1.0:
        return text + ("The confidence interval already includes no difference, so the result is "
                       "compatible with no effect without any hidden characteristic.")
    strength = ("weak: a modest hidden difference between the groups could account for it"
                if e_ci < 1.5 else "moderate" if e_ci < 2.5 else
                "strong: only a large hidden difference could account for it")
    return text + (f"To make the result compatible with no effect, a characteristic of about "
                   f"{e_ci:.2f} times each way would be enough. By this measure the result's "
                   f"robustness to hidden differences is {strength}.")


def agreement_sentence(key: str, outcome: dict[str, Any]) -> str:
    """Whether the doubly robust estimate agrees with the matching estimate."""
    dr = outcome["doubly_robust"]
    if dr["difference"] is None or None in dr["ci"]:
        return "The doubly robust estimate could not be computed for this outcome."
    scale, unit = {"days_to_first_reoffence": (1.0, "days"),
                   "reoffences_per_person": (100.0, "reoffences per 100 people")}.get(
                       key, (100.0, "people per 100"))
    said = (f"The doubly robust estimate is {dr['difference'] * scale:+.1f} {unit} "
            f"(95% CI {dr['ci'][0] * scale:+.1f} to {dr['ci'][1] * scale:+.1f}), against "
            f"{outcome['difference'] * scale:+.1f} from matching. ")
    if dr["agrees"]:
        return said + ("It agrees: it lies inside the matching estimate's interval and reaches "
                       "the same conclusion.")
    return said + ("It does not agree, so the estimate depends on how the comparison is modelled; "
                   "read the result with caution.")


def p_value(p: float | None) -> str:
    """'< 0.001', '= 0.042', or 'not computable' (JSON holds an impossible p-value as null)."""
    if p is None or math.isnan(p):
        return "not computable"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _fixed(value: Any, digits: int = 2, grouped: bool = True) -> str:
    """A number for a table cell: fixed decimals, blank when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{digits}f}" if grouped else f"{value:.{digits}f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=1: "" if v is None else f"{v * 100:.{d}f}%"
    env.filters["num"] = _fixed
    env.filters["plain"] = lambda v, d=2: _fixed(v, d, grouped=False)
    env.filters["pvalue"] = lambda p: p_value(p).removeprefix("= ")
    return env


def render_html(evaluation: Evaluation, drawn: dict[str, charts.Chart]) -> str:
    """The report page as one self-contained HTML string."""
    summary = evaluation.summary
    alpha = summary["options"]["alpha"]
    outcomes = []
    for key, outcome in summary["outcomes"].items():
        outcomes.append({"key": key, **outcome,
                         "sentence": conclusion_sentence(key, outcome, alpha),
                         "agreement": agreement_sentence(key, outcome)})
    styles = (Path(__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")
    return _environment().get_template("report.html").render(
        s=summary, outcomes=outcomes, charts=drawn, styles=styles,
        mde_sentence=mde_sentence(summary["mde"]),
        placebo_sentence=placebo_sentence(summary["placebo"]),
        sensitivity_sentence=sensitivity_sentence(summary["sensitivity"]),
        balance=summary["balance"],
        identification_rows=evaluation.identification_table.to_dict("records"))


def _draw(evaluation: Evaluation, folder: Path) -> dict[str, charts.Chart]:
    summary = evaluation.summary
    units = {"rate": "%", "count": "reoffences per person", "days": "days"}
    bars = [charts.OutcomeBar(o["label"], o["treated"], o["comparison"], tuple(o["ci"]),
                              units[o["kind"]])
            for o in summary["outcomes"].values()]
    return {
        "outcomes": charts.outcome_chart(bars, folder / "outcomes.svg"),
        "love": charts.love_plot(evaluation.balance, folder / "love_plot.svg"),
        "overlap": charts.overlap_chart(evaluation.score_groups, folder / "propensity_overlap.svg"),
    }


def write_report(evaluation: Evaluation, out_dir: Path) -> Path:
    """Write the report folder (HTML, JSON, SVG charts, CSV tables) all at once; return it."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        drawn = _draw(evaluation, staging)
        (staging / "report.json").write_text(json.dumps(evaluation.summary, indent=2) + "\n",
                                             encoding="utf-8")
        (staging / "report.html").write_text(render_html(evaluation, drawn), encoding="utf-8")
        evaluation.balance.to_csv(staging / "balance.csv", index=False)
        evaluation.identification_table.to_csv(staging / "identification.csv", index=False)
        staging.chmod(0o755)  # mkdtemp makes it private; a report folder is as readable as any
        _replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _replace(staging: Path, out_dir: Path) -> None:
    """Put `staging` where `out_dir` is; an earlier report there is removed only once the new one
    is in place."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S%f")
    old = out_dir.with_name(f".{out_dir.name}.old-{stamp}")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
