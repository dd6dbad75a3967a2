"""The provider portal over HTTP: uploads good and bad, who sees which submission, the background
evaluation reaching done and failed, encryption at rest and the retention purge.

Accounts beyond tests/web/conftest.py's: ``provider.pathways`` (Pathways Partnership) and
``provider.clearwater`` (Clearwater Recovery), password PASSWORD. Uploads need the
``cryptography`` package (files are kept encrypted); those tests are skipped, saying so, where it
is not installed.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import re
import stat
import string
import time
import zipfile

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_client import PASSWORD, audit_rows, csrf_token, sign_in

from justice.errors import AccountError, ConfigError
from justice.web import auth
from justice.web import portal_store as store

PATHWAYS, CLEARWATER = "Pathways Partnership", "Clearwater Recovery"
GOOD_CSV = (
    "First name,Surname,Date of birth,Gender,Programme start date\n"
    "Alice,Zebedee,1980-01-02,F,2019-03-04\n"
    "Bob,Quixote,1975-05-06,M,2019-04-05\n"
    "Carol,Umbrage,1990-07-08,F,2019-05-06\n"
)
# Row 3 has an unreadable date of birth; the others are fine.
BAD_ROW_CSV = GOOD_CSV.replace("1975-05-06", "31/02/1975")


@pytest.fixture
def crypto():
    """Skips a test that keeps an upload where the cryptography package is missing."""
    return pytest.importorskip("cryptography", reason="the portal encrypts uploads with "
                                                      "`cryptography`, which is not installed")


@pytest.fixture
def portal_app(app):
    """The app with two provider accounts and a background runner that runs nothing (so what
    a test sees never depends on the timing of a thread); a test that wants the real runner
    sets ``app.state.portal_runner = None`` first. Its runner is stopped after the test."""
    engine = app.state.engine
    auth.add_user(engine, "provider.pathways", "provider", [], PASSWORD, provider=PATHWAYS)
    auth.add_user(engine, "provider.clearwater", "provider", [], PASSWORD, provider=CLEARWATER)
    app.state.portal_runner = Stopped()
    yield app
    runner = getattr(app.state, "portal_runner", None)
    if runner is not None:
        runner.stop()


class Stopped:
    """A runner that never runs anything (the test drives the queue, if at all)."""

    def start(self):
        return self

    def wake(self):
        pass

    def stop(self, timeout=None):
        pass


@pytest.fixture
def portal_client(portal_app):
    """Factory: a client signed in as the named account."""
    def make(name: str) -> TestClient:
        client = TestClient(portal_app, base_url="http://127.0.0.1")
        assert sign_in(client, name).status_code == 303
        return client
    return make


def upload(client: TestClient, content: bytes | str, name: str = "cohort.csv", *,
           exclude: bool = False, programme: str = "", token: str | None = "page"):
    """POST a file to the upload form as a browser would (the form's CSRF token unless
    `token` is None)."""
    data = {"programme": programme}
    if exclude:
        data["exclude_bad_rows"] = "yes"
    if token == "page":
        data["csrf_token"] = csrf_token(client, "/portal/upload")
    elif token is not None:
        data["csrf_token"] = token
    raw = content.encode() if isinstance(content, str) else content
    return client.post("/portal/upload", data=data, files={"cohort": (name, raw)},
                       follow_redirects=False)


def submissions(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(store.portal_submissions)
                                              .order_by(store.portal_submissions.c.uploaded_at))
                .mappings()]


def submission_id_of(response) -> str:
    assert response.status_code == 303, response.text[:2000]
    match = re.fullmatch(r"/portal/submissions/([A-Za-z0-9_-]+)", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


def wait_for(engine, submission_id: str, statuses=("done", "failed"), timeout: float = 300.0):
    """The submission's row once its status is one of `statuses` (the background runner works)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = store.get_submission(conn, submission_id)
        if row["status"] in statuses:
            return row
        time.sleep(0.2)
    pytest.fail(f"submission {submission_id} still {row['status']} after {timeout:.0f} s")


