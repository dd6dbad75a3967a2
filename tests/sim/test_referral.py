"""Referral to programmes: `--referral recorded` selects only on what the records show,
`--referral latent` also on propensity; per-programme true effects reach the truth.

The selection tests rebuild every eligible index event from the truth tables alone (disposals,
court cases, offences, persons), as the platform's data would show it, and fit a logistic model
of participation; they do not read the simulator's internals.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from justice.cli import app
from justice.errors import ConfigError, SimulationError
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams
from justice.sim.world import simulate

# Recorded terms of the referral model as reference/world.yaml declares them, with community
# orders and the groups whose coefficient is 0 as the baseline.
GROUPS = ("02 Sexual offences", "04 Theft offences", "06 Drug offences", "12 Summary motoring")
KINDS = ("custody_short", "custody_long", "suspended_sentence")


def _frame(tables: dict, params: SimulationParams) -> pd.DataFrame:
    """One row per eligible index event with the recorded variables, risk and participation."""
    start, end = ref.day_number(params.start), ref.day_number(params.end)
    col = lambda table, names: pd.DataFrame({k: tables[table][k] for k in names})
    d = col("disposals", ("person_id", "episode_id", "disposal_type", "custody_months", "supervised",
                          "index_date"))
    # Late index events are left out: a programme starting after the window's end never happens.
    ev = d[(d.index_date != NONE) & ((d.disposal_type == "custody") | d.supervised.astype(bool))
           & (d.index_date <= end - 60)].copy()
    ev = ev.merge(col("persons", ("person_id", "sex", "dob", "risk_score")), on="person_id")
    principal = col("court_cases", ("episode_id", "offence_group")).groupby("episode_id").offence_group.first()
    ev["offence_group"] = principal.reindex(ev.episode_id).to_numpy()
    o = col("offences", ("person_id", "proven", "proven_date"))
    seen = o[o.proven & (o.proven_date >= start)][["person_id", "proven_date"]]
    pairs = ev[["person_id", "index_date"]].reset_index(names="row").merge(seen, on="person_id")
    counts = pairs[pairs.proven_date < pairs.index_date].groupby("row").size()
    ev["recorded_prior"] = counts.reindex(ev.index, fill_value=0).to_numpy()
    iv = col("interventions", ("person_id", "index_date")).drop_duplicates().assign(treated=1.0)
    ev = ev.merge(iv, on=["person_id", "index_date"], how="left")
    ev["treated"] = ev.treated.fillna(0.0)
    ev["kind"] = np.where(ev.disposal_type == "custody", np.where(
        ev.custody_months < 12, "custody_short", "custody_long"), ev.disposal_type)
    ev["age"] = (ev.index_date - ev.dob) / 365.25
    return ev


def _design(ev: pd.DataFrame) -> pd.DataFrame:
    x = {"intercept": np.ones(len(ev)), "female": (ev.sex == "F").astype(float),
         "age_per_decade": (ev.age - 30) / 10, "log1p_recorded_prior": np.log1p(ev.recorded_prior)}
    x.update({k: (ev.kind == k).astype(float) for k in KINDS})
    x.update({g: (ev.offence_group == g).astype(float) for g in GROUPS})
    x["log_risk"] = np.log(ev.risk_score)
    return pd.DataFrame(x)


def _logistic_fit(x: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Maximum likelihood by Newton's method: coefficient and standard error per column."""
    a = x.to_numpy(float)
    beta = np.zeros(a.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(a @ beta)))
        hessian = a.T @ (a * (p * (1 - p))[:, None])
        step = np.linalg.solve(hessian, a.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    return pd.DataFrame({"beta": beta, "se": se, "z": beta / se}, index=x.columns)


@pytest.fixture(scope="module")
def fits():
    out = {}
    for mode in ("recorded", "latent"):
        params = SimulationParams(persons=30_000, seed=4, start=dt.date(2014, 1, 1),
                                  end=dt.date(2025, 12, 31), referral=mode)
        ev = _frame(simulate(params).tables, params)
        out[mode] = (ev, _logistic_fit(_design(ev), ev.treated.to_numpy()))
    return out


def test_recorded_referral_ignores_risk_given_the_records(fits):
    ev, fit = fits["recorded"]
    assert len(ev) > 6_000 and ev.treated.sum() > 1_000
    # Participants are still riskier than other eligible people (the records carry risk) ...
    assert ev.risk_score[ev.treated == 1].mean() > 1.1 * ev.risk_score[ev.treated == 0].mean()
    # ... but once the recorded variables are held fixed, risk adds nothing.
    assert abs(fit.z["log_risk"]) < 3.0, fit
    assert abs(fit.beta["log_risk"]) < 0.2, fit


def test_recorded_referral_follows_the_declared_recorded_model(fits):
    _, fit = fits["recorded"]
    rec = ref.world()["interventions"]["referral"]["recorded"]
    declared = {"intercept": rec["intercept"], "female": rec["female"],
                "age_per_decade": rec["age_per_decade"],
                "log1p_recorded_prior": rec["log1p_recorded_prior"]}
    declared |= {k: rec["disposal"][k] - rec["disposal"]["community_order"] for k in KINDS}
    declared |= {g: rec["offence_group"][g] for g in GROUPS}
    for name, value in declared.items():
        assert abs(fit.beta[name] - value) < 3.5 * fit.se[name], (name, value, fit.loc[name])
    # It depends on the records: the previous-record and age terms are clearly not zero.
    assert fit.z["log1p_recorded_prior"] > 3 and fit.z["age_per_decade"] < -3


def test_latent_referral_depends_on_risk_beyond_the_records(fits):
    ev, fit = fits["latent"]
    assert ev.treated.sum() > 1_000
    assert fit.z["log_risk"] > 4.0, fit
    assert fit.beta["log_risk"] > 0.2


def test_both_modes_keep_participation_about_the_same():
    counts = {}
    for mode in ("recorded", "latent"):
        w = simulate(SimulationParams(persons=3_000, seed=11, referral=mode))
        counts[mode] = len(w.tables["interventions"]["person_id"])
    assert all(120 < n < 230 for n in counts.values()), counts


def test_recorded_mode_is_deterministic():
    params = SimulationParams(persons=1_000, seed=2, referral="recorded")
    a, b = simulate(params).tables["interventions"], simulate(params).tables["interventions"]
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def _world_file(tmp_path, content: dict) -> str:
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(content), "utf-8")
    return str(path)


