"""The statistics explorer over HTTP: every page type without signing in, bookmarked URLs,
downloads that hold what the page shows, the API, and crafted requests that try to reach
person-level data, hidden cells or other files."""

from __future__ import annotations

import csv
import html
import io
import re
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explore"))
from published import PERSON_SECRET, publish_sample

DATASETS = ("court_receipts_disposals", "court_open_caseload", "proven_reoffending")


@pytest.fixture
def explorer(web_settings, anonymous):
    """A signed-out client of the app over the sample published home."""
    publish_sample(web_settings.home)
    return anonymous


def results_cells(page: str) -> list[str]:
    """The figures of the page's results table, row by row."""
    table = re.search(r'<table class="govuk-table[^"]*" id="results">(.*?)</table>', page, re.DOTALL)
    assert table, "no results table on the page"
    return [html.unescape(c.strip()) for c in re.findall(r"<td [^>]*>(.*?)</td>", table.group(1), re.DOTALL)]


def share_link(page: str) -> str:
    return html.unescape(re.search(r'id="share-link" href="([^"]+)"', page).group(1))


# ---------------------------------------------------------------- pages

@pytest.mark.parametrize("path", [
    "/explore", "/explore?q=court", "/explore/numbers", "/explore/numbers/courts",
    "/explore/numbers/reoffending", "/explore/numbers/safety", "/api/docs",
    *(f"/explore/{name}" for name in DATASETS),
])
def test_every_explorer_page_type_needs_no_sign_in(explorer, path):
    response = explorer.get(path, follow_redirects=False)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag
    assert "<style" not in page and " style=" not in page
    for url in re.findall(r'(?:href|src|action)="([^"]*)"', page):
        assert url.startswith(("/", "#")) and not url.startswith("//"), url
    assert response.headers["cache-control"] == "no-store"  # the service-wide rule, unchanged


def test_the_catalogue_lists_and_searches_published_datasets_only(explorer):
    page = explorer.get("/explore").text
    for name in DATASETS:
        assert f'href="/explore/{name}"' in page
    assert "proven_reoffending_cohort" not in page and "unlisted" not in page
    assert "2026-12-01T09:30:00+00:00" in page and "marts.proven_reoffending" in page
    found = explorer.get("/explore?q=reoffending").text
    assert 'href="/explore/proven_reoffending"' in found
    assert 'href="/explore/court_open_caseload"' not in found
    assert "1 dataset matching" in found


def test_signed_out_visitors_can_find_the_explorer(explorer):
    sign_in = explorer.get("/sign-in").text
    assert 'href="/explore"' in sign_in
    assert explorer.get("/", follow_redirects=False).headers["location"].startswith("/sign-in")


def test_the_table_shows_suppressed_cells_with_symbols_and_footnotes(explorer):
    page = explorer.get("/explore/court_receipts_disposals?measure=receipts&row=quarter"
                        "&col=court_type&totals=1").text
    cells = results_cells(page)
    assert "[c]" in cells and "[c] confidential" in page
    assert "Total" in page
    # the magistrates' total over the year is published; crown's includes the hidden 4
    assert cells[-2] != "[c]" and cells[-3] == "[c]"


def test_a_bookmarked_view_round_trips(explorer):
    messy = ("/explore/court_receipts_disposals?totals=on&f.quarter=2024Q3&col=court_type"
             "&measure=disposals&f.quarter=2024Q1&row=quarter&measure=receipts")
    first = explorer.get(messy).text
    link = share_link(first)
    assert link.startswith("/explore/court_receipts_disposals?")
    assert parse_qsl(link.split("?", 1)[1]) == [
        ("measure", "disposals"), ("measure", "receipts"), ("row", "quarter"),
        ("col", "court_type"), ("f.quarter", "2024Q1"), ("f.quarter", "2024Q3"), ("totals", "1")]
    again = explorer.get(link).text
    assert results_cells(again) == results_cells(first) and share_link(again) == link
    # the form shows the query it holds
    assert re.search(r'name="f.quarter" type="checkbox" value="2024Q3" checked', again)
    assert re.search(r'id="totals" name="totals" type="checkbox" value="1" checked', again)


