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


def _kept_apart(forenames: dict[str, str], middles: dict[str, str] | None = None) -> bool:
    """Whether records "a" and "b" (of `forenames`, one surname and date of birth, the other
    records beside them) are kept apart as possible twins; any other outcome fails."""
    hard = _hard(_con(forenames, [("a", "b")], middles))
    assert hard in ({("a", "b")}, set()), hard
    return bool(hard)


def test_a_mistyped_nickname_is_no_twin_when_the_nickname_is_on_another_record():
    # "cleeffrd" (a mistyped "clifford") against "fond" (a mistyped "ford"): plainly different
    # names, so possible twins (a pair from the high-mess world)...
    assert _kept_apart({"a": "cleeffrd", "b": "fond"})
    # ... until a record of that surname and date of birth says "ford": close to "fond", and a
    # nickname of "clifford", close to "cleeffrd".
    assert not _kept_apart({"a": "cleeffrd", "b": "fond", "c": "ford"})


def test_twins_stay_apart_beside_their_own_nicknames():
    # William and Thomas, with a "bill" and a "tom" on file: neither is a name of both.
    assert _kept_apart({"a": "william", "b": "thomas", "c": "bill", "d": "tom"})


def test_a_one_letter_typo_in_a_short_name_is_bridged_by_the_name_written_right():
    # "gohn" (a mistyped "john", Jaro-Winkler 0.83 from it) and "jack" (a nickname of John).
    assert _kept_apart({"a": "gohn", "b": "jack"})
    assert not _kept_apart({"a": "gohn", "b": "jack", "c": "john"})


def test_a_forename_and_middle_name_swap_is_shown_by_a_third_record():
    # "esupofo walker" (his middle name written as his forename, his forename dropped) and
    # "ross walker": plainly different forenames, so possible twins...
    assert _kept_apart({"a": "esupofo", "b": "ross"})
    # ... until "ross esupofo walker" shows both names are one man's, whichever side holds which.
    for middles in ({"c": "esupofo"}, {"c": "esupofo john"}):
        assert not _kept_apart({"a": "esupofo", "b": "ross", "c": "ross"}, middles)
        assert not _kept_apart({"a": "ross", "b": "esupofo", "c": "ross"}, middles)


def test_twins_stay_apart_beside_a_record_with_an_unrelated_middle_name():
    # Ross and Liam: a "ross john walker" on file names only one of them.
    assert _kept_apart({"a": "ross", "b": "liam", "c": "ross"}, {"c": "john"})
    # A middle name second in the list is not the first middle name.
    assert _kept_apart({"a": "ross", "b": "liam", "c": "ross"}, {"c": "john liam"})
    # Two-letter names are not bridged by one letter: "al" is not "ed" though "ad" is one from each.
    assert _kept_apart({"a": "al", "b": "ed", "c": "ad"})
