"""Fixtures for the browser tests: the safety service served for real, and Debian's chromium.

``test_browser.py`` registers this module as a plugin (``pytest_plugins``). What the fixtures
give, all once per test session:

``served_world``
    A copy of the 3,000-person world of tests/conftest.py (simulated, ingested, linked and built:
    ``built_home`` with ``linked_home``'s prison database), its prison database synced into a
    fresh serving store by `justice.web.sync.sync_once`, and the demo accounts of
    `justice.web.auth.ensure_demo_accounts`: ``officer.<prison>`` for the two busiest prisons
    and ``admin``, with ``DEMO_PASSWORD``; and ``lead.<prison>``, a safety lead of the busiest.
``live_service``
    That store served by a real uvicorn server on 127.0.0.1 (a free port the server binds
    itself), in a thread of this process, so a test can write to the prison database, sync, and
    read the audit log through the same engine the pages use. Stopped cleanly at the end.
``new_context``
    A fresh context (cookies, JavaScript on or off) of tests/conftest.py's ``chromium`` on the
    live service.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from homes import copy_home

SERVER_START_TIMEOUT = 30.0  # seconds
PAGE_TIMEOUT_MS = 10_000  # a page that takes longer than this on loopback is a failure



@dataclass(frozen=True)
class Account:
    """A demo account: its name, password and prisons (empty for the admin)."""

    name: str
    password: str
    prisons: tuple[str, ...]


@dataclass
class ServedWorld:
    """The synced world behind the live service."""

    settings: object  # justice.settings.Settings
    app: object  # the FastAPI app (built without a background syncer)
    engine: sa.Engine  # the serving store (the app's own engine)
    prison_db: sa.Engine  # the prison (NOMIS) database the sync reads
    officer_a: Account  # an officer of the busiest prison
    officer_b: Account  # an officer of the second busiest
    admin: Account
    safety_lead_a: Account  # a safety lead of officer_a's prison (may override a stop)

    def sync(self):
        """One incremental sync of the prison database into the store, as the service's
        background syncer runs it; fails the test if the run failed."""
        from justice.web.sync import sync_once

        result = sync_once(self.settings, self.engine, source=self.prison_db)
        assert result.ok, f"the sync failed: {result.error or result.note}"
        return result


@pytest.fixture(scope="session")
def served_world(built_home, linked_home, tmp_path_factory) -> ServedWorld:
    """The built world copied, synced into a serving store, with the demo accounts."""
    from justice.web import auth
    from justice.web.app import create_app
    from justice.web.sync import open_prison, sync_once

    dest = tmp_path_factory.mktemp("served")
    settings = copy_home(built_home, dest)
    shutil.copytree(linked_home.home / "legacy" / "prison", dest / "legacy" / "prison")
    # No background syncer: a test syncs when it has changed the prison database, so what a
    # page shows never depends on a timer.
    app = create_app(settings, sync=False)
    engine = app.state.engine
    prison_db = open_prison(settings)
    first = sync_once(settings, engine, source=prison_db)
    assert first.ok, f"the first sync failed: {first.error or first.note}"
    with pytest.MonkeyPatch.context() as patch:
        # argon2id at its lowest cost (as tests/web/conftest.py does): the tests sign in a
        # score of times, and the hash's cost says nothing about the pages.
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        made = auth.ensure_demo_accounts(settings, engine)
        busiest = auth.busiest_prisons(settings)
        lead = auth.add_user(engine, f"lead.{busiest[0].lower()}", "safety-lead", [busiest[0]],
                             auth.DEMO_PASSWORD)
    officers = sorted((u for u in made if u.role == "officer"),
                      key=lambda u: busiest.index(u.prisons[0]))
    assert len(officers) == 2, f"expected demo officers for two prisons, made {made}"
    yield ServedWorld(settings, app, engine, prison_db,
                      *(Account(u.name, auth.DEMO_PASSWORD, tuple(u.prisons)) for u in officers),
                      Account("admin", auth.DEMO_PASSWORD, ()),
                      Account(lead.name, auth.DEMO_PASSWORD, tuple(lead.prisons)))
    prison_db.dispose()
    engine.dispose()


@dataclass
class LiveService:
    """The running service: where it is, and the world behind it."""

    base_url: str
    world: ServedWorld


def _free_socket() -> socket.socket:
    """A TCP socket bound to a port the system chose on 127.0.0.1 (handed to uvicorn, which
    listens on it, so no other process can take the port between choosing and serving)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def live_service(served_world) -> LiveService:
    """The safety service over `served_world`, served by uvicorn on 127.0.0.1 in a thread."""
    import uvicorn

    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(served_world.app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-service",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the live service did not start on 127.0.0.1:{port} within "
                        f"{SERVER_START_TIMEOUT:.0f} s")
        time.sleep(0.05)
    yield LiveService(f"http://127.0.0.1:{port}", served_world)
    server.should_exit = True
    thread.join(timeout=15)
    sock.close()
    assert not thread.is_alive(), "the live service did not shut down within 15 s"


@pytest.fixture
def new_context(chromium, live_service):
    """Factory: `new_context(javascript=True, width=1280, height=900)` is a fresh browser
    context (no cookies) on the live service; contexts are closed after the test."""
    made = []

    def make(*, javascript: bool = True, width: int = 1280, height: int = 900):
        context = chromium.new_context(base_url=live_service.base_url,
                                       java_script_enabled=javascript,
                                       viewport={"width": width, "height": height})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()

