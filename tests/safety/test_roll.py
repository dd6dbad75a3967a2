"""The roll: each flag from the facts that raise it, including facts found only under an earlier
prison number; filters, sorting and incident windows; and the establishment overview."""

from __future__ import annotations

from justice.safety.overview import build_overview
from justice.safety.roll import NON_ASSOCIATION_FLAG, build_roll


def _roll(store, rules, world, **kw):
    with store.connect() as conn:
        return build_roll(conn, rules, "MDI", world.today, **kw)


def _flags(roll, number):
    row = next(r for r in roll.rows if r.person.booking.prison_number == number)
    return row


def test_each_flag_comes_from_its_facts(store, rules, world):
    acct = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.alert(acct, "HA")
    closed_acct = world.prisoner("A0002AA", "MDI", "A-1-002")
    world.alert(closed_acct, "HA", status="INACTIVE")  # closed: no open ACCT
    staff = world.prisoner("A0003AA", "MDI", "A-1-003")
    world.incident("ASSAULT_ON_STAFF", days_ago=400, parties=[(staff, "PERPETRATOR")])
    victim = world.prisoner("A0004AA", "MDI", "A-2-001")
    other = world.prisoner("A0005AA", "MDI", "A-2-002")
    world.incident(
        "ASSAULT_ON_PRISONER", days_ago=10, parties=[(other, "PERPETRATOR"), (victim, "VICTIM")]
    )
    high = world.prisoner("A0006AA", "MDI", "A-2-003")
    world.csra(high, "STANDARD", days_ago=100)
    world.csra(high, "HIGH", days_ago=5)
    females = world.prisoner("A0007AA", "MDI", "B-1-001")
    world.alert(females, "XRF")
    court = world.prisoner("A0008AA", "MDI", "B-1-002")
    world.linked(court, "court_conviction", "Wounding with intent", is_violence=True)
    theft = world.prisoner("A0009AA", "MDI", "B-1-003")
    world.linked(theft, "court_conviction", "Theft from a shop", is_violence=False)

    roll = _roll(store, rules, world)
    flags = {r.person.booking.prison_number: set(r.flags) for r in roll.rows}
    assert flags["A0001AA"] == {"open_acct"}
    assert flags["A0002AA"] == set()
    assert flags["A0003AA"] == {"risk_to_staff"}
    assert flags["A0004AA"] == set()  # a victim is not a risk to others
    assert flags["A0005AA"] == {"risk_to_others"}
    assert flags["A0006AA"] == {"csra_high"}
    assert flags["A0007AA"] == {"risk_to_females"}
    assert flags["A0008AA"] == {"risk_to_others"}
    assert _flags(roll, "A0008AA").flags["risk_to_others"].linked_only
    assert flags["A0009AA"] == set()
    assert _flags(roll, "A0004AA").incidents == {30: 1, 90: 1}
    assert _flags(roll, "A0003AA").incidents == {30: 0, 90: 0}


def test_self_harm_found_only_under_an_earlier_prison_number(store, rules, world):
    now = world.prisoner("A1000AA", "MDI", "A-1-001")
    earlier = world.earlier_record(now, "Z9999ZZ", method="scored", confidence=0.91)
    world.incident("SELF_HARM", days_ago=1500, parties=[(earlier, "SELF_HARMER")], prison_id="OUT")
    unlinked = world.prisoner("A2000AA", "MDI", "A-1-002")
    # Someone else's self-harm must not show on A2000AA: different person, no link.
    stranger = world.prisoner("A3000AA", "MDI", "A-1-003", person_id="person-stranger")
    world.incident("SELF_HARM", days_ago=30, parties=[(stranger, "SELF_HARMER")])

    roll = _roll(store, rules, world)
    flag = _flags(roll, "A1000AA").flags["self_harm_history"]
    assert flag.linked_only
    [evidence] = flag.evidence
    assert evidence.source.record == "Z9999ZZ"
    assert "earlier prison number Z9999ZZ" in evidence.source.describe()
    assert "not yet confirmed in the person index" in evidence.source.describe()
    assert "self_harm_history" not in _flags(roll, unlinked.prison_number).flags
    assert not _flags(roll, "A3000AA").flags["self_harm_history"].linked_only


def test_non_association_on_the_same_wing_either_way_round(store, rules, world):
    a = world.prisoner("A0001AA", "MDI", "A-1-001")
    b = world.prisoner("A0002AA", "MDI", "A-2-003")  # same wing A, other landing
    c = world.prisoner("A0003AA", "MDI", "B-1-001")  # wing B
    world.non_association(a, b, "CELL")
    world.non_association(c, a, "WING")
    world.non_association(a, world.prisoner("A0004AA", "MDI", "A-1-002"), "CELL", expired=True)

    roll = _roll(store, rules, world)
    on_wing = {
        r.person.booking.prison_number: [
            na.other_prison_number for na in r.non_associations_on_wing
        ]
        for r in roll.rows
    }
    assert on_wing == {"A0001AA": ["A0002AA"], "A0002AA": ["A0001AA"], "A0003AA": [], "A0004AA": []}
    assert roll.flag_counts[NON_ASSOCIATION_FLAG] == 2


