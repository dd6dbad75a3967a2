"""Shared fixtures for the safety service's tests: a seeded store, the app, signed-in clients.

The world (``seed_prisons``) is small and written straight into the mirror tables, so a test
knows every row:

====== ============ ====================================================================
prison  prisoner     state
====== ============ ====================================================================
PRA     A1111AA      held (active booking, IN); person ``person-a``; an alias row too
PRA     A2222AA      out at court today (active booking, OUT): out of scope
PRA     A3333AA      released (booking inactive): out of scope
PRB     B1111BB      held; person ``person-b``
====== ============ ====================================================================

Accounts (password ``PASSWORD``): ``officer.a`` (officer, PRA), ``officer.b`` (officer, PRB),
``lead.a`` (safety-lead, PRA), ``analyst`` (analyst), ``admin`` (admin).

Use ``client_for("officer.a")`` for a signed-in client; `service_client` has the constants and
``post_form(client, url, data)``, which sends a form with the page's CSRF token as a browser would.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from service_client import ACCOUNTS, PASSWORD, seed_prisons, sign_in

from justice.settings import Settings


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch):
    """argon2id at its lowest cost, so tests sign in quickly (production keeps the library's
    recommended cost)."""
    from justice.web import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(auth, "_DUMMY_HASH", auth._hasher.hash("dummy"))


@pytest.fixture
def web_settings(tmp_path) -> Settings:
    """Settings whose serving store is a fresh SQLite file under tmp_path."""
    return Settings(home=tmp_path / "home")


@pytest.fixture
def app(web_settings):
    """The safety service (no background sync) on a store seeded with `seed_prisons` and the
    ACCOUNTS, all with PASSWORD."""
    from justice.web import auth
    from justice.web.app import create_app

    application = create_app(web_settings, sync=False)
    engine = application.state.engine
    seed_prisons(engine)
    for name, (role, prisons) in ACCOUNTS.items():
        auth.add_user(engine, name, role, prisons, PASSWORD)
    return application


@pytest.fixture
def engine(app) -> sa.Engine:
    """The app's serving-store engine (to read audit rows, seed more data)."""
    return app.state.engine


@pytest.fixture
def anonymous(app) -> TestClient:
    """A client that has not signed in."""
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client_for(app):
    """Factory: `client_for("officer.a")` is a client signed in as that account (see ACCOUNTS)."""
    def make(name: str) -> TestClient:
        client = TestClient(app, base_url="http://127.0.0.1")
        response = sign_in(client, name)
        assert response.status_code == 303, response.text
        return client
    return make
