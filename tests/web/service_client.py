"""Helpers for the safety service's tests: the seeded world, accounts, forms with CSRF tokens.

Import them in tests under tests/web (``from service_client import post_form, IN_A``); the
fixtures that use them are in ``tests/web/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
PRISON_A, PRISON_B = "PRA", "PRB"
IN_A, AT_COURT_A, RELEASED_A, IN_B = "A1111AA", "A2222AA", "A3333AA", "B1111BB"
ACCOUNTS = {
    "officer.a": ("officer", [PRISON_A]),
    "officer.b": ("officer", [PRISON_B]),
    "lead.a": ("safety-lead", [PRISON_A]),
    "analyst": ("analyst", []),
    "admin": ("admin", []),
}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed_prisons(engine: sa.Engine) -> None:
    """Write the small world drawn in tests/web/conftest.py's docstring into the mirror tables."""
    from justice.serving.store import metadata

    now = dt.datetime(2026, 3, 27, 9, 0)
    t = metadata.tables
    stamps = {"create_datetime": now, "modify_datetime": now}
    with engine.begin() as conn:
        conn.execute(t["nomis_agency_locations"].insert(), [
            {"agy_loc_id": PRISON_A, "description": "HMP Alpha", "agency_location_type": "INST",
             "active_flag": "Y", **stamps},
            {"agy_loc_id": PRISON_B, "description": "HMP Bravo", "agency_location_type": "INST",
             "active_flag": "Y", **stamps},
            {"agy_loc_id": "CRT1", "description": "A Crown Court", "agency_location_type": "CRT",
             "active_flag": "Y", **stamps},
        ])
        offenders = [(1, IN_A, None), (2, AT_COURT_A, None), (3, RELEASED_A, None), (4, IN_B, None),
                     (5, IN_A, 1)]  # 5: an alias of 1 under the same prison number
        conn.execute(t["nomis_offenders"].insert(), [
            {"offender_id": oid, "offender_id_display": number, "last_name": f"SURNAME{oid}",
             "first_name": f"FORENAME{oid}", "birth_date": dt.date(1990, 1, oid), "sex_code": "M",
             "alias_offender_id": alias, **stamps} for oid, number, alias in offenders])
        bookings = [(11, 1, "Y", PRISON_A, "IN"), (12, 2, "Y", PRISON_A, "OUT"),
                    (13, 3, "N", PRISON_A, "OUT"), (14, 4, "Y", PRISON_B, "IN")]
        conn.execute(t["nomis_offender_bookings"].insert(), [
            {"offender_book_id": bid, "offender_id": oid, "booking_no": f"B{bid}",
             "booking_begin_date": dt.date(2025, 1, 1), "booking_status": "O" if active == "Y" else "C",
             "active_flag": active, "agy_loc_id": prison, "in_out_status": status, **stamps}
            for bid, oid, active, prison, status in bookings])
        if "person_resolution" in t:
            conn.execute(t["person_resolution"].insert(), [
                {"offender_id": 1, "person_id": "person-a", "method": "index", "confidence": 1.0,
                 "resolved_at": now},
                {"offender_id": 4, "person_id": "person-b", "method": "index", "confidence": 1.0,
                 "resolved_at": now}])


def csrf_token(client: TestClient, path: str = "/sign-in") -> str:
    """The CSRF token in the forms of the page at `path` (as the browser would have it)."""
    response = client.get(path)
    match = _TOKEN.search(response.text)
    assert match, f"no csrf_token on {path} ({response.status_code})"
    return match.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD, next_path: str | None = None):
    """Sign in through the form, as a browser would; the response is not followed."""
    data = {"name": name, "password": password, "csrf_token": csrf_token(client)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/sign-in", data=data, follow_redirects=False)


def post_form(client: TestClient, url: str, data: dict | None = None, *, token_from: str = "/",
              **kwargs):
    """POST `data` to `url` with the CSRF token of the page `token_from` added."""
    token = csrf_token(client, token_from)
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def audit_rows(engine: sa.Engine, **where) -> list[dict]:
    """Audit rows, oldest first, whose columns equal `where`."""
    from justice.web.audit import audit_log

    query = sa.select(audit_log).order_by(audit_log.c.id)
    for column, value in where.items():
        query = query.where(audit_log.c[column] == value)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
