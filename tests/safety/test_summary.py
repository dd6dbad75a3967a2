"""The prisoner summary: what linked records hold, marked with source and link confidence;
non-associations with where the other person is; cellmates."""

from __future__ import annotations

from justice.safety.summary import build_summary


def _summary(store, rules, world, held):
    with store.connect() as conn:
        return build_summary(conn, rules, held.person_id, world.today)


def test_history_from_linked_records(store, rules, world):
    me = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.alert(me, "XSA", days_ago=10, raised_by="JSMITH_GEN")
    old = world.earlier_record(me, "Z9999ZZ", confidence=0.88)
    world.alert(old, "HSH", days_ago=2100, status="INACTIVE")
    world.incident(
        "ASSAULT_ON_PRISONER", days_ago=2050, parties=[(old, "PERPETRATOR")], prison_id="OUT"
    )
    world.linked(
        me,
        "court_conviction",
        "Assault occasioning actual bodily harm",
        is_violence=True,
        system="magistrates",
        record="D123",
        confidence=0.95,
        detail="01 Violence against the person",
    )
    world.linked(
        me, "probation_risk", "OGRS band high", system="probation", record="X123456", confidence=0.9
    )

    s = _summary(store, rules, world, me)
    assert [a.code for a in s.current_alerts] == ["XSA"] and s.current_alerts[
        0
    ].raised_by == "JSMITH_GEN"
    [earlier] = s.earlier_records
    assert earlier.record.prison_number == "Z9999ZZ"
    assert [a.code for a in earlier.alerts] == ["HSH"] and [i.type for i in earlier.incidents] == [
        "ASSAULT_ON_PRISONER"
    ]
    assert earlier.alerts[0].source.describe() == (
        "earlier prison number Z9999ZZ, linked in the person index (88% match)"
    )
    [conviction] = s.court_convictions
    assert conviction.is_violence and conviction.source.system_name == "Magistrates' courts"
    assert conviction.source.confidence == 0.95
    assert [p.description for p in s.probation] == ["OGRS band high"]
    assert set(s.flags) == {"risk_to_staff", "self_harm_history", "risk_to_others"}
    assert s.flags["self_harm_history"].linked_only and not s.flags["risk_to_staff"].linked_only


def test_alerts_of_earlier_spells_under_the_same_number_are_kept_apart(store, rules, world):
    me = world.prisoner("A0001AA", "MDI", "A-1-001")
    world.alert(me, "XA", days_ago=5)
    with store.begin() as conn:  # an earlier custody spell of the same record, with an alert
        conn.exec_driver_sql(
            "INSERT INTO nomis_offender_bookings (offender_book_id, offender_id, booking_no,"
            " booking_begin_date, booking_status, active_flag, agy_loc_id, in_out_status)"
            " VALUES (5, ?, 'B5', '2019-01-01', 'C', 'N', 'OUT', 'OUT')",
            (me.offender_id,),
        )
        conn.exec_driver_sql(
            "INSERT INTO nomis_offender_alerts (offender_book_id, alert_seq, root_offender_id,"
            " alert_date, alert_type, alert_code, alert_status)"
            " VALUES (5, 1, ?, '2019-02-01', 'H', 'HSH', 'INACTIVE')",
            (me.offender_id,),
        )
    s = _summary(store, rules, world, me)
    assert [a.code for a in s.current_alerts] == ["XA"]
    assert [a.code for a in s.earlier_spell_alerts] == ["HSH"] and not s.earlier_records
    assert "self_harm_history" in s.flags and not s.flags["self_harm_history"].linked_only


def test_a_record_scored_on_arrival_makes_every_linked_fact_scored(store, rules, world):
    me = world.prisoner("A0001AA", "MDI", "A-1-001", method="scored", confidence=0.81)
    world.linked(me, "court_conviction", "Robbery", is_violence=True, confidence=0.99)
    [conviction] = _summary(store, rules, world, me).court_convictions
    assert conviction.source.method == "scored" and conviction.source.confidence == 0.81
    assert "not yet confirmed in the person index" in conviction.source.describe()


def test_non_associations_say_where_the_other_person_is(store, rules, world):
    world.prison("LEI", "HMP Leeds")
    me = world.prisoner("A0001AA", "MDI", "A-1-001")
    mate = world.prisoner("A0002AA", "MDI", "A-1-001", last="MATE")
    wing = world.prisoner("A0003AA", "MDI", "A-2-002")
    away = world.prisoner("L0001LL", "LEI", "A-1-001")
    world.non_association(me, wing, "WING", reason="GANG")
    world.non_association(
        away, me, "CELL", reason="TH", role="NOT_RELEVANT", other_role="NOT_RELEVANT"
    )

    s = _summary(store, rules, world, me)
    assert [m.booking.prison_number for m in s.cellmates] == [mate.prison_number]
    views = {v.na.other_prison_number: v for v in s.non_associations}
    assert (
        views["A0003AA"].same_prison,
        views["A0003AA"].same_wing,
        views["A0003AA"].same_landing,
    ) == (True, True, False)
    assert (
        views["A0003AA"].other_cell.label == "A-2-002"
        and views["A0003AA"].na.reason == "Gang related"
    )
    assert views["A0003AA"].na.role == "PERPETRATOR" and views["A0003AA"].na.other_role == "VICTIM"
    assert (views["L0001LL"].same_prison, views["L0001LL"].other_prison) == (False, "HMP Leeds")
    assert views["L0001LL"].na.restriction == "CELL"


def test_nobody_in_custody_has_no_summary(store, rules, world):
    me = world.prisoner("A0001AA", "MDI", "A-1-001")
    with store.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE nomis_offender_bookings SET active_flag = 'N', in_out_status = 'OUT'"
        )
    assert _summary(store, rules, world, me) is None


def test_the_cells_of_a_summary_are_the_layouts_cells(store, world):
    from justice.safety.locations import load_cells, load_layout

    world.prison("LEI", "HMP Leeds")
    with store.connect() as conn:
        whole = load_layout(conn, "MDI")
        some = [c.cell_id for c in list(whole.cells.values())[::7]]
        leeds_cell = next(iter(load_layout(conn, "LEI").cells))
        cut = load_cells(conn, "MDI", [*some, None, leeds_cell])
        nothing = load_cells(conn, "MDI", [None])
    assert some and cut.name == whole.name
    # Each cell exactly as the whole layout has it; another establishment's cell is not found.
    assert cut.cells == {c: whole.cells[c] for c in some}
    assert {whole.cells[c].wing for c in some} == set(cut.wings.values())
    assert (nothing.name, nothing.cells) == (whole.name, {})
