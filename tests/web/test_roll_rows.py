"""The roll's rows are drawn once and kept with the cached row: still escaped, drawn once."""

from __future__ import annotations

import datetime as dt

from justice.safety.facts import Booking, PersonSafety
from justice.safety.locations import Cell
from justice.safety.roll import RollRow
from justice.safety.rules import load_rules
from justice.web.safety import roll_rows_html


def _row(last_name: str, number: str) -> RollRow:
    booking = Booking(
        offender_book_id=1, offender_id=1, prison_number=number, first_name="JO",
        last_name=last_name, birth_date=dt.date(1990, 1, 1), sex_code="M", prison_id="MDI",
        cell_id=10, begin_date=dt.date(2025, 1, 1),
    )
    cell = Cell(10, "A-1-<001>", 1, 2, "A-1", 3, "A", True)
    return RollRow(PersonSafety("p1", booking), cell, {}, [], {30: 2, 90: 5})


def test_a_row_is_escaped_and_drawn_once():
    rules = load_rules()
    row = _row('<script>alert("x")</script>', "A0001AA")
    html = roll_rows_html([row], rules)
    assert "<script>" not in html and "&lt;script&gt;" in html and "A-1-&lt;001&gt;" in html
    assert 'href="/prisoners/A0001AA"' in html and 'data-sort-value="5">5</td>' in html
    assert row.html is not None
    row.html = row.html.replace("A0001AA", "kept")  # the kept drawing is what is joined again
    assert "kept" in roll_rows_html([row], rules)
    other = _row("SMITH", "A0002AA")
    both = roll_rows_html([other, row], rules)
    assert both.index("A0002AA") < both.index("kept") and both.count("<tr ") == 2


def test_the_filter_lists_are_kept_per_data_version_and_filter():
    import sqlalchemy as sa

    from justice.safety.locations import PrisonLayout
    from justice.safety.roll import Roll
    from justice.web.safety import roll_filters_html

    rules = load_rules()
    labels = {name: f.label for name, f in rules.flags.items()}
    layout = PrisonLayout("ZZT", "HMP Test", wings={3: "A"}, landings={2: (3, "A-1")})
    first = next(iter(labels))
    filters = {"wing": "A", "landing": "", "flag": ""}
    today = dt.date(2026, 3, 27)

    def lists(counts, version, filters=filters, errors=None):
        roll = Roll(layout, [], 0, {first: counts})
        with sa.create_engine("sqlite://").connect() as conn:
            return roll_filters_html(conn, roll, rules, today, version, filters, labels,
                                     errors or {})

    one = lists(4, version=1)
    assert f"{labels[first]} (4)" in one and '<option value="A" selected>' in one
    assert lists(5, version=1) == one  # same data version and filter: the lists kept
    assert f"{labels[first]} (5)" in lists(5, version=2)  # a new sync: drawn again
    assert f"{labels[first]} (6)" in lists(6, version=None)  # never synced: never kept
    other = lists(7, version=1, filters={**filters, "wing": ""})
    assert f"{labels[first]} (7)" in other and '<option value="A" selected>' not in other
    wrong = lists(7, version=1, errors={"wing": "There is no wing Q"})
    assert "There is no wing Q" in wrong
