"""Fixtures for the safety domain tests: an empty serving store and a PrisonWorld on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # prison_world, beside this file

from prison_world import PrisonWorld


@pytest.fixture
def store(tmp_path):
    """A fresh SQLite serving store with every declared table."""
    from justice.serving.store import open_store
    from justice.settings import Settings

    engine = open_store(Settings(home=tmp_path / "home"))
    yield engine
    engine.dispose()


@pytest.fixture
def world(store) -> PrisonWorld:
    """A PrisonWorld with one establishment, MDI: wings A and B, two landings each, three cells
    a landing, two places a cell."""
    w = PrisonWorld(store)
    w.prison("MDI", "HMP Moorland")
    return w


@pytest.fixture
def rules():
    from justice.safety.rules import load_rules

    return load_rules()
