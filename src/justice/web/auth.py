"""Who is signed in: local accounts, server-side sessions, roles, the sign-in and sign-out pages.

Accounts are local (``users``, passwords hashed with argon2id) behind the `IdentityProvider`
protocol, so a single sign-on provider can replace them: an OIDC provider would implement
`authenticate` by checking the provider's ID token and mapping its claims to a `User` (role and
prisons from the provider's groups or from ``user_prisons``), and the session, CSRF, scoping and
audit code below would not change.

Sessions are server-side: the browser holds a random token in an HttpOnly, SameSite=Lax cookie;
the store keeps only its SHA-256, so a copy of the store cannot be replayed as a cookie. Every
sign-in makes a new session (a token planted before sign-in is never honoured after it); a
session ends after `IDLE_TIMEOUT` without a request or `ABSOLUTE_TIMEOUT` after sign-in, and
sign-out deletes it.

Lockout: `LOCKOUT_FAILURES` failed sign-ins for one name within `LOCKOUT_WINDOW` refuse that name
until the oldest of them is `LOCKOUT_WINDOW` old. Failures are counted for any name typed, known
or not, and the messages are the same, so the page never tells whether an account exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from justice.errors import AccountError
from justice.serving.store import metadata
from justice.web import audit
from justice.web.context import committed, page_paths, render, store_engine

log = logging.getLogger(__name__)

ROLES = ("officer", "safety-lead", "analyst", "provider", "admin")
PRISON_ROLES = ("officer", "safety-lead")  # the roles that see prisoners, scoped to their prisons
MIN_PASSWORD_LENGTH = 12
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)   # one long shift
LAST_SEEN_GRANULARITY = dt.timedelta(seconds=60)  # fewer writes under load; idle is in minutes
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = dt.timedelta(minutes=15)
SESSION_COOKIE = "justice_session"

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.String(200)),  # NULL for an account signed in by an outside provider
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
user_prisons = sa.Table(
    "user_prisons", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("prison_id", sa.String(12), primary_key=True),
)
# The organisation a provider account acts for: the provider name its programmes' files carry
# (e.g. "Pathways Partnership"). A table of its own, so stores made before it gain it unchanged.
user_providers = sa.Table(
    "user_providers", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("provider", sa.String(200), nullable=False),
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_name", sa.String(100), nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("ip", sa.String(64)),
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def utcnow() -> dt.datetime:
    """Now in UTC, naive (the store keeps naive UTC datetimes)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class User:
    """A signed-in person: their role and, for officers and safety leads, their prisons; for
    providers, the organisation (provider name) they act for."""

    id: int
    name: str
    role: str
    prisons: tuple[str, ...] = field(default=())
    provider: str | None = None

    @property
    def sees_prisoners(self) -> bool:
        """True for the roles that see prisoners' records (officers, safety leads)."""
        return self.role in PRISON_ROLES


@dataclass(frozen=True)
class SignInResult:
    """What an identity provider said: the user, or why not (`bad_credentials`, `locked`)."""

    user: User | None
    refusal: str | None = None


class IdentityProvider(Protocol):
    """Checks who someone is. `LocalAccounts` is the one the service has; an OIDC provider
    would implement the same call from the provider's verified ID token."""

    def authenticate(self, conn: sa.Connection, name: str, password: str, *,
                     ip: str | None = None) -> SignInResult:
        """The user `name` proves to be with `password`, or the refusal."""
        ...


def load_user(conn: sa.Connection, user_id: int) -> User | None:
    """The active user with id `user_id`, their prisons and provider organisation, or None."""
    row = conn.execute(sa.select(users.c.id, users.c.name, users.c.role)
                       .where(users.c.id == user_id, users.c.active.is_(True))).first()
    if row is None:
        return None
    prisons = conn.execute(sa.select(user_prisons.c.prison_id)
                           .where(user_prisons.c.user_id == user_id)
                           .order_by(user_prisons.c.prison_id)).scalars().all()
    provider = conn.execute(sa.select(user_providers.c.provider)
                            .where(user_providers.c.user_id == user_id)).scalar()
    return User(row.id, row.name, row.role, tuple(prisons), provider)


