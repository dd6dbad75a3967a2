"""The statistics explorer in a real browser: axe on every explorer page type, building a
table (with and without JavaScript, by keyboard), downloading it, and following a bookmarked
view.

The explorer is served for real (uvicorn on 127.0.0.1, in a thread) over the small published
home of tests/explore/published.py: the explorer reads only published files, so it needs no
world behind it. Chromium is browser.py's (registered as a plugin below).

Run: ``.venv/bin/python -m pytest -q -p no:xdist tests/web/test_browser_explorer.py``.
"""

from __future__ import annotations

import csv
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from axe import assert_accessible
from browser import PAGE_TIMEOUT_MS, SERVER_START_TIMEOUT, _free_socket

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explore"))
from published import publish_sample

pytestmark = pytest.mark.browser
pytest_plugins = ("browser",)  # chromium


@pytest.fixture(scope="module")
def explorer_url(tmp_path_factory):
    """The service over the sample published home, served by uvicorn on a free port."""
    import uvicorn

    from justice.settings import Settings
    from justice.web.app import create_app

    home = tmp_path_factory.mktemp("explorer") / "home"
    publish_sample(home)
    app = create_app(Settings(home=home), sync=False)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the explorer did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=15)
    sock.close()


@pytest.fixture
def browse(chromium, explorer_url):
    """Factory: a new page in a fresh context (JavaScript on or off) on the explorer."""
    contexts = []

    def make(*, javascript: bool = True):
        context = chromium.new_context(base_url=explorer_url, java_script_enabled=javascript,
                                       accept_downloads=True, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def table_cells(page) -> list[str]:
    """The figures of the results table as the browser shows them."""
    return [t.strip() for t in page.locator("#results td").all_inner_texts()]


@pytest.mark.parametrize("path", [
    "/explore", "/explore?q=reoffending", "/explore/numbers", "/explore/numbers/courts",
    "/explore/numbers/reoffending", "/explore/numbers/safety",
    "/explore/court_receipts_disposals",
    "/explore/court_receipts_disposals?measure=receipts&row=court_code&col=case_type&totals=1",
    "/explore/proven_reoffending", "/explore/court_open_caseload?measure=nope", "/api/docs",
])
def test_every_explorer_page_type_passes_axe(browse, path):
    page = browse()
    response = page.goto(path)
    assert response.status in (200, 400), (path, response.status)
    if "measure=nope" in path:
        assert response.status == 400 and page.locator(".govuk-error-summary").is_visible()
    page.locator("details").evaluate_all("els => els.forEach(el => el.open = true)")
    assert_accessible(page, path)


@pytest.mark.parametrize("javascript", [True, False])
def test_building_a_table_and_downloading_it(browse, javascript, tmp_path):
    page = browse(javascript=javascript)
    page.goto("/explore")
    page.click("text=Criminal court receipts and disposals")
    assert urlsplit(page.url).path == "/explore/court_receipts_disposals"
    # Rows by court, columns by case type, only London's courts, receipts only, with totals.
    page.uncheck("input[name=measure][value=disposals]")
    page.check("input[name=measure][value=receipts]")
    page.uncheck("input[name=row][value=quarter]")
    page.uncheck("input[name=col][value=court_type]")
    page.check("input[name=row][value=court_code]")
    page.check("input[name=col][value=case_type]")
    page.locator("details:has(input[name='f.region'])").evaluate("el => el.open = true")
    page.check("input[name='f.region'][value=London]")
    page.check("#totals")
    with page.expect_navigation():
        page.click("#show-table")
    query = parse_qsl(urlsplit(page.url).query)
    assert ("row", "court_code") in query and ("col", "case_type") in query
    assert ("f.region", "London") in query and ("totals", "1") in query
    headers = page.locator("#results tbody th").all_inner_texts()
    assert headers == ["C1 Alpha Crown Court", "M1 Gamma Magistrates", "Total"]
    shown = table_cells(page)
    assert "[c]" in shown

    with page.expect_download() as download_info:
        page.click("#download-csv")
    path = tmp_path / "table.csv"
    download_info.value.save_as(path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["symbol"] or f"{round(float(r['value'])):,}" for r in rows] == shown
    assert {r["court_code"] for r in rows} == {"C1", "M1", "Total"}


def test_a_table_can_be_built_by_keyboard(browse):
    page = browse()
    page.goto("/explore/court_receipts_disposals")
    page.focus("input[name=measure][value=disposals]")
    page.keyboard.press("Space")  # untick disposals
    page.focus("#totals")
    page.keyboard.press("Space")
    page.focus("#show-table")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    query = parse_qsl(urlsplit(page.url).query)
    assert ("measure", "disposals") not in query and ("totals", "1") in query
    assert page.locator("#results tbody th", has_text="Total").count() == 1


def test_following_a_bookmarked_view(browse):
    page = browse()
    page.goto("/explore/proven_reoffending?measure=rate&row=cohort_quarter&col=breakdown_value"
              "&f.breakdown=sex")
    link = page.get_attribute("#share-link", "href")
    shown = table_cells(page)
    chart = page.locator("svg.app-chart")
    assert chart.count() == 1 and chart.get_attribute("role") == "img"

    other = browse(javascript=False)  # someone else, following the shared link
    other.goto(link)
    assert table_cells(other) == shown
    assert other.get_attribute("#share-link", "href") == link
    assert other.is_checked("input[name='f.breakdown'][value=sex]")
    assert other.is_checked("input[name=col][value=breakdown_value]")
