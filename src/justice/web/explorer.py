"""The statistics explorer's pages (no sign-in): published, disclosure-controlled data only.

- ``/explore``: the catalogue of published datasets, searchable (``?q=``);
- ``/explore/{dataset}``: the table builder, a GET form whose URL holds the whole query
  (justice.explore.query), so a table can be bookmarked and shared; charts of its time series
  drawn on the server; ``/explore/{dataset}/download.{csv,parquet,json}``: the same selection;
- ``/explore/numbers`` and ``/explore/numbers/{topic}``: "justice in numbers", headline tables
  and charts (datasets.yaml's ``headlines``).

Every figure comes from justice.explore, which reads only the published protected files: a
dataset name is looked up in the catalogue (person-level files are not in it), and every query
parameter is checked against the dataset's columns and values before anything is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, Response

from justice.explore import (
    Dataset,
    QueryError,
    Table,
    downloads,
    load_catalogue,
    parse_query,
    run_query,
)
from justice.explore.catalogue import (
    SYMBOL_CONFIDENTIAL,
    SYMBOL_NOT_APPLICABLE,
    SYMBOL_NOT_AVAILABLE,
    Catalogue,
    Measure,
    current_catalogue,
    explorer_config,
)
from justice.explore.charts import charts_of
from justice.explore.query import Query
from justice.explore.table import TOTAL
from justice.web.auth import SESSION_COOKIE, optional_user
from justice.web.context import TEMPLATES_DIR, render, service_name_for, templates

log = logging.getLogger(__name__)
_frozen = False


@contextlib.asynccontextmanager
async def lifespan(app):
    """Reads the published catalogue as the app starts (seconds on a large home: not in the
    first visitor's request), then, once per process, sets everything alive by then aside
    from the garbage collector (`gc.freeze`): modules, templates and the catalogue live as long
    as the process, and a full collection that walked them (several hundred thousand objects)
    stopped every request for 100 to 200 ms."""
    global _frozen
    try:
        await anyio.to_thread.run_sync(catalogue_of_home, app.state.settings.home)
    except Exception:
        # The safety service and the portal start anyway; explorer pages say what is wrong.
        log.exception("explorer: cannot read the published files at start-up")
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
    yield


router = APIRouter(lifespan=lifespan)


def catalogue_of_home(home: Path) -> Catalogue:
    """The catalogue of `home` (HOME/reports)."""
    return load_catalogue(home / "reports")


def catalogue_of(request: Request) -> Catalogue:
    """The catalogue of the app's home (HOME/reports)."""
    return catalogue_of_home(request.app.state.settings.home)


def dataset_or_404(request: Request, name: str) -> Dataset:
    """The published dataset `name`; 404 for any other name (person-level ones included)."""
    dataset = catalogue_of(request).get(name)
    if dataset is None:
        raise HTTPException(status_code=404)
    return dataset


_pages: OrderedDict[tuple, bytes] = OrderedDict()
_pages_lock = threading.Lock()
PAGES_CACHED = 256

# The app's templates without `auto_reload`: that checks the modification time of every
# template a page uses (about 27 for a builder page, with GOV.UK's macros) on every render, and
# each check is a system call that gives up the GIL, to wait for it again behind busy threads.
# The templates are the installed package's: they do not change while the service runs.
page_templates = templates.overlay(auto_reload=False)

TABLES_AT_ONCE = 2
"""Explorer requests worked on at once (in worker threads; the others wait their turn). Two,
not one: a large table (tens of milliseconds) then holds up only half the work behind it."""
_turns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its limiter


def in_turn(route=None, *, quick=None):
    """Decorator: the route's work runs in a worker thread, TABLES_AT_ONCE at a time, the
    others waiting in arrival order. `quick(**the route's arguments)`, when given, is tried
    first, in the event loop: an answer already made (a kept page), or None.

    An explorer request is all CPU work under the GIL. Left in FastAPI's pool of 40 threads,
    20 concurrent requests share the GIL turn and turn about, so each takes about as long as
    all of them and a large table takes many times its own time (the slow tail); first come,
    first served, each waits only for those ahead of it, and fewer threads contend for the
    GIL. The event loop is not blocked: other routes are served meanwhile. A kept answer
    needs no turn (a thread's turn would cost more than finding it)."""
    if route is None:
        return functools.partial(in_turn, quick=quick)

    @functools.wraps(route)
    async def queued(*args, **kwargs):
        if quick is not None:
            kept = quick(*args, **kwargs)
            if kept is not None:
                return kept
        loop = asyncio.get_running_loop()
        limiter = _turns.get(loop)
        if limiter is None:
            limiter = _turns[loop] = anyio.CapacityLimiter(TABLES_AT_ONCE)
        return await anyio.to_thread.run_sync(functools.partial(route, *args, **kwargs),
                                              limiter=limiter)
    return queued


_shells: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
SHELLS_KEPT = 64


def kept_page(request: Request, key: tuple) -> Response | None:
    """The page kept under `key` (see `page`) for a signed-out visitor, or None."""
    if request.cookies.get(SESSION_COOKIE):
        return None  # perhaps signed in: `page` looks the session up
    with _pages_lock:
        body = _pages.get(key)
        if body is not None:
            _pages.move_to_end(key)
    return None if body is None else HTMLResponse(body)


def kept_dataset_query(request: Request, name: str) -> tuple[Dataset, Query] | None:
    """The dataset `name` of the catalogue as last read (if the manifest has not changed) and
    the request's query on it; None for anything else (the route then says what is wrong)."""
    catalogue = current_catalogue(request.app.state.settings.home / "reports")
    dataset = catalogue.get(name) if catalogue is not None else None
    if dataset is None:
        return None
    try:
        return dataset, parse_query(dataset, request.query_params.multi_items())
    except QueryError:
        return None


def _kept_builder_page(request: Request, name: str) -> Response | None:
    found = kept_dataset_query(request, name)
    if found is None:
        return None
    return kept_page(request, _builder_key(*found))


def _builder_key(dataset: Dataset, query: Query) -> tuple:
    """The key a signed-out builder page is kept under (see `page`): its file (so its home),
    build and query."""
    return ("explorer/builder.html", 200, str(dataset.path), dataset.published_at,
            query.query_string())


def page(request: Request, template: str, context: dict, status_code: int = 200, *,
         cache_key: tuple | None = None, shell_key: tuple | None = None) -> Response:
    """An explorer page: no sign-in needed, but a signed-in visitor keeps their header (their
    name, sign-out and navigation); a signed-out one costs no store lookup.

    With `cache_key` (what the page shows: its dataset, the build and the query), the page a
    signed-out visitor gets is kept and served again as it is: it holds published figures
    only, no token or name (explorer forms are GET forms, which carry no CSRF token). With
    `shell_key` too (what the page shows outside its ``content`` block: for the builder, the
    dataset and its build, which give the title), see `_signed_out_html`."""
    if optional_user(request) is not None or cache_key is None:
        return render(request, template, context, status_code=status_code)
    key = (template, status_code, *cache_key)
    with _pages_lock:
        body = _pages.get(key)
        if body is not None:
            _pages.move_to_end(key)
    if body is None:
        values = {"request": request, "user": None, "csrf_token": None, "show_data_as_at": False,
                  "service_name": service_name_for(request.url.path), "nav": [], **context}
        body = _signed_out_html(template, values, shell_key).encode()
        with _pages_lock:
            _pages[key] = body
            while len(_pages) > PAGES_CACHED:
                _pages.popitem(last=False)
    return HTMLResponse(body, status_code=status_code)


def _signed_out_html(template: str, values: dict, shell_key: tuple | None) -> str:
    """The page `template` for a signed-out visitor.

    Everything outside the page's ``content`` block (the GOV.UK header, navigation, banner,
    breadcrumbs and footer, drawn by the layout's macros: two thirds of the time it takes to
    render a builder page) is the same for every signed-out page with the same `shell_key`:
    it is rendered once, with the first such page, and each later page renders only its
    ``content`` block between the two halves. (A test compares such pages with whole renders.)"""
    tpl = page_templates.get_template(template)
    if shell_key is None:
        return tpl.render(values)
    key = (template, *shell_key)
    with _pages_lock:
        shell = _shells.get(key)
    if shell is not None:
        return shell[0] + "".join(tpl.blocks["content"](tpl.new_context(values))) + shell[1]
    whole = tpl.render(values)
    content = "".join(tpl.blocks["content"](tpl.new_context(values)))
    at = whole.find(content)
    if content and at >= 0 and whole.find(content, at + 1) < 0:
        with _pages_lock:
            _shells[key] = (whole[:at], whole[at + len(content):])
            while len(_shells) > SHELLS_KEPT:
                _shells.popitem(last=False)
    return whole


def _figure_format(measure: Measure):
    """How `measure`'s figures are written: a percentage to one place, a count whole with
    thousands separators, a rate or published mean to one place, a sum to two."""
    if measure.percent:
        return lambda value: f"{value * 100:.1f}%"
    if measure.kind == "count":
        return lambda value: f"{value:,}"
    places = ",.1f" if measure.kind in ("ratio", "published") else ",.2f"
    return lambda value: format(value, places)


def key_label(dataset: Dataset, dims: tuple[str, ...], key: tuple[str, ...]) -> str:
    """A row or column key as a heading ("Total" for a total)."""
    if key and all(v == TOTAL for v in key):
        return TOTAL
    return ", ".join(dataset.value_label(d, v) for d, v in zip(dims, key))


def describe_query(table: Table) -> str:
    """The selection in words, for a table's caption."""
    ds, q = table.dataset, table.query
    parts = [", ".join(m.label for m in table.measures)]
    if q.rows:
        parts.append("by " + " and ".join(ds.dim_label(d).lower() for d in q.rows))
    if q.cols:
        parts.append("across " + " and ".join(ds.dim_label(d).lower() for d in q.cols))
    for dim, values in q.filters:
        parts.append(f"{ds.dim_label(dim).lower()}: " + ", ".join(ds.value_label(dim, v) for v in values))
    return "; ".join(parts)


_TD = '<td class="govuk-table__cell govuk-table__cell--numeric">'
_TD_SYMBOL = {s: f'<td class="govuk-table__cell govuk-table__cell--numeric" data-symbol="{s}">{s}</td>'
              for s in (SYMBOL_CONFIDENTIAL, SYMBOL_NOT_AVAILABLE, SYMBOL_NOT_APPLICABLE)}
_TH_ROW = '<th scope="row" class="govuk-table__header">'


def _body_cells(table: Table) -> list[str]:
    """Per table row, its figures as <td> elements (a column's measures side by side)."""
    width = len(table.col_keys)
    per_measure = []
    for measure in table.measures:
        write = _figure_format(measure)
        per_measure.append([_TD_SYMBOL[mark] if mark is not None else f"{_TD}{write(value)}</td>"
                            for value, mark in zip(table.values(measure.name),
                                                   table.marks[measure.name].ravel().tolist())])
    if len(per_measure) == 1:
        tds = per_measure[0]
    else:
        tds = [td for cells in zip(*per_measure) for td in cells]
    step = width * len(per_measure)
    return ["".join(tds[i:i + step]) for i in range(0, len(tds), step)]


def table_view(table: Table, chart_id: str) -> dict:
    """What a page shows of a table (made once per cached table): caption, the cross-tab's
    heading row and body as markup, charts, footnotes and the query string.

    The body is written here rather than in a template loop: a table can have thousands of
    cells, and a Jinja loop with autoescaping costs several times as much per cell as one
    string join (every dimension value and label is escaped here; figures and symbols are
    the explorer's own digits and brackets)."""
    key = ("view", chart_id)
    if key in table.memo:
        return table.memo[key]
    ds, q = table.dataset, table.query
    measures = table.measures
    many = len(measures) > 1
    row_dims = max(len(q.rows), 1)
    headings = [ds.dim_label(d) for d in q.rows] or ["Selection"]
    for col in table.col_keys:
        for m in measures:
            label = key_label(ds, q.cols, col) if q.cols else ""
            if many or not q.cols:
                label = f"{label}: {m.label}" if label else m.label
            headings.append(label)
    head = "".join(
        f'<th scope="col" class="govuk-table__header'
        f'{" govuk-table__header--numeric" if n > row_dims else ""}">{escape(h)}</th>'
        for n, h in enumerate(headings, start=1))
    total_heads = f'<th scope="row" class="govuk-table__header" colspan="{row_dims}">Total</th>'
    body = []
    for row, cells in zip(table.row_keys, _body_cells(table)):
        if q.rows and all(v == TOTAL for v in row):
            heads = total_heads
        else:
            labels = [ds.value_label(d, v) for d, v in zip(q.rows, row)] or ["All"]
            heads = "".join(f"{_TH_ROW}{escape(label)}</th>" for label in labels)
        body.append(f'<tr class="govuk-table__row">{heads}{cells}</tr>')
    view = {"caption": describe_query(table), "head": Markup(head), "body": Markup("".join(body)),
            "charts": charts_of(table, chart_id), "notes": table.footnotes(),
            "query_string": q.query_string()}
    table.memo[key] = view
    return view


def filter_options(dataset: Dataset, dim: str, chosen: tuple[str, ...]) -> Markup:
    """The builder's checkboxes for filtering `dim`, those in `chosen` ticked.

    A dimension can have hundreds of values (courts, establishments, breakdowns), each a
    checkbox that is the same on every page of the dataset but for its tick: each is rendered
    (by the `filter_option` macro) once per dataset, ticked and not, and a page joins them."""
    made = dataset.__dict__.get("_filter_options")
    if made is None:
        option = page_templates.get_template("explorer/_macros.html").module.filter_option
        made = {}
        for n, d in enumerate(dataset.dims, start=1):
            made[d] = [(value, str(option(f"f-{n}-{k}", d, value, label, False)).strip(),
                        str(option(f"f-{n}-{k}", d, value, label, True)).strip())
                       for k, (value, label) in enumerate(dataset.options[d], start=1)]
        dataset.__dict__["_filter_options"] = made
    ticked = set(chosen)
    return Markup("\n".join(on if value in ticked else off for value, off, on in made[dim]))


def _table_context(table: Table, name: str) -> dict:
    view = table_view(table, name)
    return {"table": table, "view": view, "charts": view["charts"], "notes": view["notes"],
            "query_string": view["query_string"]}


# ---------------------------------------------------------------- catalogue

STYLESHEET = TEMPLATES_DIR / "explorer" / "explorer.css"


@router.get("/explore/explorer.css")
def stylesheet() -> Response:
    """The explorer's few styles (a wide table scrolls; a chart fits its column)."""
    return Response(STYLESHEET.read_bytes(), media_type="text/css")


@router.get("/explore")
@in_turn
def catalogue_page(request: Request, q: str = "") -> Response:
    """Every published dataset, with its description, coverage and last build; searchable."""
    catalogue = catalogue_of(request)
    words = q.lower().split()[:10]
    found = []
    for ds in catalogue.datasets.values():
        text = " ".join([ds.name, ds.title, ds.topic, ds.description, *ds.dims, *ds.measures]).lower()
        if all(w in text for w in words):
            found.append(ds)
    return page(request, "explorer/catalogue.html",
                  {"datasets": found, "q": q[:200], "catalogue": catalogue,
                   "headlines": explorer_config().get("headlines") or {}})


# ---------------------------------------------------------------- justice in numbers

@router.get("/explore/numbers")
@in_turn
def numbers_index(request: Request) -> Response:
    """The headline topics."""
    return page(request, "explorer/numbers_index.html",
                  {"headlines": explorer_config().get("headlines") or {}})


@router.get("/explore/numbers/{topic}")
@in_turn
def numbers_page(request: Request, topic: str) -> Response:
    """A topic's headline tables, each with its chart and a link to it in the table builder."""
    headline = (explorer_config().get("headlines") or {}).get(topic)
    if headline is None:
        raise HTTPException(status_code=404)
    catalogue = catalogue_of(request)
    sections = []
    for n, spec in enumerate(headline.get("tables") or []):
        dataset = catalogue.get(spec["dataset"])
        if dataset is None:
            sections.append({"title": spec["title"], "missing": True})
            continue
        try:
            table = run_query(dataset, parse_query(dataset, spec["query"]))
        except QueryError as exc:
            sections.append({"title": spec["title"], "missing": True, "why": str(exc)})
            continue
        sections.append({"title": spec["title"], "dataset": dataset,
                         **_table_context(table, f"chart-{n}")})
    return page(request, "explorer/numbers.html",
                {"headline": headline, "topic": topic, "sections": sections},
                cache_key=(topic, str(catalogue.reports), catalogue.published_at))


# ---------------------------------------------------------------- table builder

@router.get("/explore/{name}")
@in_turn(quick=_kept_builder_page)
def table_builder(request: Request, name: str) -> Response:
    """The table builder: the form, the table of the query in the URL, its charts and links
    to share and download it."""
    dataset = dataset_or_404(request, name)
    error = None
    try:
        query = parse_query(dataset, request.query_params.multi_items())
        table = run_query(dataset, query)
    except QueryError as exc:
        error, table = str(exc), None
        query = parse_query(dataset, [])
    context = {"dataset": dataset, "query": query, "error": error,
               "filter_options": filter_options}
    if table is not None:
        context.update(_table_context(table, "chart"))
    return page(request, "explorer/builder.html", context, status_code=400 if error else 200,
                cache_key=None if error else _builder_key(dataset, query)[2:],
                shell_key=(str(dataset.path), dataset.published_at))


@router.get("/explore/{name}/download.{fmt}")
@in_turn
def download(request: Request, name: str, fmt: str) -> Response:
    """The table of the query in the URL as CSV, Parquet or JSON (the cells the page shows)."""
    dataset = dataset_or_404(request, name)
    if fmt not in downloads.FORMATS:
        raise HTTPException(status_code=404)
    try:
        table = run_query(dataset, parse_query(dataset, request.query_params.multi_items()))
    except QueryError as exc:
        return Response(f"There is a problem with the query: {exc}\n", status_code=400,
                        media_type="text/plain; charset=utf-8")
    if fmt == "csv":
        body = downloads.as_csv(table)
    elif fmt == "parquet":
        body = downloads.as_parquet(table)
    else:
        body = json.dumps(downloads.as_json(table), indent=1).encode()
    return Response(body, media_type=downloads.FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{dataset.name}.{fmt}"'})
