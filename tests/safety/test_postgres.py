"""The safety domain on PostgreSQL (the store for several web workers): the same queries give
the same roll, checks, plans, decisions and evidence as on SQLite."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from prison_world import PrisonWorld

from justice.safety.batch import check_plan, parse_plan
from justice.safety.cell_moves import check_move, load_check, record_decision, save_checks
from justice.safety.evidence import rule_evidence
from justice.safety.roll import build_roll
from justice.safety.summary import build_summary


@pytest.fixture
def pg_store(postgres_url):
    from justice.serving.store import create_store_engine, metadata

    name = f"t_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    server.dispose()
    engine = create_store_engine(
        sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    )
    import justice.safety.cell_moves
    import justice.serving.mirror  # noqa: F401

    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_the_domain_on_postgresql(pg_store, rules):
    world = PrisonWorld(pg_store)
    world.prison("MDI", "HMP Moorland")
    a = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.incident(
        "SELF_HARM",
        days_ago=900,
        parties=[(world.earlier_record(a, "Z1111ZZ"), "SELF_HARMER")],
        prison_id="OUT",
    )
    b = world.prisoner("A0002AA", "MDI", "B-1-001")
    world.csra(b, "HIGH")
    world.non_association(a, b, "LANDING")
    world.linked(b, "court_conviction", "Robbery", is_violence=True)

    with pg_store.begin() as conn:
        roll = build_roll(conn, rules, "MDI", world.today, sort="flags", descending=True)
        assert [set(r.flags) for r in roll.rows] == [
            {"csra_high", "risk_to_others"},
            {"self_harm_history"},
        ]
        assert (
            build_summary(conn, rules, a.person_id, world.today)
            .earlier_records[0]
            .record.prison_number
            == "Z1111ZZ"
        )
        check = check_move(conn, rules, "MDI", "A0001AA", "B-1-001", world.today)
        assert {c.rule.id for c in check.conflicts} == {
            "non-association-landing",
            "csra-high-shared-cell",
            "violence-shared-cell",
        }
        [check_id] = save_checks(
            conn,
            [check],
            prison_id="MDI",
            user_name="lead",
            rules_version=rules.version,
            data_as_at=None,
        )
        record_decision(
            conn,
            load_check(conn, check_id),
            "cancel",
            "keep apart",
            user_name="lead",
            role="safety-lead",
        )
        moves, _ = parse_plan("A0001AA B-2-001\nA0002AA B-2-002")
        plan, errors = check_plan(conn, rules, "MDI", moves, world.today)
        assert errors == [] and {c.rule.id for c in plan.checks[0].conflicts} == {
            "non-association-landing",
            "self-harm-history-alone",
        }
        by_rule, no_conflict = rule_evidence(conn, rules, ["MDI"])
    counts = {e.rule_id: (e.checks, e.cancelled, e.linked_only) for e in by_rule if e.checks}
    assert no_conflict.checks == 0
    assert counts == {
        "non-association-landing": (1, 1, 0),
        "csra-high-shared-cell": (1, 1, 0),
        "violence-shared-cell": (1, 1, 1),
    }
