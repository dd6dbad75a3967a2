"""The provider portal in a real browser: a provider uploads a bad file and reads the problems,
uploads a good one, watches the evaluation finish and reads the report; with JavaScript on and
off; axe-core on every portal page type (list, upload, upload with errors, in progress, done,
failed, the full report).

The live service of browser.py (the built 3,000-person world, served by uvicorn, its portal
runner started by the app's lifespan), with two accounts added here: ``provider.pathways``
(Pathways Partnership) and ``analyst``. The good cohort is every provider list of the world in
one CSV (each list alone has fewer than the 60 people an evaluation needs).

Run: ``.venv/bin/python -m pytest -q -p no:xdist tests/web/test_browser_portal.py``.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from argon2 import PasswordHasher
from axe import assert_accessible as axe_finds_nothing

from justice.web import auth

pytestmark = pytest.mark.browser
pytest_plugins = ("browser",)  # the live service and chromium fixtures

pytest.importorskip("cryptography", reason="the portal encrypts uploads with `cryptography`, "
                                           "which is not installed")

PROVIDER = "provider.pathways"
ANALYST = "analyst"
EVALUATION_TIMEOUT_MS = 180_000  # a 3,000-person world's evaluation takes seconds; the queue more
BAD_CSV = ("First name,Surname,Date of birth,Gender,Programme start date\n"
           "Alice,Zebedee,1980-01-02,F,2019-03-04\n"
           "Bob,Quixote,31/02/1975,M,2019-04-05\n")


@pytest.fixture(scope="module")
def portal_accounts(live_service):
    """The provider and analyst accounts in the live service's store (made once)."""
    engine = live_service.world.engine
    existing = {a["name"] for a in auth.list_users(engine)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        if PROVIDER not in existing:
            auth.add_user(engine, PROVIDER, "provider", [], auth.DEMO_PASSWORD,
                          provider="Pathways Partnership")
        if ANALYST not in existing:
            auth.add_user(engine, ANALYST, "analyst", [], auth.DEMO_PASSWORD)
    return live_service


@pytest.fixture(scope="module")
def good_cohort(linked_home, tmp_path_factory):
    """Every provider list of the world in one cohort CSV, rows with problems left out."""
    from justice.evaluate.cohort import read_cohort, write_csv

    rows = []
    for path in sorted((linked_home.home / "legacy" / "interventions").glob("*.xlsx")):
        rows += read_cohort(path, on_row_problem="exclude").rows
    out = tmp_path_factory.mktemp("cohort") / "all-programmes.csv"
    assert write_csv(rows, out) >= 60
    return out


def assert_accessible(page, what: str) -> None:
    """axe finds nothing on the page once its web fonts have loaded (the size of a link, which
    axe measures, depends on the font: a page checked before GOV.UK's font arrives is measured
    in the fallback font)."""
    page.evaluate("() => document.fonts.ready.then(() => true)")
    axe_finds_nothing(page, what)


def sign_in(page, name: str) -> None:
    """Sign in through the form; providers and analysts land on the portal."""
    page.goto("/sign-in")
    page.fill("#name", name)
    page.fill("#password", auth.DEMO_PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.url.endswith("/portal"), page.url


def upload(page, *, name: str, content: bytes, exclude: bool = False) -> None:
    """Choose a file on the upload page and send it."""
    page.set_input_files("#cohort", files=[{"name": name, "mimeType": "text/csv",
                                            "buffer": content}])
    if exclude:
        page.check("#exclude_bad_rows")
    with page.expect_navigation():
        page.click("button:has-text('Upload and evaluate')")


def test_upload_a_bad_file_then_a_good_one_and_read_the_report(portal_accounts, new_context,
                                                               good_cohort):
    page = new_context().new_page()
    sign_in(page, PROVIDER)
    assert page.locator("h1").inner_text() == "Programme evaluations"
    assert_accessible(page, "the portal's list of submissions")

    with page.expect_navigation():
        page.click("text=Upload a cohort file")
    assert page.url.endswith("/portal/upload")
    assert_accessible(page, "the upload page")

    upload(page, name="bad.csv", content=BAD_CSV.encode())
    summary = page.locator(".govuk-error-summary")
    assert page.title().startswith("Error: ")
    assert re.search(r"Row 3, column ‘Date of birth’", summary.inner_text()), summary.inner_text()
    # GOV.UK Frontend moves the focus to the summary, and its links go to the file input.
    assert page.evaluate("() => document.activeElement.classList.contains('govuk-error-summary')")
    summary.locator("a").first.click()
    assert page.evaluate("() => document.activeElement.id") == "cohort"
    assert_accessible(page, "the upload page with the file's problems")

    # The status checks held back for a moment, so the page in progress stays to be checked.
    page.route("**/status.json", lambda route: route.abort())
    upload(page, name=good_cohort.name, content=good_cohort.read_bytes())
    assert re.search(r"/portal/submissions/[A-Za-z0-9_-]{24}$", page.url), page.url
    submission_url = page.url
    if "Results in brief" not in page.content():
        assert page.locator("#portal-progress").count() == 1
        assert_accessible(page, "a submission in progress")
    page.unroute("**/status.json")
    # The page checks by itself (JavaScript) and reloads when the evaluation has finished.
    page.wait_for_selector("text=Results in brief", timeout=EVALUATION_TIMEOUT_MS)
    assert "For every 100 typical people" in page.locator("main").inner_text()
    assert_accessible(page, "a finished submission")
    chart = page.locator("img.app-chart")
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")

    with page.expect_download() as download_info:
        page.click("a[href$='/files/report.json']")
    summary_json = json.loads(download_info.value.path().read_text(encoding="utf-8"))
    assert summary_json["treated"] >= 60 and summary_json["provider"] == "Pathways Partnership"

    with page.expect_navigation():
        page.click("text=Read the full report")
    assert page.url == submission_url + "/files/report.html"
    assert page.locator("h1").inner_text().endswith("impact on one-year proven reoffending")
    # The report's own stylesheet is served under the service's CSP (no inline style): the
    # header is drawn dark as the stylesheet says.
    header_colour = page.locator(".govuk-header").evaluate(
        "el => getComputedStyle(el).backgroundColor")
    assert header_colour == "rgb(11, 12, 12)", header_colour
    images = page.locator("main img")
    assert images.count() == 3
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), i
    assert_accessible(page, "the evaluation report")

    # The analyst sees it in the list of every provider's submissions.
    analyst = new_context().new_page()
    sign_in(analyst, ANALYST)
    assert submission_url.rsplit("/", 1)[1] in analyst.content()
    assert_accessible(analyst, "the analyst's list of submissions")


def test_progress_and_results_without_javascript(portal_accounts, new_context, good_cohort):
    page = new_context(javascript=False).new_page()
    sign_in(page, PROVIDER)
    page.goto("/portal/upload")
    upload(page, name="no-script.csv", content=good_cohort.read_bytes())
    deadline = time.monotonic() + EVALUATION_TIMEOUT_MS / 1000
    # axe needs JavaScript in the page: the pages are checked in the test above.
    while "Results in brief" not in page.content():
        assert time.monotonic() < deadline, "the evaluation did not finish"
        assert "could not be done" not in page.content(), page.locator("main").inner_text()
        assert page.locator("text=Check progress").count() == 1
        time.sleep(1)
        with page.expect_navigation():
            page.click("text=Check progress")
    assert page.locator("table").first.inner_text().count("%") >= 2


def test_a_failed_evaluation_says_why(portal_accounts, new_context):
    """A file whose people are too few (or not found) fails in the background; the page says
    so and offers another upload."""
    page = new_context().new_page()
    sign_in(page, PROVIDER)
    page.goto("/portal/upload")
    good_rows = BAD_CSV.replace("31/02/1975", "02/03/1975")
    upload(page, name="too-few.csv", content=good_rows.encode())
    page.wait_for_selector("text=The evaluation could not be done",
                           timeout=EVALUATION_TIMEOUT_MS)
    assert "at least 60" in page.locator("main").inner_text()
    assert page.locator("text=Upload a corrected file").count() == 1
    assert_accessible(page, "a failed submission")


def tab_to(page, selector: str, *, most: int = 60) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user would (fails if never)."""
    target = page.locator(selector)
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"{selector} never had the keyboard focus on {page.url}")


def test_an_upload_by_keyboard_alone(portal_accounts, new_context, good_cohort):
    """From the list to a submission with Tab, Space and Enter only (the file chooser opened
    from the keyboard)."""
    page = new_context().new_page()
    sign_in(page, PROVIDER)
    tab_to(page, "a:has-text('Upload a cohort file')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, "#cohort")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(files=[{"name": "keyboard.csv", "mimeType": "text/csv",
                                    "buffer": good_cohort.read_bytes()}])
    tab_to(page, "#exclude_bad_rows")
    page.keyboard.press("Space")
    assert page.is_checked("#exclude_bad_rows")
    tab_to(page, "button:has-text('Upload and evaluate')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert re.search(r"/portal/submissions/[A-Za-z0-9_-]{24}$", page.url), page.url
    page.wait_for_selector("text=Results in brief", timeout=EVALUATION_TIMEOUT_MS)
    tab_to(page, "a:has-text('Read the full report')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/files/report.html")
