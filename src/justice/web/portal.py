"""The provider portal: a provider sends a cohort file and gets its reoffending evaluation.

Pages (signed in as a provider or an analyst; every other role gets the 403 page and a
``denied`` audit row):

- ``GET /portal``: the submissions the user may see (a provider its organisation's, an analyst
  all), newest first.
- ``GET /portal/upload``, ``POST /portal/upload``: the upload form (multipart, CSRF token in the
  form). The file is checked at once (CSV or xlsx by content, at most
  `portal_store.max_upload_bytes()`: 10 MB unless JUSTICE_PORTAL_MAX_UPLOAD_MB says otherwise,
  then `justice.evaluate.cohort.read_cohort`); problems are shown in a GOV.UK error summary
  naming row and column, and nothing is kept. The upload is held in memory while it is checked,
  never in a plain-text temporary file; a request too large to hold is stopped by the CSRF
  check (`justice.web.csrf`), which answers with this page (`refuse_oversized_upload`). Ticking "leave out
  rows with problems" mirrors ``justice evaluate --exclude-bad-rows``. A file that passes is
  kept encrypted and queued; the browser goes to its page.
- ``GET /portal/submissions/{id}``: progress while queued or running (a "check progress" link;
  with JavaScript the page checks by itself), then the results in brief, the charts and the
  downloads; or why it failed.
- ``GET /portal/submissions/{id}/status.json``: the status the page's script polls.
- ``GET /portal/submissions/{id}/files/{name}``: the report (``report.html``, the evaluation's
  own page, its inline stylesheet replaced by ``/portal/report.css`` to keep the strict CSP) and
  its downloads (report.json, balance.csv, identification.csv, the SVG charts).

Every route with a submission id takes `scoped_submission(action)`: an id that does not exist
and one of another organisation get the same 403 page and a ``denied`` audit row, so an id
cannot be probed. Views, uploads and downloads append ``allowed`` rows naming the submission
(the status poll, called every few seconds by the page's script, is not logged when allowed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from justice.errors import CohortError, ConfigError
from justice.web import audit, csrf
from justice.web import portal_store as store
from justice.web.auth import CurrentUser, Forbidden, User, optional_user, sign_in_url
from justice.web.context import committed, render
from justice.web.portal_jobs import PortalRunner

log = logging.getLogger(__name__)

PORTAL_ROLES = ("provider", "analyst")
REPORT_CSS = Path(__file__).resolve().parents[1] / "evaluate" / "templates" / "report.css"
# The files of a report a user may fetch, with their media types; nothing else is served.
REPORT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "report.json": "application/json",
    "balance.csv": "text/csv; charset=utf-8",
    "identification.csv": "text/csv; charset=utf-8",
    "outcomes.svg": "image/svg+xml",
    "love_plot.svg": "image/svg+xml",
    "propensity_overlap.svg": "image/svg+xml",
}
DOWNLOADS = (
    ("report.json", "Every figure of the report (JSON)"),
    ("balance.csv", "How alike the groups are, characteristic by characteristic (CSV)"),
    ("identification.csv", ("Each row of your file: found or not, and in the analysis or why "
                            "not (CSV, no names)")),
    ("outcomes.svg", "Chart: outcomes of the two groups (SVG)"),
    ("love_plot.svg", "Chart: balance before and after matching (SVG)"),
    ("propensity_overlap.svg", "Chart: propensity scores of the two groups (SVG)"),
)
STATUS_TAGS = {"queued": ("Waiting", "govuk-tag--grey"), "running": ("In progress", "govuk-tag--blue"),
               "done": ("Ready", "govuk-tag--green"), "failed": ("Failed", "govuk-tag--red")}
MAX_PROBLEMS_SHOWN = 100


# ---------------------------------------------------------------- the background runner

def runner_for(app) -> PortalRunner:
    """The app's background runner, started on first use (the lifespan starts it with the app)."""
    runner = getattr(app.state, "portal_runner", None)
    if runner is None:
        runner = app.state.portal_runner = PortalRunner(app.state.settings, app.state.engine)
    return runner.start()


@contextlib.asynccontextmanager
async def lifespan(app):
    """Starts the runner with the app (so queued work resumes and old files are purged at
    start-up) and stops it with the app. A bad upload limit stops the app starting."""
    store.max_upload_bytes()
    runner = runner_for(app)
    try:
        yield
    finally:
        runner.stop(timeout=10)


