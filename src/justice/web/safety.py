"""The safety pages for officers and safety leads: overview, roll, prisoner summary, cell-move
checks (one move or a plan), and the evidence that the warnings help.

HTTP only: what the pages show comes from ``justice.safety``. Every route is scoped (the prison
in the path must be one of the user's; a prisoner must be held in one of them) and audited: the
scoping dependencies write the view rows, and checks and decisions write their own.

The service never moves anyone: the prison system holds where people are. A check records what
was found and the officer's decision, nothing more.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Request
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from justice.safety import batch as plans
from justice.safety import cell_moves
from justice.safety.clock import data_version, service_today
from justice.safety.evidence import rule_evidence
from justice.safety.locations import prison_name
from justice.safety.overview import build_overview
from justice.safety.roll import NON_ASSOCIATION_FLAG, SORTS, Roll, RollCache, RollRow, build_roll
from justice.safety.rules import Rules, load_rules
from justice.safety.summary import build_summary
from justice.serving.mirror import data_as_at
from justice.serving.store import metadata
from justice.web import audit
from justice.web.access import ScopedPrisoner, scoped_prison, scoped_prisoner
from justice.web.auth import CurrentUser, Forbidden
from justice.web.context import StoreConnection, render, templates

router = APIRouter()
# One per process: rows of whole-establishment rolls for the current sync (see RollCache).
roll_cache = RollCache()


def warm_roll_cache(engine: sa.Engine) -> list[str]:
    """Compute the roll rows, and draw their HTML, for the data as it is now, of the
    establishments officers are looking at (those in the cache; before any, the largest that fit
    in it), so the first officer to open a roll after a sync does not wait for them; the
    establishments warmed.

    The web app's syncer calls it after each successful run (`create_app`)."""
    rules = load_rules()
    with engine.connect() as conn:
        version = data_version(conn)
        today = service_today(conn)
        prisons = roll_cache.prisons_in_use(str(engine.url))
        if not prisons:
            bookings = metadata.tables["nomis_offender_bookings"]
            held = (
                sa.select(bookings.c.agy_loc_id)
                .where(bookings.c.active_flag == "Y", bookings.c.in_out_status == "IN")
                .group_by(bookings.c.agy_loc_id)
                .order_by(sa.func.count().desc(), bookings.c.agy_loc_id)
                .limit(roll_cache.max_entries)
            )
            prisons = list(conn.execute(held).scalars())
        for prison_id in prisons:
            if version is None:
                continue
            roll_rows_html(
                roll_cache.establishment(conn, rules, prison_id, today, version).rows, rules
            )
    return sorted(prisons)


class _DrawnFilters:
    """The roll's filter lists as drawn, per store, establishment, data version, rules and filter
    (the lists show the flag counts of the data version), the latest used kept."""

    def __init__(self, max_entries: int = 256) -> None:
        self._drawn: OrderedDict[tuple, Markup] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: tuple | None, draw: Callable[[], Markup]) -> Markup:
        """The lists kept under `key`, drawn by `draw` on a miss (None: never kept)."""
        if key is None:
            return draw()
        with self._lock:
            found = self._drawn.get(key)
            if found is not None:
                self._drawn.move_to_end(key)
                return found
        found = draw()
        with self._lock:
            self._drawn[key] = found
            while len(self._drawn) > self.max_entries:
                self._drawn.popitem(last=False)
        return found


drawn_filters = _DrawnFilters()


def roll_filters_html(
    conn: sa.Connection, roll: Roll, rules: Rules, today: dt.date, version: object | None,
    filters: dict[str, str], labels: dict[str, str], errors: dict[str, str],
) -> Markup:
    """The roll's wing, landing and flag lists (safety/_roll_filters.html), drawn once per data
    version and filter while the data's version is known."""

    def draw() -> Markup:
        macro = templates.get_template("safety/_roll_filters.html").module.roll_filters
        return macro(roll.layout, roll.flag_counts, filters, labels, errors)

    key = None
    if version is not None:
        key = (str(conn.engine.url), roll.layout.prison_id, today, version, rules.version,
               tuple(filters.items()), tuple(labels.items()), tuple(sorted(errors.items())))
    return drawn_filters.get(key, draw)


def roll_rows_html(rows: list[RollRow], rules: Rules) -> Markup:
    """The roll table's rows as HTML (safety/_roll_row.html, escaped there), each row drawn once
    and kept on it: a cached row is drawn once per data version, not once per view."""
    draw = templates.get_template("safety/_roll_row.html").module.roll_row
    windows = rules.incident_windows
    for row in rows:
        if row.html is None:
            row.html = draw(row, windows)
    return Markup("".join([row.html for row in rows]))


