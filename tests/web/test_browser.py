"""The safety service in a real browser: every page type checked by axe, the officers' journeys
driven by keyboard, and the pages used with JavaScript switched off.

The service runs for real (uvicorn on 127.0.0.1) over the 3,000-person world of
tests/conftest.py, synced into its store, with the demo accounts for the two busiest prisons
(see browser.py, registered as a plugin below). Debian's chromium is driven by Playwright; each
test has its own context, so cookies never leak between tests. axe-core checks WCAG 2.2 A and
AA and best practices (axe.py) and a test fails on any violation, listing them.

Run: ``.venv/bin/python -m pytest -q -p no:xdist tests/web/test_browser.py`` (skipped, saying
why, where /usr/bin/chromium is missing; CI installs it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from axe import assert_accessible, run_axe

from justice.serving.mirror import data_as_at
from justice.web.auth import SESSION_COOKIE

pytestmark = pytest.mark.browser
pytest_plugins = ("browser",)  # the live service and chromium fixtures


# ---------------------------------------------------------------------------------------------
# Helpers


def tab_to(page, selector: str, *, most: int = 100) -> None:
    """Press Tab until the element `selector` (any Playwright selector) has the focus, as a
    keyboard user would; fails if it never does within `most` presses (it is not reachable)."""
    target = page.locator(selector)
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    focused = page.evaluate("() => document.activeElement && document.activeElement.outerHTML")
    pytest.fail(f"{selector} never had the keyboard focus after {most} presses of Tab on "
                f"{page.url}; the focus ended on {(focused or '')[:200]}")


def sign_in(page, account, next_path: str = "/") -> None:
    """Sign in through the form (typed, then Enter), and check the service let the user in."""
    page.goto(f"/sign-in?{urlencode({'next': next_path})}")
    page.fill("#name", account.name)
    page.fill("#password", account.password)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert "/sign-in" not in page.url, f"{account.name} could not sign in: {page.url}"


def open_page(context, path: str, status: int = 200):
    """A new page of `context` at `path`, checked to answer `status`."""
    page = context.new_page()
    response = page.goto(path)
    assert response is not None and response.status == status, (
        f"{path} answered {response and response.status}, expected {status}")
    return page


def held_prisoners(world, prison_id: str) -> list[str]:
    """Prison numbers of the people held in `prison_id` now (active booking, IN), per the store."""
    with world.engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT DISTINCT o.offender_id_display FROM nomis_offender_bookings b "
            "JOIN nomis_offenders o ON o.offender_id = b.offender_id "
            "WHERE b.active_flag = 'Y' AND b.in_out_status = 'IN' AND b.agy_loc_id = :prison "
            "ORDER BY 1"), {"prison": prison_id}).scalars())


def audit_rows(world, **where) -> list[dict]:
    """Audit rows whose columns equal `where`, oldest first."""
    from justice.web.audit import audit_log

    query = sa.select(audit_log).order_by(audit_log.c.id)
    for column, value in where.items():
        query = query.where(audit_log.c[column] == value)
    with world.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


# ---------------------------------------------------------------------------------------------
# Sign-in, sign-out


def test_sign_in_by_keyboard(new_context, live_service):
    """An officer signs in with the keyboard only (Tab, typing, Enter) on an accessible form."""
    officer = live_service.world.officer_a
    page = open_page(new_context(), "/sign-in")
    assert_accessible(page, "the empty sign-in page")

    tab_to(page, "#name")
    page.keyboard.type(officer.name)
    tab_to(page, "#password")
    page.keyboard.type(officer.password)
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert "/sign-in" not in page.url
    assert officer.name in page.locator("header").inner_text()
    assert page.locator("#data-as-at").inner_text().startswith("Data as at")
    [session] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"] and session["sameSite"] == "Lax", session


def test_sign_in_never_sends_the_user_to_another_site(new_context, live_service):
    """A crafted sign-in link (next=//elsewhere) still lands on this service."""
    page = new_context().new_page()
    page.goto("/sign-in?next=//example.org/phish")
    page.fill("#name", live_service.world.admin.name)
    page.fill("#password", live_service.world.admin.password)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.url.startswith(live_service.base_url + "/"), page.url


def test_sign_in_errors_are_summarised(new_context, live_service):
    """Missing fields and a wrong password each give a GOV.UK error summary that links to the
    field, and the page stays accessible."""
    page = open_page(new_context(), "/sign-in")
    with page.expect_navigation():
        page.click("button:has-text('Sign in')")
    summary = page.locator(".govuk-error-summary")
    assert page.title().startswith("Error: ")
    assert "Enter your user name" in summary.inner_text()
    assert "Enter your password" in summary.inner_text()
    # GOV.UK Frontend's script moves the focus to the summary, so a screen reader reads it.
    assert page.evaluate("() => document.activeElement.classList.contains('govuk-error-summary')")
    assert_accessible(page, "the sign-in page with missing fields")

    page.fill("#name", live_service.world.officer_a.name)
    page.fill("#password", "not the password at all")
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert "The user name or password is not right" in summary.inner_text()
    assert_accessible(page, "the sign-in page after a wrong password")


def test_sign_out_ends_the_session(new_context, live_service):
    """The sign-out button (reached by keyboard) ends the session: the next page asks to sign
    in again, and comes back to where the user was going."""
    page = new_context().new_page()
    sign_in(page, live_service.world.admin)
    page.goto("/admin/users")
    tab_to(page, "form.app-sign-out button")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/sign-in")

    page.goto("/admin/audit")
    assert re.search(r"/sign-in\?next=(%2F|/)admin(%2F|/)audit$", page.url), page.url
    assert page.locator("h1").inner_text() == "Sign in"


def test_axe_runs_under_the_services_content_security_policy(new_context, live_service):
    """axe, injected into a page of the service (strict CSP), finds violations put there on
    purpose: the checks in this file can fail."""
    page = open_page(new_context(), "/sign-in")
    page.evaluate("""() => {
        document.querySelector('label[for=name]').remove();
        document.querySelector('main').append(document.createElement('img'));
    }""")
    found = {v["id"] for v in run_axe(page)}
    assert {"label", "image-alt"} <= found, found


# ---------------------------------------------------------------------------------------------
# Error pages and admin pages


def test_not_found_page(new_context, live_service):
    """An unknown address gives the GOV.UK "Page not found" page, accessible."""
    page = new_context().new_page()
    sign_in(page, live_service.world.officer_a)
    response = page.goto("/no/such/page")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert_accessible(page, "the 404 page")


def test_forbidden_page_and_the_denied_attempt_in_the_audit_log(new_context, live_service):
    """An officer who opens an admin page gets the 403 page; the admin sees the attempt,
    filtered to denied attempts, on the audit page."""
    world = live_service.world
    page = new_context().new_page()
    sign_in(page, world.officer_a)
    response = page.goto("/admin/users")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "You cannot see this page"
    assert_accessible(page, "the 403 page")
    assert audit_rows(world, user_name=world.officer_a.name, outcome="denied",
                      path="/admin/users")

    admin = new_context().new_page()
    sign_in(admin, world.admin)
    admin.goto("/admin/audit")
    assert_accessible(admin, "the admin audit list")
    admin.select_option("#outcome", "denied")
    admin.fill("#user", world.officer_a.name)
    with admin.expect_navigation():
        admin.click("button:has-text('Apply filters')")
    table = admin.locator("table").inner_text()
    assert world.officer_a.name in table and "denied" in table
    assert_accessible(admin, "the admin audit list, filtered")

    # The CSV export of the filtered rows downloads, with the same rows.
    with admin.expect_download() as download:
        admin.click("a:has-text('Download these rows')")
    exported = list(csv.DictReader(io.StringIO(
        Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert exported and all(row["user_name"] == world.officer_a.name
                            and row["outcome"] == "denied" for row in exported)
    assert any(row["path"] == "/admin/users" for row in exported)


def test_admin_users_page(new_context, live_service):
    """The users page lists the demo accounts, and is accessible."""
    world = live_service.world
    page = new_context().new_page()
    sign_in(page, world.admin, next_path="/admin/users")
    assert page.url.endswith("/admin/users")
    text = page.locator("main").inner_text()
    for account in (world.officer_a, world.officer_b, world.admin):
        assert account.name in text
    assert_accessible(page, "the admin users page")


# ---------------------------------------------------------------------------------------------
# The safety pages: what to look at, found in the store with SQL of its own


HELD = """
    SELECT b.offender_book_id, b.offender_id, b.agy_loc_id AS prison_id, b.living_unit_id,
           o.offender_id_display AS prison_number
    FROM nomis_offender_bookings b JOIN nomis_offenders o ON o.offender_id = b.offender_id
    WHERE b.active_flag = 'Y' AND b.in_out_status = 'IN'"""


def cell_label(conn, prison_id: str, cell_id: int) -> str:
    """A cell as officers name it (A-1-012): its description without the prison's prefix."""
    description = conn.execute(sa.text(
        "SELECT description FROM nomis_agency_internal_locations "
        "WHERE internal_location_id = :id"), {"id": cell_id}).scalar_one()
    return description.removeprefix(f"{prison_id}-")


def kept_apart_pairs(world, prison_id: str) -> list[tuple[str, str, str, str]]:
    """(mover, other, the other's cell, restriction) for each open non-association between two
    people held in `prison_id`, from the mirror tables alone."""
    with world.engine.connect() as conn:
        rows = conn.execute(sa.text(f"""
            WITH held AS ({HELD})
            SELECT h1.prison_number, h2.prison_number, h2.living_unit_id, na.ns_type
            FROM nomis_offender_non_associations na
            JOIN held h1 ON h1.offender_id = na.offender_id AND h1.prison_id = :prison
            JOIN held h2 ON h2.offender_id = na.ns_offender_id AND h2.prison_id = :prison
            WHERE na.expiry_date IS NULL AND h2.living_unit_id IS NOT NULL
              AND h1.living_unit_id <> h2.living_unit_id
            ORDER BY 1, 2"""), {"prison": prison_id}).all()
        pairs = [(a, b, cell_label(conn, prison_id, cell), kind) for a, b, cell, kind in rows]
    assert pairs, f"no two people held in {prison_id} must be kept apart: the world changed?"
    return pairs


def empty_cell(world, prison_id: str) -> str:
    """An active cell of `prison_id` for two or more that nobody is in now."""
    with world.engine.connect() as conn:
        cell = conn.execute(sa.text(f"""
            WITH held AS ({HELD})
            SELECT c.internal_location_id FROM nomis_agency_internal_locations c
            WHERE c.agy_loc_id = :prison AND c.internal_location_type = 'CELL'
              AND c.active_flag = 'Y' AND c.capacity >= 2
              AND c.internal_location_id NOT IN (SELECT living_unit_id FROM held
                                                 WHERE living_unit_id IS NOT NULL)
            ORDER BY c.description LIMIT 1"""), {"prison": prison_id}).scalar()
        assert cell is not None, f"no empty shared cell in {prison_id}"
        return cell_label(conn, prison_id, cell)


def rule_titles(kind: str) -> set[str]:
    """The titles of the cell-move rules of one kind (rules.yaml)."""
    from justice.safety.rules import load_rules

    return {r.title for r in load_rules().move_rules if r.kind == kind}


def roll_row(page, prison_number: str):
    """The roll's table row of one prisoner."""
    row = page.locator("#roll-table tbody tr", has_text=prison_number)
    assert row.count() == 1, f"{prison_number} is on the roll {row.count()} times"
    return row


def test_overview_roll_and_summary(new_context, live_service):
    """An officer lands on their establishment's overview, opens the roll (all of it, then
    filtered by a flag), and a prisoner's summary: each page accessible."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    held = held_prisoners(world, prison)
    page = new_context().new_page()
    sign_in(page, world.officer_a)
    assert page.url.endswith(f"/prisons/{prison}"), page.url
    assert page.locator(".govuk-caption-l").inner_text() == "Establishment overview"
    assert_accessible(page, "the establishment overview")
    # The first Tab reaches the skip link, and Enter takes the focus to the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main-content"

    with page.expect_navigation():
        page.click(f".govuk-service-navigation a[href='/prisons/{prison}/roll']")
    assert page.locator("#roll-count").inner_text().startswith(
        f"Showing {len(held)} of {len(held)} people held")
    assert page.locator("#roll-table tbody tr").count() == len(held)
    assert_accessible(page, "the roll")

    # MoJ's sortable table (JavaScript on): the headers are buttons, sorted by keyboard.
    tab_to(page, "#roll-table thead th:first-child button")
    page.keyboard.press("Enter")
    name_header = page.locator("#roll-table thead th").first
    assert name_header.get_attribute("aria-sort") == "ascending"
    numbers = page.locator("#roll-table tbody td:first-child .govuk-body-s")
    ascending = numbers.all_inner_texts()
    page.keyboard.press("Enter")
    assert name_header.get_attribute("aria-sort") == "descending"
    assert numbers.all_inner_texts() == ascending[::-1]

    # The filter by keyboard: type-ahead in the select, Enter on the button.
    tab_to(page, "#flag")
    page.keyboard.type("Risk to staff")
    assert page.locator("#flag").input_value() == "risk_to_staff"
    tab_to(page, "button:has-text('Apply filters')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = page.locator("#roll-table tbody tr")
    assert 0 < rows.count() < len(held), "the risk-to-staff filter should keep some, not all"
    for i in range(rows.count()):
        assert "Risk to staff" in rows.nth(i).inner_text()
    assert_accessible(page, "the roll filtered by a flag")

    number = rows.first.locator("td:first-child .govuk-body-s").inner_text()
    with page.expect_navigation():
        rows.first.locator("a").click()
    assert page.url.endswith(f"/prisoners/{number}")
    assert number in page.locator("main").inner_text()
    assert_accessible(page, "a prisoner's safety summary")
    assert audit_rows(world, user_name=world.officer_a.name, prison_number=number,
                      outcome="allowed")


def test_summary_with_linked_history(new_context, live_service):
    """The summary of a prisoner with history from linked records (court convictions, probation
    or earlier prison numbers) shows it, marked with its source, accessibly."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    with world.engine.connect() as conn:
        number = conn.execute(sa.text(f"""
            WITH held AS ({HELD})
            SELECT h.prison_number FROM held h
            JOIN person_resolution r ON r.offender_id = h.offender_id
            JOIN linked_history l ON l.person_id = r.person_id
            WHERE h.prison_id = :prison GROUP BY h.prison_number
            ORDER BY COUNT(*) DESC, h.prison_number LIMIT 1"""), {"prison": prison}).scalar()
    assert number is not None, f"nobody held in {prison} has linked history"
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisoners/{number}")
    assert page.url.endswith(f"/prisoners/{number}")
    assert page.locator("main .govuk-tag", has_text="Linked record").count() > 0
    assert_accessible(page, "a summary with linked history")


REASON = "They must be kept apart: found a cell on another landing instead."


def test_cell_move_check_with_a_conflict_by_keyboard(new_context, live_service):
    """An officer checks moving someone into the cell of a person they must be kept apart from,
    by keyboard only: the non-association is named, an officer is not offered to go ahead over
    a stop, a decision sent without a choice gets an error summary, the cancellation is recorded
    with its reason, and the evidence page counts it."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    mover, other, cell, _ = kept_apart_pairs(world, prison)[0]
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/cell-moves")
    assert_accessible(page, "the cell-move check form")

    page.fill("#prison_number", "Z9999ZZ")
    page.fill("#cell", cell)
    with page.expect_navigation():
        page.click("button:has-text('Check the move')")
    summary = page.locator(".govuk-error-summary")
    assert summary.is_visible() and "Z9999ZZ" in summary.inner_text(), summary.inner_text()
    assert_accessible(page, "the cell-move check form with an unknown prisoner")

    page.goto(f"/prisons/{prison}/cell-moves")
    tab_to(page, "#prison_number")
    page.keyboard.type(mover)
    tab_to(page, "#cell")
    page.keyboard.type(cell)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/cell-moves/checks/" in page.url, page.url
    check_id = int(page.url.rsplit("/", 1)[1])
    conflicts = page.locator(".app-conflict")
    named = [conflicts.nth(i).inner_text() for i in range(conflicts.count())]
    non_association = rule_titles("non_association")
    assert any(other in text and any(t in text for t in non_association) for text in named), (
        f"no non-association with {other} among the conflicts: {named}")
    assert_accessible(page, "a cell-move check with a conflict")

    # Record the decision without choosing one: the decision error state.
    tab_to(page, "form button:has-text('Record the decision')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".govuk-error-summary").is_visible()
    assert page.title().startswith("Error: ")
    assert_accessible(page, "the decision's error state")

    # The officer cannot go ahead over a stop: cancel, with a reason.
    assert page.locator("input[name=decision][value=proceed]").count() == 0
    tab_to(page, "input[name=decision][value=cancel]")
    page.keyboard.press("Space")
    tab_to(page, "#reason")
    page.keyboard.type(REASON)
    tab_to(page, "form button:has-text('Record the decision')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Decision recorded: cancelled" in page.locator(".govuk-notification-banner").inner_text()
    with world.engine.connect() as conn:
        decision, reason = conn.execute(sa.text(
            "SELECT decision, reason FROM move_checks WHERE check_id = :id"),
            {"id": check_id}).one()
    assert (decision, reason) == ("cancel", REASON)
    assert audit_rows(world, user_name=world.officer_a.name, outcome="decision",
                      prison_number=mover)
    assert_accessible(page, "a decided cell-move check")

    page.goto(f"/prisons/{prison}/cell-moves/evidence")
    evidence = page.locator("main table").first.inner_text()
    assert any(title in evidence for title in non_association)
    assert_accessible(page, "the warnings evidence page")


def test_only_a_safety_lead_goes_ahead_over_a_stop_and_says_why(new_context, live_service):
    """An officer who adds "go ahead" to the form by hand is refused and the attempt audited;
    the safety lead, opening the same check, may go ahead, but only with a reason."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    mover, other, cell, _ = kept_apart_pairs(world, prison)[1]
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/cell-moves")
    page.fill("#prison_number", mover)
    page.fill("#cell", cell)
    with page.expect_navigation():
        page.click("button:has-text('Check the move')")
    check_path = page.url.removeprefix(live_service.base_url)
    check_id = int(check_path.rsplit("/", 1)[1])
    page.evaluate("""() => { const radio = document.querySelector('input[name=decision]');
                             radio.value = 'proceed'; radio.checked = true; }""")
    page.fill("#reason", "Trying to go ahead anyway.")
    with page.expect_navigation():
        page.click("button:has-text('Record the decision')")
    assert "Only a safety lead can proceed" in page.locator(".govuk-error-summary").inner_text()
    assert audit_rows(world, user_name=world.officer_a.name, outcome="denied",
                      prison_number=mover, action="cell-move decision")

    lead = new_context().new_page()
    sign_in(lead, world.safety_lead_a, next_path=check_path)
    lead.check("input[name=decision][value=proceed]")
    with lead.expect_navigation():
        lead.click("button:has-text('Record the decision')")
    assert "Enter why you are proceeding" in lead.locator(".govuk-error-summary").inner_text()
    assert_accessible(lead, "the override's error state")
    lead.check("input[name=decision][value=proceed]")
    lead.fill("#reason", f"Reviewed with the wing manager: {other} moves out today.")
    with lead.expect_navigation():
        lead.click("button:has-text('Record the decision')")
    assert "Decision recorded: go ahead" in lead.locator(".govuk-notification-banner").inner_text()
    with world.engine.connect() as conn:
        decided = conn.execute(sa.text(
            "SELECT decision, decided_by, decided_role FROM move_checks WHERE check_id = :id"),
            {"id": check_id}).one()
    assert tuple(decided) == ("proceed", world.safety_lead_a.name, "safety-lead")


def test_batch_check_finds_a_conflict_between_the_moves(new_context, live_service):
    """Two people to be kept apart, planned into one empty cell together: each move alone is
    fine, the plan check names the conflict on both lines as coming from the plan."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    pairs = [p for p in kept_apart_pairs(world, prison) if p[3] == "CELL"]
    assert pairs, f"no two people held in {prison} must be kept out of one cell"
    mover, other, _, _ = pairs[0]
    cell = empty_cell(world, prison)
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/cell-moves/batch")
    assert_accessible(page, "the batch check form")
    page.fill("#plan", f"{mover} {cell}\n{other} {cell}\n")
    with page.expect_navigation():
        page.click("button:has-text('Check the plan')")
    assert "/cell-moves/checks/" in page.url, page.url
    moves = page.locator("section.app-move")
    assert moves.count() == 2
    for i, partner in ((0, other), (1, mover)):
        text = moves.nth(i).inner_text()
        assert partner in text and "From the plan" in text, text
    assert_accessible(page, "a batch check with results")

    page.goto(f"/prisons/{prison}/cell-moves/batch")
    page.fill("#plan", "NOT A MOVE\n")
    with page.expect_navigation():
        page.click("button:has-text('Check the plan')")
    assert page.locator(".govuk-error-summary").is_visible()
    assert_accessible(page, "the batch check form with errors")


def test_denied_access_to_another_prisons_prisoner(new_context, live_service):
    """An officer of one prison who types the address of another prison's prisoner gets the 403
    page, and the admin finds the denied attempt on the audit page."""
    world = live_service.world
    theirs = held_prisoners(world, world.officer_b.prisons[0])[0]
    page = new_context().new_page()
    sign_in(page, world.officer_a)
    response = page.goto(f"/prisoners/{theirs}")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "You cannot see this page"
    assert theirs not in page.locator("main").inner_text()
    assert_accessible(page, "the 403 page for another prison's prisoner")

    admin = new_context().new_page()
    sign_in(admin, world.admin, next_path=f"/admin/audit?outcome=denied&prison_number={theirs}")
    assert admin.locator("#prison_number").input_value() == theirs
    table = admin.locator("table tbody").inner_text()
    assert world.officer_a.name in table and theirs in table and "denied" in table


def test_a_fresh_alert_appears_on_the_roll_after_a_sync(new_context, live_service):
    """An ACCT opened in the prison system (an OFFENDER_ALERTS row, as the live feed writes it)
    shows on the roll as "Open ACCT" once the next sync has run, and "data as at" moves on."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    with world.engine.connect() as conn:
        book_id, offender_id, number = conn.execute(sa.text(f"""
            WITH held AS ({HELD})
            SELECT h.offender_book_id, h.offender_id, h.prison_number FROM held h
            WHERE h.prison_id = :prison AND NOT EXISTS (
                SELECT 1 FROM nomis_offender_alerts a WHERE a.offender_book_id = h.offender_book_id
                AND a.alert_code = 'HA' AND a.alert_status = 'ACTIVE')
            ORDER BY h.prison_number DESC LIMIT 1"""), {"prison": prison}).one()
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/roll")
    assert "Open ACCT" not in roll_row(page, number).inner_text()
    as_at_before = page.locator("#data-as-at").inner_text()

    with world.engine.connect() as conn:
        raised = data_as_at(conn)[0] + dt.timedelta(minutes=5)  # after the last sync's as-at
    writer = sa.create_engine(world.settings.prison_db_url)  # the sync's own is read-only
    with writer.begin() as conn:
        seq = conn.execute(sa.text("SELECT COALESCE(MAX(ALERT_SEQ), 0) + 1 FROM OFFENDER_ALERTS "
                                   "WHERE OFFENDER_BOOK_ID = :book"), {"book": book_id}).scalar()
        stamp = raised.strftime("%Y-%m-%d %H:%M:%S")
        conn.execute(sa.text(
            "INSERT INTO OFFENDER_ALERTS (OFFENDER_BOOK_ID, ALERT_SEQ, ROOT_OFFENDER_ID,"
            " ALERT_DATE, ALERT_TYPE, ALERT_CODE, ALERT_STATUS, EXPIRY_DATE, CREATE_USER_ID,"
            " CREATE_DATETIME, MODIFY_DATETIME) VALUES (:book, :seq, :offender, :day, 'H', 'HA',"
            " 'ACTIVE', NULL, 'BROWSER_TEST', :stamp, :stamp)"),
            {"book": book_id, "seq": seq, "offender": offender_id,
             "day": raised.date().isoformat(), "stamp": stamp})
    writer.dispose()
    page.reload()
    assert "Open ACCT" not in roll_row(page, number).inner_text(), "shown before any sync"

    result = world.sync()
    assert result.read.get("OFFENDER_ALERTS", 0) >= 1
    page.reload()
    assert "Open ACCT" in roll_row(page, number).inner_text()
    assert page.locator("#data-as-at").inner_text() != as_at_before
    page.select_option("#flag", "open_acct")
    with page.expect_navigation():
        page.click("button:has-text('Apply filters')")
    roll_row(page, number)


def test_another_prisons_pages_and_people_are_refused(new_context, live_service):
    """An officer of one prison gets the 403 page for the other prison's overview, roll and
    cell-move pages, and their own cell-move form names nobody from the other prison."""
    world = live_service.world
    mine, theirs = world.officer_a.prisons[0], world.officer_b.prisons[0]
    page = new_context().new_page()
    sign_in(page, world.officer_a)
    for path in (f"/prisons/{theirs}", f"/prisons/{theirs}/roll",
                 f"/prisons/{theirs}/cell-moves", f"/prisons/{theirs}/cell-moves/evidence"):
        response = page.goto(path)
        assert response.status == 403, f"{path}: {response.status}"
        assert page.locator("h1").inner_text() == "You cannot see this page"
    assert len(audit_rows(world, user_name=world.officer_a.name, outcome="denied",
                          prison_id=theirs)) >= 4

    their_prisoner = held_prisoners(world, theirs)[0]
    with world.engine.connect() as conn:
        surname = conn.execute(sa.text(
            "SELECT last_name FROM nomis_offenders WHERE offender_id_display = :n "
            "AND alias_offender_id IS NULL"), {"n": their_prisoner}).scalars().first()
    page.goto(f"/prisons/{mine}/cell-moves")
    page.fill("#prison_number", their_prisoner)
    page.fill("#cell", empty_cell(world, mine))
    with page.expect_navigation():
        page.click("button:has-text('Check the move')")
    assert page.locator(".govuk-error-summary").is_visible()
    assert surname.strip().casefold() not in page.locator("main").inner_text().casefold()


def test_a_form_without_its_csrf_token_is_refused(new_context, live_service):
    """A cell-move check posted with a forged token gets the accessible "form has expired"
    page, and nothing is checked."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    mover, _, cell, _ = kept_apart_pairs(world, prison)[0]
    page = new_context().new_page()
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/cell-moves")
    with world.engine.connect() as conn:
        checks_before = conn.execute(sa.text("SELECT COUNT(*) FROM move_checks")).scalar()
    page.fill("#prison_number", mover)
    page.fill("#cell", cell)
    page.evaluate("""() => document.querySelectorAll('main input[name=csrf_token]')
                             .forEach(input => { input.value = 'forged'; })""")
    with page.expect_navigation() as navigation:
        page.click("button:has-text('Check the move')")
    assert navigation.value.status == 403
    assert page.locator("h1").inner_text() == "The form has expired"
    assert_accessible(page, "the expired form page")
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM move_checks")).scalar() == checks_before


# ---------------------------------------------------------------------------------------------
# Keyboard focus

_FOCUS_LOOK = """el => { const s = getComputedStyle(el);
    return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow, s.backgroundColor,
            s.color, s.textDecorationLine, s.textDecorationThickness].join('|'); }"""


def tab_stops_without_a_visible_focus(page) -> list[str]:
    """Tab through the whole page once; the tab stops whose look does not change when they
    have the keyboard focus (WCAG 2.4.7 Focus Visible), as short HTML."""
    page.evaluate("""look => {
        const focusables = document.querySelectorAll(
            'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]');
        focusables.forEach((el, i) => { el.dataset.focusIndex = i;
                                        el.dataset.unfocusedLook = eval(look)(el); });
    }""", _FOCUS_LOOK)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    seen, missing = set(), []
    for _ in range(300):
        page.keyboard.press("Tab")
        index, unchanged, html = page.evaluate("""look => {
            const el = document.activeElement;
            if (!el || el === document.body) return [null, false, ''];
            return [el.dataset.focusIndex ?? el.outerHTML,
                    eval(look)(el) === el.dataset.unfocusedLook,
                    el.outerHTML.slice(0, 160)]; }""", _FOCUS_LOOK)
        if index is None or index in seen:
            break
        seen.add(index)
        if unchanged:
            missing.append(html)
    assert len(seen) > 3, f"the keyboard reached only {len(seen)} elements on {page.url}"
    return missing


def test_every_tab_stop_shows_the_focus(new_context, live_service):
    """On the sign-in page, the roll (with its sortable headers and filters), a cell-move check
    and the audit page, every element the keyboard reaches looks different when focused."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    page = open_page(new_context(), "/sign-in")
    # First, that the check finds a button whose focus is invisible, put there on purpose.
    page.evaluate("""() => { const probe = document.createElement('button');
        probe.textContent = 'probe'; probe.style.outline = 'none';
        document.querySelector('main').append(probe); }""")
    assert any("probe" in html for html in tab_stops_without_a_visible_focus(page))
    page.reload()
    problems = {"/sign-in": tab_stops_without_a_visible_focus(page)}
    sign_in(page, world.officer_a, next_path=f"/prisons/{prison}/roll")
    problems["roll"] = tab_stops_without_a_visible_focus(page)
    mover, _, cell, _ = kept_apart_pairs(world, prison)[0]
    page.goto(f"/prisons/{prison}/cell-moves")
    page.fill("#prison_number", mover)
    page.fill("#cell", cell)
    with page.expect_navigation():
        page.click("button:has-text('Check the move')")
    problems["a cell-move check"] = tab_stops_without_a_visible_focus(page)
    admin = new_context().new_page()
    sign_in(admin, world.admin, next_path="/admin/audit")
    problems["/admin/audit"] = tab_stops_without_a_visible_focus(admin)
    problems = {where: found for where, found in problems.items() if found}
    assert not problems, "no visible focus:\n" + "\n".join(
        f"{where}: {html}" for where, found in problems.items() for html in found)


# ---------------------------------------------------------------------------------------------
# On a narrow screen

MAIN_PAGES = ("/prisons/{prison}", "/prisons/{prison}/roll",
              "/prisons/{prison}/roll?flag=risk_to_staff&sort=name&order=desc",
              "/prisons/{prison}/cell-moves", "/prisons/{prison}/cell-moves/batch",
              "/prisons/{prison}/cell-moves/evidence")


# 320 CSS pixels: a 1280-pixel screen zoomed to 400%, the width WCAG 1.4.10 (Reflow) asks for.
NARROW = {"width": 320, "height": 640}


def test_pages_reflow_on_a_narrow_screen(new_context, live_service):
    """At 320 CSS pixels every page passes axe (a table that scrolls in its own box must be
    reachable by keyboard) and only tables scroll sideways, never the page."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    summary = held_prisoners(world, prison)[0]
    pages = {world.officer_a: [*(p.format(prison=prison) for p in MAIN_PAGES),
                               f"/prisoners/{summary}"],
             world.admin: ["/admin/audit", "/admin/users"]}
    sideways = []
    for account, paths in pages.items():
        page = new_context(**NARROW).new_page()
        sign_in(page, account)
        for path in paths:
            page.goto(path)
            assert_accessible(page, f"{path} at 320 pixels")
            if page.evaluate("document.documentElement.scrollWidth") > NARROW["width"]:
                sideways.append(path)
    assert not sideways, f"these pages scroll sideways at {NARROW['width']} pixels: {sideways}"


# ---------------------------------------------------------------------------------------------
# Without JavaScript


def test_sign_in_and_audit_filter_work_without_javascript(new_context, live_service):
    """With JavaScript off, the sign-in form, the audit filter and sign-out still work."""
    world = live_service.world
    page = new_context(javascript=False).new_page()
    sign_in(page, world.admin, next_path="/admin/audit")
    assert page.url.endswith("/admin/audit")
    page.select_option("#outcome", "sign_in")
    with page.expect_navigation():
        page.click("button:has-text('Apply filters')")
    assert "outcome=sign_in" in page.url
    assert "sign in" in page.locator("table").inner_text()
    with page.expect_navigation():
        page.click("form.app-sign-out button")
    assert page.url.endswith("/sign-in")


def test_the_officers_pages_work_without_javascript(new_context, live_service):
    """With JavaScript off: the overview, the roll filtered and sorted by its header links, a
    prisoner's summary, and a cell-move check through to its recorded decision."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    page = new_context(javascript=False).new_page()
    sign_in(page, world.officer_a)
    assert page.url.endswith(f"/prisons/{prison}")

    page.goto(f"/prisons/{prison}/roll")
    page.select_option("#flag", "risk_to_staff")
    with page.expect_navigation():
        page.click("button:has-text('Apply filters')")
    assert "flag=risk_to_staff" in page.url
    with page.expect_navigation():
        page.click("#roll-table thead th:first-child a")
    assert "sort=name" in page.url and "flag=risk_to_staff" in page.url
    names = page.locator("#roll-table tbody td:first-child a").all_inner_texts()
    assert len(names) > 1
    with page.expect_navigation():
        page.click("#roll-table thead th:first-child a")
    assert page.locator("#roll-table tbody td:first-child a").all_inner_texts() == names[::-1]

    number = page.locator("#roll-table tbody td:first-child .govuk-body-s").first.inner_text()
    with page.expect_navigation():
        page.locator("#roll-table tbody tr a").first.click()
    assert page.url.endswith(f"/prisoners/{number}")

    mover, other, cell, _ = kept_apart_pairs(world, prison)[-1]
    page.goto(f"/prisons/{prison}/cell-moves")
    page.fill("#prison_number", mover)
    page.fill("#cell", cell)
    with page.expect_navigation():
        page.click("button:has-text('Check the move')")
    assert other in page.locator("main").inner_text()
    page.check("input[name=decision][value=cancel]")
    page.fill("#reason", "Checked with JavaScript off.")
    with page.expect_navigation():
        page.click("button:has-text('Record the decision')")
    assert "Decision recorded: cancelled" in page.locator(".govuk-notification-banner").inner_text()


def test_the_roll_sorts_names_as_officers_read_them(new_context, live_service):
    """Sorted by name, the roll lists people in the order of their names as shown."""
    world = live_service.world
    page = new_context(javascript=False).new_page()
    sign_in(page, world.officer_a,
            next_path=f"/prisons/{world.officer_a.prisons[0]}/roll?sort=name&order=asc")
    names = page.locator("#roll-table tbody td:first-child a").all_inner_texts()
    assert names == sorted(names, key=str.casefold), names


def test_main_pages_are_accessible_as_drawn_without_javascript(new_context, live_service):
    """The main pages as a browser without JavaScript draws them (the service's scripts are not
    loaded, so no component is enhanced) pass axe too, wide and narrow."""
    world = live_service.world
    prison = world.officer_a.prisons[0]
    context = new_context()
    context.route(re.compile(r"\.m?js(\?.*)?$"), lambda route: route.abort())
    page = context.new_page()
    sign_in(page, world.officer_a)
    summary = held_prisoners(world, prison)[0]
    for path in (*MAIN_PAGES, f"/prisoners/{summary}"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(path.format(prison=prison))
        assert not page.evaluate("document.body.classList.contains('js-enabled')")
        assert_accessible(page, f"{path} without the service's scripts")
        page.set_viewport_size(NARROW)
        assert_accessible(page, f"{path} without the service's scripts, at 320 pixels")
