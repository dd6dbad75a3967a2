"""`justice evaluate` on a built home: the report folder, the JSON, and refusals that write
nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from justice.cli import app
from justice.evaluate.cohort import read_cohort

runner = CliRunner()
OUTCOME_KEYS = {"reoffending_rate", "reoffences_per_person", "days_to_first_reoffence",
                "custody_on_reoffending"}


def _evaluate(cohort: Path, home) -> list[str]:
    return ["evaluate", "--cohort", str(cohort), "--home", str(home.home)]


def largest_provider_file(home: Path) -> Path:
    """The provider file with the most readable rows, as `justice demo` picks it."""
    files = sorted((home / "legacy" / "interventions").glob("*.xlsx"))
    return max(files, key=lambda p: (len(read_cohort(p, on_row_problem="exclude").rows), p.name))


@pytest.fixture(scope="module")
def evaluated(built_home, linked_home, tmp_path_factory):
    """The CLI run once on the largest provider file: (cohort file, report folder, result).
    built_home has the warehouse; the provider files stayed in linked_home's legacy/."""
    cohort = largest_provider_file(linked_home.home)
    out = tmp_path_factory.mktemp("evaluation") / "report"
    result = runner.invoke(app, [*_evaluate(cohort, built_home),
                                 "--out", str(out), "--exclude-bad-rows", "--min-matched", "20"])
    return cohort, out, result


def test_writes_the_report_and_json(evaluated):
    cohort, out, result = evaluated
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output and "Conclusion:" in result.output
    assert {p.name for p in out.iterdir()} == {
        "report.html", "report.json", "balance.csv", "identification.csv", "outcomes.svg",
        "love_plot.svg", "propensity_overlap.svg"}
    summary = json.loads((out / "report.json").read_text())
    assert {"programme", "provider", "treated", "matched", "comparison", "identification", "mde",
            "outcomes", "placebo", "sensitivity", "balance", "options"} <= set(summary)
    assert set(summary["outcomes"]) == OUTCOME_KEYS
    ident = summary["identification"]
    assert ident["rows"] == len(read_cohort(cohort, on_row_problem="exclude").rows)
    statuses = ("matched", "doubtful", "unmatched", "repeat")
    assert sum(ident[status] for status in statuses) == ident["rows"]
    assert 0.5 < ident["match_rate"] <= 1  # the simulator's providers mostly spell people right
    assert 20 <= summary["treated"] <= ident["participations"]
    assert ident["people"] <= ident["participations"]
    assert 0 < summary["matched"] <= summary["treated"]
    assert 0 < summary["comparison"] <= summary["mde"]["comparison_pool"]
    assert summary["mde"]["participants"] == summary["treated"]
    assert 0 < summary["mde"]["difference"] < 1
    for key, outcome in summary["outcomes"].items():
        assert outcome["ci"][0] <= outcome["difference"] <= outcome["ci"][1], key
        assert 0 <= outcome["p_value"] <= 1, key
        assert outcome["conclusion"] in ("significant reduction", "significant increase",
                                         "inconclusive")
        assert outcome["difference"] == pytest.approx(outcome["treated"] - outcome["comparison"])
    rate = summary["outcomes"]["reoffending_rate"]
    assert 0 <= rate["treated"] <= 1 and 0 <= rate["comparison"] <= 1
    assert summary["placebo"]["passed"] in (True, False)
    covariates = {row["covariate"].split("=")[0] for row in summary["balance"]}
    assert {"age_at_index", "sex", "previous_offences"} <= covariates
    assert summary["options"]["comparators"] == 5 and summary["options"]["min_matched"] == 20