OverviewPrison = Annotated[
    str, Depends(scoped_prison("establishment overview", audit_allowed=True))
]
RollPrison = Annotated[str, Depends(scoped_prison("view roll", audit_allowed=True))]
MovesPrison = Annotated[str, Depends(scoped_prison("cell moves", audit_allowed=True))]
EvidencePrison = Annotated[str, Depends(scoped_prison("warnings evidence", audit_allowed=True))]
SummaryPrisoner = Annotated[ScopedPrisoner, Depends(scoped_prisoner("view_summary"))]


def _flag_labels() -> dict[str, str]:
    rules = load_rules()
    return {
        **{name: f.label for name, f in rules.flags.items()},
        NON_ASSOCIATION_FLAG: "Non-association on the wing",
    }


@router.get("/prisons/{prison_id}")
def overview(request: Request, prison_id: OverviewPrison, conn: StoreConnection) -> Response:
    """The establishment overview: roll count, in and out today, flags, recent incidents."""
    rules = load_rules()
    today = service_today(conn)
    return render(
        request,
        "safety/overview.html",
        {
            "ov": build_overview(
                conn, rules, prison_id, today, cache=roll_cache, version=data_version(conn)
            ),
            "today": today,
            "flag_labels": _flag_labels(),
            "prison_id": prison_id,
        },
    )


@router.get("/prisons/{prison_id}/roll")
def roll(
    request: Request,
    prison_id: RollPrison,
    conn: StoreConnection,
    wing: str = "",
    landing: str = "",
    flag: str = "",
    sort: str = "cell",
    order: str = "asc",
) -> Response:
    """The wing and landing roll with safety flags, filterable and sortable without JavaScript."""
    rules = load_rules()
    today = service_today(conn)
    labels = _flag_labels()
    errors = {}
    if flag and flag not in labels:
        errors["flag"] = "Choose a flag from the list"
    if sort not in SORTS:
        sort = "cell"
    wing, landing = wing.strip().upper()[:12], landing.strip().upper()[:20]
    version = data_version(conn)
    result = build_roll(
        conn,
        rules,
        prison_id,
        today,
        wing=wing or None,
        landing=landing or None,
        flag=flag if flag in labels else None,
        sort=sort,
        descending=order == "desc",
        cache=roll_cache,
        version=version,
    )
    if wing and wing not in result.layout.wing_options():
        errors["wing"] = f"There is no wing {wing} in {result.layout.name}"
    if landing and landing not in result.layout.landing_options():
        errors["landing"] = f"There is no landing {landing} in {result.layout.name}"
    filters = {"wing": wing, "landing": landing, "flag": flag if flag in labels else ""}

    def sort_href(column: str) -> str:
        next_order = "desc" if (sort == column and order != "desc") else "asc"
        query = {k: v for k, v in filters.items() if v} | {"sort": column, "order": next_order}
        return f"/prisons/{prison_id}/roll?{urlencode(query)}"

    return render(
        request,
        "safety/roll.html",
        {
            "roll": result,
            "rows_html": roll_rows_html(result.rows, rules),
            "filter_selects": roll_filters_html(
                conn, result, rules, today, version, filters, labels, errors
            ),
            "rules": rules,
            "today": today,
            "filters": filters,
            "labels": labels,
            "sort": sort,
            "order": "desc" if order == "desc" else "asc",
            "sort_href": sort_href,
            "errors": errors,
            "prison_id": prison_id,
        },
        status_code=400 if errors else 200,
    )


@router.get("/prisoners/{prison_number}")
def prisoner_summary(
    request: Request, person: SummaryPrisoner, user: CurrentUser, conn: StoreConnection
) -> Response:
    """One prisoner's safety summary, including history from linked records."""
    rules = load_rules()
    today = service_today(conn)
    person_id = person.person_id or f"prison:{person.offender_id}"
    summary = build_summary(conn, rules, person_id, today)
    if summary is None:  # released between the scope check and now: same as out of scope
        audit.record_committed(request, user, "view_summary", prison_number=person.prison_number,
                               outcome="denied", detail="no longer held in the user's prisons")
        raise Forbidden("person")
    return render(
        request,
        "safety/prisoner.html",
        {
            "s": summary,
            "today": today,
            "user_prisons": set(user.prisons),
            "flag_labels": _flag_labels(),
        },
    )


# ---------------------------------------------------------------- cell moves


_UPGRADED: set[str] = set()