@pytest.mark.parametrize("query", [
    "measure=receipts&measure=disposals&row=quarter&col=court_type&totals=1",
    "measure=receipts&row=court_code&col=case_type&f.region=London&totals=1",
])
def test_downloads_hold_exactly_the_shown_selection(explorer, query):
    page = explorer.get(f"/explore/court_receipts_disposals?{query}").text
    shown = results_cells(page)
    base = "/explore/court_receipts_disposals/download"
    rows = list(csv.DictReader(io.StringIO(explorer.get(f"{base}.csv?{query}").text)))
    parquet = pq.read_table(io.BytesIO(explorer.get(f"{base}.parquet?{query}").content)).to_pylist()
    records = explorer.get(f"{base}.json?{query}").json()["records"]
    assert len(rows) == len(parquet) == len(records) == len(shown)

    def as_shown(value, symbol):
        return symbol if symbol else f"{round(float(value)):,}"

    assert [as_shown(r["value"], r["symbol"]) for r in rows] == shown
    assert [as_shown(r["value"], r["symbol"]) for r in parquet] == shown
    assert [as_shown(r["value"], r["symbol"]) for r in records] == shown
    response = explorer.get(f"{base}.csv?{query}")
    assert response.headers["content-disposition"] == 'attachment; filename="court_receipts_disposals.csv"'


# ---------------------------------------------------------------- the API

def test_the_api_answers_the_same_queries(explorer):
    listed = explorer.get("/api/datasets").json()
    assert [d["name"] for d in listed["datasets"]] == list(DATASETS)
    meta = explorer.get("/api/datasets/court_receipts_disposals").json()
    assert [d["name"] for d in meta["dimensions"]][:2] == ["quarter", "court_type"]
    query = "measure=receipts&row=quarter&col=court_type&totals=1"
    body = explorer.get(f"/api/datasets/court_receipts_disposals/table?{query}").json()
    download = explorer.get(f"/explore/court_receipts_disposals/download.json?{query}").json()
    assert body == download and body["source"]["query"] == query
    assert {"quarter": "2024Q2", "court_type": "crown", "measure": "receipts", "value": None,
            "symbol": "[c]"} in body["records"]


def test_the_api_has_its_own_openapi_document_and_docs_page(explorer):
    doc = explorer.get("/api/openapi.json").json()
    assert doc["info"]["title"] == "Justice statistics API"
    assert set(doc["paths"]) == {"/api/datasets", "/api/datasets/{name}", "/api/datasets/{name}/table"}
    names = [p["name"] for p in doc["paths"]["/api/datasets/{name}/table"]["get"]["parameters"]]
    assert {"measure", "row", "col", "totals", "f.{dimension}"} <= set(names)
    docs = explorer.get("/api/docs").text
    for path in doc["paths"]:
        assert html.escape(path) in docs
    assert "swagger" not in docs.lower() and "cdn" not in docs.lower()
    assert explorer.get("/openapi.json").status_code == 404  # the app's own stays off


# ---------------------------------------------------------------- crafted requests

@pytest.mark.parametrize("path", [
    "/explore/proven_reoffending_cohort",
    "/explore/proven_reoffending_cohort/download.csv",
    "/explore/proven_reoffending_cohort/download.parquet",
    "/explore/unlisted",
    "/explore/manifest.json",
    "/explore/..%2Fdata%2Fproven_reoffending_cohort",
    "/explore/court_receipts_disposals/download.exe",
    "/explore/court_receipts_disposals/download..%2F..%2Fproven_reoffending_cohort.csv",
    "/api/datasets/proven_reoffending_cohort",
    "/api/datasets/proven_reoffending_cohort/table",
    "/api/datasets/unlisted/table",
    "/explore/numbers/..%2F..%2Fetc",
])
def test_person_level_and_unlisted_files_cannot_be_reached(explorer, path):
    response = explorer.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert PERSON_SECRET not in response.text


@pytest.mark.parametrize("query", [
    "measure=person_pseudonym&row=quarter",
    "measure=receipts&row=person_pseudonym",
    "measure=receipts&f.person_pseudonym=" + PERSON_SECRET,
    "measure=receipts_suppressed",
    "measure=receipts&row=quarter&dataset=proven_reoffending_cohort",
    "measure=receipts&path=../../proven_reoffending_cohort.parquet",
    "measure=receipts');DROP TABLE marts.court_receipts_disposals;--",
    "measure=receipts&row=quarter union select * from read_parquet('x')",
    "measure=receipts&f.court_type=crown' OR '1'='1",
])
def test_crafted_query_strings_get_a_plain_400(explorer, query):
    page = explorer.get(f"/explore/court_receipts_disposals?{query}")
    assert page.status_code == 400 and "There is a problem with the table" in page.text
    for path in ("/explore/court_receipts_disposals/download.csv",
                 "/api/datasets/court_receipts_disposals/table"):
        response = explorer.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert PERSON_SECRET not in response.text
    error = explorer.get(f"/api/datasets/court_receipts_disposals/table?{query}").json()["error"]
    assert "court_receipts_disposals" in error or "parameter" in error


