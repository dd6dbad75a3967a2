"""The audit log: who looked at whom, which checks were decided, and every refusal.

Append-only by construction: the service has no route that edits it, and the database itself
refuses UPDATE and DELETE on ``audit_log`` (and TRUNCATE on PostgreSQL) by trigger, so a bug or a
careless script cannot rewrite history through the store's own connection either. The triggers
are created with the table and again, idempotently, whenever the app starts (``ensure_append_only``),
so a store made before they existed gains them.

Outcomes: ``allowed`` (a view of a person or page), ``denied`` (out of scope, wrong role, bad
CSRF token), ``decision`` (a cell-move decision), ``sign_in``, ``sign_in_failed``, ``sign_out``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from justice.web.store import metadata

if TYPE_CHECKING:
    from starlette.requests import Request

    from justice.web.auth import User

OUTCOMES = ("allowed", "denied", "decision", "sign_in", "sign_in_failed", "sign_out")

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_name", sa.String(100)),
    sa.Column("role", sa.String(20)),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("prison_id", sa.String(12)),
    sa.Column("prison_number", sa.String(20), index=True),
    sa.Column("person_id", sa.String(64), index=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(100)),
    sa.Column("ip", sa.String(64)),
    sa.Column("path", sa.String(500)),
    sa.Column("detail", sa.Text),
)

_SQLITE_TRIGGERS = (
    ("CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
     "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"),
    ("CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
     "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"),
)
_POSTGRES_TRIGGERS = (
    ("CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
     "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"),
    "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
    ("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
     "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"),
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    ("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
     "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"),
)


def _create_triggers(conn: sa.Connection) -> None:
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(conn.dialect.name)
    if statements is None:
        raise NotImplementedError(f"audit_log triggers for {conn.dialect.name}")
    for statement in statements:
        conn.exec_driver_sql(statement)


sa.event.listen(audit_log, "after_create", lambda _t, conn, **_kw: _create_triggers(conn))


def ensure_append_only(engine: sa.Engine) -> None:
    """Create the triggers that refuse UPDATE and DELETE on audit_log, if they are missing."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One start at a time: CREATE OR REPLACE FUNCTION races between workers starting together.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('justice.audit_log.triggers'))")
        _create_triggers(conn)


def client_ip(request: Request | None) -> str | None:
    """The peer address of the request (the proxy's, behind one: the service trusts no header)."""
    if request is None or request.client is None:
        return None
    return request.client.host


def request_id(request: Request | None) -> str | None:
    """The request id the middleware gave this request (echoed as X-Request-ID)."""
    if request is None:
        return None
    return request.scope.get("state", {}).get("request_id")


def record(conn: sa.Connection, request: Request | None, user: User | None, action: str, *,
           person_id: str | None = None, prison_number: str | None = None,
           prison_id: str | None = None, outcome: str, detail: str | None = None,
           user_name: str | None = None) -> None:
    """Append one row to the audit log on `conn` (it commits with the caller's transaction).

    `user_name` names who tried when there is no signed-in user (a failed sign-in)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r}: choose one of {', '.join(OUTCOMES)}")
    path = None
    if request is not None:
        path = request.url.path
        if request.url.query:
            path = f"{path}?{request.url.query}"
    conn.execute(audit_log.insert().values(
        at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        user_name=user.name if user is not None else user_name,
        role=user.role if user is not None else None,
        action=action, prison_id=prison_id, prison_number=prison_number, person_id=person_id,
        outcome=outcome, request_id=request_id(request), ip=client_ip(request),
        path=path[:500] if path else None, detail=detail))


def record_now(engine: sa.Engine, request: Request | None, user: User | None, action: str,
               **fields) -> None:
    """Append one audit row in its own transaction, committed at once (for refusals, whose
    request then fails and would roll back a shared transaction)."""
    with engine.begin() as conn:
        record(conn, request, user, action, **fields)