router = APIRouter(lifespan=lifespan)


# ---------------------------------------------------------------- who may see what

def portal_user(request: Request, user: CurrentUser) -> User:
    """Dependency: a provider with an organisation, or an analyst; otherwise the 403 page after
    a ``denied`` audit row."""
    reason = None
    if user.role not in PORTAL_ROLES:
        reason = f"role {user.role} is not one of {', '.join(PORTAL_ROLES)}"
    elif user.role == "provider" and not user.provider:
        reason = "the provider account has no organisation (justice users add --provider)"
    if reason is not None:
        audit.record_committed(request, user, f"page {request.url.path}"[:100],
                               outcome="denied", detail=reason)
        raise Forbidden("portal")
    return user


PortalUser = Annotated[User, Depends(portal_user)]


def check_submission(request: Request, user: User, submission_id: str, action: str, *,
                     audit_allowed: bool = True, what: str = "") -> sa.RowMapping:
    """The submission's row if `user` may see it (after an ``allowed`` audit row for `action`
    naming it and `what`, unless `audit_allowed` is off); else the 403 page after a ``denied``
    row. An unknown id and another organisation's look the same."""
    shown_id = submission_id[:64]
    with committed(request) as conn:
        row = store.get_submission(conn, submission_id)
        allowed = row is not None and store.visible_to(user, row)
        if not allowed:
            why = "no such submission" if row is None else "another organisation's submission"
            audit.record(conn, request, user, action, outcome="denied",
                         detail=f"submission {shown_id}: {why}")
        elif audit_allowed:
            audit.record(conn, request, user, action, outcome="allowed",
                         detail=f"submission {shown_id} "
                                f"({row['organisation'] or 'no provider named'}){what}")
    if not allowed:
        raise Forbidden("submission")
    return row


def scoped_submission(action: str, *, audit_allowed: bool = True):
    """Dependency factory for routes with ``{submission_id}``: `check_submission` for
    `action`."""

    def dependency(request: Request, submission_id: str, user: PortalUser) -> sa.RowMapping:
        return check_submission(request, user, submission_id, action,
                                audit_allowed=audit_allowed)

    dependency.portal_action = action  # lets the route-walking test find the guard
    return dependency


def scoped_report_file(request: Request, submission_id: str, name: str,
                       user: PortalUser) -> sa.RowMapping:
    """Dependency for a report's files: `check_submission`, audited as viewing the report
    (report.html) or as a download naming the file."""
    action = "portal view report" if name == "report.html" else "portal download"
    return check_submission(request, user, submission_id, action, what=f": {name[:40]}")


scoped_report_file.portal_action = "portal view report / download"


# ---------------------------------------------------------------- pages

def _tag(status: str, purged: bool) -> dict:
    if purged:
        return {"text": "Deleted", "classes": "govuk-tag--grey"}
    text, classes = STATUS_TAGS[status]
    return {"text": text, "classes": classes}


@router.get("/portal")
def portal_home(request: Request, user: PortalUser) -> Response:
    """The submissions the user may see, newest first, and the way to send another."""
    with committed(request) as conn:
        rows = store.list_submissions(conn, user.provider,
                                      every_organisation=user.role == "analyst")
        audit.record(conn, request, user, "portal submissions", outcome="allowed",
                     detail=f"{len(rows)} submission(s) listed")
    submissions = [{**row, "tag": _tag(row["status"], row["purged_at"] is not None)}
                   for row in rows]
    return render(request, "portal/index.html", {
        "submissions": submissions, "retention_days": request.app.state.settings.portal_retention_days})


def _upload_page(request: Request, *, errors: list[dict] | None = None, can_exclude: bool = False,
                 values: dict | None = None, status_code: int = 200) -> Response:
    return render(request, "portal/upload.html", {
        "errors": errors or [], "can_exclude": can_exclude, "values": values or {},
        "max_size": store.size_text(store.max_upload_bytes()),
        "retention_days": request.app.state.settings.portal_retention_days},
        status_code=status_code)


@router.get("/portal/upload")
def upload_form(request: Request, user: PortalUser) -> Response:
    """The form to send a cohort file."""
    return _upload_page(request)