def xlsx_bytes(rows: list[list]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- accounts and roles

def test_a_provider_account_needs_its_organisation(engine):
    with pytest.raises(AccountError, match="--provider"):
        auth.add_user(engine, "p1", "provider", [], PASSWORD)
    with pytest.raises(AccountError, match="no --provider"):
        auth.add_user(engine, "a1", "analyst", [], PASSWORD, provider=PATHWAYS)
    user = auth.add_user(engine, "p2", "provider", [], PASSWORD, provider="  Pathways   Partnership ")
    assert user.provider == PATHWAYS
    assert {a["name"]: a["provider"] for a in auth.list_users(engine)}["p2"] == PATHWAYS


def test_providers_and_analysts_land_on_the_portal(portal_client):
    for name in ("provider.pathways", "analyst"):
        response = portal_client(name).get("/", follow_redirects=False)
        assert response.headers["location"] == "/portal", name
    page = portal_client("provider.pathways").get("/portal")
    assert page.status_code == 200 and PATHWAYS in page.text
    assert 'href="/portal"' in page.text  # the navigation item


@pytest.mark.parametrize("name", ["officer.a", "lead.a", "admin"])
def test_other_roles_get_403_recorded_as_denied(portal_client, engine, name):
    client = portal_client(name)
    for path in ("/portal", "/portal/upload"):
        assert client.get(path).status_code == 403, path
    rows = [r for r in audit_rows(engine, user_name=name, outcome="denied")
            if r["path"] in ("/portal", "/portal/upload")]
    assert len(rows) == 2 and all("is not one of provider, analyst" in r["detail"] for r in rows)


def test_a_provider_account_without_an_organisation_is_refused(portal_app, engine):
    # An account made before organisations existed (a row in users and nothing else).
    with engine.begin() as conn:
        conn.execute(auth.users.insert().values(
            name="provider.old", role="provider", password_hash=auth._hasher.hash(PASSWORD),
            active=True, created_at=dt.datetime(2026, 1, 1)))
    client = TestClient(portal_app, base_url="http://127.0.0.1")
    assert sign_in(client, "provider.old").status_code == 303
    assert client.get("/portal").status_code == 403
    assert "no organisation" in audit_rows(engine, user_name="provider.old",
                                           outcome="denied")[-1]["detail"]


# ---------------------------------------------------------------- uploads

def test_a_good_file_is_kept_encrypted_and_queued(crypto, portal_app, portal_client, engine):
    client = portal_client("provider.pathways")
    submission_id = submission_id_of(upload(client, GOOD_CSV, "spring intake.csv",
                                            programme="Thinking Skills"))
    assert len(submission_id) >= 24
    (row,) = submissions(engine)
    assert (row["id"], row["organisation"], row["uploaded_by"], row["file_name"],
            row["file_kind"], row["programme"], row["participants"], row["rows_left_out"]) == (
        submission_id, PATHWAYS, "provider.pathways", "spring intake.csv", "csv",
        "Thinking Skills", 3, 0)
    settings = portal_app.state.settings
    on_disk = store.upload_path(settings, submission_id).read_bytes()
    assert on_disk != GOOD_CSV.encode()
    for plain in (b"Zebedee", b"Quixote", b"1980-01-02", b"First name"):
        assert plain not in on_disk
    assert store.read_upload(settings, submission_id) == GOOD_CSV.encode()
    # The key: in the home, 0600, and nowhere in the store.
    key_path = settings.portal_key_path
    assert key_path.parent == settings.home / "portal"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.upload_path(settings, submission_id).stat().st_mode) == 0o600
    key_hex = key_path.read_text().strip()
    store_file = settings.home / "serving" / "safety.sqlite"
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
    for path in store_file.parent.iterdir():
        assert key_hex.encode() not in path.read_bytes(), path
        assert bytes.fromhex(key_hex) not in path.read_bytes(), path
    # Bound to its submission: the same bytes under another id do not decrypt.
    with pytest.raises(Exception, match="does not decrypt"):
        store.decrypt(settings, on_disk, "x" * 24)
    (audited,) = audit_rows(engine, action="portal upload")
    assert audited["outcome"] == "allowed" and audited["user_name"] == "provider.pathways"
    assert submission_id in audited["detail"] and "3 participants" in audited["detail"]
    page = client.get(f"/portal/submissions/{submission_id}")
    assert page.status_code == 200 and "Thinking Skills" in page.text


def test_without_the_encryption_library_nothing_is_kept(portal_app, portal_client, engine,
                                                         monkeypatch):
    import sys

    # As where `cryptography` is not installed: the import of its AES-GCM fails.
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    response = upload(portal_client("provider.pathways"), GOOD_CSV)
    assert response.status_code == 503 and "cannot take files now" in response.text
    assert submissions(engine) == []
    uploads = portal_app.state.settings.home / "portal" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    (audited,) = audit_rows(engine, action="portal upload")
    assert audited["outcome"] == "denied" and "cryptography" in audited["detail"]


