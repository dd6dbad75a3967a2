"""Sign-in, sign-out, sessions and lockout of the safety service."""

from __future__ import annotations

import datetime as dt
import logging
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_client import PASSWORD, audit_rows, csrf_token, post_form, sign_in

from justice.web import auth


def test_pages_need_sign_in_and_come_back_after_it(anonymous):
    response = anonymous.get("/admin/audit?outcome=denied", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/admin/audit%3Foutcome%3Ddenied"
    response = sign_in(anonymous, "admin", next_path="/admin/audit?outcome=denied")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/audit?outcome=denied"
    assert anonymous.get("/admin/audit?outcome=denied").status_code == 200


def test_sign_in_and_out(anonymous, engine):
    assert sign_in(anonymous, "admin").status_code == 303
    assert anonymous.get("/admin/users").status_code == 200
    response = post_form(anonymous, "/sign-out", token_from="/admin/users", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert anonymous.get("/admin/users", follow_redirects=False).status_code == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(auth.sessions)).scalar() == 0
    outcomes = [r["outcome"] for r in audit_rows(engine, user_name="admin")]
    assert outcomes[0] == "sign_in" and outcomes[-1] == "sign_out"


@pytest.mark.parametrize("name, password", [("admin", "not the password"), ("nobody", PASSWORD)])
def test_wrong_name_or_password_gets_one_message(anonymous, engine, name, password):
    response = sign_in(anonymous, name, password)
    assert response.status_code == 401
    assert "The user name or password is not right" in response.text
    assert 'class="govuk-error-summary' in response.text
    assert auth.SESSION_COOKIE not in anonymous.cookies
    last = audit_rows(engine, action="sign in")[-1]
    assert last["outcome"] == "sign_in_failed"
    # An unknown name is not kept: it may be a password typed into the name box.
    assert last["user_name"] == (name if name == "admin" else None)


def test_empty_fields_have_inline_errors(anonymous):
    response = anonymous.post("/sign-in", data={"name": "", "password": "",
                                                "csrf_token": csrf_token(anonymous)})
    assert response.status_code == 400
    assert "Enter your user name" in response.text and "Enter your password" in response.text
    assert 'id="name-error"' in response.text and 'id="password-error"' in response.text


@pytest.mark.parametrize("name", ["officer.a", "nobody.at.all"])
def test_lockout_after_five_failures_whether_or_not_the_name_exists(anonymous, engine, name):
    for _ in range(auth.LOCKOUT_FAILURES):
        assert sign_in(anonymous, name, "wrong password here").status_code == 401
    response = sign_in(anonymous, name, PASSWORD)
    assert response.status_code == 401
    assert "too many times" in response.text
    if name == "nobody.at.all":
        return
    auth.unlock_user(engine, name)
    assert sign_in(anonymous, name, PASSWORD).status_code == 303


def test_lockout_ends_after_the_window(anonymous, engine):
    for _ in range(auth.LOCKOUT_FAILURES):
        sign_in(anonymous, "officer.a", "wrong password here")
    assert sign_in(anonymous, "officer.a").status_code == 401
    # Age the failures past the window: the lock lifts by itself.
    with engine.begin() as conn:
        conn.execute(auth.login_failures.update().values(
            at=auth.utcnow() - auth.LOCKOUT_WINDOW - dt.timedelta(seconds=1)))
    assert sign_in(anonymous, "officer.a").status_code == 303


def test_disabled_account_cannot_sign_in_and_loses_its_sessions(app, engine, client_for):
    officer = client_for("officer.a")
    auth.disable_user(engine, "officer.a")
    assert officer.get("/", follow_redirects=False).headers["location"].startswith("/sign-in")
    fresh = TestClient(app, base_url="http://127.0.0.1")
    assert sign_in(fresh, "officer.a").status_code == 401


def _cookie_value(response, name: str) -> str:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie[name].value


def test_session_fixation_closed(app, engine):
    # A token planted before sign-in (here: a real session of another user) is never honoured after.
    planted = TestClient(app, base_url="http://127.0.0.1")
    assert sign_in(planted, "analyst").status_code == 303
    planted_token = planted.cookies[auth.SESSION_COOKIE]
    victim = TestClient(app, base_url="http://127.0.0.1",
                        cookies={auth.SESSION_COOKIE: planted_token})
    response = sign_in(victim, "admin")
    assert response.status_code == 303
    new_token = _cookie_value(response, auth.SESSION_COOKIE)
    assert new_token != planted_token
    # The sign-in ended the planted session, so its token is worthless now.
    stale = TestClient(app, base_url="http://127.0.0.1", cookies={auth.SESSION_COOKIE: planted_token})
    assert stale.get("/", follow_redirects=False).headers["location"].startswith("/sign-in")
    fresh = TestClient(app, base_url="http://127.0.0.1", cookies={auth.SESSION_COOKIE: new_token})
    assert fresh.get("/", follow_redirects=False).headers["location"] == "/admin/audit"
    # Only hashes are stored: the cookie value itself is not in the store.
    with engine.connect() as conn:
        stored = conn.execute(sa.select(auth.sessions.c.token_hash)).scalars().all()
    assert new_token not in stored and len(stored) == 1


def test_idle_and_absolute_timeouts(client_for, engine):
    client = client_for("admin")
    assert client.get("/admin/users").status_code == 200
    with engine.begin() as conn:
        conn.execute(auth.sessions.update().values(
            last_seen=auth.utcnow() - auth.IDLE_TIMEOUT - dt.timedelta(seconds=1)))
    assert client.get("/admin/users", follow_redirects=False).status_code == 303
    client = client_for("admin")
    with engine.begin() as conn:
        conn.execute(auth.sessions.update().values(expires_at=auth.utcnow() - dt.timedelta(seconds=1)))
    assert client.get("/admin/users", follow_redirects=False).status_code == 303


def test_session_cookie_flags(anonymous, app):
    response = sign_in(anonymous, "admin")
    cookie = response.headers["set-cookie"]
    assert f"{auth.SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    secure = TestClient(app, base_url="https://127.0.0.1")
    assert "Secure" in sign_in(secure, "admin").headers["set-cookie"]


@pytest.mark.parametrize("target", [
    "//evil.example", "//evil.example/path", "https://evil.example", "http:evil.example",
    "/\\evil.example", "\\\\evil.example", "/%0d%0a//evil", "/\t/evil.example", "javascript:alert(1)",
    "evil.example",
])
def test_next_never_leaves_the_site(anonymous, target):
    response = sign_in(anonymous, "admin", next_path=target)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil" not in location or location == target == "/%0d%0a//evil"


def test_safe_next_keeps_local_paths():
    assert auth.safe_next("/prisons/PRA/roll?wing=A") == "/prisons/PRA/roll?wing=A"
    assert auth.safe_next("/%0d%0a//evil") == "/%0d%0a//evil"  # percent-encoded: a path here
    for bad in ("//x", "/\\x", "https://x", "x", "", None, "/\x00//x"):
        assert auth.safe_next(bad) == "/"


def test_passwords_never_logged_or_echoed(anonymous, client_for, engine, caplog):
    secret = "a-very-secret-password-987"
    with caplog.at_level(logging.DEBUG):
        response = sign_in(anonymous, "admin", secret)
        sign_in(anonymous, "nobody", secret)
        sign_in(anonymous, secret, secret)  # the password typed into the name box as well
        sign_in(anonymous, "admin", PASSWORD)
    assert secret not in response.text
    assert PASSWORD not in caplog.text and secret not in caplog.text
    assert all(secret not in str(r.args) for r in caplog.records)
    exported = client_for("admin").get("/admin/audit.csv").text
    assert secret not in exported and PASSWORD not in exported
    assert all(secret not in str(row) for row in audit_rows(engine))


def test_password_rules_and_unknown_role():
    from justice.errors import AccountError

    with pytest.raises(AccountError, match="at least 12"):
        auth.check_password("short")
    assert auth.MIN_PASSWORD_LENGTH == 12


def test_home_sends_each_role_where_it_works(client_for):
    assert client_for("admin").get("/", follow_redirects=False).headers["location"] == "/admin/audit"
    # Analysts (and providers) evaluate programmes in the provider portal.
    assert client_for("analyst").get("/", follow_redirects=False).headers["location"] == "/portal"


def test_sign_in_forgets_stale_sessions_and_failures(client_for, engine):
    client_for("admin")
    sign_in(TestClient(client_for("admin").app), "officer.a", "wrong wrong wrong")
    old = auth.utcnow() - auth.IDLE_TIMEOUT - auth.LOCKOUT_WINDOW
    with engine.begin() as conn:
        conn.execute(auth.sessions.update().values(last_seen=old))
        conn.execute(auth.login_failures.update().values(at=old))
    client_for("officer.b")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(auth.sessions)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(auth.login_failures)).scalar() == 0


def test_a_very_long_name_locks_like_any_other(anonymous):
    name = "x" * 300
    for _ in range(auth.LOCKOUT_FAILURES):
        assert sign_in(anonymous, name, "wrong wrong wrong").status_code == 401
    assert "too many times" in sign_in(anonymous, name, "wrong wrong wrong").text
