"""Cross-site request forgery: every unsafe request must carry the page's token.

A signed-in browser's token is its session's (synchronizer token, kept in ``sessions``). Before
sign-in there is no session, so the sign-in form uses a signed double-submit token: a random
nonce with its HMAC under the store's signing key, set as a cookie and repeated in the form; the
signature stops a token planted by a sibling site from being accepted. The token travels in the
form field ``csrf_token`` or the header ``X-CSRF-Token`` and is compared in constant time.

`CsrfMiddleware` checks every POST, PUT, PATCH and DELETE before any route runs, so a new form
is protected without remembering to be; a failure answers the 403 page and appends a ``denied``
audit row.

It reads the whole body first, so it also bounds it: `MAX_FORM_BYTES` (the service's forms are
small: a larger body is answered with a plain 413), except the provider portal's upload, which
takes a cohort file of up to `justice.web.portal_store.max_upload_bytes` (JUSTICE_PORTAL_MAX_UPLOAD_MB)
and answers a larger one with the portal's own page (`justice.web.portal.refuse_oversized_upload`).
Forms are parsed in memory (`form_in_memory`): the form parser would otherwise write an uploaded
file over 1 MiB to a temporary file on disk, in plain text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from justice.serving.store import metadata

log = logging.getLogger(__name__)

FIELD = "csrf_token"
HEADER = "x-csrf-token"
PRESESSION_COOKIE = "justice_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 1_000_000  # the service's forms are small; refuse a body meant to exhaust memory
PORTAL_UPLOAD = "/portal/upload"
UPLOAD_FORM_OVERHEAD = 100_000  # the upload form's other fields and part headers, beside the file
DRAIN_FACTOR = 10  # read (and drop) at most this many times the limit of an oversized upload
_PREFIX_BYTES = 65_536  # of an oversized upload, kept to find its token and file name
_TOKEN_PART = re.compile(rb'content-disposition:[ \t]*form-data;[ \t]*name="csrf_token"\r\n'
                         rb'(?:[^\r\n]+\r\n)*\r\n([^\r\n]{1,200})\r\n', re.IGNORECASE)
_FILE_NAME = re.compile(rb'content-disposition:[ \t]*form-data;[ \t]*name="cohort";[ \t]*'
                        rb'filename="([^"\r\n]{0,300})"', re.IGNORECASE)

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


def body_ceiling(path: str) -> int:
    """The largest request body taken on `path`: the portal's upload form takes a cohort file
    (its own limit, plus the form around it); every other form `MAX_FORM_BYTES`."""
    if path == PORTAL_UPLOAD:
        from justice.web.portal_store import max_upload_bytes

        return max_upload_bytes() + UPLOAD_FORM_OVERHEAD
    return MAX_FORM_BYTES


async def form_in_memory(request: Request) -> FormData:
    """The request's form with every uploaded file held in memory. The body is bounded (and
    read whole by `CsrfMiddleware` already); Starlette's own parser would write a file part
    over 1 MiB to a temporary file on disk, and an uploaded cohort must never be on disk in
    plain text."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.form()
    body = await request.body()

    async def once() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(request.headers, once())
    parser.spool_max_size = len(body) + 1  # so no part ever rolls over to disk
    return await parser.parse()


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of a request body, at most `limit` bytes of it."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class CsrfMiddleware:
    """Refuses unsafe requests without the right token, before any route sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        ceiling = body_ceiling(scope["path"])
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > ceiling:
                await self._too_large(scope, receive, send, bytes(body[:_PREFIX_BYTES]),
                                      ceiling, more=message.get("more_body", False))
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
            try:
                form = await form_in_memory(request)
            except MultiPartException:
                form = FormData()  # a body that is not a form has no token in it
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

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, prefix: bytes,
                         ceiling: int, *, more: bool) -> None:
        """Answer a body over `ceiling`: a plain 413, or for the portal's upload form (once its
        token is checked) the upload page saying how large a file may be."""
        if scope["path"] != PORTAL_UPLOAD:
            await Response("Request too large", status_code=413)(scope, receive, send)
            return
        if more:
            # A browser still sending the file when the answer comes may show a connection
            # error instead of the page: read the rest first (up to a bound), keeping nothing.
            await _drain(receive, ceiling * DRAIN_FACTOR)
        # Only the start of the form was kept: the token (a hidden field before the file in
        # the page's form) and the file's name are in it.
        request = Request(scope)
        supplied = request.headers.get(HEADER)
        if supplied is None and (found := _TOKEN_PART.search(prefix)):
            supplied = found.group(1).decode("utf-8", "replace")
        if await run_in_threadpool(token_is_valid, request, supplied):
            from justice.web.portal import refuse_oversized_upload

            named = _FILE_NAME.search(prefix)
            file_name = named.group(1).decode("utf-8", "replace") if named else ""
            response = await run_in_threadpool(refuse_oversized_upload, request, file_name)
        else:
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
