"""The hard negative "dates of birth far apart" (link/model.yaml): two records whose dates of birth
are more than five years apart, and not by one mistyped digit, are kept apart however well their
names agree, unless they share an identifier (justice.link.persons.hard_negative_sql)."""

from __future__ import annotations

import datetime as dt

import duckdb

from justice.link import model as mdl
from justice.link.persons import constraints, hard_negative_sql


def _con(records: dict[str, tuple[dt.date, str | None]]) -> duckdb.DuckDBPyConnection:
    """One scored pair ("a", "b") between records of one name: each record's date of birth and
    PNC ID."""
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, forename varchar, middle_names varchar,
        forename_names varchar[], forename_aliases varchar[], surname varchar, dob date,
        pnc_core varchar, cro_core varchar, prison_number varchar, postcode varchar)""")
    for uid, (dob, pnc) in records.items():
        con.execute("insert into linkage.records values (?, 'simon', null, ['simon'], ['simon', 'si'], "
                    "'francis', ?, ?, null, null, null)", [uid, dob, pnc])
    con.execute("create table linkage.pairs (unique_id_l varchar, unique_id_r varchar)")
    con.execute("insert into linkage.pairs values ('a', 'b')")
    return con


def _rules(con) -> set[str]:
    rules = constraints(mdl.load_model_spec())["hard_negatives"]
    return {rule for _, _, rule in con.execute(hard_negative_sql(rules)).fetchall()}


def test_one_name_born_decades_apart_is_two_people():
    # A pair from seed 31's default world: Simon Francis born 1946 and Simon Francis born 1989,
    # which the second pass (person histories) had merged on their names.
    con = _con({"a": (dt.date(1946, 12, 19), None), "b": (dt.date(1989, 4, 11), None)})
    assert _rules(con) == {"dates of birth far apart"}


def test_a_shared_pnc_id_or_a_near_date_is_no_conflict():
    # An alias record with an invented date of birth carries the person's PNC ID.
    con = _con({"a": (dt.date(1946, 12, 19), "2014/5626096"), "b": (dt.date(1989, 4, 11), "2014/5626096")})
    assert _rules(con) == set()
    # One digit mistyped in the year (1974 for 1984): ten years apart, one keying error.
    con = _con({"a": (dt.date(1974, 6, 13), None), "b": (dt.date(1984, 6, 13), None)})
    assert _rules(con) == set()
    # Four years apart: not far enough to say.
    con = _con({"a": (dt.date(1990, 7, 8), None), "b": (dt.date(1994, 7, 9), None)})
    assert _rules(con) == set()
    # A missing date of birth says nothing.
    con = _con({"a": (dt.date(1990, 7, 8), None), "b": (None, None)})
    assert _rules(con) == set()