def test_no_query_shows_a_hidden_cell(explorer):
    """The hidden cell (2024Q2, C1, appeal: 4 receipts) asked for directly, at its grain and
    in every total over it, is [c] in every form."""
    query = "measure=receipts&row=court_code&col=case_type&f.quarter=2024Q2&f.court_type=crown&totals=1"
    body = explorer.get(f"/api/datasets/court_receipts_disposals/table?{query}").json()
    by_key = {(r["court_code"], r["case_type"]): r for r in body["records"]}
    for key in (("C1", "appeal"), ("C1", "Total"), ("Total", "appeal"), ("Total", "Total")):
        assert by_key[key]["value"] is None and by_key[key]["symbol"] == "[c]", key


def test_a_signed_in_visitor_keeps_their_header_on_explorer_pages(web_settings, client_for,
                                                                   anonymous):
    publish_sample(web_settings.home)
    # The page a signed-out visitor got first is kept; a signed-in one never gets it.
    kept = anonymous.get("/explore/court_receipts_disposals").text
    assert "officer.a" not in kept and anonymous.get("/explore/court_receipts_disposals").text == kept
    officer = client_for("officer.a")
    page = officer.get("/explore/court_receipts_disposals").text
    assert "officer.a" in page and 'action="/sign-out"' in page
    assert re.search(r'href="/explore" aria-current="true"', page)  # "Statistics", marked current


def test_each_section_names_its_own_service_and_only_prison_pages_say_data_as_at(web_settings,
                                                                                client_for):
    publish_sample(web_settings.home)
    officer = client_for("officer.a")
    for path, service in (("/explore", "Justice statistics"), ("/api/docs", "Justice statistics"),
                          ("/explore/court_receipts_disposals", "Justice statistics")):
        page = officer.get(path).text
        assert f"– {service}</title>" in page and "Prison safety" not in page, path
        assert 'id="data-as-at"' not in page, path
    prison = officer.get("/prisons/PRA").text
    assert "– Prison safety</title>" in prison and 'id="data-as-at"' in prison


# ---------------------------------------------------------------- under load

def test_a_table_being_worked_out_holds_up_no_other_page(explorer, monkeypatch):
    """Explorer work runs in worker threads, TABLES_AT_ONCE at a time: while that many tables
    are being worked out, the rest of the service (here the sign-in page) is answered, and the
    next explorer request waits its turn rather than sharing the GIL with them."""
    import threading
    import time

    from justice.web import explorer as explorer_module

    at_once = explorer_module.TABLES_AT_ONCE
    working, release = threading.Semaphore(0), threading.Event()
    real_run_query = explorer_module.run_query

    def slow_run_query(dataset, query):
        working.release()
        assert release.wait(30), "never released"
        return real_run_query(dataset, query)

    monkeypatch.setattr(explorer_module, "run_query", slow_run_query)
    answers = {}

    def fetch(name, path):
        answers[name] = (explorer.get(path), time.monotonic())

    explorer.__enter__()  # one event loop for every request, as under `justice serve`
    base = "/explore/court_receipts_disposals?measure=disposals&row=case_type&f.region=Wales"
    tables = [threading.Thread(target=fetch, args=(f"table {n}", f"{base}&f.quarter=2024Q{n + 1}"))
              for n in range(at_once)]
    waiting = threading.Thread(target=fetch, args=("catalogue", "/explore"))
    try:
        for thread in tables:
            thread.start()
        for _ in tables:
            assert working.acquire(timeout=30)
        waiting.start()
        started = time.monotonic()
        sign_in = explorer.get("/sign-in")
        assert sign_in.status_code == 200 and time.monotonic() - started < 10
        assert "catalogue" not in answers  # waiting its turn behind the tables
        released = time.monotonic()
        release.set()
        for thread in [*tables, waiting]:
            thread.join(30)
    finally:
        release.set()
        explorer.__exit__(None, None, None)
    assert all(response.status_code == 200 for response, _ in answers.values())
    assert len(answers) == at_once + 1 and answers["catalogue"][1] >= released


def test_a_page_drawn_inside_a_kept_shell_is_the_whole_page(explorer, monkeypatch):
    """A signed-out builder page after the first of its dataset renders only its content
    block inside the rest of the first page (justice.web.explorer._signed_out_html): byte for
    byte what rendering it whole gives."""
    from justice.web import explorer as explorer_module

    queries = ["", "measure=receipts&row=quarter&col=court_type&totals=1",
               "measure=disposals&row=region&f.quarter=2024Q2", "measure=receipts&col=quarter"]
    base = "/explore/court_receipts_disposals"
    composed = [explorer.get(f"{base}?{q}" if q else base).text for q in queries]
    assert len(explorer_module._shells) >= 1
    for query, page in zip(queries, composed):
        # Without a kept shell (or the kept page), the page is rendered whole.
        monkeypatch.setattr(explorer_module, "_shells", type(explorer_module._shells)())
        monkeypatch.setattr(explorer_module, "_pages", type(explorer_module._pages)())
        whole = explorer.get(f"{base}?{query}" if query else base).text
        assert page == whole, query
    assert len({page for page in composed}) == len(queries)
