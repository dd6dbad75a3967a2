"""The safety service's web app: `create_app(settings)` builds it, `justice serve` runs it.

What every request goes through, outermost first:

- `ServiceHeadersMiddleware`: a request id (``X-Request-ID``: the caller's if it is sane, else a
  new one; echoed on the response and written on audit rows) and the security headers (a strict
  Content-Security-Policy with no inline script or style, no framing, no MIME sniffing,
  same-origin referrers, ``Cache-Control: no-store`` on every page, since pages show people).
- `justice.web.csrf.CsrfMiddleware`: every POST, PUT, PATCH and DELETE carries the page's token.
- the routes: sign-in and sign-out (`justice.web.auth`), the safety pages (`justice.web.safety`),
  the admin pages (`justice.web.admin`), the home page and the assets under ``/assets``.

Assets are the npm packages installed by ``make setup`` (GOV.UK Frontend, MoJ Frontend), served
by the app itself: nothing is loaded from another site.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import justice
from justice.errors import ConfigError
from justice.serving.store import open_store
from justice.settings import Settings
from justice.web import admin, audit, auth, csrf, portal, safety
from justice.web.auth import CurrentUser, Forbidden, SignInRequired, home_for, sign_in_url
from justice.web.context import render, service_routes
from justice.web.explorer import router as explorer_router
from justice.web.explorer_api import router as explorer_api_router
from justice.web.sync import Syncer

__all__ = ["assets_folder", "create_app", "error_page", "render", "service_routes"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class ServiceHeadersMiddleware:
    """Gives each request an id and each response the security headers (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # An id from outside is kept only if harmless in logs and audit rows.
        request_id = supplied if _SANE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        is_asset = scope["path"].startswith("/assets/")

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"x-request-id")]
                headers.extend(SECURITY_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"cache-control", b"max-age=3600" if is_asset else b"no-store"))
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answered here rather than by Starlette's outermost error handler, so the 500 page
            # has the request id and the security headers too.
            log.exception("request %s failed", request_id)
            if started:
                raise
            response = await run_in_threadpool(error_page, Request(scope), 500)
            await response(scope, receive, send_with_headers)


def assets_folder(settings: Settings) -> Path:
    """The node_modules folder with the front-end packages (JUSTICE_WEB_ASSETS, or the source
    tree's), checked to hold them."""
    folder = (Path(settings.web_assets).expanduser() if settings.web_assets
              else Path(justice.__file__).resolve().parents[2] / "node_modules")
    for package in ("govuk-frontend/dist/govuk/govuk-frontend.min.css",
                    "@ministryofjustice/frontend/moj/moj-frontend.min.css"):
        if not (folder / package).is_file():
            raise ConfigError(f"the web assets are missing: {folder / package} not found; run "
                              "`make setup` (npm install) or point JUSTICE_WEB_ASSETS at a "
                              "node_modules folder that has govuk-frontend and "
                              "@ministryofjustice/frontend")
    return folder


class _ImageFolders(StaticFiles):
    """Serves /assets/images from GOV.UK's and MoJ's image folders: both stylesheets ask for
    /assets/images/<file>."""

    def __init__(self, folders: list[Path]) -> None:
        super().__init__(directory=folders[0])
        self.all_directories = [str(f) for f in folders]


def _mount_assets(app: FastAPI, node_modules: Path) -> None:
    govuk = node_modules / "govuk-frontend" / "dist" / "govuk"
    moj = node_modules / "@ministryofjustice" / "frontend" / "moj"
    app.mount("/assets/app", StaticFiles(directory=STATIC_DIR), name="assets-app")
    app.mount("/assets/govuk", StaticFiles(directory=govuk), name="assets-govuk")
    app.mount("/assets/moj", StaticFiles(directory=moj), name="assets-moj")
    # The compiled stylesheets ask for fonts and images at /assets/fonts and /assets/images.
    app.mount("/assets/fonts", StaticFiles(directory=govuk / "assets" / "fonts"), name="assets-fonts")
    app.mount("/assets/images", _ImageFolders([govuk / "assets" / "images",
                                               moj / "assets" / "images"]), name="assets-images")