def _upgraded(conn: sa.Connection) -> sa.Connection:
    """`conn`, once its store has every move-check column (a store made by an earlier version
    gains the new ones on the first cell-move page after the upgrade)."""
    url = str(conn.engine.url)
    if url not in _UPGRADED:
        cell_moves.add_missing_columns(conn.engine)
        _UPGRADED.add(url)
    return conn


@router.get("/prisons/{prison_id}/cell-moves")
def cell_move_form(
    request: Request,
    prison_id: MovesPrison,
    conn: StoreConnection,
    prison_number: str = "",
    cell: str = "",
) -> Response:
    """The cell-move check form: who, and to which cell."""
    return _move_form(request, conn, prison_id, prison_number, cell)


def _move_form(request, conn, prison_id: str, prison_number: str, cell: str, errors=None,
               status_code: int = 200) -> Response:
    return render(
        request,
        "safety/cell_move.html",
        {
            "prison_id": prison_id,
            "prison_name": prison_name(conn, prison_id) or prison_id,
            "values": {"prison_number": prison_number[:20], "cell": cell[:40]},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.post("/prisons/{prison_id}/cell-moves")
def cell_move_check(
    request: Request,
    prison_id: MovesPrison,
    user: CurrentUser,
    conn: StoreConnection,
    prison_number: Annotated[str, Form()] = "",
    cell: Annotated[str, Form()] = "",
) -> Response:
    """Check one planned move, record the check, and show its result."""
    _upgraded(conn)
    rules = load_rules()
    today = service_today(conn)
    try:
        check = cell_moves.check_move(conn, rules, prison_id, prison_number[:20], cell[:40], today)
    except cell_moves.MoveInputError as exc:
        return _move_form(request, conn, prison_id, prison_number, cell,
                          {exc.field: exc.message}, status_code=400)
    [check_id] = cell_moves.save_checks(
        conn,
        [check],
        prison_id=prison_id,
        user_name=user.name,
        rules_version=rules.version,
        data_as_at=data_as_at(conn)[0],
    )
    booking = check.mover.booking
    audit.record(
        conn,
        request,
        user,
        "cell-move check",
        person_id=check.mover.person_id,
        prison_number=booking.prison_number,
        prison_id=prison_id,
        outcome="allowed",
        detail=f"check {check_id}: to {check.to_cell.label}, {len(check.stops)} stop(s), "
        f"{len(check.warnings)} warning(s)",
    )
    return RedirectResponse(f"/prisons/{prison_id}/cell-moves/checks/{check_id}", status_code=303)


@router.get("/prisons/{prison_id}/cell-moves/batch")
def batch_form(request: Request, prison_id: MovesPrison, conn: StoreConnection) -> Response:
    """The form for a plan of several moves."""
    return render(
        request,
        "safety/batch.html",
        {
            "prison_id": prison_id,
            "prison_name": prison_name(conn, prison_id) or prison_id,
            "plan": "",
            "line_errors": [],
            "max_moves": plans.MAX_MOVES,
        },
    )


@router.post("/prisons/{prison_id}/cell-moves/batch")
def batch_check(
    request: Request,
    prison_id: MovesPrison,
    user: CurrentUser,
    conn: StoreConnection,
    plan: Annotated[str, Form()] = "",
) -> Response:
    """Check a plan of moves as a whole, record it, and show its result."""
    _upgraded(conn)
    rules = load_rules()
    today = service_today(conn)
    plan = plan[:20_000]
    moves, errors = plans.parse_plan(plan)
    result = None
    if not errors:
        result, errors = plans.check_plan(conn, rules, prison_id, moves, today)
    if errors:
        return render(
            request,
            "safety/batch.html",
            {
                "prison_id": prison_id,
                "prison_name": prison_name(conn, prison_id) or prison_id,
                "plan": plan,
                "line_errors": errors,
                "max_moves": plans.MAX_MOVES,
            },
            status_code=400,
        )
    ids = cell_moves.save_checks(
        conn,
        result.checks,
        prison_id=prison_id,
        user_name=user.name,
        rules_version=rules.version,
        data_as_at=data_as_at(conn)[0],
        batch=True,
    )
    for check_id, check in zip(ids, result.checks, strict=True):
        audit.record(
            conn,
            request,
            user,
            "cell-move plan check",
            person_id=check.mover.person_id,
            prison_number=check.mover.booking.prison_number,
            prison_id=prison_id,
            outcome="allowed",
            detail=f"check {check_id} (line {check.line_no}): to {check.to_cell.label}, "
            f"{len(check.stops)} stop(s), {len(check.warnings)} warning(s)",
        )
    order = ",".join(str(n) for n in result.order)
    spare = ",".join(str(n) for n in result.needs_spare_cell)
    query = urlencode({k: v for k, v in (("order", order), ("spare", spare)) if v})
    return RedirectResponse(
        f"/prisons/{prison_id}/cell-moves/checks/{ids[0]}" + (f"?{query}" if query else ""),
        status_code=303,
    )


def _saved_check(request: Request, user, conn, prison_id: str, check_id: int) -> cell_moves.SavedCheck:
    saved = cell_moves.load_check(_upgraded(conn), check_id)
    if saved is None or saved.prison_id != prison_id:
        # Another prison's check is refused like one that does not exist, and audited.
        audit.record_committed(request, user, "view cell-move check", prison_id=prison_id[:12],
                               outcome="denied", detail=f"check {check_id} is not this prison's")
        raise Forbidden("check")
    return saved


def _line_numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip().isdigit()][: plans.MAX_MOVES]


def _check_page(request, prison_id, saved, user, *, errors=None, values=None, status_code=200):
    rules = load_rules()
    titles = {r.id: r.title for r in rules.move_rules}
    by_check: dict[int, list] = {}
    for c in saved.conflicts:
        by_check.setdefault(c.check_id, []).append(c)
    return render(
        request,
        "safety/check.html",
        {
            "prison_id": prison_id,
            "saved": saved,
            "titles": titles,
            "by_check": by_check,
            "may_override": user.role in cell_moves.OVERRIDE_ROLES,
            "errors": errors or {},
            "values": values or {},
            "order": _line_numbers(request.query_params.get("order", "")),
            "spare": _line_numbers(request.query_params.get("spare", "")),
            "decided": request.query_params.get("decided") == "1",
        },
        status_code=status_code,
    )


@router.get("/prisons/{prison_id}/cell-moves/checks/{check_id}")
def check_result(
    request: Request,
    prison_id: MovesPrison,
    check_id: int,
    user: CurrentUser,
    conn: StoreConnection,
) -> Response:
    """A recorded check: what was found, and the decision form (or the decision made)."""
    saved = _saved_check(request, user, conn, prison_id, check_id)
    for row in saved.rows:
        audit.record(
            conn,
            request,
            user,
            "view cell-move check",
            person_id=row.person_id,
            prison_number=row.prison_number,
            prison_id=prison_id,
            outcome="allowed",
            detail=f"check {row.check_id}",
        )
    return _check_page(request, prison_id, saved, user)


@router.post("/prisons/{prison_id}/cell-moves/checks/{check_id}/decision")
def check_decision(
    request: Request,
    prison_id: MovesPrison,
    check_id: int,
    user: CurrentUser,
    conn: StoreConnection,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Record proceed or cancel, with its reason, on a check (every move of a plan)."""
    saved = _saved_check(request, user, conn, prison_id, check_id)
    try:
        cell_moves.record_decision(
            conn, saved, decision, reason, user_name=user.name, role=user.role
        )
    except cell_moves.DecisionError as exc:
        if exc.field == "decision" and "safety lead" in exc.message:
            # A refused override is a denied attempt: recorded even though the page just says why.
            audit.record(
                conn,
                request,
                user,
                "cell-move decision",
                prison_id=prison_id,
                prison_number=saved.rows[0].prison_number,
                person_id=saved.rows[0].person_id,
                outcome="denied",
                detail=f"check {check_id}: proceed over a stop by {user.role}",
            )
        return _check_page(
            request,
            prison_id,
            saved,
            user,
            errors={exc.field: exc.message},
            values={"decision": decision, "reason": reason[:2000]},
            status_code=400,
        )
    for row in saved.rows:
        audit.record(
            conn,
            request,
            user,
            "cell-move decision",
            person_id=row.person_id,
            prison_number=row.prison_number,
            prison_id=prison_id,
            outcome="decision",
            detail=f"check {row.check_id}: {decision}"
            + (
                f" over {row.stops} stop(s) and {row.warnings} warning(s)"
                if row.stops or row.warnings
                else ""
            ),
        )
    return RedirectResponse(
        f"/prisons/{prison_id}/cell-moves/checks/{check_id}?decided=1", status_code=303
    )


@router.get("/prisons/{prison_id}/cell-moves/evidence")
def evidence(request: Request, prison_id: EvidencePrison, conn: StoreConnection) -> Response:
    """Which warnings led to cancelled moves, counted by rule."""
    rules = load_rules()
    by_rule, baseline = rule_evidence(_upgraded(conn), rules, [prison_id])
    return render(
        request,
        "safety/evidence.html",
        {"prison_id": prison_id, "by_rule": by_rule, "baseline": baseline, "rules": rules},
    )
