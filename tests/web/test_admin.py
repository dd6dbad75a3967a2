"""The audit log (append-only at the database, listed, filtered and exported by admins only),
the users page, and the `justice users` command."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import uuid

import pytest
import sqlalchemy as sa
from service_client import IN_A, PASSWORD, PRISON_A, audit_rows, csrf_token, sign_in
from typer.testing import CliRunner

from justice.cli import app as cli
from justice.settings import Settings
from justice.web import audit, auth
from justice.web.admin import csv_safe
from justice.web.audit import audit_log

ADMIN_PAGES = ("/admin/audit", "/admin/audit.csv", "/admin/users")


def _add_rows(engine, rows: list[dict]) -> None:
    base = {"at": dt.datetime(2026, 3, 27, 10, 0), "action": "test", "outcome": "allowed"}
    with engine.begin() as conn:
        conn.execute(audit_log.insert(), [{**base, **r} for r in rows])


# ---------------------------------------------------------------- append-only

def _kept_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit_log)
                            .where(audit_log.c.action == "kept")).scalar()


def _assert_append_only(engine) -> None:
    with engine.begin() as conn:
        audit.record(conn, None, None, "kept", outcome="allowed", user_name="someone")
    kept = _kept_rows(engine)
    for statement in ("UPDATE audit_log SET outcome = 'denied' WHERE action = 'kept'",
                      "DELETE FROM audit_log WHERE action = 'kept'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert _kept_rows(engine) == kept >= 1
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(audit_log.c.outcome)
                                .where(audit_log.c.action == "kept")).scalars()) == {"allowed"}


def test_audit_log_is_append_only_on_sqlite(engine):
    _assert_append_only(engine)
    audit.ensure_append_only(engine)  # idempotent: a second start changes nothing
    _assert_append_only(engine)


def _new_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    server.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_audit_log_is_append_only_on_postgresql(postgres_url):
    engine = sa.create_engine(_new_database(postgres_url))
    audit.audit_head.create(engine)
    audit_log.create(engine)          # the triggers come with the table
    _assert_append_only(engine)
    audit.ensure_append_only(engine)  # and again at every start, idempotently
    _assert_append_only(engine)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE audit_log")
    engine.dispose()


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_sessions(postgres_url, tmp_path):
    from fastapi.testclient import TestClient

    from justice.web.app import create_app

    settings = Settings(home=tmp_path, serving_db=_new_database(postgres_url))
    first, second = create_app(settings, sync=False), create_app(settings, sync=False)
    assert first.state.signing_key == second.state.signing_key
    auth.add_user(first.state.engine, "admin", "admin", [], PASSWORD)
    one = TestClient(first, base_url="http://127.0.0.1")
    # The sign-in form comes from one worker and is posted to the other, as behind a balancer.
    token = csrf_token(one)
    two = TestClient(second, base_url="http://127.0.0.1", cookies=dict(one.cookies))
    response = two.post("/sign-in", data={"name": "admin", "password": PASSWORD,
                                          "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    one.cookies.set(auth.SESSION_COOKIE, two.cookies[auth.SESSION_COOKIE])
    assert one.get("/admin/users").status_code == 200
    _assert_append_only(first.state.engine)
    for application in (first, second):
        application.state.engine.dispose()


def _record_many(engine, threads: int = 6, each: int = 30) -> None:
    def work(i: int) -> None:
        for j in range(each):
            audit.record_now(engine, None, None, f"chain {i}", outcome="allowed",
                             user_name=f"writer{i}", detail=str(j))
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def test_hash_chain_holds_under_concurrent_writers_and_shows_tampering(engine):
    _record_many(engine)
    with engine.connect() as conn:
        report = audit.verify_chain(conn)
    assert report.intact and report.rows == 180
    # Someone with the database file drops the triggers, then changes history.
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        conn.exec_driver_sql("DELETE FROM audit_log WHERE id > 170")
    with engine.connect() as conn:
        report = audit.verify_chain(conn)
    assert report.first_broken_id is None and not report.head_agrees and not report.intact
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log WHERE id = 120")
    with engine.connect() as conn:
        assert audit.verify_chain(conn).first_broken_id == 121
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET user_name = 'someone else' WHERE id = 50")
    with engine.connect() as conn:
        assert audit.verify_chain(conn).first_broken_id == 50


@pytest.mark.postgres
def test_hash_chain_holds_under_concurrent_writers_on_postgresql(postgres_url):
    engine = sa.create_engine(_new_database(postgres_url), pool_size=8)
    audit.audit_head.create(engine)
    audit_log.create(engine)
    _record_many(engine)
    with engine.connect() as conn:
        report = audit.verify_chain(conn)
    assert report.intact and report.rows == 180
    engine.dispose()


def test_no_route_edits_the_audit_log(app):
    from justice.web.context import service_routes

    for route in service_routes(app):
        if route.path.startswith("/admin"):
            assert route.methods <= {"GET", "HEAD"}, route.path


def test_unknown_outcome_is_refused(engine):
    with pytest.raises(ValueError, match="choose one of"), engine.begin() as conn:
        audit.record(conn, None, None, "x", outcome="viewed")


# ---------------------------------------------------------------- admin pages

@pytest.mark.parametrize("name", ["officer.a", "lead.a", "analyst"])
def test_admin_pages_refuse_other_roles_and_record_it(client_for, engine, name):
    client = client_for(name)
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "You cannot see this page" in response.text
    denied = audit_rows(engine, user_name=name, outcome="denied")
    assert [r["action"] for r in denied] == [f"page {p}" for p in ADMIN_PAGES]


def test_audit_page_lists_filters_and_pages(client_for, engine):
    _add_rows(engine, [{"user_name": "officer.a", "role": "officer", "action": "prisoner summary",
                        "prison_number": IN_A, "outcome": "denied",
                        "at": dt.datetime(2026, 3, 1, 8, 0) + dt.timedelta(minutes=i)}
                       for i in range(60)])
    _add_rows(engine, [{"user_name": "officer.b", "action": "roll", "prison_id": PRISON_A,
                        "at": dt.datetime(2026, 2, 1, 8, 0)}])
    admin = client_for("admin")
    page = admin.get("/admin/audit", params={"user": "officer.a", "outcome": "denied"})
    assert page.status_code == 200
    assert "60 rows, page 1 of 2" in page.text
    assert page.text.count("prisoner summary") == 50
    assert 'class="govuk-pagination' in page.text
    second = admin.get("/admin/audit", params={"user": "officer.a", "outcome": "denied", "page": 2})
    assert "page 2 of 2" in second.text and second.text.count("prisoner summary") == 10
    by_date = admin.get("/admin/audit", params={"date_from": "2026-02-01", "date_to": "2026-02-01"})
    assert "1 row." in by_date.text and "officer.b" in by_date.text
    by_person = admin.get("/admin/audit", params={"prison_number": IN_A.lower()})
    assert "60 rows" in by_person.text
    by_action = admin.get("/admin/audit", params={"action": "roll"})
    assert "1 row." in by_action.text


def test_audit_page_explains_bad_filters(client_for):
    page = client_for("admin").get("/admin/audit", params={"date_from": "27/03/2026",
                                                           "outcome": "maybe"})
    assert page.status_code == 200
    assert "There is a problem" in page.text
    assert "From date must be a real date, like 2026-03-27" in page.text
    assert 'href="#date_from"' in page.text and "Choose an outcome from the list" in page.text


def test_audit_views_and_exports_are_audited_too(client_for, engine):
    admin = client_for("admin")
    admin.get("/admin/audit", params={"user": "x"})
    admin.get("/admin/audit.csv")
    actions = [r["action"] for r in audit_rows(engine, user_name="admin")]
    assert actions[-2:] == ["audit log viewed", "audit log exported"]


def test_csv_export_is_filtered_and_escapes_formulas(client_for, engine):
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "plain"]
    _add_rows(engine, [{"user_name": value, "action": "csv test", "detail": value}
                       for value in evil])
    response = client_for("admin").get("/admin/audit.csv", params={"action": "csv test"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(evil)
    for row in rows:
        for column in ("user_name", "detail"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t")), row[column]
    assert sorted(r["detail"] for r in rows) == sorted(csv_safe(v) for v in evil)
    assert {r["detail"] for r in rows} >= {"plain", "'=HYPERLINK(\"http://x\")", "'@SUM(A1)"}


def test_users_page_lists_accounts(client_for, anonymous, engine):
    for _ in range(auth.LOCKOUT_FAILURES):
        sign_in(anonymous, "lead.a", "wrong wrong wrong")
    auth.disable_user(engine, "analyst")
    page = client_for("admin").get("/admin/users")
    assert page.status_code == 200
    for name in ("officer.a", "officer.b", "lead.a", "analyst", "admin"):
        assert re.search(rf">\s*{re.escape(name)}\s*<", page.text), name
    table = page.text[page.text.index("<table"):page.text.index("</table>")]
    tags = re.findall(r'<strong class="govuk-tag[^"]*">\s*(\w+)\s*</strong>', table)
    assert sorted(tags) == ["Active", "Active", "Active", "Disabled", "Locked"]


# ---------------------------------------------------------------- justice users

runner = CliRunner()


@pytest.fixture
def cli_home(tmp_path, app, web_settings):
    """The CLI's --home for the seeded store (nomis_agency_locations has PRA, PRB)."""
    return ["--home", str(web_settings.home)]