def _problem_items(problems: list) -> list[dict]:
    items = []
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        where = ", ".join(part for part in (f"Row {problem.row}" if problem.row else "",
                                            f"column ‘{problem.column}’" if problem.column else "")
                          if part)
        text = f"{where}: {problem.message}" if where else problem.message
        items.append({"text": text[:1].upper() + text[1:], "href": "#cohort"})
    if len(problems) > MAX_PROBLEMS_SHOWN:
        items.append({"text": f"And {len(problems) - MAX_PROBLEMS_SHOWN} more problems",
                      "href": "#cohort"})
    return items


@router.post("/portal/upload")
async def upload(request: Request, user: PortalUser) -> Response:
    """Check the file; keep it encrypted and queue its evaluation, or show its problems."""
    # The form is parsed here rather than by FastAPI's File() so the file stays in memory.
    form = await csrf.form_in_memory(request)
    try:
        cohort = form.get("cohort")
        programme, exclude_bad_rows = form.get("programme"), form.get("exclude_bad_rows")
        return await run_in_threadpool(
            take_upload, request, user, cohort if isinstance(cohort, UploadFile) else None,
            programme if isinstance(programme, str) else "", exclude_bad_rows == "yes")
    finally:
        await form.close()


def take_upload(request: Request, user: User, cohort: UploadFile | None, programme: str,
                exclude: bool) -> Response:
    """The upload's checks, then the submission kept and queued (see `upload`)."""
    from justice.evaluate.cohort import read_cohort

    settings = request.app.state.settings
    programme = " ".join(programme.split())[:200]
    values = {"programme": programme, "exclude_bad_rows": exclude}
    name = store.clean_file_name(cohort.filename if cohort is not None else "")
    if cohort is None or not cohort.filename:
        return _refused(request, user, values, [{"text": "Select a CSV or Excel file",
                                                 "href": "#cohort"}], "no file selected")
    limit = store.max_upload_bytes()
    data = cohort.file.read(limit + 1)
    try:
        kind = store.file_kind(name, data, limit)
    except store.UploadRefused as refused:
        return _refused(request, user, values, [{"text": str(refused), "href": "#cohort"}],
                        f"file {name} refused: {refused}")
    can_exclude = False
    with store.plain_copy(data, name, kind) as path:
        try:
            read = read_cohort(path)
        except CohortError as exc:
            try:
                without = read_cohort(path, on_row_problem="exclude")
            except CohortError:
                without = None
            if exclude and without is not None:
                read = without
            else:
                can_exclude = without is not None
                return _refused(request, user, values, _problem_items(exc.problems or [exc]),
                                f"file {name} refused: {len(exc.problems)} problem(s)",
                                can_exclude=can_exclude)
    organisation = user.provider if user.role == "provider" else read.provider
    try:
        submission_id = store.create_submission(settings, request.app.state.engine, store.NewSubmission(
            organisation=organisation, uploaded_by=user.name, file_name=name, file_kind=kind,
            data=data, programme=programme or read.programme, participants=len(read.rows),
            rows_left_out=len(read.problems), exclude_bad_rows=exclude))
    except ConfigError as exc:
        log.error("portal: cannot keep an upload: %s", exc)
        audit.record_committed(request, user, "portal upload", outcome="denied",
                               detail=f"file {name} not kept: {exc}"[:1000])
        return render(request, "portal/unavailable.html", status_code=503)
    audit.record_committed(request, user, "portal upload", outcome="allowed",
                           detail=f"submission {submission_id} ({organisation or 'no provider named'}): "
                                  f"{name}, {len(read.rows)} participants, "
                                  f"{len(read.problems)} rows left out")
    runner_for(request.app).wake()
    return RedirectResponse(f"/portal/submissions/{submission_id}", status_code=303)


def refuse_oversized_upload(request: Request, file_name: str) -> Response:
    """The answer to an upload too large to read (called by the CSRF check once the form's
    token is right, the rest of the body dropped unread): for a portal user, the upload page
    saying how large a file may be, and a ``denied`` audit row; nothing is kept. Anyone else
    gets what the route would give them (sign-in, or the 403 page)."""
    from justice.web.app import error_page

    user = optional_user(request)
    if user is None:
        return RedirectResponse(sign_in_url(request.url.path), status_code=303)
    try:
        portal_user(request, user)
    except Forbidden:
        return error_page(request, 403)
    name = store.clean_file_name(file_name)
    limit = store.max_upload_bytes()
    declared = request.headers.get("content-length", "")
    sent = f"{int(declared):,} bytes sent" if declared.isdigit() else "size not declared"
    return _refused(request, user, {}, [{"text": store.too_large(limit), "href": "#cohort"}],
                    f"file {name} refused: over {store.size_text(limit)} ({sent}); not read",
                    status_code=413)


