"""Fixtures for the explorer's query layer: a small published home (see published.py)."""

from __future__ import annotations

import pytest
from published import publish_sample

from justice.explore import load_catalogue


@pytest.fixture
def catalogue(tmp_path):
    """The catalogue of a freshly published sample home."""
    publish_sample(tmp_path / "home")
    return load_catalogue(tmp_path / "home" / "reports")