class LocalAccounts:
    """Accounts in the store's ``users`` table, passwords hashed with argon2id, with lockout."""

    def locked_until(self, conn: sa.Connection, name: str, now: dt.datetime) -> dt.datetime | None:
        """When `name` may try again, if it is locked now."""
        recent = conn.execute(
            sa.select(login_failures.c.at)
            .where(login_failures.c.user_name == name, login_failures.c.at > now - LOCKOUT_WINDOW)
            .order_by(login_failures.c.at.desc()).limit(LOCKOUT_FAILURES)).scalars().all()
        if len(recent) < LOCKOUT_FAILURES:
            return None
        return recent[-1] + LOCKOUT_WINDOW

    def authenticate(self, conn: sa.Connection, name: str, password: str, *,
                     ip: str | None = None) -> SignInResult:
        """The active user `name` if `password` is theirs and the name is not locked."""
        name = name[:100]  # as stored in login_failures, so a long name locks like any other
        now = utcnow()
        if self.locked_until(conn, name, now) is not None:
            return SignInResult(None, "locked")
        row = conn.execute(sa.select(users.c.id, users.c.password_hash, users.c.active)
                           .where(users.c.name == name)).first()
        ok = _verify(row.password_hash if row is not None and row.password_hash else _DUMMY_HASH,
                     password)
        if row is None or not row.active or not row.password_hash or not ok:
            conn.execute(login_failures.insert().values(user_name=name, at=now, ip=ip))
            return SignInResult(None, "bad_credentials")
        if _hasher.check_needs_rehash(row.password_hash):
            conn.execute(users.update().where(users.c.id == row.id)
                         .values(password_hash=_hasher.hash(password)))
        conn.execute(login_failures.delete().where(login_failures.c.user_name == name))
        return SignInResult(load_user(conn, row.id))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# ---------------------------------------------------------------- sessions

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the user and the session's CSRF token."""

    token_hash: str
    user: User
    csrf_token: str


def create_session(conn: sa.Connection, user: User) -> tuple[str, Session]:
    """A new session for `user`: (the token for the cookie, the session)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = Session(_token_hash(token), user, secrets.token_urlsafe(32))
    conn.execute(sessions.insert().values(token_hash=session.token_hash, user_id=user.id,
                                          csrf_token=session.csrf_token, created_at=now,
                                          last_seen=now, expires_at=now + ABSOLUTE_TIMEOUT))
    return token, session


def end_session(conn: sa.Connection, token: str | None) -> None:
    """Delete the session whose cookie token is `token` (nothing when there is none)."""
    if token:
        conn.execute(sessions.delete().where(sessions.c.token_hash == _token_hash(token)))


def forget_stale(conn: sa.Connection) -> None:
    """Delete sessions past either timeout and failed sign-ins past the lockout window (done at
    each sign-in, so the tables stay small without a job of their own)."""
    now = utcnow()
    conn.execute(sessions.delete().where(sa.or_(sessions.c.expires_at <= now,
                                                sessions.c.last_seen <= now - IDLE_TIMEOUT)))
    conn.execute(login_failures.delete().where(login_failures.c.at <= now - LOCKOUT_WINDOW))


def find_session(conn: sa.Connection, token: str | None) -> Session | None:
    """The live session for a cookie token, or None (an expired one is deleted on `conn`)."""
    if not token or len(token) > 200:
        return None
    token_hash = _token_hash(token)
    now = utcnow()
    row = conn.execute(sa.select(sessions).where(sessions.c.token_hash == token_hash)).first()
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen + IDLE_TIMEOUT <= now:
        conn.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
        return None
    user = load_user(conn, row.user_id)
    if user is None:  # disabled since sign-in
        conn.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
        return None
    if now - row.last_seen >= LAST_SEEN_GRANULARITY:
        conn.execute(sessions.update().where(sessions.c.token_hash == token_hash)
                     .values(last_seen=now))
    return Session(token_hash, user, row.csrf_token)


def request_session(request: Request) -> Session | None:
    """The session of this request's cookie, looked up once per request."""
    state = request.scope.setdefault("state", {})
    if "session" not in state:
        token = request.cookies.get(SESSION_COOKIE)
        session = None
        if token:
            with committed(request) as conn:
                session = find_session(conn, token)
        state["session"] = session
        if session is not None:
            state["user"] = session.user
    return state["session"]


def cookie_secure(request: Request) -> bool:
    """Whether cookies get the Secure flag: on HTTPS, or when the settings say so."""
    return request.url.scheme == "https" or bool(request.app.state.settings.secure_cookies)


# ---------------------------------------------------------------- dependencies

class SignInRequired(Exception):
    """Raised by `current_user` when nobody is signed in; answered by a redirect to sign-in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """Raised when the signed-in user may not see what they asked for; answered by the 403 page.

    The refusal is audited where it is raised (the raiser knows the action and person)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def current_user(request: Request) -> User:
    """Dependency: the signed-in user, or a redirect to /sign-in?next=<this page>."""
    session = request_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return session.user


