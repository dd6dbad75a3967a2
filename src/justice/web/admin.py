"""Admin pages: the audit log (list, filter, CSV export) and the list of users; admins only.

Nothing here edits the audit log: the pages read it, and the store refuses changes anyway.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from justice.web import audit
from justice.web.audit import audit_log
from justice.web.auth import User, list_users, require_roles
from justice.web.context import StoreConnection, render, store_engine

router = APIRouter(prefix="/admin")
AdminUser = Annotated[User, Depends(require_roles("admin"))]

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
CSV_COLUMNS = ("id", "at", "user_name", "role", "action", "outcome", "prison_id", "prison_number",
               "person_id", "request_id", "ip", "path", "detail", "row_hash")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class AuditFilter:
    """The audit page's filters as typed, with the errors of those that are not valid."""

    user: str = ""
    action: str = ""
    outcome: str = ""
    prison_number: str = ""
    date_from: str = ""
    date_to: str = ""

    @classmethod
    def from_request(cls, request: Request) -> tuple[AuditFilter, dict[str, str]]:
        """The filter from the query string, and an error per field that is not valid."""
        q = request.query_params
        f = cls(**{name: q.get(name, "").strip()[:100] for name in
                   ("user", "action", "outcome", "prison_number", "date_from", "date_to")})
        errors = {}
        if f.outcome and f.outcome not in audit.OUTCOMES:
            errors["outcome"] = "Choose an outcome from the list"
        for name, label in (("date_from", "From"), ("date_to", "To")):
            value = getattr(f, name)
            if value and _parse_date(value) is None:
                errors[name] = f"{label} date must be a real date, like 2026-03-27"
        return f, errors

    def where(self) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions of this filter (fields with errors are ignored)."""
        conditions = []
        if self.user:
            conditions.append(audit_log.c.user_name == self.user)
        if self.action:
            conditions.append(audit_log.c.action.contains(self.action, autoescape=True))
        if self.outcome in audit.OUTCOMES:
            conditions.append(audit_log.c.outcome == self.outcome)
        if self.prison_number:
            conditions.append(audit_log.c.prison_number == self.prison_number.upper())
        start, end = _parse_date(self.date_from), _parse_date(self.date_to)
        if start is not None:
            conditions.append(audit_log.c.at >= dt.datetime.combine(start, dt.time()))
        if end is not None:
            conditions.append(audit_log.c.at < dt.datetime.combine(end + dt.timedelta(days=1),
                                                                   dt.time()))
        return conditions

    def query_string(self, **extra: object) -> str:
        """The filter (and `extra`) as a query string, for links that keep it."""
        values = {k: v for k, v in vars(self).items() if v}
        values.update({k: v for k, v in extra.items() if v})
        return urlencode(values)


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def csv_safe(value: object) -> str:
    """`value` as a CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@router.get("/audit")
def audit_page(request: Request, user: AdminUser, conn: StoreConnection, page: int = 1) -> Response:
    """The audit log, newest first, filtered and a page at a time."""
    filters, errors = AuditFilter.from_request(request)
    conditions = filters.where()
    total = conn.execute(sa.select(sa.func.count()).select_from(audit_log)
                         .where(*conditions)).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = conn.execute(sa.select(audit_log).where(*conditions).order_by(audit_log.c.id.desc())
                        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).mappings().all()
    # Committed now, not when the page is sent: on SQLite a write held through rendering
    # queues every other request's audit row behind it.
    audit.record_committed(request, user, "audit log viewed", outcome="allowed",
                           detail=filters.query_string() or None)
    return render(request, "admin/audit.html", {
        "filters": filters, "errors": errors, "rows": rows, "total": total, "page": page,
        "pages": pages, "outcomes": audit.OUTCOMES, "page_size": PAGE_SIZE,
        "page_href": lambda n: f"/admin/audit?{filters.query_string(page=n)}",
        "csv_href": f"/admin/audit.csv?{filters.query_string()}"})


@router.get("/audit.csv")
def audit_csv(request: Request, user: AdminUser) -> Response:
    """The filtered audit log as CSV (at most EXPORT_LIMIT rows, newest first)."""
    filters, _ = AuditFilter.from_request(request)
    engine = store_engine(request)
    with engine.begin() as conn:
        rows = conn.execute(sa.select(*[audit_log.c[c] for c in CSV_COLUMNS])
                            .where(*filters.where()).order_by(audit_log.c.id.desc())
                            .limit(EXPORT_LIMIT)).all()
        audit.record(conn, request, user, "audit log exported", outcome="allowed",
                     detail=f"{len(rows)} rows; {filters.query_string() or 'no filter'}")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([csv_safe(value) for value in row])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'})


@router.get("/users")
def users_page(request: Request, user: AdminUser) -> Response:
    """Every account, its role, prisons and state (read-only: `justice users` changes them)."""
    accounts = list_users(store_engine(request))
    return render(request, "admin/users.html", {"accounts": accounts})
