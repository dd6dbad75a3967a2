"""Helpers for tests of the simulated world (import as `from worlds import ...`, like `homes`)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import yaml


def assert_same_world_without(tmp_path, override: dict, table: str, id_column: str, at_least: int) -> None:
    """Simulate a small world as it is and with `override` (a world-file fragment that switches
    off what `table` holds): `table` has at least `at_least` rows with it and none without, and
    every other table is the same, value for value."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate

    params = {"persons": 1_500, "seed": 5, "start": dt.date(2014, 1, 1), "end": dt.date(2025, 12, 31)}
    with_them = simulate(SimulationParams(**params))
    world_file = tmp_path / "none.yaml"
    world_file.write_text(yaml.safe_dump(override))
    without = simulate(SimulationParams(**params, world_file=str(world_file)))
    assert len(with_them.tables[table][id_column]) >= at_least
    assert len(without.tables[table][id_column]) == 0
    for name, columns in with_them.tables.items():
        if name == table:
            continue
        for col, values in columns.items():
            assert np.array_equal(values, without.tables[name][col], equal_nan=values.dtype.kind == "f"), (name, col)
