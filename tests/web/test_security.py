"""Security of the safety service as a whole: CSRF on every form, scoping by prison on every
person route, security headers, no inline script and nothing loaded from another site."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from service_client import (
    AT_COURT_A,
    IN_A,
    IN_B,
    PRISON_A,
    PRISON_B,
    RELEASED_A,
    audit_rows,
    csrf_token,
)

from justice.web.access import ScopedPrisoner, person_in_scope, scoped_prison, scoped_prisoner
from justice.web.auth import User
from justice.web.context import StoreConnection, service_routes
from justice.web.csrf import service_keys

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _fill(path: str, prison_number: str = IN_A, prison_id: str = PRISON_A) -> str:
    path = path.replace("{prison_number}", prison_number).replace("{prison_id}", prison_id)
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
def probe_app(app):
    """The app with two probe routes guarded like the safety pages (they exist whether or not
    the safety pages have landed, so the guards are tested on their own)."""
    router = APIRouter()

    @router.get("/probe/person/{prison_number}")
    def probe_person(person: Annotated[ScopedPrisoner, Depends(scoped_prisoner("probe person"))]):
        return {"booking": person.offender_book_id, "person": person.person_id,
                "prison": person.prison_id}

    @router.get("/probe/prison/{prison_id}")
    def probe_prison(prison: Annotated[str, Depends(scoped_prison("probe prison"))]):
        return {"prison": prison}

    app.include_router(router)
    app.state.page_paths = None
    return app


# ---------------------------------------------------------------- CSRF

def _post_routes(app) -> list[str]:
    return sorted({r.path for r in service_routes(app) if r.methods & UNSAFE})


def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token(app, client_for, engine):
    routes = _post_routes(app)
    assert "/sign-in" in routes and "/sign-out" in routes
    officer = client_for("officer.a")
    for path in routes:
        url = _fill(path)
        for data, why in (({}, "missing"), ({"csrf_token": "forged"}, "wrong")):
            before = len(audit_rows(engine, outcome="denied"))
            response = officer.post(url, data=data, follow_redirects=False)
            assert response.status_code == 403, (url, why, response.status_code)
            assert "The form has expired" in response.text
            rows = audit_rows(engine, outcome="denied")
            assert len(rows) == before + 1 and rows[-1]["detail"] == f"CSRF token {why}", url
            assert rows[-1]["user_name"] == "officer.a"
    # Still signed in: the refused sign-out did nothing.
    assert officer.get("/", follow_redirects=False).status_code in (200, 303)
    assert not officer.get("/", follow_redirects=False).headers.get("location", "").startswith("/sign-in")


def test_sign_in_form_needs_its_pre_session_token(anonymous):
    form = {"name": "admin", "password": "correct horse battery staple"}
    assert anonymous.post("/sign-in", data=form).status_code == 403
    token = csrf_token(anonymous)
    assert anonymous.post("/sign-in", data={**form, "csrf_token": token + "x"}).status_code == 403
    # A token is bound to the browser's signed cookie: another browser's token is refused.
    other = anonymous.__class__(anonymous.app, base_url="http://127.0.0.1")
    assert other.post("/sign-in", data={**form, "csrf_token": token}).status_code == 403
    # A forged cookie and token pair without the store's signature is refused too.
    anonymous.cookies.clear()
    anonymous.cookies.set("justice_csrf", "abc.def")
    assert anonymous.post("/sign-in", data={**form, "csrf_token": "abc.def"}).status_code == 403
    anonymous.cookies.clear()
    token = csrf_token(anonymous)
    response = anonymous.post("/sign-in", data={**form, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303


def test_odd_tokens_are_refused_not_crashed_on(app, client_for):
    form = {"name": "admin", "password": "correct horse battery staple"}
    odd = "\u00e9t\u00e9.\u00e9"
    client = TestClient(app, base_url="http://127.0.0.1")
    response = client.post("/sign-in", data={**form, "csrf_token": odd},
                           headers={"Cookie": f"justice_csrf={odd}".encode()})
    assert response.status_code == 403
    officer = client_for("officer.a")
    assert officer.post("/sign-out", data={"csrf_token": odd}).status_code == 403


def test_csrf_token_accepted_from_the_header(client_for):
    admin = client_for("admin")
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/sign-out", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"


def test_session_token_of_one_user_is_refused_for_another(client_for):
    officer, admin = client_for("officer.a"), client_for("admin")
    token = csrf_token(officer)
    assert admin.post("/sign-out", data={"csrf_token": token}).status_code == 403


def test_safe_methods_change_nothing_and_need_no_token(app):
    for route in service_routes(app):
        assert not ({"GET", "HEAD"} & route.methods and route.methods & UNSAFE), route.path


# ---------------------------------------------------------------- scoping

def test_person_in_scope_only_while_held_in_ones_prisons(engine):
    officer_a = User(1, "officer.a", "officer", (PRISON_A,))
    both = User(2, "lead", "safety-lead", (PRISON_A, PRISON_B))
    analyst = User(3, "analyst", "analyst", ())
    admin_with_prison = User(4, "admin", "admin", (PRISON_A,))
    with engine.connect() as conn:
        assert person_in_scope(conn, officer_a, IN_A) == 11
        assert person_in_scope(conn, officer_a, IN_B) is None
        assert person_in_scope(conn, officer_a, AT_COURT_A) is None   # booking OUT
        assert person_in_scope(conn, officer_a, RELEASED_A) is None   # booking closed
        assert person_in_scope(conn, officer_a, "Z9999ZZ") is None
        assert person_in_scope(conn, both, IN_B) == 14
        assert person_in_scope(conn, analyst, IN_A) is None
        assert person_in_scope(conn, admin_with_prison, IN_A) is None


def test_scoped_prisoner_audits_views_and_denials(probe_app, client_for, engine):
    officer = client_for("officer.a")
    response = officer.get(f"/probe/person/{IN_A}")
    assert response.status_code == 200
    assert response.json() == {"booking": 11, "person": "person-a", "prison": PRISON_A}
    allowed = audit_rows(engine, action="probe person", outcome="allowed")
    assert [(r["user_name"], r["prison_number"], r["person_id"]) for r in allowed] == [
        ("officer.a", IN_A, "person-a")]
    assert allowed[0]["request_id"] and allowed[0]["path"] == f"/probe/person/{IN_A}"

    out_of_scope = officer.get(f"/probe/person/{IN_B}")
    unknown = officer.get("/probe/person/Z9999ZZ")
    assert out_of_scope.status_code == unknown.status_code == 403
    # The same page whether the person exists elsewhere or not at all.
    assert out_of_scope.text == unknown.text
    assert "You cannot see this page" in out_of_scope.text
    denied = audit_rows(engine, action="probe person", outcome="denied")
    assert [(r["user_name"], r["prison_number"]) for r in denied] == [
        ("officer.a", IN_B), ("officer.a", "Z9999ZZ")]


@pytest.mark.parametrize("name", ["analyst", "admin"])
def test_roles_without_prisoners_see_none(probe_app, client_for, engine, name):
    client = client_for(name)
    assert client.get(f"/probe/person/{IN_A}").status_code == 403
    assert client.get(f"/probe/prison/{PRISON_A}").status_code == 403
    assert {r["outcome"] for r in audit_rows(engine, user_name=name) if "probe" in r["action"]} == {
        "denied"}


def test_scoped_prison(probe_app, client_for, engine):
    officer = client_for("officer.a")
    assert officer.get(f"/probe/prison/{PRISON_A}").json() == {"prison": PRISON_A}
    assert officer.get(f"/probe/prison/{PRISON_B}").status_code == 403
    rows = audit_rows(engine, action="probe prison")
    assert [(r["prison_id"], r["outcome"]) for r in rows] == [(PRISON_B, "denied")]


def test_signed_out_person_route_goes_to_sign_in_and_is_not_a_view(probe_app, anonymous, engine):
    response = anonymous.get(f"/probe/person/{IN_A}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/sign-in?next=/probe/person/{IN_A}"
    assert audit_rows(engine, action="probe person") == []


def _guarded_by(route, attribute: str = "scoped_action") -> bool:
    def walk(dependant):
        if getattr(dependant.call, attribute, None):
            return True
        return any(walk(d) for d in dependant.dependencies)
    return walk(route.dependant)


def test_every_person_route_is_scoped_and_audited(app, client_for, engine):
    person_routes = [r for r in service_routes(app) if "{prison_number}" in r.path]
    prison_routes = [r for r in service_routes(app) if "{prison_id}" in r.path]
    assert person_routes and prison_routes
    for route in person_routes + prison_routes:
        assert _guarded_by(route), f"{route.path} does not use scoped_prisoner / scoped_prison"
    officer = client_for("officer.a")
    for route in person_routes:
        if "GET" not in route.methods:
            continue
        for number in (IN_B, RELEASED_A, AT_COURT_A, "Z9999ZZ"):
            url = _fill(route.path, prison_number=number)
            before = len(audit_rows(engine, outcome="denied", prison_number=number))
            assert officer.get(url).status_code == 403, url
            assert len(audit_rows(engine, outcome="denied", prison_number=number)) == before + 1, url
    for route in prison_routes:
        if "GET" in route.methods and "{prison_number}" not in route.path:
            assert officer.get(_fill(route.path, prison_id=PRISON_B)).status_code == 403, route.path
    # In scope, every page about people or a prison leaves an `allowed` row naming its path.
    for route in person_routes + prison_routes:
        if "GET" not in route.methods:
            continue
        url = _fill(route.path)
        officer.get(url)
        assert any(r["path"] == url for r in audit_rows(engine, outcome="allowed")), url


# ---------------------------------------------------------------- headers and pages

def test_security_headers_on_pages_errors_redirects_and_assets(client_for, anonymous):
    officer = client_for("officer.a")
    responses = {
        "sign-in": anonymous.get("/sign-in"),
        "redirect": anonymous.get("/admin/audit", follow_redirects=False),
        "404": officer.get("/no/such/page"),
        "403": officer.get("/admin/audit"),
        "asset": anonymous.get("/assets/govuk/govuk-frontend.min.css"),
    }
    for name, response in responses.items():
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "same-origin", name
        assert headers["x-request-id"], name
        expected_cache = "max-age=3600" if name == "asset" else "no-store"
        assert headers["cache-control"] == expected_cache, name
    assert responses["404"].status_code == 404 and "Page not found" in responses["404"].text
    assert responses["403"].status_code == 403


def test_strict_transport_security_only_over_https(app, anonymous):
    assert "strict-transport-security" not in anonymous.get("/sign-in").headers
    secure = TestClient(app, base_url="https://127.0.0.1")
    assert secure.get("/sign-in").headers["strict-transport-security"] == "max-age=31536000"


def test_request_id_is_echoed_or_made(anonymous):
    assert anonymous.get("/sign-in", headers={"X-Request-ID": "abc-123"}).headers[
        "x-request-id"] == "abc-123"
    made = anonymous.get("/sign-in", headers={"X-Request-ID": "bad id\r\nSet-Cookie: x=1"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", anonymous.get("/sign-in").headers["x-request-id"])


def _pages(client_for, anonymous) -> dict[str, str]:
    admin, officer = client_for("admin"), client_for("officer.a")
    return {"sign-in": anonymous.get("/sign-in").text, "audit": admin.get("/admin/audit").text,
            "users": admin.get("/admin/users").text, "404": officer.get("/nope").text,
            "no pages": client_for("analyst").get("/").text}


def test_no_inline_script_or_style_and_nothing_from_another_site(client_for, anonymous):
    for name, html in _pages(client_for, anonymous).items():
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, (name, tag)
        assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None, name  # no inline body
        assert "<style" not in html and " style=" not in html, name
        for url in re.findall(r'(?:href|src|action)="([^"]*)"', html):
            assert url.startswith(("/", "#")) and not url.startswith("//"), (name, url)


def test_main_assets_are_served(anonymous):
    html = anonymous.get("/sign-in").text
    for url in re.findall(r'(?:href|src)="(/assets/[^"]+)"', html):
        assert anonymous.get(url).status_code == 200, url
    for url in ("/assets/fonts/bold-b542beb274-v2.woff2", "/assets/images/govuk-crest.svg",
                "/assets/images/icon-progress-tick.svg", "/assets/moj/moj-frontend.min.js",
                "/assets/govuk/govuk-frontend.min.js"):
        assert anonymous.get(url).status_code == 200, url


def test_missing_assets_are_a_clear_error(tmp_path):
    from justice.errors import ConfigError
    from justice.settings import Settings
    from justice.web.app import create_app

    with pytest.raises(ConfigError, match="make setup"):
        create_app(Settings(home=tmp_path, web_assets=str(tmp_path / "nowhere")), sync=False)


def test_a_routes_writes_are_committed_before_its_response_is_sent(app, engine):
    """A browser that follows a redirect at once must see what the POST before it wrote."""
    router = APIRouter()

    @router.get("/probe/write")
    def probe_write(conn: StoreConnection):
        conn.execute(service_keys.insert().values(name="probe", value="written"))
        return {"ok": True}

    app.include_router(router)
    seen_at_response_start = []

    async def watching(scope, receive, send):
        async def watched_send(message):
            if message["type"] == "http.response.start":
                with engine.connect() as conn:
                    seen_at_response_start.append(conn.execute(
                        sa.select(service_keys.c.value).where(service_keys.c.name == "probe")
                    ).scalar())
            await send(message)
        await app(scope, receive, watched_send)

    with TestClient(watching, base_url="http://127.0.0.1") as client:
        assert client.get("/probe/write").status_code == 200
    assert seen_at_response_start == ["written"]


def test_a_crash_is_a_plain_english_500_page_with_a_reference(app, caplog):
    router = APIRouter()

    @router.get("/probe/crash")
    def crash():
        raise RuntimeError("secret internals: table xyz")

    app.include_router(router)
    client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    response = client.get("/probe/crash", headers={"X-Request-ID": "ref-500-test"})
    assert response.status_code == 500
    assert "Sorry, there is a problem with the service" in response.text
    assert "ref-500-test" in response.text and "secret internals" not in response.text
    assert response.headers["x-request-id"] == "ref-500-test"
    assert "content-security-policy" in response.headers
    assert "secret internals" in caplog.text  # the log keeps what the page does not show


def test_data_as_at_line():
    import datetime as dt

    from justice.web.context import data_as_at_text

    now = dt.datetime(2026, 3, 27, 14, 0, 0)
    as_at = dt.datetime(2025, 12, 31, 12, 24, 17)
    assert data_as_at_text(None) == "No prison data has been synced yet."
    assert data_as_at_text((None, None)) == "No prison data has been synced yet."
    assert data_as_at_text((as_at, now - dt.timedelta(seconds=1)), now) == (
        "Data as at 31 December 2025 at 12:24pm, synced 1 second ago.")
    assert data_as_at_text((as_at, now - dt.timedelta(minutes=8)), now).endswith(
        "synced 8 minutes ago.")
    assert data_as_at_text((as_at, now - dt.timedelta(hours=5)), now).endswith("synced 5 hours ago.")
    assert data_as_at_text((as_at, None), now) == "Data as at 31 December 2025 at 12:24pm."


def test_signed_in_pages_show_data_as_at(client_for, engine):
    import datetime as dt

    from justice.serving.mirror import sync_runs, sync_state

    page = client_for("admin").get("/admin/users")
    assert "No prison data has been synced yet." in page.text
    with engine.begin() as conn:
        conn.execute(sync_state.insert().values(table_name="OFFENDERS",
                                                cursor_modify=dt.datetime(2026, 3, 27, 9, 5)))
        conn.execute(sync_runs.insert().values(started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                                               finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    page = client_for("admin").get("/admin/users")
    assert re.search(r"Data as at 27 March 2026 at 9:05am, synced \d+ seconds? ago\.", page.text)


# ---------------------------------------------------------------- the route walk: who may see what

# Published, disclosure-controlled statistics (justice.web.explorer, explorer_api): no sign-in.
PUBLIC_STATISTICS = ("/explore", "/api/")
PUBLIC_PAGES = {"/sign-in"}


def test_every_get_route_is_public_statistics_or_needs_sign_in(app, anonymous):
    """Each GET route is in one class: the explorer and its API (public: never about a person
    or a prison, no scoping guard), the sign-in page, a stylesheet, or a page that sends a
    signed-out visitor to sign in. A new route that is none of these fails here."""
    classified: dict[str, list[str]] = {"statistics": [], "sign-in": [], "stylesheet": [],
                                        "signed in": []}
    for route in service_routes(app):
        if "GET" not in route.methods:
            continue
        path = route.path
        if path.startswith(PUBLIC_STATISTICS):
            assert "{prison_number}" not in path and "{prison_id}" not in path, path
            assert not _guarded_by(route), path
            classified["statistics"].append(path)
            continue
        if path in PUBLIC_PAGES:
            classified["sign-in"].append(path)
            continue
        response = anonymous.get(_fill(path), follow_redirects=False)
        if path.endswith(".css") and response.status_code == 200:
            assert response.headers["content-type"].startswith("text/css"), path
            classified["stylesheet"].append(path)
            continue
        assert response.status_code == 303, (path, response.status_code)
        assert response.headers["location"].startswith("/sign-in"), path
        classified["signed in"].append(path)
    assert {"/explore", "/explore/{name}", "/api/datasets/{name}/table"} <= set(classified["statistics"])
    assert "/prisoners/{prison_number}" in classified["signed in"]


# ---------------------------------------------------------------- the provider portal

def test_every_portal_route_checks_the_role_and_the_submission(app, client_for, engine):
    """Each /portal route answers only providers and analysts (any other role: the 403 page
    and a denied row), and each route with a submission id takes the submission guard
    (justice.web.portal: an organisation's submissions to it alone, views audited)."""
    portal_routes = [r for r in service_routes(app) if r.path.startswith("/portal")]
    assert {"/portal", "/portal/upload", "/portal/submissions/{submission_id}",
            "/portal/submissions/{submission_id}/files/{name}"} <= {r.path for r in portal_routes}
    for route in portal_routes:
        if "{submission_id}" in route.path:
            assert _guarded_by(route, "portal_action"), route.path
    officer = client_for("officer.a")
    for route in portal_routes:
        if "GET" not in route.methods or route.path.endswith(".css"):
            continue  # the report's stylesheet: public, as in the route walk above
        url = route.path.replace("{submission_id}", "x" * 24).replace("{name}", "report.json")
        before = len(audit_rows(engine, outcome="denied", user_name="officer.a"))
        assert officer.get(url).status_code == 403, url
        assert len(audit_rows(engine, outcome="denied", user_name="officer.a")) == before + 1, url
