"""Cross-site request forgery: every unsafe request must carry the page's token.

A signed-in browser's token is its session's (synchronizer token, kept in ``sessions``). Before
sign-in there is no session, so the sign-in form uses a signed double-submit token: a random
nonce with its HMAC under the store's signing key, set as a cookie and repeated in the form; the
signature stops a token planted by a sibling site from being accepted. The token travels in the
form field ``csrf_token`` or the header ``X-CSRF-Token`` and is compared in constant time.

`CsrfMiddleware` checks every POST, PUT, PATCH and DELETE before any route runs, so a new form
is protected without remembering to be; a failure answers the 403 page and appends a ``denied``
audit row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from justice.web.store import metadata

log = logging.getLogger(__name__)

FIELD = "csrf_token"
HEADER = "x-csrf-token"
PRESESSION_COOKIE = "justice_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 1_000_000  # the service's forms are small; refuse a body meant to exhaust memory

service_keys = sa.Table(
    "service_keys", metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


def signing_key(engine: sa.Engine) -> bytes:
    """The store's signing key, made on first use; shared by every worker on the same store."""
    with engine.begin() as conn:
        value = conn.execute(sa.select(service_keys.c.value)
                             .where(service_keys.c.name == "csrf")).scalar()
    if value is None:
        try:
            with engine.begin() as conn:
                conn.execute(service_keys.insert().values(name="csrf", value=secrets.token_hex(32)))
        except sa.exc.IntegrityError:
            pass  # another worker made it first: use theirs
        with engine.begin() as conn:
            value = conn.execute(sa.select(service_keys.c.value)
                                 .where(service_keys.c.name == "csrf")).scalar_one()
    return bytes.fromhex(value)


def _sign(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _presession_valid(key: bytes, token: str | None) -> bool:
    if not token or len(token) > 200 or "." not in token:
        return False
    nonce, _, signature = token.partition(".")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a cookie can hold anything.
    return hmac.compare_digest(_sign(key, nonce).encode(), signature.encode("utf-8", "replace"))


def token_for(request: Request) -> tuple[str, str | None]:
    """The CSRF token a page's forms carry, and a pre-session cookie value to set (or None)."""
    from justice.web.auth import request_session

    session = request_session(request)
    if session is not None:
        return session.csrf_token, None
    key = request.app.state.signing_key
    existing = request.cookies.get(PRESESSION_COOKIE)
    if _presession_valid(key, existing):
        return existing, None
    nonce = secrets.token_urlsafe(24)
    token = f"{nonce}.{_sign(key, nonce)}"
    return token, token


def set_presession_cookie(request: Request, response: Response, token: str) -> None:
    """Give the browser the pre-session token as a cookie (for the sign-in form's POST)."""
    from justice.web.auth import cookie_secure

    response.set_cookie(PRESESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=cookie_secure(request))


def token_is_valid(request: Request, supplied: str | None) -> bool:
    """Whether `supplied` is this request's CSRF token (the session's, or before sign-in the
    signed pre-session cookie's)."""
    from justice.web.auth import request_session

    if not supplied:
        return False
    session = request_session(request)
    if session is not None:
        return hmac.compare_digest(supplied.encode("utf-8", "replace"), session.csrf_token.encode())
    cookie = request.cookies.get(PRESESSION_COOKIE)
    return (_presession_valid(request.app.state.signing_key, cookie)
            and hmac.compare_digest(supplied.encode("utf-8", "replace"), cookie.encode()))


class CsrfMiddleware:
    """Refuses unsafe requests without the right token, before any route sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                await Response("Request too large", status_code=413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        request = Request(scope, receive=replay)
        supplied = request.headers.get(HEADER)
        if supplied is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(FIELD)
            supplied = value if isinstance(value, str) else None
            await form.close()
        replayed = False
        valid = await run_in_threadpool(token_is_valid, request, supplied)
        if not valid and scope["path"] == "/sign-out":
            # Signing out of an expired session is harmless, and a 403 would strand the user.
            from justice.web.auth import request_session
            valid = await run_in_threadpool(request_session, request) is None
        if valid:
            await self.app(scope, replay, send)
            return
        response = await run_in_threadpool(_refuse, request, supplied is None)
        await response(scope, receive, send)


def _refuse(request: Request, missing: bool) -> Response:
    from justice.web import audit
    from justice.web.app import error_page
    from justice.web.auth import optional_user

    user = optional_user(request)
    audit.record_committed(request, user, f"form {request.url.path}", outcome="denied",
                           detail="CSRF token missing" if missing else "CSRF token wrong")
    log.warning("refused %s %s: CSRF token %s", request.method, request.url.path,
                "missing" if missing else "wrong")
    return error_page(request, 403, reason="csrf")
