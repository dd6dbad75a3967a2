"""The evaluation report: its sentences, the page and the files, on a synthetic evaluation.

The evaluation here is real (`match` on a synthetic population with a known effect) but the
identification is made by hand, so these tests need no warehouse; test_run and test_cli_evaluate
cover the whole path on a built home.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from justice.evaluate import match, report, stats
from justice.evaluate.cohort import CohortFile, CohortProblem, Participant
from justice.evaluate.identify import Identification, IdentifiedRow
from justice.evaluate.run import (
    OUTCOMES,
    PLACEBO,
    EvaluationOptions,
    _minimum_detectable_effect,
    _needed,
    assemble,
    write_report,
)


def _population(n: int = 3_000, effect: float = -0.12, seed: int = 3) -> pd.DataFrame:
    """People selected into treatment on age and prior offending, with a known effect on the
    reoffending probability."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 60, n)
    sex = rng.choice(["M", "F"], n, p=[0.85, 0.15])
    prior = rng.poisson(3, n)
    disposal = rng.choice(["custody", "community", "fine"], n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-2.5 + 0.3 * (prior - 3) - 0.02 * (age - 35))))
    risk = np.clip(0.3 + 0.04 * (prior - 3) - 0.004 * (age - 35) + effect * treated, 0.01, 0.99)
    reoffended = (rng.random(n) < risk).astype(int)
    return pd.DataFrame({
        "treated": treated.astype(int), "cohort_row": np.where(treated, np.cumsum(treated) + 4, -1),
        "age_at_index": age, "sex": sex,
        "disposal_type": disposal, "previous_offences": prior, "reoffended": reoffended,
        "reoffences": reoffended * (1 + rng.poisson(1.0, n)),
        "days_to_first_reoffence": np.where(reoffended, rng.integers(1, 365, n), 365),
        "custody_on_reoffending": reoffended * (rng.random(n) < 0.3),
        "offended_in_year_before": (rng.random(n) < 0.2 + 0.04 * prior).astype(int),
    })


def _identification(treated_rows: int, unmatched: int = 2) -> Identification:
    """A hand-made identification: `treated_rows` people found, `unmatched` not found."""
    people = [Participant(row=5 + i, forenames="Ann", surname=f"Surname{i}",
                          dob=dt.date(1980, 1, 1) + dt.timedelta(days=i), sex="F",
                          start_date=dt.date(2018, 1, 1), pnc=None, prison_number=None)
              for i in range(treated_rows + unmatched)]
    cohort = CohortFile(path=Path("provider.xlsx"), programme="Test Programme",
                        provider="Test Provider", rows=people, header_row=4, columns={})
    rows = [IdentifiedRow(p, "matched", f"P{p.row}", 25.0, f"Q{p.row}", 4.0)
            for p in people[:treated_rows]]
    rows += [IdentifiedRow(p, "unmatched", None, None, None, None) for p in people[treated_rows:]]
    return Identification(cohort, rows, threshold=6.0, min_matched=20, include_doubtful=False)


ROWS_LEFT_OUT = [
    CohortProblem(40, "Date of birth", "date of birth '31/02/1993' is not a date"),
    CohortProblem(41, "Date of birth", "date of birth 12/03/2030 is in the future"),
]


@pytest.fixture(scope="module")
def evaluation():
    frame = _population()
    options = EvaluationOptions(min_matched=20)
    covariates = ["age_at_index", "sex", "disposal_type", "previous_offences"]
    result = match(frame, treatment="treated", covariates=covariates,
                   outcome=[o.column for o in (*OUTCOMES, PLACEBO)], exact=list(options.exact))
    n_treated = int(frame["treated"].sum())
    return assemble(programme="Test Programme", provider="Test Provider",
                    cohort_file="provider.xlsx", identification=_identification(n_treated + 1),
                    excluded={5 + n_treated: "no sentence or release within a year of the start"},
                    frame=frame, covariates=covariates, rows_left_out=ROWS_LEFT_OUT,
                    mde=_minimum_detectable_effect(frame, options), result=result, options=options)


def test_the_three_conclusions():
    assert report.classify(-0.05, 0.01, 0.05) == "significant reduction"
    assert report.classify(0.05, 0.049, 0.05) == "significant increase"
    assert report.classify(-0.05, 0.05, 0.05) == "inconclusive"
    assert report.classify(-0.05, math.nan, 0.05) == "inconclusive"