def test_json_flag_prints_the_report_json(built_home, evaluated, tmp_path):
    cohort, out, _ = evaluated
    result = runner.invoke(app, [*_evaluate(cohort, built_home),
                                 "--out", str(tmp_path / "again"), "--exclude-bad-rows",
                                 "--min-matched", "20", "--json", "--programme", "Renamed"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    written = json.loads((tmp_path / "again" / "report.json").read_text())
    assert printed == written
    assert printed["programme"] == "Renamed"
    assert "Renamed: impact on one-year" in (tmp_path / "again" / "report.html").read_text()
    first = json.loads((out / "report.json").read_text())
    # The same file and options give the same figures.
    assert printed["outcomes"] == first["outcomes"] and printed["balance"] == first["balance"]


def test_the_page_has_the_headline_sentences_and_the_balance_table(evaluated):
    _, out, _ = evaluated
    html = (out / "report.html").read_text()
    summary = json.loads((out / "report.json").read_text())
    assert "For every 100 typical people in the treatment group, the equivalent of" in html
    for outcome in summary["outcomes"].values():
        assert outcome["headline"] in html
    assert "this analysis can detect a difference of" in html
    assert 'id="balance-table"' in html and "SMD after" in html


def _strings(value) -> list[str]:
    """Every string value in a JSON document (keys are ours, not the provider's)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_json_holds_no_names_or_dates_of_birth(evaluated):
    cohort, out, _ = evaluated
    text = (out / "report.json").read_text()
    values = " | ".join(_strings(json.loads(text))).lower()
    csv = (out / "identification.csv").read_text().lower()
    people = read_cohort(cohort, on_row_problem="exclude").rows
    assert people
    for person in people:
        full = " ".join(n for n in (person.forenames, person.surname) if n).lower()
        assert full not in values and full not in csv, full
        for name in (person.surname, person.forenames):
            # Names of two letters or fewer ("A", "To", "Li") are also words of the report's
            # own English; longer ones must not appear at all.
            if name and len(name.strip(". ")) > 2:
                word = re.compile(rf"\b{re.escape(name.lower())}\b")
                assert not word.search(values) and not word.search(csv), name
        if person.dob:
            for shown in (person.dob.isoformat(), f"{person.dob:%d/%m/%Y}"):
                assert shown not in text and shown not in csv


def test_a_bad_cohort_file_is_refused_with_row_and_column_and_nothing_written(built_home, tmp_path):
    bad = tmp_path / "participants.csv"
    bad.write_text("First name,Surname,Date of birth,Gender,Programme start date\n"
                   "Ann,Smith,12/03/1985,F,01/02/2019\n"
                   "Bob,Jones,31/02/1990,M,05/06/2019\n"
                   "Cara,Hill,01/01/1980,F,01/01/2199\n")
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "--cohort", str(bad), "--home", str(built_home.home),
                                 "--out", str(out)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "row 3" in message and "Date of birth" in message
    assert "row 4" in message and "Programme start date" in message
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["participants.csv"]


def test_a_misnamed_column_is_refused_naming_it(built_home, tmp_path):
    bad = tmp_path / "participants.csv"
    bad.write_text("First name,Surname,Birthday,Gender,Programme start date\n"
                   "Ann,Smith,12/03/1985,F,01/02/2019\n")
    result = runner.invoke(app, ["evaluate", "--cohort", str(bad), "--home", str(built_home.home),
                                 "--out", str(tmp_path / "report")])
    assert result.exit_code == 2
    assert "date of birth" in result.output.lower()
    assert not (tmp_path / "report").exists()


def test_a_provider_file_with_problems_is_refused_unless_asked_to_leave_rows_out(built_home,
                                                                               evaluated, tmp_path):
    # The provider's own file with one more row, a copy of its last with an impossible date of
    # birth (a world's file may have bad rows of its own, or none).
    source, _, _ = evaluated
    book = openpyxl.load_workbook(source)
    sheet = book.worksheets[0]
    # Providers put a title above the header: the header is the first row naming a birth date.
    birth = next(i for cells in sheet.iter_rows(max_row=10) for i, c in enumerate(cells)
                 if "birth" in str(c.value or "").lower())
    row = [c.value for c in sheet[sheet.max_row]]
    row[birth] = "31/02/1985"
    sheet.append(row)
    cohort = tmp_path / source.name
    book.save(cohort)
    problems = read_cohort(cohort, on_row_problem="exclude").problems
    assert problems and problems[-1].row == sheet.max_row, problems
    result = runner.invoke(app, [*_evaluate(cohort, built_home),
                                 "--out", str(tmp_path / "report"), "--min-matched", "20"])
    assert result.exit_code == 2
    assert f"row {problems[0].row}" in " ".join(result.output.split())
    assert not (tmp_path / "report").exists()


def test_too_few_people_found_is_refused_with_the_count(built_home, evaluated, tmp_path):
    cohort, out, _ = evaluated
    found = json.loads((out / "report.json").read_text())["identification"]["people"]
    result = runner.invoke(app, [*_evaluate(cohort, built_home),
                                 "--out", str(tmp_path / "report"), "--exclude-bad-rows",
                                 "--min-matched", str(found + 1)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"only {found} of" in message and f"at least {found + 1} people" in message
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("args, message", [
    (["--comparators", "0"], "comparators 0"),
    (["--caliper", "-1"], "caliper -1"),
])
def test_bad_options_are_refused(built_home, evaluated, tmp_path, args, message):
    cohort, _, _ = evaluated
    result = runner.invoke(app, [*_evaluate(cohort, built_home),
                                 "--out", str(tmp_path / "report"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "report").exists()


def test_the_demo_evaluates_the_largest_provider_file(built_home, linked_home, evaluated,
                                                       tmp_path, capsys):
    from homes import copy_home

    from justice.cli import _demo_evaluation

    home = copy_home(built_home, tmp_path / "home")
    (home.home / "legacy").symlink_to(linked_home.home / "legacy")  # read, never written
    _demo_evaluation(home)
    cohort, out, _ = evaluated
    folder = home.home / "reports" / "evaluation" / cohort.stem
    assert (folder / "report.html").exists(), capsys.readouterr()
    demo = json.loads((folder / "report.json").read_text())
    first = json.loads((out / "report.json").read_text())
    # the demo's defaults (at least 60 people) on the same file give the same figures
    assert demo["outcomes"] == first["outcomes"]
    assert demo["options"]["min_matched"] == 60
