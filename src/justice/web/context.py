"""Per-request plumbing shared by every page module: the store connection and rendering.

Example (a route in a page module)::

    @router.get("/prisons/{prison_id}/roll")
    def roll(request: Request, user: User = Depends(current_user),
             conn: sa.Connection = Depends(store_connection)):
        return render(request, "safety/roll.html", {"rows": ...})

`render` adds `user`, `csrf_token` and `data_as_at` to the template's context.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends
from fastapi.routing import APIRoute
from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
SERVICE_NAME = "Prison safety"


def _environment() -> Environment:
    # govuk-frontend-jinja's macros import each other as "govuk_frontend_jinja/components/...",
    # so its templates folder is mounted under that prefix.
    env = Environment(
        loader=ChoiceLoader([
            FileSystemLoader(TEMPLATES_DIR),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja", "templates")}),
        ]),
        autoescape=True,
        undefined=ChainableUndefined,  # the macros read params.x.y where x may be absent
        trim_blocks=True, lstrip_blocks=True,
        # Templates ship with the package and do not change while it runs: checking every file's
        # mtime on each render costs time and gives up the GIL (docs/explorer.md).
        auto_reload=False,
    )
    env.globals["service_name"] = SERVICE_NAME
    env.filters["data_as_at_text"] = data_as_at_text
    env.filters["when"] = when
    return env


def when(value: dt.datetime | dt.date | None) -> str:
    """A date or time as GOV.UK writes it: 27 March 2026 or 27 March 2026 at 2:05pm."""
    if value is None:
        return ""
    if not isinstance(value, dt.datetime):
        return f"{value.day} {value:%B %Y}"
    hour = value.hour % 12 or 12
    return f"{value.day} {value:%B %Y} at {hour}:{value:%M}{'am' if value.hour < 12 else 'pm'}"


def data_as_at_text(value: tuple | None, now: dt.datetime | None = None) -> str:
    """The "Data as at ..., synced ... ago" line from `justice.serving.mirror.data_as_at`'s
    (as_at, synced_at)."""
    as_at, synced_at = value if value else (None, None)
    if as_at is None:
        return "No prison data has been synced yet."
    text = f"Data as at {when(as_at)}"
    if synced_at is not None:
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        seconds = max(0, int((now - synced_at).total_seconds()))
        if seconds < 120:
            ago = f"{seconds} second{'s' if seconds != 1 else ''}"
        elif seconds < 2 * 3600:
            ago = f"{seconds // 60} minutes"
        else:
            ago = f"{seconds // 3600} hours"
        text += f", synced {ago} ago"
    return text + "."


templates = _environment()


def service_routes(app) -> list[APIRoute]:
    """Every route of the app's pages, through included routers (FastAPI includes them lazily,
    so ``app.routes`` alone does not list them)."""
    def walk(routes):
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            elif isinstance(getattr(route, "routes", None), list) and not isinstance(route, Mount):
                yield from walk(route.routes)
    return list(walk(app.routes))


def page_paths(app) -> frozenset[str]:
    """The path templates of the app's pages (computed once, after every router is included)."""
    paths = getattr(app.state, "page_paths", None)
    if paths is None:
        paths = app.state.page_paths = frozenset(r.path for r in service_routes(app))
    return paths


def store_engine(request: Request) -> sa.Engine:
    """The serving store's engine of the app handling `request`."""
    return request.app.state.engine


_REQUEST_CONNECTION = "store_connection"


def store_connection(request: Request) -> Iterator[sa.Connection]:
    """Dependency: the request's store connection, committed when the route returns and rolled
    back when it raises.

    A request holds at most one pooled connection at a time: everything else that needs the
    store during the request (the session lookup, scoping and its audit rows, "data as at")
    uses this one through `committed`. Two per request would deadlock under load: with every
    pooled connection held by a request waiting for its second, none is ever returned."""
    state = request.scope.setdefault("state", {})
    with store_engine(request).connect() as conn:
        state[_REQUEST_CONNECTION] = conn
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            state.pop(_REQUEST_CONNECTION, None)


@contextlib.contextmanager
def committed(request: Request) -> Iterator[sa.Connection]:
    """A connection whose work is committed when the block ends, even if the request then fails
    (audit rows of refusals): the request's own connection if it has one (committing what the
    request has done so far), else one from the pool for the block alone."""
    conn = request.scope.get("state", {}).get(_REQUEST_CONNECTION)
    if conn is None:
        with store_engine(request).begin() as own:
            yield own
        return
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


# scope="function": committed when the route returns, before the response is sent (the default
# would commit after sending, so a browser following a redirect could read the page before the
# write it redirected from, and SQLite's write lock would be held while the page is sent).
StoreConnection = Annotated[sa.Connection, Depends(store_connection, scope="function")]
"""A route parameter typed so gets the request's store connection (see `store_connection`)."""


def data_as_at(request: Request) -> tuple | None:
    """`justice.serving.mirror.data_as_at`'s (as_at, synced_at) for the page, on the request's
    connection when it has one; None when the store cannot tell."""
    from justice.serving.mirror import data_as_at as read_data_as_at

    try:
        conn = request.scope.get("state", {}).get(_REQUEST_CONNECTION)
        if conn is not None:
            return read_data_as_at(conn)
        with store_engine(request).connect() as conn:
            return read_data_as_at(conn)
    except sa.exc.SQLAlchemyError:
        # A page must still render when the sync state cannot be read; the line then says so.
        log.exception("data as at: cannot read the sync state")
        return None


# One app, several services: the header names the one a page belongs to.
SECTION_SERVICE_NAMES = (("/explore", "Justice statistics"), ("/api", "Justice statistics"),
                         ("/portal", "Intervention evaluations"))


def service_name_for(path: str) -> str:
    """The service a page at `path` belongs to, as its header and title name it."""
    for prefix, name in SECTION_SERVICE_NAMES:
        if path == prefix or path.startswith(prefix + "/"):
            return name
    return SERVICE_NAME


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page `template` rendered with `context` plus `user`, `csrf_token`, `data_as_at`,
    `request` and `nav` (the service navigation for the signed-in user)."""
    from justice.web import csrf
    from justice.web.auth import navigation

    user = request.scope.get("state", {}).get("user")
    token, cookie = csrf.token_for(request)
    service = service_name_for(request.url.path)
    values = {"request": request, "user": user, "csrf_token": token,
              "service_name": service,
              # Only the prison pages show the prison database's "data as at" line.
              "show_data_as_at": user is not None and service == SERVICE_NAME,
              "nav": navigation(request, user)}
    if values["show_data_as_at"]:
        values["data_as_at"] = data_as_at(request)
    values.update(context or {})
    html = templates.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    if cookie is not None:
        csrf.set_presession_cookie(request, response, cookie)
    return response