def test_users_add_list_disable_unlock(cli_home, engine, anonymous):
    result = runner.invoke(cli, ["users", "add", "jsmith", "--role", "officer", "--prison", "pra",
                                 "--prison", "PRB", "--password-stdin", *cli_home],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "added jsmith (officer) for PRA, PRB" in result.output
    assert sign_in(anonymous, "jsmith", "a long enough password").status_code == 303
    listed = runner.invoke(cli, ["users", "list", "--json", *cli_home])
    accounts = {a["name"]: a for a in __import__("json").loads(listed.output)}
    assert accounts["jsmith"]["prisons"] == ["PRA", "PRB"] and accounts["jsmith"]["active"]
    assert runner.invoke(cli, ["users", "disable", "jsmith", *cli_home]).exit_code == 0
    assert sign_in(anonymous, "jsmith", "a long enough password").status_code == 401
    for _ in range(auth.LOCKOUT_FAILURES):
        sign_in(anonymous, "officer.b", "wrong wrong wrong")
    assert sign_in(anonymous, "officer.b", PASSWORD).status_code == 401
    assert runner.invoke(cli, ["users", "unlock", "officer.b", *cli_home]).exit_code == 0
    assert sign_in(anonymous, "officer.b", PASSWORD).status_code == 303


@pytest.mark.parametrize("args, password, message", [
    (["x1", "--role", "governor"], "a long enough password", "choose one of officer, safety-lead"),
    (["x2", "--role", "officer", "--prison", "ZZZ"], "a long enough password",
     "unknown prison ZZZ: the prison database has PRA, PRB"),
    (["x3", "--role", "officer"], "a long enough password", "needs at least one prison"),
    (["x4", "--role", "analyst", "--prison", "PRA"], "a long enough password", "give no --prison"),
    (["x5", "--role", "admin"], "too short", "use at least 12"),
    (["officer.a", "--role", "officer", "--prison", "PRA"], "a long enough password",
     "exists already"),
])
def test_users_add_clear_errors(cli_home, args, password, message):
    result = runner.invoke(cli, ["users", "add", *args, "--password-stdin", *cli_home],
                           input=password + "\n")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
    assert password not in result.output


def test_users_unknown_name(cli_home):
    result = runner.invoke(cli, ["users", "disable", "nobody", *cli_home])
    assert result.exit_code == 2 and "no user named 'nobody'" in result.output


def test_users_add_checks_the_prison_database_before_the_first_sync(tmp_path):
    home = tmp_path / "fresh"
    result = runner.invoke(cli, ["users", "add", "x", "--role", "officer", "--prison", "PRA",
                                 "--password-stdin", "--home", str(home)], input="long enough pass\n")
    assert result.exit_code == 2
    assert "no prison database" in " ".join(result.output.split())


def test_serve_refuses_workers_on_sqlite(tmp_path):
    result = runner.invoke(cli, ["serve", "--workers", "2", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs a PostgreSQL serving store" in " ".join(result.output.split())


def _prison_database(home) -> None:
    """A prison database with three establishments holding 3, 2 and 1 people."""
    from justice.sim.legacy.prison import ddl_statements

    path = home / "legacy" / "prison" / "nomis.sqlite"
    path.parent.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    stamp = "2026-03-27 09:00:00"
    with engine.begin() as conn:
        for statement in ddl_statements():
            conn.exec_driver_sql(statement)
        for code in ("AAI", "BBI", "CCI"):
            conn.exec_driver_sql(f"INSERT INTO AGENCY_LOCATIONS VALUES ('{code}', 'HMP {code}', "
                                 f"'INST', 'Y', '{stamp}', '{stamp}')")
        for n, code in enumerate(["BBI", "BBI", "BBI", "CCI", "CCI", "AAI"], start=1):
            conn.exec_driver_sql(
                "INSERT INTO OFFENDERS (OFFENDER_ID, OFFENDER_ID_DISPLAY, CREATE_DATETIME, "
                f"MODIFY_DATETIME) VALUES ({n}, 'A{n:04d}AA', '{stamp}', '{stamp}')")
            conn.exec_driver_sql(
                "INSERT INTO OFFENDER_BOOKINGS (OFFENDER_BOOK_ID, OFFENDER_ID, BOOKING_NO, "
                "BOOKING_BEGIN_DATE, BOOKING_STATUS, ACTIVE_FLAG, AGY_LOC_ID, IN_OUT_STATUS, "
                f"CREATE_DATETIME, MODIFY_DATETIME) VALUES ({n}, {n}, 'B{n}', '2026-01-01', 'O', "
                f"'Y', '{code}', 'IN', '{stamp}', '{stamp}')")
    engine.dispose()


def test_demo_accounts_for_the_two_busiest_prisons_idempotently(tmp_path):
    from justice.cli import _demo_accounts

    home = tmp_path / "demo"
    _prison_database(home)
    settings = Settings(home=home)
    _demo_accounts(settings)
    _demo_accounts(settings)  # a second demo run keeps the accounts as they are
    from justice.serving.store import open_store

    engine = open_store(settings)
    accounts = {a["name"]: a for a in auth.list_users(engine)}
    assert accounts.keys() == {"officer.bbi", "officer.cci", "admin"}
    assert accounts["officer.bbi"]["prisons"] == ["BBI"] and accounts["admin"]["role"] == "admin"
    with engine.connect() as conn:
        signed_in = auth.LocalAccounts().authenticate(conn, "officer.cci", auth.DEMO_PASSWORD)
    assert signed_in.user is not None and signed_in.user.prisons == ("CCI",)


def test_audit_verify_command(cli_home, engine, client_for):
    client_for("admin").get("/admin/audit")
    result = runner.invoke(cli, ["audit", "verify", *cli_home])
    assert result.exit_code == 0, result.output
    assert "audit log intact" in result.output
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("UPDATE audit_log SET outcome = 'allowed' WHERE id = 1")
    result = runner.invoke(cli, ["audit", "verify", *cli_home])
    assert result.exit_code == 1
    assert "breaks at row 1" in " ".join(result.output.split())


def test_a_store_from_before_the_chain_gains_it(tmp_path):
    """An audit_log made without row_hash keeps its rows; the chain starts after them."""
    from justice.web.app import create_app

    settings = Settings(home=tmp_path)
    path = tmp_path / "serving" / "safety.sqlite"
    path.parent.mkdir(parents=True)
    old = sa.create_engine(f"sqlite:///{path}")
    with old.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at DATETIME NOT NULL, "
                             "user_name VARCHAR(100), role VARCHAR(20), action VARCHAR(100) NOT "
                             "NULL, prison_id VARCHAR(12), prison_number VARCHAR(20), person_id "
                             "VARCHAR(64), outcome VARCHAR(20) NOT NULL, request_id VARCHAR(100), "
                             "ip VARCHAR(64), path VARCHAR(500), detail TEXT)")
        conn.exec_driver_sql("INSERT INTO audit_log (at, action, outcome) VALUES "
                             "('2026-01-01 00:00:00', 'old', 'allowed')")
    old.dispose()
    engine = create_app(settings, sync=False).state.engine
    audit.record_now(engine, None, None, "new", outcome="allowed", user_name="x")
    with engine.connect() as conn:
        report = audit.verify_chain(conn)
    assert report.intact and report.rows == 1 and report.unchained_rows == 1
    _assert_append_only(engine)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
def test_serve_with_two_workers_on_postgresql(postgres_url, tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    url = _new_database(postgres_url)
    settings = Settings(home=tmp_path, serving_db=url)
    from justice.serving.store import open_store

    auth.add_user(open_store(settings), "admin", "admin", [], PASSWORD)
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "justice"), "serve", "--workers", "2", "--no-sync",
         "--port", str(port), "--home", str(tmp_path), "--store", url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/sign-in", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        with httpx.Client(base_url=base) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text)[1]
            response = client.post("/sign-in", data={"name": "admin", "password": PASSWORD,
                                                     "csrf_token": token})
            assert response.status_code == 303
            # A new connection each time, so either worker may answer: the session and the audit
            # log are the shared store's.
            for _ in range(20):
                assert httpx.get(f"{base}/admin/users", cookies=client.cookies).status_code == 200
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert audit.verify_chain(conn).intact
        engine.dispose()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_the_app_syncs_while_served_and_stops_after(tmp_path):
    import time

    from fastapi.testclient import TestClient

    from justice.web.app import create_app

    home = tmp_path / "served"
    _prison_database(home)
    app = create_app(Settings(home=home, sync_interval=3600), sync=True)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        syncer = app.state.syncer
        assert syncer is not None and syncer._thread.is_alive()
        deadline = time.monotonic() + 60
        while syncer.last_result is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert syncer.last_result is not None and not syncer.last_result.error, syncer.last_result
        assert client.get("/sign-in").status_code == 200
        with app.state.engine.connect() as conn:
            prisons = auth.known_prisons(Settings(home=home), app.state.engine)
            assert prisons == {"AAI", "BBI", "CCI"}
            assert conn.execute(sa.text("SELECT count(*) FROM nomis_offender_bookings")).scalar() == 6
    assert not syncer._thread.is_alive()