def test_per_programme_effects_reach_the_truth(tmp_path):
    programmes = [
        {"name": "Intensive Mentoring", "provider": "North Star Trust", "share": 0.5, "effect": -0.2},
        {"name": "Housing First", "provider": "Homes Partnership", "share": 0.5},
    ]
    wf = _world_file(tmp_path, {"interventions": {"programmes": programmes}})
    w = simulate(SimulationParams(persons=3_000, seed=11, intervention_effect=0.03, world_file=wf))
    iv = w.tables["interventions"]
    assert set(iv["programme"]) == {"Intensive Mentoring", "Housing First"}
    assert set(iv["provider"]) == {"North Star Trust", "Homes Partnership"}
    effect = np.where(iv["programme"] == "Intensive Mentoring", -0.2, 0.03)
    assert np.array_equal(iv["effect"], effect)
    unclipped = (iv["p_reoffend_without"] > 0.2) & (iv["p_reoffend_without"] < 0.95)
    assert unclipped.sum() > 50
    assert np.allclose((iv["p_reoffend_with"] - iv["p_reoffend_without"])[unclipped], effect[unclipped])
    # Common random numbers: with a harmful programme, anyone who would have reoffended does.
    harmful = iv["programme"] == "Housing First"
    assert np.all(iv["reoffends_within_year"][harmful] >= iv["would_reoffend_without_programme"][harmful])
    assert np.all(iv["follow_up_start_date"] >= iv["index_date"])
    assert np.all(iv["start_date"] >= iv["index_date"])


def test_default_world_uses_the_intervention_effect_for_every_programme(small_world):
    iv = small_world.tables["interventions"]
    assert len(iv["effect"]) > 20 and np.all(iv["effect"] == -0.05)
    assert np.all(iv["follow_up_start_date"] != NONE)


def test_truth_file_has_effect_and_follow_up_start(small_truth):
    import pyarrow.parquet as pq

    out, _ = small_truth
    table = pq.read_table(out / "truth" / "interventions.parquet")
    assert {"effect", "follow_up_start_date", "index_date", "p_reoffend_with", "p_reoffend_without",
            "reoffends_within_year", "would_reoffend_without_programme"} <= set(table.column_names)
    assert str(table.schema.field("follow_up_start_date").type) == "date32[day]"
    assert table.column("follow_up_start_date").null_count == 0
    params = json.loads((out / "truth" / "params.json").read_text())
    assert params["referral"] == "latent"


def test_unknown_referral_mode_is_refused():
    with pytest.raises(SimulationError, match="--referral 'matched': choose one of recorded, latent"):
        SimulationParams(referral="matched")


@pytest.mark.parametrize("effect", [1.5, -1.0, "big", True])
def test_programme_effect_outside_a_probability_change_is_refused(tmp_path, effect):
    programmes = [{"name": "A", "provider": "P", "share": 1.0},
                  {"name": "Bad Effect", "provider": "P", "share": 1.0, "effect": effect}]
    wf = _world_file(tmp_path, {"interventions": {"programmes": programmes}})
    with pytest.raises(ConfigError, match=r"programmes\[1\] \(Bad Effect\): effect .* between -1 and 1"):
        simulate(SimulationParams(persons=200, seed=1, world_file=wf))


@pytest.mark.parametrize(("programme", "message"), [
    ({"name": "A", "provider": "P", "share": 1.0, "efect": -0.1}, r"\(A\): unknown key\(s\) efect"),
    ({"name": "A", "share": 1.0}, r"programmes\[0\]: each programme needs name, provider and share"),
    ({"name": "A", "provider": "P", "share": 0}, r"\(A\): share 0 must be a positive number"),
])
def test_malformed_programme_is_refused(tmp_path, programme, message):
    wf = _world_file(tmp_path, {"interventions": {"programmes": [programme]}})
    with pytest.raises(ConfigError, match=message):
        simulate(SimulationParams(persons=200, seed=1, world_file=wf))


def test_referral_coefficient_that_is_not_a_number_is_refused(tmp_path):
    wf = _world_file(tmp_path, {"interventions": {"referral": {"latent": {"log_risk": "high"}}}})
    with pytest.raises(ConfigError, match=r"referral\.latent\.log_risk: 'high' is not a number"):
        simulate(SimulationParams(persons=200, seed=1, world_file=wf))


def test_cli_referral_option(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["simulate", "--persons", "200", "--referral", "sideways",
                              "--home", str(tmp_path)])
    assert bad.exit_code == 2 and "--referral 'sideways'" in bad.output
    ok = runner.invoke(app, ["simulate", "--persons", "300", "--seed", "3", "--referral", "recorded",
                             "--home", str(tmp_path), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "truth" / "params.json").read_text())["referral"] == "recorded"