CurrentUser = Annotated[User, Depends(current_user)]
"""A route parameter typed so gets the signed-in user (see `current_user`)."""


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None (for pages anyone may see, such as error pages)."""
    session = request_session(request)
    return session.user if session is not None else None


def require_roles(*roles: str):
    """Dependency factory: the signed-in user if their role is one of `roles`; otherwise the 403
    page and a `denied` audit row."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}: choose from {', '.join(ROLES)}")

    def dependency(request: Request, user: CurrentUser) -> User:
        if user.role not in roles:
            audit.record_committed(request, user, f"page {request.url.path}", outcome="denied",
                                   detail=f"role {user.role} is not one of {', '.join(roles)}")
            raise Forbidden("role")
        return user

    return dependency


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this site, else "/": never another host (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"  # browsers read "/\evil" as "//evil"; control characters hide the same trick
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def sign_in_url(next_path: str) -> str:
    """The sign-in page that returns to `next_path` afterwards."""
    return "/sign-in" if next_path == "/" else f"/sign-in?next={quote(next_path, safe='/')}"


# ---------------------------------------------------------------- navigation

# Service navigation: (label, path template, roles). An item shows only when the app has a route
# for its path, so the navigation grows with the page modules.
NAVIGATION = (
    ("Overview", "/prisons/{prison_id}", PRISON_ROLES),
    ("Roll", "/prisons/{prison_id}/roll", PRISON_ROLES),
    ("Cell moves", "/prisons/{prison_id}/cell-moves", PRISON_ROLES),
    ("Evaluations", "/portal", ("provider", "analyst")),
    ("Audit log", "/admin/audit", ("admin",)),
    ("Users", "/admin/users", ("admin",)),
)


def current_prison(request: Request, user: User) -> str | None:
    """The prison a page is about: the one in its path if it is the user's, else their first."""
    in_path = request.scope.get("path_params", {}).get("prison_id")
    if in_path in user.prisons:
        return in_path
    return user.prisons[0] if user.prisons else None


def navigation(request: Request, user: User | None) -> list[dict]:
    """The service navigation items for `user`, the current page marked active."""
    if user is None:
        return []
    routes = page_paths(request.app)
    prison = current_prison(request, user)
    items = []
    for label, template, roles in NAVIGATION:
        if user.role not in roles or template not in routes:
            continue
        if "{prison_id}" in template and prison is None:
            continue
        href = template.replace("{prison_id}", prison or "")
        path = request.url.path
        active = path == href or (href != f"/prisons/{prison}" and path.startswith(href + "/"))
        items.append({"href": href, "text": label, "active": active})
    return items


def home_for(user: User) -> str | None:
    """Where `user`'s role starts: their prison's overview, the audit log, the provider portal,
    or None."""
    if user.role in PRISON_ROLES and user.prisons:
        return f"/prisons/{user.prisons[0]}"
    if user.role in ("provider", "analyst"):
        return "/portal"
    if user.role == "admin":
        return "/admin/audit"
    return None


# ---------------------------------------------------------------- pages

router = APIRouter()
provider: IdentityProvider = LocalAccounts()

REFUSAL_DETAIL = {"bad_credentials": "wrong user name or password",
                  "locked": "locked after too many failed sign-ins"}
SIGN_IN_ERRORS = {
    "name": "Enter your user name",
    "password": "Enter your password",
    "bad_credentials": "The user name or password is not right. Check them and try again",
    "locked": f"You have tried to sign in too many times. Wait {LOCKOUT_WINDOW.seconds // 60} "
              "minutes and try again, or ask an administrator to unlock your account",
}


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    return render(request, "sign_in.html", {"next": safe_next(next), "errors": {}, "name": ""})


@router.post("/sign-in")
def sign_in(request: Request, name: str = Form(""), password: str = Form(""),
            next: str = Form("/")) -> Response:
    """Check the name and password; on success start a new session and go to `next`."""
    name = name.strip()
    target = safe_next(next)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = SIGN_IN_ERRORS["name"]
    if not password:
        errors["password"] = SIGN_IN_ERRORS["password"]
    if errors:
        return render(request, "sign_in.html", {"next": target, "errors": errors, "name": name},
                      status_code=400)
    engine = store_engine(request)
    with engine.begin() as conn:
        result = provider.authenticate(conn, name, password, ip=audit.client_ip(request))
        if result.user is None:
            # A name that is no account is left out of the log: it is often a password typed
            # into the wrong box, and the audit log is kept for ever and exported.
            known = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
            audit.record(conn, request, None, "sign in", outcome="sign_in_failed",
                         user_name=name[:100] if known else None,
                         detail=REFUSAL_DETAIL.get(result.refusal)
                         + ("" if known else "; the name typed is not an account"))
        else:
            end_session(conn, request.cookies.get(SESSION_COOKIE))
            forget_stale(conn)
            token, _ = create_session(conn, result.user)
            audit.record(conn, request, result.user, "sign in", outcome="sign_in")
    if result.user is None:
        log.info("sign-in refused (%s)", result.refusal)
        message = SIGN_IN_ERRORS[result.refusal or "bad_credentials"]
        return render(request, "sign_in.html",
                      {"next": target, "errors": {"form": message}, "name": name}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=cookie_secure(request))
    from justice.web.csrf import PRESESSION_COOKIE
    response.delete_cookie(PRESESSION_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    """End the session and go to the sign-in page."""
    session = request_session(request)
    with store_engine(request).begin() as conn:
        end_session(conn, request.cookies.get(SESSION_COOKIE))
        if session is not None:
            audit.record(conn, request, session.user, "sign out", outcome="sign_out")
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=cookie_secure(request))
    return response


# ---------------------------------------------------------------- account management (CLI)

def check_password(password: str) -> None:
    """Refuse a password that breaks the rules (at least MIN_PASSWORD_LENGTH characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password has {len(password)} characters: use at least "
                           f"{MIN_PASSWORD_LENGTH} (a few words make a good one)")


def add_user(engine: sa.Engine, name: str, role: str, prisons: list[str], password: str, *,
             known_prisons: set[str] | None = None, provider: str | None = None) -> User:
    """Create an active local account; officers and safety leads need at least one prison, a
    provider account its organisation (`provider`, the provider name of its programmes)."""
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() for ch in name):
        raise AccountError(f"user name {name!r}: use 1 to 100 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    prisons = sorted({p.strip().upper() for p in prisons})
    if role in PRISON_ROLES and not prisons:
        raise AccountError(f"a user with role {role} needs at least one prison (--prison CODE)")
    if role not in PRISON_ROLES and prisons:
        raise AccountError(f"role {role} sees no prisoners in this service: give no --prison")
    provider = " ".join((provider or "").split()) or None
    if role == "provider" and provider is None:
        raise AccountError("a provider account needs its organisation: --provider NAME, the "
                           "provider name on its programmes' files (e.g. \"Pathways Partnership\")")
    if role != "provider" and provider is not None:
        raise AccountError(f"role {role} acts for no provider: give no --provider")
    if provider is not None and len(provider) > 200:
        raise AccountError(f"provider name of {len(provider)} characters: use at most 200")
    if known_prisons is not None:
        unknown = [p for p in prisons if p not in known_prisons]
        if unknown:
            raise AccountError(f"unknown prison {', '.join(unknown)}: the prison database has "
                               f"{', '.join(sorted(known_prisons)) or 'no prisons'}")
    check_password(password)
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first() is not None:
            raise AccountError(f"user {name!r} exists already")
        user_id = conn.execute(users.insert().values(
            name=name, role=role, password_hash=_hasher.hash(password), active=True,
            created_at=utcnow())).inserted_primary_key[0]
        for prison in prisons:
            conn.execute(user_prisons.insert().values(user_id=user_id, prison_id=prison))
        if provider is not None:
            conn.execute(user_providers.insert().values(user_id=user_id, provider=provider))
        return load_user(conn, user_id)


def list_users(engine: sa.Engine) -> list[dict]:
    """Every account with its prisons, provider organisation, active flag and whether it is
    locked now."""
    accounts = LocalAccounts()
    now = utcnow()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
        prisons: dict[int, list[str]] = {}
        for user_id, prison in conn.execute(sa.select(user_prisons.c.user_id, user_prisons.c.prison_id)
                                            .order_by(user_prisons.c.prison_id)):
            prisons.setdefault(user_id, []).append(prison)
        providers = dict(conn.execute(sa.select(user_providers.c.user_id,
                                                user_providers.c.provider)).all())
        return [{"name": r.name, "role": r.role, "prisons": prisons.get(r.id, []),
                 "provider": providers.get(r.id),
                 "active": bool(r.active), "created_at": r.created_at,
                 "locked_until": accounts.locked_until(conn, r.name, now)} for r in rows]


def _require_user(conn: sa.Connection, name: str) -> int:
    user_id = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
    if user_id is None:
        raise AccountError(f"no user named {name!r} (see `justice users list`)")
    return user_id


def disable_user(engine: sa.Engine, name: str) -> None:
    """Disable an account and end its sessions at once."""
    with engine.begin() as conn:
        user_id = _require_user(conn, name)
        conn.execute(users.update().where(users.c.id == user_id).values(active=False))
        conn.execute(sessions.delete().where(sessions.c.user_id == user_id))


def unlock_user(engine: sa.Engine, name: str) -> None:
    """Forget the failed sign-ins of `name`, lifting a lockout."""
    with engine.begin() as conn:
        _require_user(conn, name)
        conn.execute(login_failures.delete().where(login_failures.c.user_name == name))


def known_prisons(settings, engine: sa.Engine) -> set[str]:
    """The prison codes accounts may name: the synced mirror's establishments, or before the
    first sync the prison database's."""
    query = ("SELECT {id} FROM {table} WHERE {kind} = 'INST'")
    if "nomis_agency_locations" in metadata.tables:
        with engine.connect() as conn:
            codes = set(conn.execute(sa.text(query.format(
                id="agy_loc_id", table="nomis_agency_locations", kind="agency_location_type")))
                .scalars())
        if codes:
            return codes
    url = sa.engine.make_url(settings.prison_db_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        raise AccountError(f"cannot check the prison codes: no prison database at {url.database} and "
                           "nothing synced yet (run `justice demo`, or set JUSTICE_PRISON_DB)")
    prison_engine = sa.create_engine(url)
    try:
        with prison_engine.connect() as conn:
            return set(conn.execute(sa.text(query.format(
                id="AGY_LOC_ID", table="AGENCY_LOCATIONS", kind="AGENCY_LOCATION_TYPE"))).scalars())
    except sa.exc.SQLAlchemyError as exc:
        raise AccountError(f"cannot check the prison codes in the prison database "
                           f"{url.render_as_string(hide_password=True)}: {exc.orig or exc}") from None
    finally:
        prison_engine.dispose()


DEMO_PASSWORD = "prison-safety-demo"  # printed by `justice demo`; for the simulated world only


def busiest_prisons(settings, count: int = 2) -> list[str]:
    """The `count` establishments holding most people now, in the prison database."""
    url = sa.engine.make_url(settings.prison_db_url)
    prison_engine = sa.create_engine(url)
    try:
        with prison_engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT b.AGY_LOC_ID FROM OFFENDER_BOOKINGS b JOIN AGENCY_LOCATIONS a "
                "ON a.AGY_LOC_ID = b.AGY_LOC_ID WHERE a.AGENCY_LOCATION_TYPE = 'INST' "
                "AND b.ACTIVE_FLAG = 'Y' AND b.IN_OUT_STATUS = 'IN' GROUP BY b.AGY_LOC_ID "
                "ORDER BY COUNT(*) DESC, b.AGY_LOC_ID LIMIT :n"), {"n": count}).scalars())
    finally:
        prison_engine.dispose()