@pytest.mark.parametrize("key, difference, sentence", [
    ("reoffending_rate", -0.043, ("For every 100 typical people in the treatment group, the "
     "equivalent of 4.3 fewer people committed a proven reoffence within a year than in the "
     "comparison group.")),
    ("reoffending_rate", 0.01, "the equivalent of 1 more person committed a proven reoffence"),
    ("reoffending_rate", 0.0004, "about the same number of people committed a proven reoffence"),
    ("reoffences_per_person", -0.25, ("the equivalent of 25 fewer proven reoffences were "
     "committed within a year than in the comparison group.")),
    ("custody_on_reoffending", 0.021, ("the equivalent of 2.1 more people received a custodial "
     "sentence for a proven reoffence within a year")),
    ("days_to_first_reoffence", 12.34, "went 12.3 days longer before a first proven reoffence"),
    ("days_to_first_reoffence", -3.0, "went 3 days less time before a first proven reoffence"),
])
def test_headline_sentences(key, difference, sentence):
    assert sentence in report.headline(key, {"difference": difference})


def test_an_inconclusive_result_says_chance_and_what_it_would_take():
    outcome = {"difference": -0.03, "ci": [-0.09, 0.03], "p_value": 0.32,
               "conclusion": "inconclusive", "participants_needed": 1234}
    text = report.conclusion_sentence("reoffending_rate", outcome, 0.05)
    assert "inconclusive (p = 0.320): the difference could be due to chance" in text
    assert "between 9 fewer and 3 more (per 100 people)" in text
    assert "would need about 1,234 participants" in text
    significant = {**outcome, "p_value": 0.0001, "conclusion": "significant reduction",
                   "ci": [-0.09, -0.05]}
    text = report.conclusion_sentence("reoffending_rate", significant, 0.05)
    assert text.startswith("This is a statistically significant reduction (p < 0.001)")


def test_participants_needed_is_the_smallest_group_that_detects_the_difference(evaluation):
    """With the standard error shrinking as 1/sqrt(n), the number needed is the smallest at which
    the difference is (z_0.975 + z_0.8) standard errors; an inconclusive result always needs more
    people than it had."""
    effect = evaluation.result.effects["reoffences"]
    needed = _needed(effect, EvaluationOptions())
    multiplier = stats.normal_quantile(0.975) + stats.normal_quantile(0.8)

    def detectable(n):
        return multiplier * effect.se * math.sqrt(effect.n_treated / n)

    assert detectable(needed) <= abs(effect.att) < detectable(needed - 1)
    outcome = evaluation.summary["outcomes"]["reoffences_per_person"]
    if outcome["conclusion"] == "inconclusive":
        assert outcome["participants_needed"] == needed > effect.n_treated
    for outcome in evaluation.summary["outcomes"].values():
        if outcome["conclusion"] == "inconclusive":
            assert outcome["participants_needed"] > evaluation.summary["matched"]


def test_the_evaluation_finds_the_known_effect(evaluation):
    rate = evaluation.summary["outcomes"]["reoffending_rate"]
    assert rate["ci"][0] <= -0.12 <= rate["ci"][1]
    assert rate["conclusion"] == "significant reduction"
    assert rate["doubly_robust"]["agrees"]
    assert rate["participants_needed"] is None  # only inconclusive results say what it would take
    assert evaluation.summary["placebo"]["passed"]
    sensitivity = evaluation.summary["sensitivity"]
    assert sensitivity["e_value"] > sensitivity["e_value_ci"] > 1


def test_write_report_writes_every_file(evaluation, tmp_path):
    folder = write_report(evaluation, tmp_path / "reports" / "evaluation" / "provider")
    assert sorted(p.name for p in folder.iterdir()) == [
        "balance.csv", "identification.csv", "love_plot.svg", "outcomes.svg",
        "propensity_overlap.svg", "report.html", "report.json"]
    assert [p.name for p in folder.parent.iterdir()] == ["provider"]  # no staging left behind
    summary = json.loads((folder / "report.json").read_text())
    assert summary == json.loads(json.dumps(evaluation.summary))
    for chart in folder.glob("*.svg"):
        root = ET.parse(chart).getroot()  # well-formed SVG
        assert root.tag.endswith("svg")
    balance = pd.read_csv(folder / "balance.csv")
    assert list(balance["covariate"]) == [b["covariate"] for b in summary["balance"]]
    rows = pd.read_csv(folder / "identification.csv")
    assert set(rows["status"]) == {"matched", "unmatched"}
    assert "surname" not in " ".join(rows.columns).lower()


