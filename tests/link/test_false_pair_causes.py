"""Measuring only: false pairs sorted by cause (justice.link.evaluate.false_pairs_by_cause)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from justice.link.evaluate import false_pairs_by_cause


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
