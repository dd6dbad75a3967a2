"""Projections on the built 3,000-person home: the start, the accounting, scenarios, errors."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from justice.project import Scenario, ScenarioError, load_scenario, project
from justice.project.data import load_origin
from justice.project.engine import months_from, simulate
from justice.project.flows import learn_flows
from justice.project.results import count, flows
from justice.sim.reference import day_number

ORIGIN = dt.date(2024, 1, 1)

SDS45 = """
source: {title: "Scenario: release at 45% for sentences under four years"}
rules:
  - name: sds45_under_four_years
    kind: release
    effective_from: 2024-06-01
    fraction: 0.45
    eligibility: {sentence_months_under: 48}
"""

# A rule file releasing every sentence at a quarter from 2024-04-01 (shared by the projection tests).
QUARTER_RULE = Path(__file__).with_name("quarter_rule.yaml")


def _total(result, scenario: str) -> np.ndarray:
    frame = result.population
    rows = frame[(frame.scenario == scenario) & (frame.breakdown == "total")]
    return rows.sort_values("month")["mean"].to_numpy()


def test_the_projection_starts_from_the_true_number_in_custody(built_home):
    truth = pd.read_parquet(built_home.home / "truth" / "custody_spells.parquet")
    received = pd.to_datetime(truth.reception_date)
    released = pd.to_datetime(truth.release_date)
    day = pd.Timestamp(ORIGIN)
    held = int(((received <= day) & (released.isna() | (released > day))).sum())
    result = project(built_home, origin=ORIGIN, months=6, repetitions=10)
    assert held > 20
    assert result.totals["baseline"][:, 0].tolist() == [held] * 10
    by_type = result.population[(result.population.month == 0)
                                & (result.population.breakdown == "case_type")]
    assert by_type["mean"].sum() == held
    assert (by_type["lower"] == by_type["upper"]).all()  # the stock is known, not drawn


def test_people_are_conserved_month_by_month(built_home):
    data = load_origin(built_home, ORIGIN)
    snapshots = np.array([day_number(d) for d in months_from(ORIGIN, 12)])
    for scenario in (Scenario(name="base"), Scenario(name="more", charges=1.5, stretch=1.3,
                                                     start=dt.date(2024, 3, 1))):
        run = simulate(data, learn_flows(data), scenario, months=12, repetitions=8, seed=3)
        population = count(run, snapshots, 8, data.establishments)
        total = population["total"][:, 0, :]
        received, released = flows(run, snapshots, 8)
        assert received.sum() > 0 and released.sum() > 0
        # stock + receptions - releases, every month of every repetition
        np.testing.assert_array_equal(total[:, 1:], total[:, :-1] + received[:, 1:] - released[:, 1:])
        # every breakdown adds up to the total
        for name in ("case_type", "sentence_band", "sex", "establishment"):
            np.testing.assert_array_equal(population[name].sum(axis=1), total)


def test_an_earlier_release_lowers_the_population_from_its_date(built_home, tmp_path):
    shutil.copy(QUARTER_RULE, tmp_path / "quarter_rule.yaml")
    (tmp_path / "quarter.yaml").write_text("name: quarter\nrules:\n  add: [quarter_rule.yaml]\n")
    result = project(built_home, [tmp_path / "quarter.yaml"], origin=ORIGIN, months=12,
                     repetitions=20, out=tmp_path / "out")
    base, quarter = _total(result, "baseline"), _total(result, "quarter")
    dates = result.dates
    before = [i for i, d in enumerate(dates) if d < dt.date(2024, 4, 1)]
    after = [i for i, d in enumerate(dates) if d >= dt.date(2024, 4, 1)]
    # The same people come in on both; nothing differs until the rule's first day, when those
    # past their new release point go out (released on the day: not counted on it).
    np.testing.assert_array_equal(result.totals["quarter"][:, before], result.totals["baseline"][:, before])
    assert (quarter[after] < base[after]).all()
    diff = result.difference[(result.difference.scenario == "quarter")
                             & (result.difference.breakdown == "total")]
    assert (diff[diff.month.isin(after)]["upper"] <= 0).all()
    day, released, baseline_released = result.first_day["quarter"]
    assert day == dt.date(2024, 4, 1) and released > baseline_released
    assert any(line.startswith("quarter: frees about") for line in result.summary)
    for name in ("population.parquet", "population.csv", "difference.csv", "capacity.csv",
                 "fan_chart.svg", "fan_chart.png", "summary.txt", "summary.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_a_new_rule_file_changes_the_projection_with_no_code_change(built_home, tmp_path):
    (tmp_path / "sds45.yaml").write_text(SDS45)
    (tmp_path / "scenario.yaml").write_text(
        "name: sds45\nrules:\n  add: [sds45.yaml]\n  withdraw: [sds40]\n")
    result = project(built_home, [tmp_path / "scenario.yaml"], origin=ORIGIN, months=24,
                     repetitions=20)
    base, sds45 = _total(result, "baseline"), _total(result, "sds45")
    # Without SDS40 (40% from September 2024) but with 45% from June 2024, more are held later.
    assert sds45[-1] > base[-1]
    assert not np.array_equal(result.totals["sds45"], result.totals["baseline"])


def test_the_same_seed_gives_the_same_projection(built_home):
    scenario = Scenario(name="busier courts", court_sitting_capacity=1.2, remand_rate=0.8,
                        start=dt.date(2024, 2, 1))
    one = project(built_home, [scenario], origin=ORIGIN, months=6, repetitions=10, seed=4)
    two = project(built_home, [scenario], origin=ORIGIN, months=6, repetitions=10, seed=4)
    other = project(built_home, [scenario], origin=ORIGIN, months=6, repetitions=10, seed=5)
    pd.testing.assert_frame_equal(one.population, two.population)
    pd.testing.assert_frame_equal(one.difference, two.difference)
    assert not one.population["mean"].equals(other.population["mean"])


def test_capacity_comes_from_the_prison_database(built_home):
    result = project(built_home, origin=ORIGIN, months=3, repetitions=5)
    cap = result.capacity
    assert "AGENCY_INTERNAL_LOCATIONS" in result.capacity_source
    assert set(cap.establishment) == set(result.data.establishments)
    assert (cap.capacity > 0).all()
    assert len(cap) == len(result.data.establishments) * 4
    base = cap[(cap.scenario == "baseline") & (cap.month == 0)]
    assert base["mean"].sum() == result.totals["baseline"][0, 0]


@pytest.mark.parametrize("text, key", [
    ("name: x\nvolumes:\n  charge: 1.1\n", "volumes.charge"),
    ("name: x\nspeed: fast\n", "'speed'"),
    ("name: x\nvolumes:\n  charges: -1\n", "volumes.charges"),
    ("name: x\nfrom: soon\n", "from"),
    ("name: x\nrules:\n  add: [missing.yaml]\n", "rules.add"),
    ("name: [x\n", "not valid YAML"),
])
def test_a_bad_scenario_file_is_named_with_its_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value) and key in str(caught.value)


def test_an_origin_outside_the_data_is_refused(built_home, tmp_path):
    with pytest.raises(ScenarioError, match="--from 2030-01-01"):
        project(built_home, origin=dt.date(2030, 1, 1), months=3, repetitions=5)
    with pytest.raises(ScenarioError, match="--from 2010-01-01"):
        project(built_home, origin=dt.date(2010, 1, 1), months=3, repetitions=5)
    path = tmp_path / "late.yaml"
    path.write_text("name: late\nfrom: 2023-06-01\nvolumes: {charges: 1.2}\n")
    with pytest.raises(ScenarioError, match=f"{path}: from 2023-06-01 is before the origin"):
        project(built_home, [path], origin=ORIGIN, months=3, repetitions=5)
    with pytest.raises(ScenarioError, match="sds99"):
        project(built_home, [Scenario(name="gone", withdraw_rules=("sds99",))], origin=ORIGIN,
                months=3, repetitions=5)


def test_the_command_writes_the_tables_and_names_a_bad_file(built_home, tmp_path):
    from typer.testing import CliRunner

    from justice.cli import app

    scenario = tmp_path / "charges.yaml"
    scenario.write_text("name: charges\nfrom: 2024-03-01\nvolumes: {charges: 1.3}\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["project", "--home", str(built_home.home), "--from", "2024-01-01",
                             "--months", "6", "--repetitions", "10", "--scenario", str(scenario),
                             "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert "charges: fills about" in ok.output
    table = pd.read_csv(tmp_path / "out" / "population.csv")
    assert set(table.columns) == {"month", "date", "scenario", "breakdown", "level", "mean",
                                  "lower", "upper"}
    assert set(table.scenario) == {"baseline", "charges"}
    scenario.write_text("name: charges\nvolumes: {charges: lots}\n")
    bad = runner.invoke(app, ["project", "--home", str(built_home.home), "--scenario",
                              str(scenario), "--out", str(tmp_path / "out2")])
    assert bad.exit_code == 2
    assert "volumes.charges" in bad.output and "charges.yaml" in bad.output


def test_recall_and_volume_keys_move_their_part_of_the_population(built_home):
    start = dt.date(2024, 2, 1)
    result = project(built_home, [
        Scenario(name="recalls", start=start, recall_rate=2.0, time_on_recall=1.5),
        Scenario(name="fewer remands", start=start, remand_rate=0.5)],
        origin=ORIGIN, months=12, repetitions=30)
    diff = result.difference[(result.difference.breakdown == "case_type")
                             & (result.difference.month == 12)].set_index(["scenario", "level"])
    assert diff.loc[("recalls", "recall"), "mean"] > 0
    assert diff.loc[("recalls", "remand"), "mean"] == 0  # remand draws are shared
    assert diff.loc[("fewer remands", "remand"), "mean"] < 0


def test_a_bad_rule_file_is_named_with_the_scenario(built_home, tmp_path):
    (tmp_path / "rule.yaml").write_text("rules:\n  - name: half_again\n    kind: release\n"
                                        "    effective_from: 2024-06-01\n    fraction: 1.5\n")
    path = tmp_path / "scenario.yaml"
    path.write_text("name: odd\nrules:\n  add: [rule.yaml]\n")
    with pytest.raises(ScenarioError) as caught:
        project(built_home, [path], origin=ORIGIN, months=3, repetitions=5)
    assert str(path) in str(caught.value) and "rule.yaml" in str(caught.value)