# ---------------------------------------------------------------- error pages

ERROR_PAGES = {
    400: ("There is a problem with the request",
          ("The page was sent something it could not understand. Go back and try again.")),
    403: ("You cannot see this page",
          ("You do not have access to this page or record. If you think you should, ask your "
           "administrator. This attempt has been recorded.")),
    404: ("Page not found",
          ("If you typed the web address, check it is correct. If you pasted the web address, "
           "check you copied the entire address.")),
    405: ("Page not found", "This page cannot be used that way."),
    500: ("Sorry, there is a problem with the service",
          ("Try again later. If it keeps happening, tell your administrator the reference "
           "below.")),
}
CSRF_EXPIRED = ("The form has expired",
                ("For your security, the form could not be sent. Go back, reload the page and "
                 "try again. This attempt has been recorded."))


def error_page(request: Request, status: int, *, reason: str | None = None) -> Response:
    """The GOV.UK-style page for an HTTP error `status` (the CSRF refusal has its own words)."""
    title, message = CSRF_EXPIRED if reason == "csrf" else ERROR_PAGES.get(status, ERROR_PAGES[500])
    with contextlib.suppress(Exception):
        # The page still renders when the store is what failed.
        auth.optional_user(request)
    try:
        return render(request, "error.html", {"title": title, "message": message, "status": status,
                                              "request_id": audit.request_id(request)},
                      status_code=status)
    except Exception:
        log.exception("error page %s failed to render", status)
        return Response(f"{title}\n\n{message}\n", status_code=status, media_type="text/plain")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        return error_page(request, 403)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code if exc.status_code in ERROR_PAGES else 500)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400)


# ---------------------------------------------------------------- the app

def _has_page(app: FastAPI, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET"}
    return any(route.matches(scope)[0] == Match.FULL for route in service_routes(app))


def create_app(settings: Settings, *, sync: bool = True) -> FastAPI:
    """The safety service for `settings`: the store opened, the routers and assets mounted, and
    (with `sync`) the prison database synced into the store in the background."""
    node_modules = assets_folder(settings)
    engine = open_store(settings)
    audit.ensure_append_only(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        syncer = app.state.syncer = (
            Syncer(settings, engine, settings.sync_interval,
                   after_sync=lambda _result: safety.warm_roll_cache(engine)).start()
            if sync else None)
        try:
            yield
        finally:
            if syncer is not None:
                syncer.stop()

    app = FastAPI(title="Prison safety", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.signing_key = csrf.signing_key(engine)
    app.state.syncer = None  # the running justice.web.sync.Syncer, while the app is served
    app.add_middleware(csrf.CsrfMiddleware)
    app.add_middleware(ServiceHeadersMiddleware)  # added last: runs first
    _install_error_handlers(app)
    _mount_assets(app, node_modules)
    app.include_router(explorer_router)  # /explore: published statistics, no sign-in
    app.include_router(explorer_api_router)  # /api: the same, as JSON
    app.include_router(auth.router)
    app.include_router(safety.router)
    app.include_router(admin.router)
    app.include_router(portal.router)  # its lifespan runs the evaluations and the purge

    @app.get("/")
    def home(request: Request, user: CurrentUser) -> Response:
        """Sends the user to what their role uses here, or says there is nothing yet."""
        target = home_for(user)
        if target is not None and _has_page(app, target):
            return RedirectResponse(target, status_code=303)
        return render(request, "no_pages.html")

    return app


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` (several workers): settings from the environment;
    JUSTICE_SERVE_SYNC=0 (set by `justice serve --no-sync`) leaves syncing to another process."""
    return create_app(Settings.from_env(), sync=os.environ.get("JUSTICE_SERVE_SYNC", "1") != "0")
