"""A hard negative (possible twins) is spared when a third record's name is one of both
forenames', or when a third record holds one forename as its first name and the other as its
middle name (justice.link.persons.hard_negative_sql with the model's `unless_bridged`)."""

from __future__ import annotations

import datetime as dt

import duckdb

from justice.link import model as mdl
from justice.link.persons import constraints, hard_negative_sql
from justice.link.standardise import alias_groups, nickname_groups

DOB = dt.date(1993, 6, 25)


def _con(forenames: dict[str, str], pairs: list[tuple[str, str]],
         middles: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, forename varchar, middle_names varchar,
        forename_names varchar[], forename_aliases varchar[], surname varchar, dob date,
        pnc_core varchar, cro_core varchar, prison_number varchar, postcode varchar)""")
    for uid, f in forenames.items():
        con.execute("insert into linkage.records values (?, ?, ?, ?, ?, 'walker', ?, null, null, null, null)",
                    [uid, f, (middles or {}).get(uid), list(nickname_groups().get(f, (f,))),
                     list(alias_groups().get(f, (f,))), DOB])
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


def test_a_one_letter_typo_in_a_short_name_is_bridged_by_the_name_written_right():
    # "gohn" (a mistyped "john", Jaro-Winkler 0.83 from it) and "jack" (a nickname of John).
    con = _con({"a": "gohn", "b": "jack"}, [("a", "b")])
    assert _hard(con) == {("a", "b")}
    con = _con({"a": "gohn", "b": "jack", "c": "john"}, [("a", "b")])
    assert _hard(con) == set()


def test_a_forename_and_middle_name_swap_is_shown_by_a_third_record():
    # "esupofo walker" (his middle name written as his forename, his forename dropped) and
    # "ross walker": plainly different forenames, so possible twins...
    con = _con({"a": "esupofo", "b": "ross"}, [("a", "b")])
    assert _hard(con) == {("a", "b")}
    # ... until "ross esupofo walker" shows both names are one man's, whichever side holds which.
    for middles in ({"c": "esupofo"}, {"c": "esupofo john"}):
        con = _con({"a": "esupofo", "b": "ross", "c": "ross"}, [("a", "b")], middles)
        assert _hard(con) == set()
        con = _con({"a": "ross", "b": "esupofo", "c": "ross"}, [("a", "b")], middles)
        assert _hard(con) == set()


def test_twins_stay_apart_beside_a_record_with_an_unrelated_middle_name():
    # Ross and Liam: a "ross john walker" on file names only one of them.
    con = _con({"a": "ross", "b": "liam", "c": "ross"}, [("a", "b")], {"c": "john"})
    assert _hard(con) == {("a", "b")}
    # A middle name second in the list is not the first middle name.
    con = _con({"a": "ross", "b": "liam", "c": "ross"}, [("a", "b")], {"c": "john liam"})
    assert _hard(con) == {("a", "b")}
    # Two-letter names are not bridged by one letter: "al" is not "ed" though "ad" is one from each.
    con = _con({"a": "al", "b": "ed", "c": "ad"}, [("a", "b")])
    assert _hard(con) == {("a", "b")}
