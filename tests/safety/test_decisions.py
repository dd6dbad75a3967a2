"""Decisions on recorded checks: reasons, who may override a stop, once only; and the evidence
counts by rule."""

from __future__ import annotations

import pytest

from justice.safety.batch import check_plan, parse_plan
from justice.safety.cell_moves import (
    DecisionError,
    check_move,
    load_check,
    record_decision,
    save_checks,
)
from justice.safety.evidence import rule_evidence


def _saved(store, rules, world, number, cell):
    with store.begin() as conn:
        check = check_move(conn, rules, "MDI", number, cell, world.today)
        [check_id] = save_checks(
            conn,
            [check],
            prison_id="MDI",
            user_name="officer",
            rules_version=rules.version,
            data_as_at=None,
        )
        return check_id


def _decide(store, check_id, decision, reason="", role="officer"):
    with store.begin() as conn:
        record_decision(
            conn, load_check(conn, check_id), decision, reason, user_name="someone", role=role
        )


@pytest.fixture
def setup(world):
    acct = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.alert(acct, "HA")  # moving alone: a warning
    world.prisoner("A0002AA", "MDI", "A-1-002")
    world.prisoner("A0003AA", "MDI", "A-1-002")  # A-1-002 full: a stop
    world.prisoner("A0004AA", "MDI", "A-2-001")
    return world


def test_a_warning_needs_a_reason_either_way(store, rules, setup):
    check_id = _saved(store, rules, setup, "A0001AA", "B-1-001")
    with pytest.raises(DecisionError, match="Enter why you are proceeding despite the warnings"):
        _decide(store, check_id, "proceed")
    with pytest.raises(DecisionError, match="Enter why you are cancelling"):
        _decide(store, check_id, "cancel", "   ")
    _decide(store, check_id, "proceed", "ACCT case manager agreed at the review")
    with store.connect() as conn:
        saved = load_check(conn, check_id)
    assert (
        saved.decision == "proceed"
        and saved.rows[0].reason == "ACCT case manager agreed at the review"
    )
    assert [c.rule_id for c in saved.conflicts] == ["acct-alone"]
    with pytest.raises(DecisionError, match="already decided"):
        _decide(store, check_id, "cancel", "changed my mind")


def test_a_stop_only_a_safety_lead_can_override(store, rules, setup):
    check_id = _saved(store, rules, setup, "A0004AA", "A-1-002")
    with pytest.raises(DecisionError, match="Only a safety lead can proceed"):
        _decide(store, check_id, "proceed", "needed the space")
    with pytest.raises(DecisionError, match="Select whether"):
        _decide(store, check_id, "", "x", role="safety-lead")
    _decide(
        store, check_id, "proceed", "One occupant leaves for court this morning", role="safety-lead"
    )


def test_a_clean_move_needs_no_reason(store, rules, setup):
    check_id = _saved(store, rules, setup, "A0004AA", "B-2-001")
    _decide(store, check_id, "proceed")


def test_evidence_counts_checks_and_decisions_by_rule(store, rules, setup):
    _decide(
        store, _saved(store, rules, setup, "A0001AA", "B-1-001"), "cancel", "wait for ACCT review"
    )
    _decide(store, _saved(store, rules, setup, "A0001AA", "B-1-002"), "proceed", "agreed")
    _saved(store, rules, setup, "A0001AA", "B-1-003")  # undecided
    _decide(store, _saved(store, rules, setup, "A0004AA", "A-1-002"), "cancel", "full")
    _decide(store, _saved(store, rules, setup, "A0004AA", "B-2-002"), "proceed")
    with store.connect() as conn:
        by_rule, clean = rule_evidence(conn, rules, ["MDI"])
    got = {
        e.rule_id: (e.checks, e.proceeded, e.cancelled, e.undecided) for e in by_rule if e.checks
    }
    assert got == {"acct-alone": (3, 1, 1, 1), "cell-full": (1, 0, 1, 0)}
    assert (clean.checks, clean.proceeded, clean.cancelled) == (1, 1, 0)
    assert {e.rule_id for e in by_rule} >= {r.id for r in rules.move_rules}
    with store.connect() as conn:
        assert rule_evidence(conn, rules, ["LEI"])[1].checks == 0


def test_a_plan_is_recorded_and_decided_whole(store, rules, setup):
    moves, _ = parse_plan("A0001AA A-2-001\nA0004AA B-1-001")
    with store.begin() as conn:
        plan, _ = check_plan(conn, rules, "MDI", moves, setup.today)
        ids = save_checks(
            conn,
            plan.checks,
            prison_id="MDI",
            user_name="officer",
            rules_version=rules.version,
            data_as_at=None,
            batch=True,
        )
    with store.connect() as conn:
        saved = load_check(conn, ids[1])
    assert saved.check_ids == tuple(ids) and [r.line_no for r in saved.rows] == [1, 2]
    assert saved.warnings == 1  # A0001AA (open ACCT) ends up alone: A0004AA leaves the cell
    _decide(store, ids[0], "proceed", "agreed with the ACCT case manager")
    with store.connect() as conn:
        assert {r.decision for r in load_check(conn, ids[1]).rows} == {"proceed"}


def test_a_store_from_an_earlier_version_gains_the_new_columns(tmp_path):
    from justice.safety.cell_moves import add_missing_columns, move_check_conflicts, move_checks
    from justice.serving.store import create_store_engine

    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    move_checks.create(engine)
    move_check_conflicts.create(engine)
    with engine.begin() as conn:  # as an earlier version made them
        conn.exec_driver_sql("ALTER TABLE move_checks DROP COLUMN prisoner_name")
        conn.exec_driver_sql("ALTER TABLE move_check_conflicts DROP COLUMN related_lines")
    assert add_missing_columns(engine) == [
        "move_checks.prisoner_name",
        "move_check_conflicts.related_lines",
    ]
    assert add_missing_columns(engine) == []
