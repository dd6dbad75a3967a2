"""The safety pages through HTTP: what each shows, scoping by prison, CSRF and reasons on
decisions, and an audit row for every look at people's data.

The web core's seed (tests/web/conftest.py) gives prisons PRA and PRB and the accounts; a
PrisonWorld (tests/safety/prison_world.py) adds cells to PRA and the people each test is about.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from service_client import PRISON_A, PRISON_B, audit_rows, csrf_token

sys.path.insert(0, str(Path(__file__).parent.parent / "safety"))

from prison_world import PrisonWorld


@pytest.fixture
def world(engine) -> PrisonWorld:
    """PRA with wings A and B (two landings of three cells each), and some people:

    A0001AA  A-1-001  open ACCT; self-harm under an earlier number Z9999ZZ (scored link)
    A0002AA  A-1-002  CSRA high
    A0003AA  A-2-001  non-association (landing) with A0001AA
    """
    w = PrisonWorld(engine)
    w.prison(PRISON_A, exists=True)
    acct = w.prisoner(
        "A0001AA", PRISON_A, "A-1-001", last="ADAMS", first="ALAN", method="scored", confidence=0.93
    )
    w.alert(acct, "HA", raised_by="OFFICER_JONES")
    earlier = w.earlier_record(acct, "Z9999ZZ", confidence=0.9)
    w.incident("SELF_HARM", days_ago=1400, parties=[(earlier, "SELF_HARMER")], prison_id="OUT")
    w.linked(acct, "court_conviction", "Robbery", is_violence=True, system="crown", record="T2020")
    high = w.prisoner("A0002AA", PRISON_A, "A-1-002", last="BROWN", first="BEN")
    w.csra(high, "HIGH")
    enemy = w.prisoner("A0003AA", PRISON_A, "A-2-001", last="CLARK", first="CARL")
    w.non_association(
        enemy, acct, "LANDING", reason="GANG", role="NOT_RELEVANT", other_role="NOT_RELEVANT"
    )
    return w


def _post(client, url, data, page):
    return client.post(
        url, data={**data, "csrf_token": csrf_token(client, page)}, follow_redirects=False
    )


def _check(client, prison_number, cell):
    page = f"/prisons/{PRISON_A}/cell-moves"
    response = _post(client, page, {"prison_number": prison_number, "cell": cell}, page)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_overview(world, client_for, engine):
    officer = client_for("officer.a")
    html = officer.get(f"/prisons/{PRISON_A}").text
    assert "HMP Alpha" in html and "27 March 2026" in html
    held = re.search(r"In the establishment\s*</dt>\s*<dd[^>]*>\s*(\d+)", html)
    assert held and held.group(1) == "4"  # 3 in cells + the seed's A1111AA
    assert f'href="/prisons/{PRISON_A}/roll?wing=A"' in html
    assert audit_rows(
        engine, action="establishment overview", outcome="allowed", prison_id=PRISON_A
    )


def test_roll_shows_flags_with_linked_ones_marked(world, client_for, engine):
    html = client_for("officer.a").get(f"/prisons/{PRISON_A}/roll").text
    row = re.search(r"A0001AA.*?</tr>", html, re.DOTALL).group(0)
    assert "Open ACCT" in row and "Self-harm history" in row and "found in a linked record" in row
    assert "Non-association on wing (1)" in row
    assert "CSRA high" in re.search(r"A0002AA.*?</tr>", html, re.DOTALL).group(0)
    assert 'data-module="moj-sortable-table"' in html and 'aria-sort="ascending"' in html
    [row] = audit_rows(engine, action="view roll", outcome="allowed")
    assert row["prison_id"] == PRISON_A and row["user_name"] == "officer.a"


def test_roll_filters_sorts_and_refuses_an_unknown_filter(world, client_for):
    officer = client_for("officer.a")
    html = officer.get(f"/prisons/{PRISON_A}/roll?flag=csra_high").text
    assert "A0002AA" in html and "A0001AA" not in html and "Showing 1 of 4" in html
    html = officer.get(f"/prisons/{PRISON_A}/roll?sort=name&order=desc").text
    assert html.index("A0003AA") < html.index("A0002AA") < html.index("A0001AA")
    assert 'aria-sort="descending"' in html
    html = officer.get(f"/prisons/{PRISON_A}/roll?landing=A-2").text
    assert "A0003AA" in html and "A0002AA" not in html
    response = officer.get(f"/prisons/{PRISON_A}/roll?wing=Q")
    assert response.status_code == 400 and "There is no wing Q in HMP Alpha" in response.text
    assert "govuk-error-summary" in response.text


def test_summary_shows_history_from_linked_records(world, client_for, engine):
    response = client_for("officer.a").get("/prisoners/A0001AA")
    html = response.text
    assert response.status_code == 200 and "Alan Adams" in html
    assert 'role="img"' in html and "No photo held for Alan Adams" in html
    assert "OFFICER_JONES" in html  # who raised the alert
    assert "Z9999ZZ" in html and "Self harm" in html  # the earlier number's incident
    assert "Scored link" in html and "not yet confirmed in the person index" in html
    assert "Robbery" in html and "Crown Court record T2020" in html
    assert "Clark" in html and "Not on the same landing" in html
    [row] = audit_rows(engine, action="view_summary", prison_number="A0001AA")
    assert row["outcome"] == "allowed" and row["person_id"] == "person-A0001AA"


def test_another_prisons_officer_is_refused_everywhere(world, client_for, engine):
    other = client_for("officer.b")
    for url in (
        f"/prisons/{PRISON_A}",
        f"/prisons/{PRISON_A}/roll",
        "/prisoners/A0001AA",
        f"/prisons/{PRISON_A}/cell-moves",
        f"/prisons/{PRISON_A}/cell-moves/batch",
        f"/prisons/{PRISON_A}/cell-moves/evidence",
    ):
        assert other.get(url).status_code == 403, url
    denied = audit_rows(engine, outcome="denied", user_name="officer.b")
    assert len(denied) == 6 and {r["prison_number"] for r in denied} >= {"A0001AA"}
    # A check made in PRA is not reachable through PRB's pages either.
    location = _check(client_for("officer.a"), "A0002AA", "B-1-001")
    check_id = location.rsplit("/", 1)[1]
    assert other.get(f"/prisons/{PRISON_B}/cell-moves/checks/{check_id}").status_code == 403
    assert other.get(location).status_code == 403
    denied = audit_rows(engine, outcome="denied", user_name="officer.b")
    assert len(denied) == 8
    assert any(r["detail"] == f"check {check_id} is not this prison's" for r in denied)
    # Nor can a PRB officer check a PRA prisoner from their own prison's form.
    page = f"/prisons/{PRISON_B}/cell-moves"
    response = _post(other, page, {"prison_number": "A0001AA", "cell": "A-1-003"}, page)
    assert (
        response.status_code == 400
        and "No one with prison number A0001AA is held in HMP Bravo" in response.text
    )


def test_a_check_records_conflicts_and_is_audited(world, client_for, engine):
    officer = client_for("officer.a")
    html = officer.get(_check(officer, "A0001AA", "A-1-002")).text
    assert "Do not make this move without a safety lead" in html
    assert "CSRA high in a shared cell" in html and "Brown, Ben (A0002AA)" in html
    assert (
        "History of violence in a shared cell" in html
        and "Found only through linked records" in html
    )
    assert "This service does not move anyone" in html
    assert 'value="proceed"' not in html  # an officer is not offered a stop override
    [check] = audit_rows(engine, action="cell-move check")
    assert check["prison_number"] == "A0001AA" and check["person_id"] == "person-A0001AA"
    assert "stop(s)" in check["detail"]


def test_input_errors_use_the_error_summary(world, client_for):
    officer = client_for("officer.a")
    page = f"/prisons/{PRISON_A}/cell-moves"
    response = _post(officer, page, {"prison_number": "A0001AA", "cell": "Z-9-9"}, page)
    assert response.status_code == 400
    assert "govuk-error-summary" in response.text and 'href="#cell"' in response.text
    assert "There is no cell Z-9-9 in HMP Alpha" in response.text


def test_decisions_need_csrf_a_reason_and_a_safety_lead_for_a_stop(world, client_for, engine):
    officer, lead = client_for("officer.a"), client_for("lead.a")
    location = _check(officer, "A0001AA", "A-1-002")  # stops: CSRA high
    decide = location + "/decision"
    no_token = officer.post(
        decide, data={"decision": "cancel", "reason": "x"}, follow_redirects=False
    )
    assert no_token.status_code == 403
    response = _post(officer, decide, {"decision": "proceed", "reason": "want to"}, location)
    assert response.status_code == 400 and "Only a safety lead can proceed" in response.text
    assert audit_rows(engine, action="cell-move decision", outcome="denied")
    response = _post(lead, decide, {"decision": "proceed", "reason": ""}, location)
    assert (
        response.status_code == 400
        and "Enter why you are proceeding despite the warnings" in response.text
    )
    assert 'href="#reason"' in response.text
    response = _post(
        lead, decide, {"decision": "proceed", "reason": "Manager's risk assessment done"}, location
    )
    assert response.status_code == 303
    html = lead.get(response.headers["location"]).text
    assert "Decision recorded" in html and "Manager&#39;s risk assessment done" in html
    [decision] = audit_rows(engine, action="cell-move decision", outcome="decision")
    assert (
        decision["user_name"] == "lead.a"
        and "proceed over 1 stop(s) and 1 warning(s)" in decision["detail"]
    )
    response = _post(officer, decide, {"decision": "cancel", "reason": "late"}, location)
    assert response.status_code == 400 and "already decided" in response.text


def test_batch_check_names_bad_lines_and_finds_conflicts_between_moves(world, client_for, engine):
    officer = client_for("officer.a")
    page = f"/prisons/{PRISON_A}/cell-moves/batch"
    response = _post(officer, page, {"plan": "A0001AA B-1-001\nrubbish\nX1111XX A-1-003"}, page)
    assert response.status_code == 400
    assert "Line 2: write a prison number and a cell" in response.text
    # Both move onto landing B-2, so the landing non-association between them only the plan shows.
    response = _post(officer, page, {"plan": "A0001AA B-2-001\nA0003AA B-2-003"}, page)
    assert response.status_code == 303
    html = officer.get(response.headers["location"]).text
    assert "Line 1: Adams, Alan (A0001AA) from A-1-001 to B-2-001" in html and "Line 2:" in html
    assert "Non-association (must not share a landing)" in html and "From the plan" in html
    assert "Caused by the move on line 2" in html and "Caused by the move on line 1" in html
    assert "Order of the moves" not in html
    assert len(audit_rows(engine, action="cell-move plan check")) == 2


def test_a_plan_says_which_move_to_make_first(world, client_for):
    world.prisoner("A0004AA", PRISON_A, "A-1-002")  # A-1-002 is full now
    officer = client_for("officer.a")
    page = f"/prisons/{PRISON_A}/cell-moves/batch"
    response = _post(officer, page, {"plan": "A0003AA A-1-002\nA0002AA B-2-003"}, page)
    html = officer.get(response.headers["location"]).text
    assert "Make the moves in this order so no cell is ever over capacity: lines 2, 1." in html
    assert "The cell is full" not in html


def test_evidence_counts_cancelled_warnings(world, client_for):
    officer = client_for("officer.a")
    location = _check(officer, "A0002AA", "B-1-001")  # alone, no conflict
    _post(officer, location + "/decision", {"decision": "proceed"}, location)
    location = _check(officer, "A0001AA", "B-1-002")  # open ACCT alone: a warning
    _post(
        officer,
        location + "/decision",
        {"decision": "cancel", "reason": "ACCT review first"},
        location,
    )
    html = officer.get(f"/prisons/{PRISON_A}/cell-moves/evidence").text
    row = re.search(r'id="rule-acct-alone".*?</tr>', html, re.DOTALL).group(0)
    assert [int(n) for n in re.findall(r">(\d+)<", row)[:4]] == [1, 0, 1, 0] and "100%" in row
    clean = re.search(r'id="rule-none".*?</tr>', html, re.DOTALL).group(0)
    assert [int(n) for n in re.findall(r">(\d+)<", clean)[:4]] == [1, 1, 0, 0]


def test_every_safety_page_view_is_audited(world, client_for, engine):
    officer = client_for("officer.a")
    location = _check(officer, "A0002AA", "B-1-001")
    for url in (
        f"/prisons/{PRISON_A}",
        f"/prisons/{PRISON_A}/roll",
        "/prisoners/A0002AA",
        f"/prisons/{PRISON_A}/cell-moves",
        f"/prisons/{PRISON_A}/cell-moves/batch",
        f"/prisons/{PRISON_A}/cell-moves/evidence",
        location,
    ):
        before = len(audit_rows(engine, user_name="officer.a"))
        assert officer.get(url).status_code == 200, url
        assert len(audit_rows(engine, user_name="officer.a")) > before, url


def test_warming_the_roll_cache_after_a_sync(world, engine):
    import datetime as dt

    from justice.safety.clock import data_version, service_today
    from justice.safety.rules import load_rules
    from justice.serving.mirror import sync_runs
    from justice.web.safety import roll_cache, warm_roll_cache

    assert warm_roll_cache(engine) == [PRISON_A, PRISON_B]  # never synced: nothing kept
    with engine.begin() as conn:
        conn.execute(
            sync_runs.insert().values(
                started_at=dt.datetime(2026, 3, 27, 9), finished_at=dt.datetime(2026, 3, 27, 9, 1)
            )
        )
    roll_cache._rows.clear()
    assert warm_roll_cache(engine) == [PRISON_A, PRISON_B]  # none in use yet: the largest
    assert len(roll_cache._rows) == 2
    # After a new sync only the establishments in use are computed again.
    with engine.begin() as conn:
        conn.execute(
            sync_runs.insert().values(
                started_at=dt.datetime(2026, 3, 27, 9, 2), finished_at=dt.datetime(2026, 3, 27, 9, 3)
            )
        )
    roll_cache._rows.clear()
    with engine.connect() as conn:
        roll_cache.rows(conn, load_rules(), PRISON_B, service_today(conn), data_version(conn) - 1)
    assert warm_roll_cache(engine) == [PRISON_B]