def demo_provider(settings) -> tuple[str, str] | None:
    """(account name, provider name) for the provider of the largest participant list in
    HOME/legacy/interventions (the one the demo evaluates), or None when there is none."""
    from justice.errors import JusticeError
    from justice.evaluate.cohort import read_cohort

    folder = settings.legacy_dir / "interventions"
    files = sorted(folder.glob("*.xlsx"), key=lambda f: (-f.stat().st_size, f.name))
    for path in files:
        try:
            provider = read_cohort(path, on_row_problem="exclude").provider
        except JusticeError:
            continue
        if provider:
            slug = "-".join("".join(ch if ch.isalnum() else " " for ch in provider.lower()).split())
            return f"provider.{slug}"[:100], provider
    return None


def ensure_demo_accounts(settings, engine: sa.Engine) -> list[User]:
    """`officer.<prison>` for the two busiest prisons and `admin`, and where the world has
    providers' participant lists `provider.<provider>` and `analyst` for the provider portal,
    with DEMO_PASSWORD; accounts that exist already are left as they are."""
    wanted = [(f"officer.{p.lower()}", "officer", [p], None) for p in busiest_prisons(settings)]
    wanted.append(("admin", "admin", [], None))
    portal = demo_provider(settings)
    if portal is not None:
        wanted.append((portal[0], "provider", [], portal[1]))
        wanted.append(("analyst", "analyst", [], None))
    made = []
    for name, role, prisons, provider in wanted:
        with engine.connect() as conn:
            existing = conn.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
            if existing is not None:
                made.append(load_user(conn, existing))
                continue
        made.append(add_user(engine, name, role, prisons, DEMO_PASSWORD, provider=provider))
    return made
