"""A hard negative (possible twins) is spared when a third record's name is one of both
forenames' (justice.link.persons.hard_negative_sql with the model's `unless_bridged`)."""

from __future__ import annotations

import datetime as dt

import duckdb

from justice.link import model as mdl
from justice.link.persons import constraints, hard_negative_sql
from justice.link.standardise import alias_groups, nickname_groups

DOB = dt.date(1993, 6, 25)


def _con(forenames: dict[str, str], pairs: list[tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, forename varchar, middle_names varchar,
        forename_names varchar[], forename_aliases varchar[], surname varchar, dob date,
        pnc_core varchar, cro_core varchar, prison_number varchar, postcode varchar)""")
    for uid, f in forenames.items():
        con.execute("insert into linkage.records values (?, ?, null, ?, ?, 'walker', ?, null, null, null, null)",
                    [uid, f, list(nickname_groups().get(f, (f,))), list(alias_groups().get(f, (f,))), DOB])
    con.execute("create table linkage.pairs (unique_id_l varchar, unique_id_r varchar)")
    con.executemany("insert into linkage.pairs values (?, ?)", pairs)
    return con


def _hard(con) -> set[tuple[str, str]]:
    rules = constraints(mdl.load_model_spec())["hard_negatives"]
    return {(a, b) for a, b, _ in con.execute(hard_negative_sql(rules)).fetchall()}


def test_a_mistyped_nickname_is_no_twin_when_the_nickname_is_on_another_record():
    # "cleeffrd" (a mistyped "clifford") against "fond" (a mistyped "ford"): plainly different
    # names, so possible twins (a pair from the high-mess world)...
    con = _con({"a": "cleeffrd", "b": "fond"}, [("a", "b")])
    assert _hard(con) == {("a", "b")}
    # ... until a record of that surname and date of birth says "ford": close to "fond", and a
    # nickname of "clifford", close to "cleeffrd".
    con = _con({"a": "cleeffrd", "b": "fond", "c": "ford"}, [("a", "b")])
    assert _hard(con) == set()


def test_twins_stay_apart_beside_their_own_nicknames():
    # William and Thomas, with a "bill" and a "tom" on file: neither is a name of both.
    con = _con({"a": "william", "b": "thomas", "c": "bill", "d": "tom"}, [("a", "b")])
    assert _hard(con) == {("a", "b")}