def _refused(request: Request, user: User, values: dict, errors: list[dict], detail: str, *,
             can_exclude: bool = False, status_code: int = 400) -> Response:
    audit.record_committed(request, user, "portal upload", outcome="denied", detail=detail[:1000])
    return _upload_page(request, errors=errors, can_exclude=can_exclude, values=values,
                        status_code=status_code)


ViewedSubmission = Annotated[sa.RowMapping, Depends(scoped_submission("portal view submission"))]
PolledSubmission = Annotated[sa.RowMapping, Depends(scoped_submission("portal status",
                                                                      audit_allowed=False))]


def _report_summary(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _file_size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1000:,.0f} KB" if size >= 1000 else f"{size} bytes"


@router.get("/portal/submissions/{submission_id}")
def submission_page(request: Request, user: PortalUser, submission: ViewedSubmission) -> Response:
    """A submission's progress, then its results in brief, charts and downloads (or why it
    failed)."""
    settings = request.app.state.settings
    folder = store.report_dir(settings, submission["id"])
    summary, downloads = None, []
    if submission["status"] == "done" and submission["purged_at"] is None:
        summary = _report_summary(folder)
        downloads = [{"name": name, "text": text, "size": _file_size(folder / name)}
                     for name, text in DOWNLOADS if (folder / name).is_file()]
    position = None
    if submission["status"] == "queued":
        with committed(request) as conn:
            position = conn.execute(
                sa.select(sa.func.count()).select_from(store.portal_submissions)
                .where(store.portal_submissions.c.status.in_(("queued", "running")),
                       store.portal_submissions.c.uploaded_at <= submission["uploaded_at"])
            ).scalar()
    retention = dt.timedelta(days=settings.portal_retention_days)
    return render(request, "portal/submission.html", {
        "s": submission, "tag": _tag(submission["status"], submission["purged_at"] is not None),
        "summary": summary, "downloads": downloads, "position": position,
        "delete_on": submission["uploaded_at"] + retention,
        "in_progress": submission["status"] in ("queued", "running"),
        "error_lines": (submission["error"] or "").splitlines(),
        "show_detail": user.role == "analyst" and submission["error_detail"]})


@router.get("/portal/submissions/{submission_id}/status.json")
def submission_status(submission: PolledSubmission) -> Response:
    """The submission's status for the page's script: status, stage, finished or not."""
    return JSONResponse({"status": submission["status"], "stage": submission["stage"],
                         "finished": submission["status"] in ("done", "failed")})


@router.get("/portal/submissions/{submission_id}/files/{name}")
def report_file(request: Request, name: str,
                submission: Annotated[sa.RowMapping, Depends(scoped_report_file)]) -> Response:
    """The report page or one of its downloads (only the report's own files)."""
    media_type = REPORT_FILES.get(name)
    path = store.report_dir(request.app.state.settings, submission["id"]) / name
    if media_type is None or submission["purged_at"] is not None or not path.is_file():
        from starlette.exceptions import HTTPException

        raise HTTPException(404)
    if name == "report.html":
        html = path.read_text(encoding="utf-8")
        # The report is one self-contained page with its stylesheet inline; the service's CSP
        # allows no inline style, so the same stylesheet is linked instead.
        html = re.sub(r"<style\b[^>]*>.*?</style>",
                      '<link rel="stylesheet" href="/portal/report.css">', html, count=1,
                      flags=re.DOTALL | re.IGNORECASE)
        return Response(html, media_type=media_type)
    download_name = f"{Path(submission['file_name']).stem}-{name}"
    return FileResponse(path, media_type=media_type, filename=download_name,
                        content_disposition_type="attachment" if not name.endswith(".svg")
                        else "inline")


@router.get("/portal/report.css")
def report_css() -> Response:
    """The evaluation report's stylesheet (inline in the report file; linked when served here)."""
    return FileResponse(REPORT_CSS, media_type="text/css")
