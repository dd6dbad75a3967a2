"""Calibration: at a size where rates are stable, every headline figure is within tolerance."""

from __future__ import annotations

import pytest

from justice.sim import calibration
from justice.sim import reference as ref
from justice.sim.params import SimulationParams
from justice.sim.world import simulate


@pytest.mark.slow
def test_headline_figures_within_tolerance():
    params = SimulationParams(persons=200_000, seed=1)
    world = simulate(params)
    rows = calibration.calibrate(world.tables, ref.day_number(params.start), ref.day_number(params.end))
    assert {r["figure"] for r in rows} == {t["measure"] for t in calibration.targets()}
    failures = [r for r in rows if not r["within_tolerance"]]
    assert not failures, failures


def test_every_target_has_a_source_and_a_measure():
    for t in calibration.targets():
        assert t["measure"] in calibration.MEASURES
        assert t["source"] and t["tolerance"] > 0


def test_calibration_json_lists_each_figure(small_truth):
    import json

    out, _ = small_truth
    rows = json.loads((out / "truth" / "calibration.json").read_text())
    assert [r["figure"] for r in rows] == [t["measure"] for t in calibration.targets()]
    assert all({"simulated", "target", "tolerance", "source", "within_tolerance"} <= set(r) for r in rows)