def test_an_xlsx_file_is_taken(crypto, portal_client, engine):
    content = xlsx_bytes([["Participant list – Family Ties"], ["Provider: Someone Else"], [],
                          ["Forename", "Surname", "DOB", "Sex", "Start date"],
                          ["Dan", "Yellowlees", dt.date(1985, 1, 1), "M", dt.date(2020, 1, 1)]])
    submission_id = submission_id_of(upload(portal_client("provider.pathways"), content,
                                            "list.xlsx"))
    (row,) = submissions(engine)
    # The file's title names the programme; the account, not the file, names the organisation.
    assert (row["id"], row["file_kind"], row["programme"], row["organisation"]) == (
        submission_id, "xlsx", "Family Ties", PATHWAYS)


def test_a_file_with_a_bad_row_shows_an_error_summary_naming_row_and_column(
        portal_app, portal_client, engine):
    response = upload(portal_client("provider.pathways"), BAD_ROW_CSV)
    assert response.status_code == 400
    html = response.text
    assert 'class="govuk-error-summary"' in html and "There is a problem with the file" in html
    assert re.search(r"Row 3, column ‘Date of birth’: [^<]*date", html), html
    assert 'href="#cohort"' in html and 'id="cohort"' in html
    assert "tick ‘Leave out rows with problems’" in html
    assert html.startswith("<!DOCTYPE html>") and "<title>Error: " in html
    assert submissions(engine) == []
    assert not (portal_app.state.settings.home / "portal" / "uploads").exists() or not any(
        (portal_app.state.settings.home / "portal" / "uploads").iterdir())
    (audited,) = audit_rows(engine, action="portal upload")
    assert audited["outcome"] == "denied" and "1 problem" in audited["detail"]


def test_leaving_bad_rows_out_mirrors_exclude_bad_rows(crypto, portal_client, engine):
    submission_id_of(upload(portal_client("provider.pathways"), BAD_ROW_CSV, exclude=True))
    (row,) = submissions(engine)
    assert (row["participants"], row["rows_left_out"], row["exclude_bad_rows"]) == (2, 1, True)


def test_a_file_problem_cannot_be_left_out(portal_client, engine):
    no_dob = "First name,Surname,Programme start date\nAlice,Zebedee,2019-03-04\n"
    response = upload(portal_client("provider.pathways"), no_dob, exclude=True)
    assert response.status_code == 400
    assert "Row 1: required column(s) Date of birth not found" in response.text
    assert "Leave out rows with problems’ and choose" not in response.text
    assert submissions(engine) == []


