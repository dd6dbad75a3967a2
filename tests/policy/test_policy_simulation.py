"""A rule change is a file edit: a new rule file changes the simulated world's release dates."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from justice.cli import app
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams
from justice.sim.world import simulate

FROM = ref.day_number("2025-01-01")
SDS45 = """
# A scenario: release at 45% for sentences under four years, from 1 January 2025.
source: {title: "Scenario: release at 45% for sentences under four years"}
rules:
  - name: sds45_under_four_years
    kind: release
    effective_from: 2025-01-01
    fraction: 0.45
    eligibility: {sentence_months_under: 48}
"""


def _params(**kw) -> SimulationParams:
    return SimulationParams(persons=8_000, seed=5, start=dt.date(2021, 1, 1),
                            end=dt.date(2025, 12, 31), **kw)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    rule_file = tmp_path_factory.mktemp("policy") / "sds45.yaml"
    rule_file.write_text(SDS45)
    return simulate(_params()), simulate(_params(policy_files=(str(rule_file),)))


def _spells(world):
    s = world.tables["custody_spells"]
    m = (s["reason"] == "sentenced") & (s["release_date"] != NONE)  # no remand to credit
    return s, m


def test_new_rule_file_changes_release_dates(worlds):
    baseline, scenario = worlds
    s, m = _spells(scenario)
    months, sentenced = s["sentence_months"][m], s["sentence_date"][m]
    rule, release = s["release_rule"][m], s["release_date"][m]
    length = np.round(months * 30.4375).astype(np.int64)
    new = rule == "sds45_under_four_years"
    assert new.sum() > 30
    assert np.all(months[new] < 48) and np.all(release[new] >= FROM)
    assert np.array_equal(release[new], np.maximum(
        sentenced[new] + np.round(0.45 * length[new]).astype(np.int64), FROM))
    # Longer sentences keep SDS40 or half; nobody released before the date is touched.
    assert not np.any(new & (months >= 48))
    assert np.all(rule[release < FROM] != "sds45_under_four_years")
    b, bm = _spells(baseline)
    assert "sds45_under_four_years" not in set(b["release_rule"][bm])

    # The same sentences in the baseline world were released under SDS40 or at half. (The two
    # worlds are not otherwise identical: a later release moves that person's next offence,
    # which shifts the careers stream's later draws for everyone.)
    base_later = bm & (b["sentence_months"] < 48) & (b["release_date"] >= FROM) & (
        b["release_rule"] == "sds40")
    assert base_later.sum() > 30
    b_len = np.round(b["sentence_months"][base_later] * 30.4375).astype(np.int64)
    assert np.array_equal(b["release_date"][base_later], np.maximum(
        b["sentence_date"][base_later] + np.round(0.4 * b_len).astype(np.int64),
        ref.day_number("2024-09-10")))


def test_simulate_cli_takes_policy_files_and_withdrawn_rules(tmp_path):
    rule_file = tmp_path / "sds45.yaml"
    rule_file.write_text(SDS45)
    runner = CliRunner()
    home = tmp_path / "home"
    result = runner.invoke(app, ["simulate", "--persons", "300", "--seed", "2", "--home", str(home),
                                 "--policy", str(rule_file), "--without-rule", "sds40", "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads((home / "truth" / "params.json").read_text())
    assert params["policy_files"] == [str(rule_file.resolve())]
    assert params["withdrawn_rules"] == ["sds40"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(SDS45.replace("0.45", "1.45"))
    result = runner.invoke(app, ["simulate", "--persons", "300", "--home", str(tmp_path / "h2"),
                                 "--policy", str(bad)])
    assert result.exit_code != 0
    assert "bad.yaml" in result.output and "must be in (0, 1]" in result.output
    result = runner.invoke(app, ["simulate", "--persons", "300", "--home", str(tmp_path / "h3"),
                                 "--without-rule", "sds41"])
    assert result.exit_code != 0 and "no rule named 'sds41'" in result.output