def test_filters_and_sorting(store, rules, world):
    world.alert(world.prisoner("A0003AA", "MDI", "A-1-001", last="CLARK"), "HA")
    world.prisoner("A0001AA", "MDI", "A-2-001", last="ADAMS")
    world.prisoner("A0002AA", "MDI", "B-1-001", last="BAKER")
    numbers = lambda roll: [r.person.booking.prison_number for r in roll.rows]
    assert numbers(_roll(store, rules, world)) == ["A0003AA", "A0001AA", "A0002AA"]  # by cell
    assert numbers(_roll(store, rules, world, sort="name")) == ["A0001AA", "A0002AA", "A0003AA"]
    assert numbers(_roll(store, rules, world, sort="name", descending=True)) == [
        "A0003AA",
        "A0002AA",
        "A0001AA",
    ]
    assert numbers(_roll(store, rules, world, wing="A")) == ["A0003AA", "A0001AA"]
    assert numbers(_roll(store, rules, world, landing="A-2")) == ["A0001AA"]
    assert numbers(_roll(store, rules, world, flag="open_acct")) == ["A0003AA"]
    roll = _roll(store, rules, world, wing="B")
    assert roll.held == 3 and len(roll.rows) == 1


def test_overview_counts(store, rules, world):
    a = world.prisoner("A0001AA", "MDI", "A-1-001")
    b = world.prisoner("A0002AA", "MDI", "A-1-001")
    world.prisoner("A0003AA", "MDI", "B-2-003")
    world.alert(a, "HA")
    world.movement(a, to="MDI", frm="LEEDCRT")
    world.movement(b, to="OUT", frm="MDI", days_ago=1)  # yesterday: not today
    world.incident("SELF_HARM", days_ago=3, parties=[(a, "SELF_HARMER")])
    world.incident("ASSAULT_ON_PRISONER", days_ago=20, parties=[(b, "PERPETRATOR"), (a, "VICTIM")])
    world.incident("ASSAULT_ON_PRISONER", days_ago=45, parties=[(b, "PERPETRATOR"), (a, "VICTIM")])
    with store.connect() as conn:
        ov = build_overview(conn, rules, "MDI", world.today)
    assert (ov.held, ov.capacity, ov.free) == (3, 24, 21)
    assert (ov.in_today, ov.out_today) == (1, 0)
    assert ov.flag_counts["open_acct"] == 1 and ov.flag_counts["self_harm_history"] == 1
    assert ov.flag_counts["risk_to_others"] == 1
    assert ov.incidents == {"ASSAULT_ON_PRISONER": {7: 0, 30: 1}, "SELF_HARM": {7: 1, 30: 1}}
    assert [(w.wing, w.held, w.capacity) for w in ov.wings] == [("A", 2, 12), ("B", 1, 12)]


def test_the_roll_cache_keeps_rows_until_the_data_version_changes(store, rules, world):
    from justice.safety.roll import RollCache

    world.prisoner("A0001AA", "MDI", "A-1-001")
    cache = RollCache(max_entries=2)

    def numbers(version, **kw):
        with store.connect() as conn:
            roll = build_roll(conn, rules, "MDI", world.today, cache=cache, version=version, **kw)
        return [r.person.booking.prison_number for r in roll.rows]

    assert numbers(1) == ["A0001AA"]
    world.prisoner("A0002AA", "MDI", "B-1-001")
    assert numbers(1) == ["A0001AA"]  # same sync: the rows computed for it
    assert numbers(2) == ["A0001AA", "A0002AA"]  # a new sync run: computed again
    assert numbers(2, wing="B") == ["A0002AA"]  # filters apply to the cached rows
    assert numbers(None) == ["A0001AA", "A0002AA"]  # never synced: never cached
    numbers(3)
    numbers(4)
    assert len(cache._rows) == 2  # the oldest versions are dropped


def test_names_sort_and_show_as_officers_read_them(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001", last=" SPENCER", first="JOHN ")
    world.prisoner("A0002AA", "MDI", "A-1-002", last="AHEARNE")
    world.prisoner("A0003AA", "MDI", "A-1-003", last="O'BRIEN")
    roll = _roll(store, rules, world, sort="name")
    assert [r.person.booking.name for r in roll.rows] == [
        "Ahearne, John",
        "O'Brien, John",
        "Spencer, John",
    ]


def test_a_cached_view_is_the_roll_computed_afresh(store, rules, world):
    from justice.safety.roll import SORTS, RollCache

    for n, cell in enumerate(["A-1-001", "A-1-002", "A-2-001", "B-1-001", "B-1-002", None]):
        held = world.prisoner(f"A000{n}AA", "MDI", cell, last=["LEE", "ALI", "LEE"][n % 3])
        if n % 2:
            world.alert(held, "HA")
    cache = RollCache()
    views = [
        {"wing": wing, "landing": landing, "flag": flag, "sort": sort, "descending": desc}
        for wing, landing in [(None, None), ("A", None), ("A", "A-1"), ("Z", None)]
        for flag in [None, "open_acct"]
        for sort in SORTS
        for desc in (False, True)
    ]

    def seen(roll):
        return [r.person.booking.prison_number for r in roll.rows], roll.flag_counts, roll.held

    for _ in range(2):  # the second time from the cache's views
        for view in views:
            cached = _roll(store, rules, world, cache=cache, version=1, **view)
            assert seen(cached) == seen(_roll(store, rules, world, **view)), view
    whole = _roll(store, rules, world, cache=cache, version=1, **views[0])
    whole.rows.clear()  # a caller changing its roll leaves the cached view as it was
    again = _roll(store, rules, world, cache=cache, version=1, **views[0])
    assert len(again.rows) == 6 and seen(again) == seen(_roll(store, rules, world, **views[0]))
