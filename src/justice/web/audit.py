"""The audit log: who looked at whom, which checks were decided, and every refusal.

Append-only by construction: the service has no route that edits it, and the database itself
refuses UPDATE and DELETE on ``audit_log`` (and TRUNCATE on PostgreSQL) by trigger, so a bug or a
careless script cannot rewrite history through the store's own connection either. The triggers
are created with the table and again, idempotently, whenever the app starts (``ensure_append_only``),
so a store made before they existed gains them.

Tampering outside the service (someone who drops the triggers, or edits the database file) is
made visible by a hash chain: each row's ``row_hash`` is the SHA-256 of the previous row's hash
and the row's own fields, and ``audit_head`` keeps the number of rows and the last hash.
`verify_chain` recomputes it: an edited or deleted row breaks the chain at that row, a cut-off
tail disagrees with the head. Writers take the head row's lock first, so rows are chained one at
a time on SQLite and PostgreSQL alike, in any number of processes.

Outcomes: ``allowed`` (a view of a person or page), ``denied`` (out of scope, wrong role, bad
CSRF token), ``decision`` (a cell-move decision), ``sign_in``, ``sign_in_failed``, ``sign_out``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from justice.serving.store import metadata

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
    sa.Column("row_hash", sa.String(64)),
)
audit_head = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    # Rows before this id were written before the store had the chain (an older version).
    sa.Column("chained_from", sa.BigInteger, nullable=False, default=0),
)
GENESIS = "0" * 64
CHAINED_FIELDS = ("at", "user_name", "role", "action", "prison_id", "prison_number", "person_id",
                  "outcome", "request_id", "ip", "path", "detail")

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
sa.event.listen(audit_head, "after_create", lambda _t, conn, **_kw: conn.execute(
    audit_head.insert().values(id=1, rows=0, last_hash=GENESIS, chained_from=0)))


def _add_chain_to_older_store(conn: sa.Connection) -> None:
    # A store made before the chain has audit rows without row_hash: they stay as they are, and
    # the chain starts after them.
    inspector = sa.inspect(conn)
    if "chained_from" not in {c["name"] for c in inspector.get_columns("audit_head")}:
        conn.exec_driver_sql("ALTER TABLE audit_head ADD COLUMN chained_from BIGINT NOT NULL DEFAULT 0")
    if "row_hash" in {c["name"] for c in inspector.get_columns("audit_log")}:
        return
    conn.exec_driver_sql("ALTER TABLE audit_log ADD COLUMN row_hash VARCHAR(64)")
    last = conn.execute(sa.select(sa.func.max(audit_log.c.id))).scalar() or 0
    conn.execute(audit_head.update().where(audit_head.c.id == 1)
                 .values(rows=0, last_hash=GENESIS, chained_from=last + 1))


def ensure_append_only(engine: sa.Engine) -> None:
    """Create the triggers that refuse UPDATE and DELETE on audit_log, and the chain's head row,
    if they are missing."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One start at a time: CREATE OR REPLACE FUNCTION races between workers starting together.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('justice.audit_log.triggers'))")
        _create_triggers(conn)
        if conn.execute(sa.select(audit_head.c.id).where(audit_head.c.id == 1)).first() is None:
            conn.execute(audit_head.insert().values(id=1, rows=0, last_hash=GENESIS,
                                                    chained_from=0))
        _add_chain_to_older_store(conn)


def chain_hash(previous: str, row: dict) -> str:
    """The hash of an audit row chained to the previous row's hash."""
    fields = [row[name].isoformat() if name == "at" else row[name] for name in CHAINED_FIELDS]
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


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
    row = {"at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
           "user_name": user.name if user is not None else user_name,
           "role": user.role if user is not None else None,
           "action": action, "prison_id": prison_id, "prison_number": prison_number,
           "person_id": person_id, "outcome": outcome, "request_id": request_id(request),
           "ip": client_ip(request), "path": path[:500] if path else None, "detail": detail}
    # Taking the head's row lock first serialises writers (on SQLite it also starts the write
    # transaction), so the previous hash read next is the latest committed one.
    locked = conn.execute(audit_head.update().where(audit_head.c.id == 1)
                          .values(rows=audit_head.c.rows + 1))
    if locked.rowcount != 1:
        raise RuntimeError("audit_head has no row: the store was not opened by the web app "
                           "(justice.web.audit.ensure_append_only)")
    previous = conn.execute(sa.select(audit_head.c.last_hash).where(audit_head.c.id == 1)).scalar_one()
    row["row_hash"] = chain_hash(previous, row)
    conn.execute(audit_log.insert().values(**row))
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(last_hash=row["row_hash"]))


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found: rows checked, the first row that breaks the chain, whether the
    head (row count, last hash) agrees, and rows older than the chain (not checked)."""

    rows: int
    first_broken_id: int | None
    head_agrees: bool
    unchained_rows: int = 0

    @property
    def intact(self) -> bool:
        """True when no chained row was changed, removed or added outside the service."""
        return self.first_broken_id is None and self.head_agrees


def verify_chain(conn: sa.Connection, *, batch: int = 10_000) -> ChainReport:
    """Recompute the audit log's hash chain, oldest row first."""
    head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
    chained_from = head.chained_from if head is not None else 0
    unchained = conn.execute(sa.select(sa.func.count()).select_from(audit_log)
                             .where(audit_log.c.id < chained_from)).scalar()
    previous, rows, broken = GENESIS, 0, None
    query = (sa.select(audit_log.c.id, audit_log.c.row_hash,
                       *[audit_log.c[name] for name in CHAINED_FIELDS])
             .where(audit_log.c.id >= chained_from).order_by(audit_log.c.id))
    for row in conn.execution_options(yield_per=batch).execute(query).mappings():
        rows += 1
        if broken is None:
            expected = chain_hash(previous, row)
            if row["row_hash"] != expected:
                broken = row["id"]
            previous = expected
    head_agrees = head is not None and head.rows == rows and (broken is not None or
                                                              head.last_hash == previous)
    return ChainReport(rows, broken, head_agrees, unchained)


def record_now(engine: sa.Engine, request: Request | None, user: User | None, action: str,
               **fields) -> None:
    """Append one audit row in its own transaction, committed at once (outside a request)."""
    with engine.begin() as conn:
        record(conn, request, user, action, **fields)


def record_committed(request: Request, user: User | None, action: str, **fields) -> None:
    """Append one audit row during a request and commit it at once, so it stays when the
    request then fails (a refusal): on the request's connection if it has one."""
    from justice.web.context import committed

    with committed(request) as conn:
        record(conn, request, user, action, **fields)