def test_the_page_has_the_sentences_the_tables_and_nothing_external(evaluation, tmp_path):
    folder = write_report(evaluation, tmp_path / "out")
    html = (folder / "report.html").read_text()
    summary = evaluation.summary
    for outcome in summary["outcomes"].values():
        assert outcome["headline"].replace("'", "&#39;") in html
    assert "statistically significant reduction" in html
    assert report.mde_sentence(summary["mde"]) in html
    assert "this analysis can detect a difference of" in html
    assert html.index("What this analysis can detect") < html.index('id="results"')
    assert 'id="balance-table"' in html
    for row in summary["balance"]:
        assert f">{row['covariate']}</th>" in html
    assert "propensity_logit" in html
    assert "Passed." in html  # the placebo check in words
    assert "times as likely to take part" in html  # the E-value in words
    for name in ("outcomes.svg", "love_plot.svg", "propensity_overlap.svg"):
        assert f'src="{name}"' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count('alt="') == 3


def test_a_failure_while_writing_leaves_the_earlier_report_whole(evaluation, tmp_path, monkeypatch):
    target = tmp_path / "out"
    write_report(evaluation, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report.charts, "love_plot", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(evaluation, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_second_report_replaces_the_first(evaluation, tmp_path):
    target = tmp_path / "out"
    write_report(evaluation, target)
    (target / "stale.txt").write_text("from an earlier run")
    write_report(evaluation, target)
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.browser
def test_the_page_passes_axe_with_and_without_javascript(evaluation, tmp_path, chromium):
    """WCAG 2.2 AA and best practices, as every page of the safety service is checked."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "web_axe", Path(__file__).resolve().parents[1] / "web" / "axe.py")
    axe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(axe)
    folder = write_report(evaluation, tmp_path / "out")
    for javascript in (True, False):
        context = chromium.new_context(java_script_enabled=javascript)
        try:
            page = context.new_page()
            page.goto((folder / "report.html").as_uri())
            assert page.locator("img").count() == 3
            # every chart drawn (an SVG that failed to load has no natural width)
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            assert all(width > 0 for width in widths)
            if javascript:  # axe itself runs as script; the page needs none
                axe.assert_accessible(page, "evaluation report")
        finally:
            context.close()


def test_rows_left_out_are_listed_without_the_values_in_them(evaluation, tmp_path):
    folder = write_report(evaluation, tmp_path / "out")
    listed = evaluation.summary["identification"]["rows_left_out"]
    assert [(r["row"], r["column"]) for r in listed] == [(40, "Date of birth"),
                                                         (41, "Date of birth")]
    for text in ((folder / "report.json").read_text(), (folder / "report.html").read_text()):
        assert "31/02/1993" not in text and "12/03/2030" not in text
    html = (folder / "report.html").read_text()
    assert "date of birth (date withheld) is in the future" in html


def test_an_outcome_nobody_had_reads_as_no_difference(tmp_path):
    frame = _population(n=1_500, seed=5)
    frame["custody_on_reoffending"] = 0
    options = EvaluationOptions(min_matched=20)
    covariates = ["age_at_index", "sex", "previous_offences"]
    result = match(frame, treatment="treated", covariates=covariates,
                   outcome=[o.column for o in (*OUTCOMES, PLACEBO)])
    n_treated = int(frame["treated"].sum())
    evaluation = assemble(programme="P", provider=None, cohort_file="p.csv",
                          identification=_identification(n_treated), excluded={}, frame=frame,
                          covariates=covariates, mde=_minimum_detectable_effect(frame, options),
                          result=result, options=options)
    custody = evaluation.summary["outcomes"]["custody_on_reoffending"]
    assert custody["difference"] == 0 and custody["conclusion"] == "inconclusive"
    assert custody["participants_needed"] is None
    assert "about the same number of people received a custodial sentence" in custody["headline"]
    html = (write_report(evaluation, tmp_path / "out") / "report.html").read_text()
    assert "no realistic number of participants would tell it apart from chance" in html
