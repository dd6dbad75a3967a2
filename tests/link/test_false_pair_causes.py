"""Measuring only: false pairs sorted by cause (justice.link.evaluate.false_pairs_by_cause)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from justice.link.evaluate import false_pairs_by_cause, recall_ceiling


def test_false_pairs_are_sorted_by_borrowed_identity_cause(tmp_path):
    (tmp_path / "identity").mkdir()
    # b1 (person A) and b2 (person B) are both given under lender L's identity; b3 (person D)
    # under E's.
    pq.write_table(pa.table({
        "system": ["m", "m", "m"], "record_id": ["b1", "b2", "b3"],
        "kind": ["borrowed_identity"] * 3, "other_person_id": ["L", "L", "E"]}),
        tmp_path / "identity" / "record_mess.parquet")
    con = duckdb.connect()
    con.execute("""create table _eval as select * from (values
        ('m', 'l1', 'p1', 'L'), ('m', 'b1', 'p1', 'A'),   -- with its lender: 1 pair
        ('m', 'b2', 'p2', 'B'), ('m', 'x1', 'p2', 'A'),   -- b2 (names L) with A, not L: 1 pair
        ('m', 'b1x', 'p3', 'A'), ('m', 'b2x', 'p3', 'B'), -- neither borrowed: the linker's own
        ('m', 'b3', 'p4', 'D'), ('m', 'y1', 'p4', 'F')    -- b3 (names E) with F: a third person
        ) t(system, record_id, pred, truth)""")
    assert false_pairs_by_cause(con, tmp_path) == {
        "borrowed_with_lender": 1, "borrowed_with_other": 2, "borrower_with_lender": 0, "other": 1}
    # Two people giving the same lender's identity: both records say they are L.
    con.execute("insert into _eval values ('m', 'b1', 'p5', 'A'), ('m', 'b2', 'p5', 'B')")
    con.execute("delete from _eval where pred in ('p1', 'p2', 'p3', 'p4')")
    assert false_pairs_by_cause(con, tmp_path) == {
        "borrowed_with_lender": 1, "borrowed_with_other": 0, "borrower_with_lender": 0, "other": 0}


def test_a_lenders_namesake_and_a_borrowers_own_records_have_causes_of_their_own(tmp_path):
    (tmp_path / "identity").mkdir()
    # b1 (person A) is given under L's identity; N has L's name and date of birth (a namesake).
    pq.write_table(pa.table({
        "system": ["m"], "record_id": ["b1"], "kind": ["borrowed_identity"],
        "other_person_id": ["L"]}), tmp_path / "identity" / "record_mess.parquet")
    pq.write_table(pa.table({
        "person_id": ["A", "L", "N", "Q"], "forename": ["ann", "lee", "lee", "quin"],
        "surname": ["ash", "lowe", "lowe", "quay"],
        "dob": ["1990-01-01", "1985-05-05", "1985-05-05", "1970-07-07"]}),
        tmp_path / "persons.parquet")
    con = duckdb.connect()
    con.execute("""create table _eval as select * from (values
        ('m', 'b1', 'p1', 'A'), ('m', 'n1', 'p1', 'N'),   -- names L, put with L's namesake
        ('m', 'a1', 'p2', 'A'), ('m', 'l1', 'p2', 'L'),   -- A's own with L's own: a bridge
        ('m', 'a2', 'p3', 'A'), ('m', 'q1', 'p3', 'Q')    -- A and Q: the linker's own
        ) t(system, record_id, pred, truth)""")
    assert false_pairs_by_cause(con, tmp_path) == {
        "borrowed_with_lender": 1, "borrowed_with_other": 0, "borrower_with_lender": 1, "other": 1}
    # Without the answer key's people, a namesake is not known: the same record is a third person.
    (tmp_path / "persons.parquet").unlink()
    assert false_pairs_by_cause(con, tmp_path) == {
        "borrowed_with_lender": 0, "borrowed_with_other": 1, "borrower_with_lender": 1, "other": 1}


def test_the_recall_ceiling_counts_only_pairs_some_evidence_reaches():
    """`recall_ceiling`: a person's records within reach of each other through a chain of
    evidence (an identifier, a name and date of birth alike, an address and birth year, an event
    of two systems on one day); an alias record with an invented name and date of birth, no
    identifier and no such event is out of reach."""
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records as select * from (values
        ('m:1', 'm', '1', 'smith', 's530', 'john', 'j500', ['john'], ['john', 'jack'], ['smith'],
         date '1990-01-01', 1990, 'A1 1AA', 'P1', null, null, null, null,
         [date '2020-01-01', date '2020-02-02']),
        -- the same person, another address, no identifier: name and date of birth alike
        ('m:2', 'm', '2', 'smyth', 's530', 'jack', 'j200', ['jack'], ['jack', 'john'], ['smyth'],
         date '1990-01-01', 1990, 'B2 2BB', null, null, null, null, null, null),
        -- an alias, but with the person's PNC ID: within reach
        ('m:3', 'm', '3', 'brown', 'b650', 'tom', 't500', ['tom'], ['tom'], ['brown'],
         date '1985-06-06', 1985, null, 'P1', null, null, null, null, null),
        -- an alias with nothing of the person's: out of reach (a day of its own system's
        -- records in common is no evidence: two cases of one court list)
        ('m:4', 'm', '4', 'green', 'g650', 'alan', 'a450', ['alan'], ['alan'], ['green'],
         date '1970-03-03', 1970, 'C3 3CC', null, null, null, null, null, [date '2020-01-01']),
        -- a second person alone
        ('m:5', 'm', '5', 'jones', 'j520', 'ann', 'a500', ['ann'], ['ann'], ['jones'],
         date '1980-02-02', 1980, 'D4 4DD', null, null, null, null, null, null)
        ) t(unique_id, system, record_id, surname, surname_sound, forename, forename_sound,
            forename_names, forename_aliases, surname_parts, dob, birth_year, postcode, pnc_core,
            cro_core, prison_number, crn, same_as, event_dates)""")
    con.execute("""create table _eval as select * from (values
        ('m', '1', 'x', 'A', ''), ('m', '2', 'y', 'A', ''), ('m', '3', 'x', 'A', 'alias'),
        ('m', '4', 'z', 'A', 'alias'), ('m', '5', 'w', 'B', '')
        ) t(system, record_id, pred, truth, mess)""")
    out = recall_ceiling(con)
    # Person A: 4 records, 6 true pairs; records 1-3 reach each other (3 pairs), record 4 none.
    assert out["all"] == {"true_pairs": 6, "reachable_pairs": 3, "recall_ceiling": 0.5}
    # A record given under a borrowed identity with A's PNC ID: its own pairs leave the second
    # figure, and nothing else changes there.
    con.execute("update _eval set mess = 'borrowed_identity' where record_id = '3'")
    assert recall_ceiling(con)["without_borrowed_identities"] == {
        "true_pairs": 3, "reachable_pairs": 1, "recall_ceiling": 1 / 3}
    # Another system's record under another alias, with nothing of the person's but a day's
    # event in common with record 1 (received into prison the day the court sentenced him):
    # within reach. Person A: 5 records, 10 true pairs; records 1-3 and 6 reach each other.
    con.execute("update _eval set mess = 'alias' where record_id = '3'")
    con.execute("""insert into linkage.records by name select 'p:6' as unique_id, 'p' as system, '6' as record_id,
                   'white' as surname, 'w300' as surname_sound, 'ed' as forename, 'e300' as forename_sound,
                   date '1960-05-05' as dob, 1960 as birth_year, [date '2020-02-02'] as event_dates""")
    con.execute("insert into _eval values ('p', '6', 'v', 'A', 'alias')")
    assert recall_ceiling(con)["all"] == {"true_pairs": 10, "reachable_pairs": 6, "recall_ceiling": 0.6}
