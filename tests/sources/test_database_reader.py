"""The database reader on the simulated prison (NOMIS-like) database, on SQLite and PostgreSQL.

PostgreSQL tests use the session's throwaway server (``postgres_url``, tests/postgres_server.py)
but each works in a database of its own, so they neither see nor disturb other tests' tables.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from justice.errors import SchemaDriftError, SourceError
from justice.sim.legacy import prison
from justice.sim.params import SimulationParams
from justice.sim.world import simulate_to
from justice.sources.readers import database
from justice.sources.reading import REJECT_SCHEMA, Lineage
from justice.sources.spec import LINEAGE_COLUMNS, builtin_spec_dir, load_spec, parse_spec

PARAMS = SimulationParams(persons=2000, seed=1)
LINEAGE = Lineage(load_id="load-1", extracted_at="2026-01-02T03:04:05")


@pytest.fixture(scope="module")
def spec():
    return load_spec(builtin_spec_dir() / "prison.yaml")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A 2,000-person world on disk; the prison database is legacy/prison/nomis.sqlite."""
    out = tmp_path_factory.mktemp("world")
    simulate_to(PARAMS, out)
    return out


@pytest.fixture(scope="module")
def sqlite_file(world) -> Path:
    return world / "legacy" / "prison" / prison.DB_FILE


@pytest.fixture(scope="module")
def full_read(spec, sqlite_file):
    return list(database.read(spec, f"sqlite:///{sqlite_file}", LINEAGE, relative_name="nomis.sqlite"))


def _new_pg_database(postgres_url: str) -> tuple[str, callable]:
    """A fresh, empty database on the test server: its URL and a function that drops it."""
    name = f"reader_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop


@pytest.fixture
def pg_database(postgres_url):
    url, drop = _new_pg_database(postgres_url)
    yield url
    drop()


def _copy_sqlite_to(url: str, sqlite_path: Path) -> None:
    """Load every NOMIS table of the SQLite file into the database at `url` (the emitter's writer)."""
    con = sqlite3.connect(sqlite_path)
    rows = {}
    for name in prison.table_names():
        cur = con.execute(f"SELECT * FROM {name}")
        cols = [d[0] for d in cur.description]
        data = cur.fetchall()
        rows[name] = {c: [r[i] for r in data] for i, c in enumerate(cols)}
    con.close()
    prison.write_database(url, rows)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def writable_db(request, sqlite_file, tmp_path) -> str:
    """A private copy of the simulated prison database, on SQLite or PostgreSQL: its URL."""
    if request.param == "sqlite":
        copy = tmp_path / "nomis.sqlite"
        shutil.copy(sqlite_file, copy)
        return f"sqlite:///{copy}"
    url = request.getfixturevalue("pg_database")
    _copy_sqlite_to(url, sqlite_file)
    return url


def _tables(batches) -> dict[str, pa.Table]:
    out: dict[str, list[pa.Table]] = {}
    for b in batches:
        out.setdefault(b.table, []).append(b.rows)
    return {k: pa.concat_tables(v) for k, v in out.items()}


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
    finally:
        engine.dispose()


