"""A plan of moves checked as a whole: conflicts between the moves that one-at-a-time checks
miss, capacity on the plan's end state, the order to make the moves in, and line-numbered errors."""

from __future__ import annotations

from justice.safety.batch import check_plan, parse_plan


def _plan(store, rules, world, text):
    moves, errors = parse_plan(text)
    assert errors == []
    with store.connect() as conn:
        plan, errors = check_plan(conn, rules, "MDI", moves, world.today)
    assert errors == []
    return plan


def _by_line(plan):
    return {c.line_no: c for c in plan.checks}


def test_parse_names_each_bad_line():
    moves, errors = parse_plan("A0001AA A-1-001\n\nnonsense\nA0002AA, A-1-002\nA B C\n")
    assert [(m.line_no, m.prison_number, m.cell_text) for m in moves] == [
        (1, "A0001AA", "A-1-001"),
        (4, "A0002AA", "A-1-002"),
    ]
    assert [str(e) for e in errors] == [
        "Line 3: write a prison number and a cell, like A1234BC A-1-012 (found 'nonsense')",
        "Line 5: write a prison number and a cell, like A1234BC A-1-012 (found 'A B C')",
    ]
    assert [str(e) for e in parse_plan("  \n")[1]] == [
        "Line 1: enter at least one move, one a line: prison number then cell"
    ]


def test_unknown_people_cells_and_repeats_name_the_line(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    moves, _ = parse_plan("A0001AA A-1-002\nX0000XX A-1-003\nA0001AA A-1-003\nA0001AA Q-1-1")
    with store.connect() as conn:
        plan, errors = check_plan(conn, rules, "MDI", moves, world.today)
    assert plan is None
    assert [str(e) for e in errors] == [
        "Line 2: No one with prison number X0000XX is held in HMP Moorland",
        "Line 3: A0001AA is already moved on line 1",
        (
            "Line 4: There is no cell Q-1-1 in HMP Moorland: write it as wing-landing-cell, "
            "for example A-1-012"
        ),
    ]


def test_two_non_associated_people_moved_onto_one_landing(store, rules, world):
    a = world.prisoner("A0001AA", "MDI", "A-1-001")
    b = world.prisoner("A0002AA", "MDI", "B-1-001")
    world.non_association(a, b, "LANDING")
    plan = _plan(store, rules, world, "A0001AA B-2-001\nA0002AA B-2-003\n")
    one, two = _by_line(plan)[1], _by_line(plan)[2]
    [c1], [c2] = one.conflicts, two.conflicts
    assert (c1.rule.id, c1.other_prison_number, c1.related_lines) == (
        "non-association-landing",
        "A0002AA",
        (2,),
    )
    assert (c2.rule.id, c2.other_prison_number, c2.related_lines) == (
        "non-association-landing",
        "A0001AA",
        (1,),
    )
    # Each move alone is fine (the other is still on wing B landing 1 or wing A): only the plan
    # shows it.
    assert c1.key in one.only_in_plan and c2.key in two.only_in_plan


def test_two_moves_into_the_last_free_place(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.prisoner("A0003AA", "MDI", "A-1-003")
    plan = _plan(store, rules, world, "A0002AA A-1-001\nA0003AA A-1-001")
    for line, other in ((1, 2), (2, 1)):
        full = [c for c in _by_line(plan)[line].conflicts if c.rule.id == "cell-full"]
        assert len(full) == 1 and full[0].related_lines == (other,)
        assert full[0].key in _by_line(plan)[line].only_in_plan
        assert "would hold 3" in full[0].message


def test_into_a_cell_while_its_occupant_moves_out_is_judged_on_the_end_state(store, rules, world):
    world.prisoner("A0001AA", "MDI", "A-1-001")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.prisoner("A0003AA", "MDI", "A-1-002")  # A-1-002 is full now
    plan = _plan(store, rules, world, "A0001AA A-1-002\nA0002AA A-2-001")
    first = _by_line(plan)[1]
    assert first.conflicts == []
    assert [c.rule.id for c in first.resolved_by_plan] == ["cell-full"]  # alone, it would be full
    assert plan.order == [2, 1] and plan.needs_spare_cell == []  # B must leave first


def test_a_swap_between_two_full_cells_needs_a_spare_cell(store, rules, world):
    for number, cell in (
        ("A0001AA", "A-1-001"),
        ("A0002AA", "A-1-001"),
        ("A0003AA", "A-1-002"),
        ("A0004AA", "A-1-002"),
    ):
        world.prisoner(number, "MDI", cell)
    plan = _plan(store, rules, world, "A0001AA A-1-002\nA0003AA A-1-001")
    assert all(not c.conflicts for c in plan.checks)
    assert plan.order == [] and plan.needs_spare_cell == [1, 2]


def test_a_new_cellmate_from_the_plan(store, rules, world):
    high = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.csra(high, "HIGH")
    world.prisoner("A0002AA", "MDI", "A-1-002")
    plan = _plan(store, rules, world, "A0001AA A-2-001\nA0002AA A-2-001")
    fired = {
        (c.line_no, x.rule.id, x.other_prison_number) for c in plan.checks for x in c.conflicts
    }
    assert fired == {
        (1, "csra-high-shared-cell", "A0001AA"),
        (2, "csra-high-shared-cell", "A0001AA"),
    }
