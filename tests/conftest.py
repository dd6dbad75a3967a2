"""Shared fixtures: small simulated worlds, built once per test session."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can import helper modules beside them

from homes import copy_home
from postgres_server import postgres_url  # noqa: F401  (a throwaway PostgreSQL server)

# Fixtures that simulate, ingest and link (and build) a whole world: a minute or more each, so
# every test that uses one, directly or through another fixture, is `slow` (`make test-fast`
# skips them) without each file having to remember the mark.
WHOLE_HOME_FIXTURES = frozenset({"linked_home", "built_home"})
CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    for item in items:
        # A Spark test starts a JVM (seconds) before it does anything: slow too.
        if WHOLE_HOME_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def small_world():
    """A 3,000-person world in memory (about a second to build)."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate

    return simulate(SimulationParams(persons=3_000, seed=11, start=dt.date(2014, 1, 1), end=dt.date(2025, 12, 31)))


@pytest.fixture(scope="session")
def small_truth(tmp_path_factory):
    """A 3,000-person world written to disk by `simulate_to`: (folder, world)."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = tmp_path_factory.mktemp("world")
    world = simulate_to(SimulationParams(persons=3_000, seed=11), out)
    return out, world


@pytest.fixture(scope="session")
def linked_home(tmp_path_factory):
    """A 3,000-person world simulated, ingested and linked (`justice link`): its Settings.

    Read-only for tests; a test that changes state copies it with `copy_home`."""
    from justice.ingest.run import ingest
    from justice.link.run import link
    from justice.settings import Settings
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = tmp_path_factory.mktemp("linked")
    simulate_to(SimulationParams(persons=3_000, seed=11), out)
    settings = Settings(home=out)
    ingest(settings)
    link(settings)
    return settings


@pytest.fixture(scope="session")
def built_home(linked_home, tmp_path_factory):
    """`linked_home` copied and built (`justice build`: seeds, core and marts): its Settings.

    Read-only for tests, like `linked_home`."""
    from justice.transform.build import build

    settings = copy_home(linked_home, tmp_path_factory.mktemp("built"))
    build(settings)
    return settings


@pytest.fixture(scope="session")
def chromium():
    """One headless Debian chromium for the session (no sandbox: CI runs as root); a test opens
    its own context. One per process: Playwright's sync API cannot be started twice in a thread,
    so a test file that launched its own while another file's was open failed on the xdist
    worker that ran both. Skips, saying why, when /usr/bin/chromium is absent."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()