def _execute(url: str, *statements: tuple[str, dict]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql, params in statements:
                conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# The whole simulated system
# --------------------------------------------------------------------------------------------


def test_spec_declares_every_column_of_the_ddl(spec):
    for statement in prison.ddl_statements():
        name = statement.split()[2]
        columns = {line.split()[0] for line in statement.splitlines()[1:]
                   if line.strip() and line.split()[0].isupper()
                   and line.split()[0] not in ("PRIMARY", "FOREIGN", ")", ");")}
        table = next(t for t in spec.tables if t.source == name)
        assert {f.source for f in table.fields} == columns, name
        assert table.cursor_field == "modify_datetime"


def test_reads_every_table_and_row_of_the_simulated_prison(spec, sqlite_file, full_read, world):
    url = f"sqlite:///{sqlite_file}"
    tables = _tables(full_read)
    assert set(tables) == {t.name for t in spec.tables}
    for table in spec.tables:
        rows = tables[table.name]
        rejects = sum(b.rejects.num_rows for b in full_read if b.table == table.name)
        assert rows.num_rows + rejects == _count(url, table.source), table.name
        assert rejects == 0
        assert rows.column_names == [f.name for f in table.fields] + list(LINEAGE_COLUMNS)
        assert all(t == pa.string() for t in rows.schema.types)
        # The record key is unique: every row was read once.
        keys = rows.select(list(table.record_key)).group_by(list(table.record_key)).aggregate([])
        assert keys.num_rows == rows.num_rows, table.name
    truth = pq.read_table(world / "truth" / "records.parquet").filter(
        pc.equal(pc.field("system"), "prison"))
    assert set(tables["offenders"]["offender_id"].to_pylist()) == set(
        truth["record_id"].to_pylist())


def test_values_lineage_and_locators(full_read, sqlite_file):
    offenders = _tables(full_read)["offenders"]
    con = sqlite3.connect(sqlite_file)
    first = con.execute("SELECT * FROM OFFENDERS ORDER BY MODIFY_DATETIME, OFFENDER_ID LIMIT 1"
                        ).fetchone()
    con.close()
    row = offenders.slice(0, 1).to_pylist()[0]
    # Values are the database's, as text: integers in decimal, NULL as null.
    assert [row[c] for c in ("offender_id", "offender_id_display", "last_name", "first_name",
                             "middle_name", "birth_date", "sex_code", "race_code",
                             "alias_offender_id",
                             "create_datetime", "modify_datetime")] == [
        None if v is None else str(v) for v in first]
    assert row["_locator"] == f"OFFENDERS pk={first[0]}"
    assert (row["_system"], row["_table"], row["_file"]) == ("prison", "offenders", "nomis.sqlite")
    assert (row["_load_id"], row["_extracted_at"]) == (LINEAGE.load_id, LINEAGE.extracted_at)
    idents = _tables(full_read)["offender_identifiers"]
    loc = idents["_locator"][0].as_py()
    assert loc == (f"OFFENDER_IDENTIFIERS pk={idents['offender_id'][0]},"
                   f"{idents['offender_id_seq'][0]}")


def test_rows_come_in_cursor_order_and_the_batch_cursor_is_the_highest(full_read):
    for batch in full_read:
        stamps = batch.rows["modify_datetime"].to_pylist()
        assert stamps == sorted(stamps)
        assert batch.cursor == stamps[-1]


def test_chunks_stream_the_same_rows(spec, sqlite_file, full_read):
    small = replace(spec, options={**spec.options, "chunk_rows": 100})
    batches = list(database.read(small, f"sqlite:///{sqlite_file}", LINEAGE,
                                 relative_name="nomis.sqlite"))
    assert max(b.rows.num_rows for b in batches) == 100
    assert len([b for b in batches if b.table == "bed_assignment_histories"]) > 10
    cursors = [b.cursor for b in batches if b.table == "offenders"]
    assert cursors == sorted(cursors)
    whole, chunked = _tables(full_read), _tables(batches)
    for name in whole:
        assert chunked[name].equals(whole[name]), name


@pytest.mark.postgres
def test_postgres_gives_the_same_text_as_sqlite(spec, full_read, postgres_url, tmp_path):
    """The prison database emitted into PostgreSQL reads back exactly as the SQLite one."""
    url, drop = _new_pg_database(postgres_url)
    try:
        simulate_to(PARAMS, tmp_path, prison_db=url)
        batches = list(database.read(spec, url, LINEAGE, relative_name="nomis.sqlite"))
    finally:
        drop()
    lite, pg = _tables(full_read), _tables(batches)
    assert set(pg) == set(lite)
    for name in lite:
        assert pg[name].num_rows == lite[name].num_rows, name
        assert pg[name].equals(lite[name]), name  # same text, same order, same locators
    assert {b.table: b.cursor for b in batches} == {b.table: b.cursor for b in full_read}


# --------------------------------------------------------------------------------------------
# Incremental extraction
# --------------------------------------------------------------------------------------------


def test_incremental_read_returns_only_changed_and_new_rows(spec, writable_db):
    first = list(database.read(spec, writable_db, LINEAGE))
    state = database.next_cursor(None, first)
    assert set(json.loads(state)) == {t.name for t in spec.tables}

    changed = ["3", "10", "25"]
    new_id = str(_count(writable_db, "OFFENDERS") + 1000)
    _execute(
        writable_db,
        *[("UPDATE OFFENDERS SET LAST_NAME = :name, MODIFY_DATETIME = :ts WHERE OFFENDER_ID = :id",
           {"name": f"CHANGED{i}", "ts": f"2026-01-05 10:0{k}:00", "id": int(i)})
          for k, i in enumerate(changed)],
        (("INSERT INTO OFFENDERS (OFFENDER_ID, OFFENDER_ID_DISPLAY, LAST_NAME, FIRST_NAME, "
          "CREATE_DATETIME, MODIFY_DATETIME) VALUES (:id, 'Z9999ZZ', 'NEWMAN', 'NEW', :ts, :ts)"),
         {"id": int(new_id), "ts": "2026-01-06 09:00:00"}),
    )
    second = list(database.read(spec, writable_db, LINEAGE, cursor=state))
    by_table = _tables(second)
    assert {name for name, rows in by_table.items() if rows.num_rows} == {"offenders"}
    offenders = by_table["offenders"]
    assert offenders["offender_id"].to_pylist() == [*changed, new_id]  # in cursor order
    assert offenders["last_name"].to_pylist() == ["CHANGED3", "CHANGED10", "CHANGED25", "NEWMAN"]
    cursors = {b.table: b.cursor for b in second}
    assert cursors["offenders"] == "2026-01-06 09:00:00"
    # Tables with nothing new keep their previous high-water mark.
    assert {k: v for k, v in cursors.items() if k != "offenders"} == {
        k: v for k, v in json.loads(state).items() if k != "offenders"}

    state = database.next_cursor(state, second)
    third = list(database.read(spec, writable_db, LINEAGE, cursor=state))
    assert sum(b.rows.num_rows for b in third) == 0
    assert len(third) == len(spec.tables)  # one empty batch per table, with its cursor
    assert database.next_cursor(state, third) == state


def test_cursor_forms(spec):
    assert database.table_cursors(spec, None) == {}
    assert database.table_cursors(spec, '{"OFFENDERS": "2020-01-01 00:00:00", "gone": "x"}') == {
        "offenders": "2020-01-01 00:00:00"}
    assert set(database.table_cursors(spec, "2020-01-01 00:00:00")) == {t.name for t in spec.tables}
    with pytest.raises(SourceError, match="not valid JSON"):
        database.table_cursors(spec, "{offenders: 1")
    with pytest.raises(SourceError, match="must be strings"):
        database.table_cursors(spec, '{"offenders": 5}')


@pytest.mark.postgres
def test_a_cursor_postgres_cannot_compare_is_a_source_error(spec, pg_database, sqlite_file):
    _copy_sqlite_to(pg_database, sqlite_file)
    with pytest.raises(SourceError, match="rejected the cursor value 'yesterday-ish'"):
        list(database.read(spec, pg_database, LINEAGE, cursor="yesterday-ish"))


# --------------------------------------------------------------------------------------------
# Schema drift and unreadable databases
# --------------------------------------------------------------------------------------------

MINI = {
    "system": "mini", "format": "database", "url": "sqlite:///x", "cursor": "modified_timestamp",
    "tables": [{
        "name": "people", "source": "PEOPLE", "record_key": ["person_id"],
        "cursor_field": "modified",
        "fields": [
            {"source": "PERSON_ID", "name": "person_id", "type": "integer", "required": True},
            {"source": "NAME", "name": "name"},
            {"source": "NICKNAME", "name": "nickname"},
            {"source": "MODIFIED", "name": "modified", "type": "datetime"},
        ],
    }],
}


def _mini_db(path: Path, ddl: str, rows: list[tuple]) -> str:
    con = sqlite3.connect(path)
    con.execute(ddl)
    if rows:
        con.executemany(f"INSERT INTO PEOPLE VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_missing_table_is_schema_drift_naming_it(spec, writable_db):
    _execute(writable_db, ("DROP TABLE OIC_HEARINGS", {}))
    with pytest.raises(SchemaDriftError, match=r"table OIC_HEARINGS .*does not exist.*Update the "
                                               r"spec or the source"):
        next(database.read(spec, writable_db, LINEAGE))


def test_missing_cursor_column_is_schema_drift(tmp_path):
    spec = parse_spec(MINI)
    url = _mini_db(tmp_path / "m.db", "CREATE TABLE PEOPLE (PERSON_ID INTEGER, NAME TEXT)", [(1, "A")])
    with pytest.raises(SchemaDriftError, match=r"table PEOPLE has no column MODIFIED \(field "
                                               r"modified, required\)"):
        list(database.read(spec, url, LINEAGE))


def test_new_columns_are_kept_and_missing_optional_ones_are_null(tmp_path):
    spec = parse_spec(MINI)
    url = _mini_db(tmp_path / "m.db", "CREATE TABLE people (person_id INTEGER PRIMARY KEY, "
                   "name TEXT, modified TEXT, \"Risk Level\" INTEGER)",
                   [(1, "  Ann ", "2020-01-01 10:00:00", 3), (2, "", "2020-01-02 10:00:00", None)])
    [batch] = list(database.read(spec, url, LINEAGE))
    assert batch.new_columns == ("x_risk_level",)
    assert batch.rows.column_names == ["person_id", "name", "nickname", "modified",
                                       "x_risk_level", *LINEAGE_COLUMNS]
    assert batch.rows.select(["person_id", "name", "nickname", "x_risk_level"]).to_pylist() == [
        {"person_id": "1", "name": "  Ann ", "nickname": None, "x_risk_level": "3"},
        {"person_id": "2", "name": "", "nickname": None, "x_risk_level": None},
    ]  # no trimming; "" stays "", NULL is null
    assert batch.rows["_locator"].to_pylist() == ["PEOPLE pk=1", "PEOPLE pk=2"]


def test_undecodable_text_and_enormous_fields_are_rejects(tmp_path):
    spec = parse_spec(MINI)
    path = tmp_path / "m.db"
    url = _mini_db(path, "CREATE TABLE PEOPLE (PERSON_ID INTEGER, NAME TEXT, MODIFIED TEXT)",
                   [(1, "ok", "2020-01-01"), (3, "x" * 1_000_001, "2020-01-03"),
                    (4, "fine", "2020-01-04")])
    con = sqlite3.connect(path)
    con.execute("INSERT INTO PEOPLE VALUES (2, CAST(X'434146C9' AS TEXT), '2020-01-02')")
    con.commit()
    con.close()
    [batch] = list(database.read(spec, url, LINEAGE))
    assert batch.rows["person_id"].to_pylist() == ["1", "4"]
    rejects = batch.rejects
    assert rejects.schema == REJECT_SCHEMA
    assert batch.rows.num_rows + rejects.num_rows == 4
    assert rejects["rule"].to_pylist() == ["undecodable_text", "field_too_long"]
    assert rejects["_locator"].to_pylist() == ["PEOPLE pk=2", "PEOPLE pk=3"]
    assert "column NAME" in rejects["reason"][0].as_py()
    assert json.loads(rejects["raw"][0].as_py())["NAME"] == "CAF\\xc9"
    assert len(json.loads(rejects["raw"][1].as_py())["NAME"]) == 1_000_001  # nothing lost
    assert batch.cursor == "2020-01-04"  # rejected rows still advance the cursor


def test_missing_sqlite_file_is_a_source_error_and_is_not_created(spec, tmp_path):
    path = tmp_path / "nowhere" / "nomis.sqlite"
    with pytest.raises(SourceError, match="does not exist"):
        list(database.read(spec, f"sqlite:///{path}", LINEAGE))
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_a_source_error(spec, tmp_path):
    path = tmp_path / "nomis.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(SourceError, match="nomis.sqlite"):
        list(database.read(spec, f"sqlite:///{path}", LINEAGE))


def test_bad_url_is_a_source_error(spec):
    with pytest.raises(SourceError, match="not a usable SQLAlchemy URL"):
        list(database.read(spec, "nosuchdialect://user@host/db", LINEAGE))


def test_unreachable_server_is_a_source_error_without_the_password(spec):
    url = "postgresql+psycopg://reader:s3cr3t-pw@127.0.0.1:1/nomis?connect_timeout=5"
    with pytest.raises(SourceError, match="cannot connect") as info:
        list(database.read(spec, url, LINEAGE))
    assert "s3cr3t-pw" not in str(info.value)
    assert "reader:***@127.0.0.1:1" in str(info.value)


@pytest.mark.postgres
def test_postgres_types_as_text(pg_database):
    create = ("CREATE TABLE people (person_id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(8,2), "
              "ratio DOUBLE PRECISION, active BOOLEAN, born DATE, stamp TIMESTAMP, "
              "stamptz TIMESTAMPTZ, blob BYTEA, modified TIMESTAMP)")
    insert = ("INSERT INTO people VALUES (1, 'Ann', 12.30, 0.1, true, '1990-02-03', "
              "'2020-01-02 03:04:05.250', '2020-01-02 03:04:05+00', '\\x00ff', "
              "'2020-01-02 03:04:05'), (2, NULL, NULL, NULL, false, NULL, "
              "'2021-01-01 00:00:00', NULL, NULL, '2021-01-01 00:00:00')")
    _execute(pg_database, (create, {}), (insert, {}))
    spec = parse_spec(MINI)
    [batch] = list(database.read(spec, pg_database, LINEAGE))
    rows = batch.rows.to_pylist()
    assert {k: rows[0][k] for k in ("person_id", "name", "modified", "x_amount", "x_ratio",
                                    "x_active", "x_born", "x_stamp", "x_blob")} == {
        "person_id": "1", "name": "Ann", "modified": "2020-01-02 03:04:05", "x_amount": "12.30",
        "x_ratio": "0.1", "x_active": "true", "x_born": "1990-02-03",
        "x_stamp": "2020-01-02 03:04:05.250000", "x_blob": "\\x00\\xff"}
    assert rows[0]["x_stamptz"].startswith("2020-01-02 03:04:05") and "+" in rows[0]["x_stamptz"]
    assert rows[1]["x_active"] == "false" and rows[1]["x_stamp"] == "2021-01-01 00:00:00"
    assert batch.cursor == "2021-01-01 00:00:00"


# --------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------

_STREAM = """
import resource, sqlite3, sys, time
from justice.sources.reading import Lineage
from justice.sources.readers import database
from justice.sources.spec import parse_spec
spec = parse_spec({spec!r})
lineage = Lineage("l", "t")
start = time.perf_counter()
rows = batches = biggest = 0
for batch in database.read(spec, "sqlite:///" + sys.argv[1], lineage):
    rows += batch.rows.num_rows + batch.rejects.num_rows
    batches += 1
    biggest = max(biggest, batch.rows.num_rows)
seconds = time.perf_counter() - start
print(rows, batches, biggest, round(rows / seconds),
      int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)
"""


@pytest.mark.slow
def test_a_million_rows_stream_in_bounded_memory(tmp_path):
    path = tmp_path / "big.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE PEOPLE (PERSON_ID INTEGER PRIMARY KEY, NAME TEXT, NICKNAME TEXT, "
                "MODIFIED TEXT)")
    con.execute("""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
        INSERT INTO PEOPLE SELECT i, 'SURNAME-' || i || '-' || hex(randomblob(20)), NULL,
            printf('2020-01-01 %02d:%02d:%02d', (i / 3600) % 24, (i / 60) % 60, i % 60) FROM n""")
    con.commit()
    con.close()
    script = textwrap.dedent(_STREAM).format(spec=MINI)
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, check=True)
    rows, batches, biggest, per_second, peak_mb = map(int, done.stdout.split())
    print(f"database reader: {rows:,} rows in {batches} batches, {per_second:,} rows/s, "
          f"peak RSS {peak_mb} MB")
    assert rows == 1_000_000 and biggest == database.CHUNK_ROWS and batches == 10
    # The whole table as Python objects would need well over a gigabyte.
    assert peak_mb < 600