@pytest.mark.parametrize(("content", "name", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cohort.csv", "is not a CSV or an Excel"),
    (GOOD_CSV.encode(), "cohort.xlsx", "named .xlsx but holds text"),
    (b"PK\x03\x04" + b"not really a zip", "cohort.xlsx", "is not a CSV or an Excel"),
    (b"%PDF-1.7 something", "cohort.pdf", "must be a CSV or an Excel"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls", "must be a CSV or an Excel"),
    (b"", "cohort.csv", "is empty"),
])
def test_files_are_checked_by_content_not_only_the_name(portal_client, engine, content, name,
                                                        message):
    response = upload(portal_client("provider.pathways"), content, name)
    assert response.status_code == 400, name
    assert message in response.text and 'class="govuk-error-summary"' in response.text
    assert submissions(engine) == []


def test_a_zip_that_is_not_a_workbook_is_refused(portal_client, engine):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    response = upload(portal_client("provider.pathways"), out.getvalue(), "cohort.xlsx")
    assert response.status_code == 400 and "is not a CSV or an Excel" in response.text


def test_no_file_selected(portal_client):
    client = portal_client("provider.pathways")
    response = client.post("/portal/upload", data={"csrf_token": csrf_token(client, "/portal/upload")},
                           files={"cohort": ("", b"")}, follow_redirects=False)
    assert response.status_code == 400 and "Select a CSV or Excel file" in response.text


# ---------------------------------------------------------------- how large a file may be

def big_cohort_csv(size: int) -> bytes:
    """A good cohort CSV of at least `size` bytes (distinct people, about 36 bytes a row)."""
    lines = ["First name,Surname,Date of birth,Gender,Programme start date"]
    total = len(lines[0]) + 1
    for n, letters in enumerate(itertools.product(string.ascii_lowercase, repeat=4)):
        lines.append(f"Alice,Q{''.join(letters)},19{60 + n % 40}-{1 + n % 12:02d}-"
                     f"{1 + n % 28:02d},{'FM'[n % 2]},2019-03-04")
        total += len(lines[-1]) + 1
        if total >= size:
            break
    return ("\n".join(lines) + "\n").encode()


def uploads_on_disk(app) -> list:
    folder = app.state.settings.home / "portal" / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_2_mb_cohort_is_taken_and_never_spooled_to_disk(crypto, portal_app, portal_client,
                                                          engine, monkeypatch):
    import tempfile

    def to_disk(self):
        raise AssertionError("an upload was spooled to a temporary file in plain text")

    # Starlette's form parser rolls a file part over 1 MiB to a temporary file on disk.
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", to_disk)
    content = big_cohort_csv(2_000_000)
    assert 2_000_000 <= len(content) < store.max_upload_bytes()
    submission_id = submission_id_of(upload(portal_client("provider.pathways"), content))
    (row,) = submissions(engine)
    assert row["id"] == submission_id and row["participants"] == content.count(b"\n") - 1
    assert row["file_bytes"] == len(content)
    assert store.read_upload(portal_app.state.settings, submission_id) == content


def test_a_file_over_the_limit_gets_the_portals_error_page_and_nothing_is_kept(
        crypto, portal_app, portal_client, engine, monkeypatch):
    monkeypatch.setenv(store.MAX_UPLOAD_ENV, "1")
    client = portal_client("provider.pathways")
    form = client.get("/portal/upload")
    assert "smaller than 1 MB" in form.text
    content = big_cohort_csv(2_000_000)  # over the limit and the form's allowance: not read
    response = upload(client, content, "whole year.csv")
    assert response.status_code == 413
    assert 'class="govuk-error-summary"' in response.text
    assert "The selected file must be smaller than 1 MB" in response.text
    assert '<a href="#cohort">' in response.text  # the summary links to the file field
    assert submissions(engine) == [] and uploads_on_disk(portal_app) == []
    (refused,) = audit_rows(engine, action="portal upload")
    assert refused["outcome"] == "denied" and refused["user_name"] == "provider.pathways"
    assert "whole year.csv" in refused["detail"] and "over 1 MB" in refused["detail"]
    # Just over the limit (within the form's allowance): read, then refused the same way.
    response = upload(client, big_cohort_csv(1_010_000))
    assert response.status_code == 400
    assert "The selected file must be smaller than 1 MB" in response.text
    assert submissions(engine) == [] and uploads_on_disk(portal_app) == []
    assert [r["outcome"] for r in audit_rows(engine, action="portal upload")] == ["denied"] * 2
    # The limit is the file's: one a little under it is taken.
    submission_id_of(upload(client, big_cohort_csv(900_000)))


@pytest.mark.parametrize("token", [None, "forged"])
def test_an_oversized_upload_without_the_token_is_a_csrf_refusal(portal_client, engine,
                                                                 monkeypatch, token):
    monkeypatch.setenv(store.MAX_UPLOAD_ENV, "1")
    response = upload(portal_client("provider.pathways"), big_cohort_csv(2_000_000), token=token)
    assert response.status_code == 403 and "The form has expired" in response.text
    assert audit_rows(engine, action="portal upload") == []
    denied = audit_rows(engine, outcome="denied", path="/portal/upload")
    assert denied[-1]["detail"] == f"CSRF token {'missing' if token is None else 'wrong'}"


def test_an_oversized_upload_by_another_role_is_refused_as_the_route_would(client_for, engine,
                                                                           monkeypatch):
    monkeypatch.setenv(store.MAX_UPLOAD_ENV, "1")
    officer = client_for("officer.a")
    token = csrf_token(officer, "/")
    response = officer.post("/portal/upload", data={"csrf_token": token},
                            files={"cohort": ("c.csv", big_cohort_csv(2_000_000))})
    assert response.status_code == 403
    assert audit_rows(engine, action="portal upload") == []
    assert audit_rows(engine, outcome="denied", user_name="officer.a")[-1]["action"] == (
        "page /portal/upload")


def test_other_forms_keep_the_small_body_limit(portal_client):
    client = portal_client("provider.pathways")
    response = client.post("/sign-out", data={"csrf_token": csrf_token(client, "/portal"),
                                              "padding": "x" * 1_000_000})
    assert response.status_code == 413 and response.text == "Request too large"


@pytest.mark.parametrize("value", ["0", "-1", "101", "ten"])
def test_the_upload_limit_setting_is_checked(monkeypatch, value):
    monkeypatch.setenv(store.MAX_UPLOAD_ENV, value)
    with pytest.raises(ConfigError, match=store.MAX_UPLOAD_ENV):
        store.max_upload_bytes()


def test_the_upload_limit_is_a_setting(monkeypatch):
    monkeypatch.delenv(store.MAX_UPLOAD_ENV, raising=False)
    assert store.max_upload_bytes() == 10_000_000
    monkeypatch.setenv(store.MAX_UPLOAD_ENV, "2.5")
    assert store.max_upload_bytes() == 2_500_000


def test_a_browser_sending_an_oversized_file_in_pieces_gets_the_page(portal_app, portal_client,
                                                                    engine, monkeypatch):
    """Over a real socket, the body arriving in pieces: the service reads the rest before it
    answers, so the sender gets the page rather than a reset connection."""
    import socket
    import threading

    import httpx
    import uvicorn

    monkeypatch.setenv(store.MAX_UPLOAD_ENV, "1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(portal_app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert sign_in(client, "provider.pathways").status_code == 303
            token = csrf_token(client, "/portal/upload")
            boundary = "justice-test-boundary"
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
                    f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"cohort\"; "
                    f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
            content = big_cohort_csv(3_000_000)
            body = head + content + f"\r\n--{boundary}--\r\n".encode()

            def pieces():
                for start in range(0, len(body), 65_536):
                    yield body[start:start + 65_536]

            response = client.post("/portal/upload", content=pieces(), headers={
                "content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413
        assert "The selected file must be smaller than 1 MB" in response.text
        assert submissions(engine) == []
        (refused,) = audit_rows(engine, action="portal upload")
        assert "big.csv" in refused["detail"] and "size not declared" in refused["detail"]
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.mark.parametrize("token", [None, "forged"])
def test_an_upload_without_the_forms_csrf_token_fails(portal_client, engine, token):
    response = upload(portal_client("provider.pathways"), GOOD_CSV, token=token)
    assert response.status_code == 403 and "The form has expired" in response.text
    assert submissions(engine) == []
    denied = audit_rows(engine, outcome="denied", path="/portal/upload")
    assert denied[-1]["detail"] == f"CSRF token {'missing' if token is None else 'wrong'}"


# ---------------------------------------------------------------- who sees which submission

def _routes_of(submission_id: str) -> list[str]:
    base = f"/portal/submissions/{submission_id}"
    return [base, f"{base}/status.json", f"{base}/files/report.html",
            f"{base}/files/report.json", f"{base}/files/identification.csv",
            f"{base}/files/outcomes.svg"]


def test_another_providers_submission_is_403_by_every_route(crypto, portal_app, portal_client,
                                                            engine):
    pathways = portal_client("provider.pathways")
    submission_id = submission_id_of(upload(pathways, GOOD_CSV))
    # A report folder as an evaluation writes it, so every file route has something to refuse.
    folder = store.report_dir(portal_app.state.settings, submission_id)
    folder.mkdir(parents=True)
    for name in ("report.html", "report.json", "identification.csv", "outcomes.svg"):
        (folder / name).write_text("secret figures")
    with engine.begin() as conn:
        conn.execute(store.portal_submissions.update().values(status="done"))
    clearwater = portal_client("provider.clearwater")
    unknown_id = store.new_submission_id()
    for url, unknown in zip(_routes_of(submission_id), _routes_of(unknown_id), strict=True):
        before = len(audit_rows(engine, user_name="provider.clearwater", outcome="denied"))
        response = clearwater.get(url)
        assert response.status_code == 403, url
        assert "secret figures" not in response.text
        # The same page as for an id that does not exist: an id cannot be probed.
        assert response.text == clearwater.get(unknown).text, url
        rows = audit_rows(engine, user_name="provider.clearwater", outcome="denied")
        assert len(rows) == before + 2, url
        assert rows[before]["detail"] == f"submission {submission_id}: another organisation's submission"
        assert rows[before]["path"] == url
    listing = clearwater.get("/portal").text
    assert submission_id not in listing and "Nothing has been sent yet" in listing
    # Its own provider and any analyst see it all.
    for client in (pathways, portal_client("analyst")):
        for url in _routes_of(submission_id):
            assert client.get(url).status_code == 200, url
        assert submission_id in client.get("/portal").text


def test_ids_that_are_not_ids_are_refused_alike(portal_client, engine):
    client = portal_client("provider.pathways")
    for odd in ("1", "a" * 200, "x'; DROP TABLE users; --", "%2e%2e%2fx"):
        response = client.get(f"/portal/submissions/{odd}")
        # 404 where the router finds no route (a slash once decoded), else the 403 of any id.
        assert response.status_code in (403, 404), odd
        if response.status_code == 403:
            denied = audit_rows(engine, user_name="provider.pathways", outcome="denied")[-1]
            assert denied["detail"].endswith("no such submission"), odd


def test_an_analyst_sees_every_organisations_submissions(crypto, portal_client, engine):
    first = submission_id_of(upload(portal_client("provider.pathways"), GOOD_CSV,
                                    programme="Programme one"))
    second = submission_id_of(upload(portal_client("provider.clearwater"), GOOD_CSV,
                                     programme="Programme two"))
    analyst = portal_client("analyst")
    listing = analyst.get("/portal").text
    assert first in listing and second in listing
    assert PATHWAYS in listing and CLEARWATER in listing
    pathways_listing = portal_client("provider.pathways").get("/portal").text
    assert first in pathways_listing and second not in pathways_listing
    assert analyst.get(f"/portal/submissions/{second}").status_code == 200
    viewed = audit_rows(engine, user_name="analyst", action="portal view submission")
    assert viewed[-1]["outcome"] == "allowed" and second in viewed[-1]["detail"]


# ---------------------------------------------------------------- the background evaluation

def test_an_evaluation_that_cannot_run_ends_failed(crypto, portal_app, portal_client, engine):
    # The app's home has no warehouse: the evaluation starts and fails.
    portal_app.state.portal_runner = None  # the real runner
    client = portal_client("provider.pathways")
    submission_id = submission_id_of(upload(client, GOOD_CSV))
    row = wait_for(engine, submission_id, timeout=60)
    assert row["status"] == "failed" and row["finished_at"] is not None
    page = client.get(f"/portal/submissions/{submission_id}").text
    assert "The evaluation could not be done" in page
    assert "Upload a corrected file" in page
    assert "Technical reason" not in page  # shown to analysts only
    analyst_page = portal_client("analyst").get(f"/portal/submissions/{submission_id}").text
    assert "Technical reason (shown to analysts only)" in analyst_page
    assert client.get(f"/portal/submissions/{submission_id}/status.json").json() == {
        "status": "failed", "stage": None, "finished": True}
    assert client.get(f"/portal/submissions/{submission_id}/files/report.html").status_code == 404


def test_a_queued_submission_shows_progress_without_javascript(crypto, portal_app, portal_client,
                                                                engine):
    client = portal_client("provider.pathways")
    submission_id = submission_id_of(upload(client, GOOD_CSV))
    page = client.get(f"/portal/submissions/{submission_id}").text
    assert "Waiting to start" in page and "Check progress" in page
    assert f'href="/portal/submissions/{submission_id}"' in page
    assert '<script type="module" src="/assets/app/portal.mjs"></script>' in page
    assert client.get("/assets/app/portal.mjs").status_code == 200
    # The poll is guarded but not logged when allowed (it runs every few seconds).
    before = len(audit_rows(engine))
    assert client.get(f"/portal/submissions/{submission_id}/status.json").json()["status"] == "queued"
    assert len(audit_rows(engine)) == before


def test_an_interrupted_evaluation_is_marked_failed(crypto, portal_app, portal_client, engine):
    submission_id = submission_id_of(upload(portal_client("provider.pathways"), GOOD_CSV))
    assert store.claim_next(engine) == submission_id
    assert store.claim_next(engine) is None  # claimed once only
    assert store.fail_interrupted(engine) == []
    later = store.utcnow() + store.STALE_RUNNING + dt.timedelta(minutes=1)
    assert store.fail_interrupted(engine, now=later) == [submission_id]
    assert submissions(engine)[0]["status"] == "failed"


@pytest.fixture
def built_portal(built_home, tmp_path, monkeypatch):
    """An app over a copy of the built 3,000-person world, with the two provider accounts."""
    from argon2 import PasswordHasher
    from homes import copy_home

    from justice.web.app import create_app

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    settings = copy_home(built_home, tmp_path / "home")
    app = create_app(settings, sync=False)
    engine = app.state.engine
    auth.add_user(engine, "provider.pathways", "provider", [], PASSWORD, provider=PATHWAYS)
    auth.add_user(engine, "provider.clearwater", "provider", [], PASSWORD, provider=CLEARWATER)
    auth.add_user(engine, "analyst", "analyst", [], PASSWORD)
    yield app
    app.state.portal_runner.stop()


def combined_cohort(linked_home, out) -> int:
    """Every provider's participant list of the world in one CSV (the lists of a 3,000-person
    world are each below the 60 people an evaluation needs), rows with problems left out."""
    from justice.evaluate.cohort import read_cohort, write_csv

    rows = []
    for path in sorted((linked_home.home / "legacy" / "interventions").glob("*.xlsx")):
        rows += read_cohort(path, on_row_problem="exclude").rows
    return write_csv(rows, out)


@pytest.mark.slow
def test_an_evaluation_runs_in_the_background_to_its_report(crypto, built_portal, linked_home,
                                                            tmp_path):
    engine = built_portal.state.engine
    cohort = tmp_path / "all-programmes.csv"
    combined_cohort(linked_home, cohort)
    client = TestClient(built_portal, base_url="http://127.0.0.1")
    assert sign_in(client, "provider.pathways").status_code == 303
    submission_id = submission_id_of(upload(client, cohort.read_bytes(), cohort.name,
                                            programme="All programmes"))
    row = wait_for(engine, submission_id)
    assert row["status"] == "done", row["error_detail"]
    page = client.get(f"/portal/submissions/{submission_id}").text
    assert "Results in brief" in page and "For every 100 typical people" in page
    assert "Read the full report" in page
    for name in ("report.json", "balance.csv", "identification.csv", "outcomes.svg",
                 "love_plot.svg", "propensity_overlap.svg"):
        assert f"/files/{name}" in page, name
        response = client.get(f"/portal/submissions/{submission_id}/files/{name}")
        assert response.status_code == 200 and response.content, name
    report = client.get(f"/portal/submissions/{submission_id}/files/report.html")
    assert report.headers["content-type"].startswith("text/html")
    assert "<style" not in report.text and 'href="/portal/report.css"' in report.text
    assert "All programmes" in report.text
    assert client.get("/portal/report.css").headers["content-type"].startswith("text/css")
    # Aggregate figures and rows of the provider's own file; never whom they were found to be.
    identification = client.get(f"/portal/submissions/{submission_id}/files/identification.csv")
    assert identification.text.splitlines()[0] == "row,status,match_weight,runner_up_weight,analysis"
    assert identification.headers["content-disposition"].startswith("attachment")
    summary = client.get(f"/portal/submissions/{submission_id}/files/report.json").json()
    assert summary["programme"] == "All programmes" and summary["treated"] >= 60
    assert summary["provider"] == PATHWAYS  # the account's organisation; the file names none
    from homes import warehouse_rows

    person_ids = {r[0] for r in warehouse_rows(built_portal.state.settings,
                                               "SELECT person_id FROM linkage.person_links")}
    folder = store.report_dir(built_portal.state.settings, submission_id)
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "person_id" not in text, path.name
        assert not any(pid in text for pid in person_ids if len(str(pid)) > 6), path.name
    actions = [(r["action"], r["outcome"]) for r in audit_rows(engine, user_name="provider.pathways")
               if r["action"].startswith("portal")]
    assert ("portal upload", "allowed") in actions
    assert ("portal view submission", "allowed") in actions
    assert ("portal view report", "allowed") in actions
    assert ("portal download", "allowed") in actions
    downloads = audit_rows(engine, action="portal download")
    assert any(r["detail"].endswith(": report.json") and submission_id in r["detail"]
               for r in downloads)


# ---------------------------------------------------------------- retention

def _kept(settings, engine, *, days_ago: float, organisation=PATHWAYS) -> str:
    now = store.utcnow() - dt.timedelta(days=days_ago)
    submission_id = store.create_submission(settings, engine, store.NewSubmission(
        organisation=organisation, uploaded_by="provider.pathways", file_name="c.csv",
        file_kind="csv", data=GOOD_CSV.encode(), programme="P", participants=3, rows_left_out=0,
        exclude_bad_rows=False), now=now)
    with engine.begin() as conn:
        conn.execute(store.portal_submissions.update()
                     .where(store.portal_submissions.c.id == submission_id)
                     .values(status="done", finished_at=now))
    folder = store.report_dir(settings, submission_id)
    folder.mkdir(parents=True)
    (folder / "report.json").write_text("{}")
    return submission_id


def test_files_past_the_retention_period_are_purged(crypto, portal_app, portal_client, engine):
    settings = portal_app.state.settings
    assert settings.portal_retention_days == 30
    old = _kept(settings, engine, days_ago=31)
    recent = _kept(settings, engine, days_ago=29)
    now = store.utcnow()
    assert store.purge_expired(settings, engine, now=now) == [old]
    assert not store.upload_path(settings, old).exists()
    assert not store.report_dir(settings, old).exists()
    assert store.upload_path(settings, recent).exists() and store.report_dir(settings, recent).exists()
    # The clock moves on two days: the other goes too; the rows stay, marked.
    assert store.purge_expired(settings, engine, now=now + dt.timedelta(days=2)) == [recent]
    assert all(r["purged_at"] is not None for r in submissions(engine))
    client = portal_client("provider.pathways")
    page = client.get(f"/portal/submissions/{old}").text
    assert "were deleted on" in page and "Deleted" in page
    assert client.get(f"/portal/submissions/{old}/files/report.json").status_code == 404


def test_the_retention_period_is_a_setting(tmp_path, monkeypatch):
    from justice.errors import ConfigError
    from justice.settings import Settings

    monkeypatch.setenv("JUSTICE_PORTAL_RETENTION_DAYS", "7")
    assert Settings.from_env(home=tmp_path).portal_retention_days == 7
    monkeypatch.setenv("JUSTICE_PORTAL_RETENTION_DAYS", "a week")
    with pytest.raises(ConfigError, match="JUSTICE_PORTAL_RETENTION_DAYS"):
        Settings.from_env(home=tmp_path)
    with pytest.raises(ConfigError, match="at least 1 day"):
        Settings(home=tmp_path, portal_retention_days=0)


def test_the_service_purges_at_start_up(crypto, web_settings, tmp_path):
    from justice.web.app import create_app

    app = create_app(web_settings, sync=False)
    engine = app.state.engine
    old = _kept(web_settings, engine, days_ago=45)
    orphan = web_settings.home / "portal" / "uploads" / f"{store.new_submission_id()}.cohort"
    orphan.write_bytes(b"left by a crash")
    hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (hours_ago, hours_ago))
    with TestClient(app, base_url="http://127.0.0.1"):
        deadline = time.monotonic() + 30
        while store.upload_path(web_settings, old).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not store.upload_path(web_settings, old).exists()
    assert not orphan.exists()
    assert submissions(engine)[0]["purged_at"] is not None


def test_a_key_file_others_may_read_is_refused(crypto, web_settings):
    from justice.errors import ConfigError

    key = store.load_key(web_settings)
    assert store.load_key(web_settings) == key  # made once, then read
    web_settings.portal_key_path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.load_key(web_settings)


def test_the_demo_has_a_provider_account_for_its_largest_list(tmp_path):
    from justice.settings import Settings

    settings = Settings(home=tmp_path)
    assert auth.demo_provider(settings) is None  # no lists: no portal accounts
    folder = tmp_path / "legacy" / "interventions"
    folder.mkdir(parents=True)
    header = ["First name", "Surname", "Date of birth", "Programme start date"]
    small = [["Participant list – A"], ["Provider: Small Org"], header,
             ["Ann", "Ash", dt.date(1980, 1, 1), dt.date(2020, 1, 1)]]
    large = [["Participant list – B"], ["Provider: Pathways Partnership"], header,
             *[["Ben", f"Birch{i}", dt.date(1980, 1, 1 + i), dt.date(2020, 1, 1)] for i in range(20)]]
    (folder / "small.xlsx").write_bytes(xlsx_bytes(small))
    (folder / "large.xlsx").write_bytes(xlsx_bytes(large))
    assert auth.demo_provider(settings) == ("provider.pathways-partnership", PATHWAYS)


def _queue(engine, count: int) -> list[str]:
    now = store.utcnow()
    ids = [store.new_submission_id() for _ in range(count)]
    with engine.begin() as conn:
        conn.execute(store.portal_submissions.insert(), [
            {"id": sid, "organisation": PATHWAYS, "uploaded_by": "provider.pathways",
             "uploaded_at": now + dt.timedelta(seconds=i), "file_name": "c.csv",
             "file_kind": "csv", "file_bytes": 1, "programme": "P", "participants": 1,
             "rows_left_out": 0, "exclude_bad_rows": False, "status": "queued",
             "updated_at": now} for i, sid in enumerate(ids)])
    return ids


def _claim_from_threads(engine, threads: int = 4) -> list[str]:
    import threading

    claimed: list[str] = []

    def claim():
        while (submission_id := store.claim_next(engine)) is not None:
            claimed.append(submission_id)

    workers = [threading.Thread(target=claim) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return claimed


def test_runners_never_claim_the_same_submission(engine):
    ids = _queue(engine, 12)
    claimed = _claim_from_threads(engine)
    assert sorted(claimed) == sorted(ids)  # each once, none twice


@pytest.mark.postgres
def test_runners_on_one_postgresql_store_never_claim_the_same_submission(postgres_url, tmp_path):
    from justice.serving.store import open_store
    from justice.settings import Settings

    engine = open_store(Settings(home=tmp_path, serving_db=postgres_url))
    with engine.begin() as conn:
        conn.execute(store.portal_submissions.delete())
    ids = _queue(engine, 20)
    claimed = _claim_from_threads(engine)
    assert sorted(claimed) == sorted(ids)
    engine.dispose()


def test_the_runner_purges_periodically(crypto, web_settings):
    from justice.serving.store import open_store
    from justice.web.portal_jobs import PortalRunner

    engine = open_store(web_settings)
    runner = PortalRunner(web_settings, engine, poll_seconds=0.05, purge_seconds=0.2).start()
    try:
        time.sleep(0.3)  # past the start-up purge
        old = _kept(web_settings, engine, days_ago=40)
        deadline = time.monotonic() + 30
        while store.upload_path(web_settings, old).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not store.upload_path(web_settings, old).exists()
        assert submissions(engine)[0]["purged_at"] is not None
    finally:
        runner.stop()
    assert not runner.running
