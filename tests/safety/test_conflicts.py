"""Each cell-move rule fires on the facts it reads, within its scope, and not beyond it."""

from __future__ import annotations

import pytest

from justice.safety.cell_moves import MoveInputError, check_move


def _check(store, rules, world, number, cell):
    with store.connect() as conn:
        return check_move(conn, rules, "MDI", number, cell, world.today)


def _fired(check):
    return sorted((c.rule.id, c.other_prison_number) for c in check.conflicts)


def test_a_clean_move_has_no_conflict(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    check = _check(store, rules, world, "A0001AA", "A-1-002")
    assert check.conflicts == [] and check.from_cell.label == "A-1-001"
    assert [o.booking.prison_number for o in check.occupants] == ["A0002AA"]


def test_a_full_cell(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.prisoner("A0003AA", "MDI", "A-1-002")
    check = _check(store, rules, world, "a0001aa", "mdi-a-1-002")  # any case, with the prefix
    assert ("cell-full", None) in _fired(check)
    assert "A-1-002 has room for 2; with this move it would hold 3" in check.conflicts[0].message
    assert check.stops


@pytest.mark.parametrize(
    ("restriction", "target", "fires"),
    [
        ("CELL", "A-1-002", True),
        ("CELL", "A-1-003", False),
        ("LANDING", "A-1-003", True),
        ("LANDING", "A-2-001", False),
        ("WING", "A-2-001", True),
        ("WING", "B-1-001", False),
    ],
)
def test_non_association_by_its_restriction(store, rules, world, restriction, target, fires):
    mover = world.prisoner("A0001AA", "MDI", "B-2-003")
    other = world.prisoner("A0002AA", "MDI", "A-1-002")
    world.non_association(other, mover, restriction)  # recorded from the other side
    fired = _fired(_check(store, rules, world, "A0001AA", target))
    expected = [(f"non-association-{restriction.lower()}", "A0002AA")] if fires else []
    assert [f for f in fired if f[0].startswith("non-association")] == expected


def test_non_association_recorded_under_an_earlier_prison_number(store, rules, world):
    mover = world.prisoner("A0001AA", "MDI", "B-1-001")
    earlier = world.earlier_record(mover, "Z1234ZZ")
    enemy = world.prisoner("A0002AA", "MDI", "A-1-001")
    world.non_association(
        earlier, enemy, "LANDING", reason="GANG", role="NOT_RELEVANT", other_role="NOT_RELEVANT"
    )
    [conflict] = _check(store, rules, world, "A0001AA", "A-1-003").conflicts
    assert conflict.rule.id == "non-association-landing" and conflict.linked_only
    assert "Z1234ZZ" in conflict.evidence[0].text and "gang related" in conflict.message


def test_csra_high_in_a_shared_cell_either_way(store, rules, world):
    high = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.csra(high, "HIGH")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.prisoner("A0003AA", "MDI", "A-1-003")
    assert _fired(_check(store, rules, world, "A0001AA", "A-1-002")) == [
        ("csra-high-shared-cell", "A0001AA")
    ]
    assert _fired(_check(store, rules, world, "A0002AA", "A-1-001")) == [
        ("csra-high-shared-cell", "A0001AA")
    ]
    assert _fired(_check(store, rules, world, "A0001AA", "A-2-001")) == []  # empty cell


def test_risk_to_females_only_with_a_female_cellmate(store, rules, world):
    world.alert(world.prisoner("A0001AA", "MDI", "A-1-001"), "XRF")
    world.prisoner("A0002AA", "MDI", "A-1-002", sex="F")
    world.prisoner("A0003AA", "MDI", "A-1-003", sex="M")
    assert _fired(_check(store, rules, world, "A0001AA", "A-1-002")) == [
        ("risk-to-females", "A0001AA")
    ]
    assert _fired(_check(store, rules, world, "A0001AA", "A-1-003")) == []


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("XA", "arsonist-shared-cell"),
        ("XHT", "hostage-taker-shared-cell"),
        ("XR", "racist-shared-cell"),
        ("XCU", "controlled-unlock-shared-cell"),
    ],
)
def test_alerts_that_matter_in_a_shared_cell(store, rules, world, code, rule):
    world.alert(world.prisoner("A0001AA", "MDI", "A-1-001"), code)
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.alert(world.prisoner("A0003AA", "MDI", "A-1-003"), code, status="INACTIVE")
    assert _fired(_check(store, rules, world, "A0001AA", "A-1-002")) == [(rule, "A0001AA")]
    assert _fired(_check(store, rules, world, "A0002AA", "A-1-001")) == [
        (rule, "A0001AA")
    ]  # occupant's
    assert _fired(_check(store, rules, world, "A0001AA", "A-2-001")) == []  # alone
    assert _fired(_check(store, rules, world, "A0002AA", "A-1-003")) == []  # closed alert


def test_history_of_violence_including_a_court_conviction(store, rules, world):
    mover = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.linked(
        mover, "court_conviction", "Robbery", is_violence=True, system="crown", record="T2019"
    )
    world.prisoner("A0002AA", "MDI", "A-1-002")
    [conflict] = _check(store, rules, world, "A0001AA", "A-1-002").conflicts
    assert conflict.rule.id == "violence-shared-cell" and conflict.severity == "warning"
    assert conflict.linked_only and "Crown Court T2019, linked 92%" in conflict.message


def test_an_assault_between_cellmates_without_a_non_association(store, rules, world):
    mover = world.prisoner("A0001AA", "MDI", "A-1-001")
    occupant = world.prisoner("A0002AA", "MDI", "A-1-002")
    world.incident(
        "ASSAULT_ON_PRISONER", days_ago=300, parties=[(occupant, "PERPETRATOR"), (mover, "VICTIM")]
    )
    fired = _fired(_check(store, rules, world, "A0001AA", "A-1-002"))
    assert ("past-incident-between", "A0002AA") in fired
    assert ("violence-shared-cell", "A0002AA") in fired


def test_acct_and_self_harm_alone_and_a_new_cellmate_for_an_acct(store, rules, world):
    acct = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.alert(acct, "HA")
    world.prisoner("A0002AA", "MDI", "A-1-001")
    harm = world.prisoner("A0003AA", "MDI", "A-1-002")
    world.alert(harm, "HSH", status="INACTIVE", days_ago=900)  # a history: closed still counts
    assert _fired(_check(store, rules, world, "A0001AA", "A-2-001")) == [("acct-alone", "A0001AA")]
    assert _fired(_check(store, rules, world, "A0003AA", "A-2-001")) == [
        ("self-harm-history-alone", "A0003AA")
    ]
    assert _fired(_check(store, rules, world, "A0003AA", "A-1-001")) == [
        ("acct-new-cellmate", "A0001AA"),
        ("cell-full", None),
    ]


def test_moves_that_cannot_be_checked_say_why(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    world.prison("LEI", "HMP Leeds")
    world.prisoner("L0001LL", "LEI", "A-1-001")
    cases = [
        ("", "A-1-002", "prison_number", "Enter the prison number"),
        (
            "L0001LL",
            "A-1-002",
            "prison_number",
            "No one with prison number L0001LL is held in HMP Moorland",
        ),
        ("A0001AA", "", "cell", "Enter the cell"),
        ("A0001AA", "Z-9-999", "cell", "There is no cell Z-9-999 in HMP Moorland"),
        ("A0001AA", "A-1-001", "cell", "A0001AA is already in cell A-1-001"),
    ]
    for number, cell, field, message in cases:
        with pytest.raises(MoveInputError, match=message) as info:
            _check(store, rules, world, number, cell)
        assert info.value.field == field
