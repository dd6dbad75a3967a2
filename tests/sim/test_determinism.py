"""Same seed and options give byte-identical truth; another seed gives another world."""

from __future__ import annotations

import hashlib

from justice.sim.params import SimulationParams
from justice.sim.world import simulate_to


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "truth").iterdir())}


def test_same_seed_same_bytes(tmp_path, small_truth):
    out, _ = small_truth
    again = tmp_path / "again"
    simulate_to(SimulationParams(persons=3_000, seed=11), again)
    assert _digest(out) == _digest(again)


def test_other_seed_other_world(tmp_path, small_truth):
    out, _ = small_truth
    other = tmp_path / "other"
    simulate_to(SimulationParams(persons=3_000, seed=12), other)
    a, b = _digest(out), _digest(other)
    assert a["persons.parquet"] != b["persons.parquet"]
