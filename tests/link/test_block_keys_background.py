"""The one-record index's block keys built on a second connection while the first clusters
(`blocking.BlockKeysInBackground`): the same table as `build_block_keys`, written inside the
caller's transaction, and a failure reported to the caller."""

from __future__ import annotations

import duckdb
import pytest

from justice.link.blocking import BlockKeysInBackground, build_block_keys

MODEL = {"blocking_rules_to_generate_predictions": [
    "l.dob = r.dob",
    {"blocking_rule": "l.surname = r.surname and left(l.forename, 1) = left(r.forename, 1)"},
    "l.forename = r.surname",  # no key: left out of the table
]}


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect()
    c.execute(f"attach '{tmp_path / 'wh.duckdb'}' as wh")
    c.execute("use wh")
    c.execute("create schema linkage")
    c.execute("""create table linkage.records as
                 select i + 1 as record_no, 'u' || lpad(i::varchar, 5, '0') as unique_id,
                        case when i % 7 = 0 then null else ['ann', 'bob', 'cy', 'di'][i % 4 + 1] end as forename,
                        ['smith', 'jones', null][i % 3 + 1] as surname,
                        case when i % 5 = 0 then null else date '1980-01-01' + (i % 40)::int end as dob
                 from range(2000) t(i)""")
    yield c
    c.close()


def test_the_same_keys_in_the_same_order_as_built_in_place(con):
    build_block_keys(con, MODEL, table="linkage.block_keys_in_place")
    keys = BlockKeysInBackground(con, MODEL)
    con.execute("begin transaction")
    # The caller's transaction has read and written before the keys are installed.
    con.execute("create table linkage.other as select count(*) as n from linkage.records")
    keys.install(con)
    con.execute("commit")
    keys.close()
    got = con.execute("select key, record_no from linkage.block_keys").fetchall()
    want = con.execute("select key, record_no from linkage.block_keys_in_place").fetchall()
    assert got and sorted(got) == sorted(want)
    assert [k for k, _ in got] == sorted(k for k, _ in got)  # sorted by key, for zonemap lookups


def test_installed_in_the_callers_transaction(con):
    keys = BlockKeysInBackground(con, MODEL)
    con.execute("begin transaction")
    keys.install(con)
    con.execute("rollback")
    keys.close()
    assert con.execute("select count(*) from information_schema.tables "
                       "where table_name = 'block_keys'").fetchall() == [(0,)]


def test_a_failure_on_the_second_connection_reaches_the_caller(con):
    keys = BlockKeysInBackground(con, MODEL, records="wh.linkage.no_such_table")
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        keys.install(con)
    keys.close()


def test_no_keyed_rule_gives_an_empty_table(con):
    keys = BlockKeysInBackground(con, {"blocking_rules_to_generate_predictions": ["l.forename = r.surname"]})
    keys.install(con)
    keys.close()
    assert con.execute("select count(*) from linkage.block_keys").fetchall() == [(0,)]


def test_closing_before_install_stops_the_query_and_the_thread(tmp_path):
    """A run that fails (or is interrupted) before installing the keys closes the builder: its
    query is interrupted, its thread ends and its connection closes before the run's does."""
    c = duckdb.connect()
    c.execute(f"attach '{tmp_path / 'big.duckdb'}' as wh")
    c.execute("use wh")
    c.execute("create schema linkage")
    c.execute("""create table linkage.records as select i + 1 as record_no, (i % 100000)::varchar as surname,
                 date '1960-01-01' + (i % 9000)::int as dob from range(3000000) t(i)""")
    keys = BlockKeysInBackground(c, {"blocking_rules_to_generate_predictions": ["l.surname = r.surname and l.dob = r.dob"]})
    keys.close()
    assert not keys.thread.is_alive() and keys.keys is None
    assert keys.error is None or isinstance(keys.error, duckdb.InterruptException)
    c.close()  # the run's own connection closes cleanly afterwards
