"""The sync: the prison database copied incrementally into the serving store, people resolved.

Every test works on a copy of the 3,000-person built world (`built_home`, with the prison
database from `linked_home`) and changes the prison database the way the live system would:
rows inserted, corrected and deleted with their MODIFY_DATETIME. The store is compared row for
row with the source after each sync, and "nothing else is re-read" is asserted on the rows the
sync read, never on time.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid

import duckdb
import pytest
import sqlalchemy as sa
from homes import copy_home, warehouse_rows

from justice.serving import mirror
from justice.serving.store import open_store
from justice.settings import Settings
from justice.sim.legacy import prison
from justice.web.people import VIOLENT_GROUPS
from justice.web.sync import LOOK_BACK, Syncer, sync_once

STRICT = dt.timedelta(0)  # no look-back: a run reads only rows after its cursor



# ---------------------------------------------------------------------------------------------
# Worlds and helpers


def _home(built_home, linked_home, dest) -> Settings:
    """A writable copy of the built world with its prison database."""
    settings = copy_home(built_home, dest)
    shutil.copytree(linked_home.home / "legacy" / "prison", dest / "legacy" / "prison")
    return settings


@pytest.fixture
def home(built_home, linked_home, tmp_path) -> Settings:
    return _home(built_home, linked_home, tmp_path / "home")


def _norm(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def source_rows(prison_db: sa.Engine, name: str) -> set[tuple]:
    spec, _ = mirror.MIRROR[name]
    with prison_db.connect() as conn:
        return {tuple(_norm(v) for v in row) for row in
                conn.execute(sa.text(f"SELECT {', '.join(spec.columns)} FROM {name}"))}


def store_rows(store: sa.Engine, name: str) -> set[tuple]:
    spec, table = mirror.MIRROR[name]
    with store.connect() as conn:
        return {tuple(_norm(v) for v in row) for row in
                conn.execute(sa.select(*(table.c[c.lower()] for c in spec.columns)))}


def assert_mirror_is_source(store: sa.Engine, prison_db: sa.Engine) -> None:
    for name in mirror.MIRROR:
        src, dst = source_rows(prison_db, name), store_rows(store, name)
        assert src == dst, (f"{name}: {len(src - dst)} source rows not mirrored, e.g. "
                            f"{sorted(src - dst)[:2]}; {len(dst - src)} mirrored rows not in the "
                            f"source, e.g. {sorted(dst - src)[:2]}")


def store_snapshot(store: sa.Engine) -> dict[str, set[tuple]]:
    """Every table the sync writes, row for row."""
    with store.connect() as conn:
        return {t.name: {tuple(r) for r in conn.execute(sa.select(t))}
                for t in mirror.metadata.sorted_tables
                if t.name.startswith("nomis_") or t.name in ("person_resolution", "linked_history",
                                                             "sync_state")}


def stamp(conn: sa.Connection, value: dt.datetime):
    """A timestamp as the prison database stores it (text in SQLite)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if conn.dialect.name == "sqlite" else value


def clone_row(conn: sa.Connection, name: str, where: str, params: dict, **changes) -> dict:
    """Insert a copy of one row of `name` with `changes` (upper-case column names)."""
    spec, _ = mirror.MIRROR[name]
    row = conn.execute(sa.text(f"SELECT {', '.join(spec.columns)} FROM {name} WHERE {where}"),
                       params).first()
    values = {**dict(zip(spec.columns, row)), **changes}
    conn.execute(sa.text(f"INSERT INTO {name} ({', '.join(values)}) "
                         f"VALUES ({', '.join(':' + c for c in values)})"), values)
    return values


def greatest_modify(prison_db: sa.Engine) -> dt.datetime:
    with prison_db.connect() as conn:
        stamps = [conn.execute(sa.text(f"SELECT MAX(MODIFY_DATETIME) FROM {name}")).scalar()
                  for name in mirror.MIRROR]
    return max(v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v) for v in stamps)


def change_source(prison_db: sa.Engine, when: dt.datetime) -> dict:
    """One of each change at `when`: a new alert, a corrected surname, a deleted incident party."""
    with prison_db.begin() as conn:
        book, seq = conn.execute(sa.text(
            "SELECT OFFENDER_BOOK_ID, MAX(ALERT_SEQ) FROM OFFENDER_ALERTS "
            "GROUP BY OFFENDER_BOOK_ID ORDER BY OFFENDER_BOOK_ID LIMIT 1")).one()
        alert = clone_row(conn, "OFFENDER_ALERTS", "OFFENDER_BOOK_ID = :b AND ALERT_SEQ = :s",
                          {"b": book, "s": seq}, ALERT_SEQ=seq + 1, ALERT_CODE="HA",
                          ALERT_STATUS="ACTIVE", CREATE_DATETIME=stamp(conn, when),
                          MODIFY_DATETIME=stamp(conn, when))
        offender = conn.execute(sa.text("SELECT MIN(OFFENDER_ID) FROM OFFENDERS")).scalar()
        conn.execute(sa.text("UPDATE OFFENDERS SET LAST_NAME = 'CORRECTED', MODIFY_DATETIME = :t "
                             "WHERE OFFENDER_ID = :o"), {"t": stamp(conn, when), "o": offender})
        party = conn.execute(sa.text("SELECT INCIDENT_CASE_ID, PARTY_SEQ FROM INCIDENT_CASE_PARTIES "
                                     "ORDER BY INCIDENT_CASE_ID DESC, PARTY_SEQ LIMIT 1")).one()
        conn.execute(sa.text("DELETE FROM INCIDENT_CASE_PARTIES WHERE INCIDENT_CASE_ID = :c "
                             "AND PARTY_SEQ = :p"), {"c": party[0], "p": party[1]})
    return {"alert": (alert["OFFENDER_BOOK_ID"], alert["ALERT_SEQ"]), "offender": offender,
            "party": tuple(party)}


def result_rows(store: sa.Engine, name: str) -> int:
    with store.connect() as conn:
        return conn.execute(sa.select(sa.func.count())
                            .select_from(mirror.mirror_table(name))).scalar()


def test_a_delete_in_a_table_keyed_by_text_is_found(home):
    """AGENCY_LOCATIONS is keyed by a code: its keys are compared whole (it is small)."""
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store).ok
    with prison_db.begin() as conn:
        unused = conn.execute(sa.text(
            "SELECT AGY_LOC_ID FROM AGENCY_LOCATIONS WHERE AGY_LOC_ID NOT IN "
            "(SELECT AGY_LOC_ID FROM OFFENDER_BOOKINGS) AND AGY_LOC_ID NOT IN "
            "(SELECT AGY_LOC_ID FROM INCIDENT_CASES) ORDER BY AGY_LOC_ID LIMIT 1")).scalar()
        conn.execute(sa.text("DELETE FROM AGENCY_LOCATIONS WHERE AGY_LOC_ID = :a"), {"a": unused})
    result = sync_once(home, store)
    assert result.ok and result.deleted == 1 and result.reconciled == ["AGENCY_LOCATIONS"]
    assert result.keys_compared == result_rows(store, "AGENCY_LOCATIONS")
    assert_mirror_is_source(store, prison_db)


def only(read: dict[str, int], **expected: int) -> dict[str, int]:
    """`expected` rows read for the named tables and none for every other."""
    return {name: expected.get(name, 0) for name in read}


# ---------------------------------------------------------------------------------------------
# SQLite: the embedded default


def test_first_sync_copies_every_table_and_resolves_every_offender(home):
    prison_db = sa.create_engine(home.prison_db_url)
    result = sync_once(home)
    assert result.ok, result.error
    store = open_store(home)
    assert_mirror_is_source(store, prison_db)
    with prison_db.connect() as conn:
        counts = {n: conn.execute(sa.text(f"SELECT COUNT(*) FROM {n}")).scalar() for n in mirror.MIRROR}
    assert result.read == counts
    with store.connect() as conn:
        state = {r.table_name: r.rows for r in conn.execute(sa.select(mirror.sync_state))
                 if r.table_name in counts}
        assert state == counts
        # Typed columns: dates and timestamps, not text.
        row = conn.execute(sa.select(mirror.mirror_table("OFFENDER_BOOKINGS")).limit(1)).one()
        assert isinstance(row.booking_begin_date, dt.date)
        assert isinstance(row.modify_datetime, dt.datetime)
        resolved = conn.execute(sa.select(mirror.person_resolution)).all()
        as_at, synced_at = mirror.data_as_at(conn)
        run = conn.execute(sa.select(mirror.sync_runs)).one()
    # Every OFFENDERS row was in the index the world was linked with.
    assert len(resolved) == counts["OFFENDERS"]
    assert {r.method for r in resolved} == {"index"}
    assert all(0.5 <= r.confidence <= 1.0 for r in resolved)
    links = dict(warehouse_rows(home, "select record_id, person_id from linkage.person_links "
                                      "where system = 'prison'"))
    assert {str(r.offender_id): r.person_id for r in resolved} == links
    # "Data as at" is the prison clock's greatest MODIFY_DATETIME; synced at the run's end.
    assert as_at == greatest_modify(prison_db) == result.as_at
    assert synced_at == run.finished_at and run.error is None and run.read == sum(counts.values())


def test_incremental_sync_reads_only_the_changes(home):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store, look_back=STRICT).ok
    when = greatest_modify(prison_db) + dt.timedelta(hours=1)
    changed = change_source(prison_db, when)

    result = sync_once(home, store, look_back=STRICT)
    assert result.ok, result.error
    # The new alert and the corrected offender, nothing else; the deleted party is found by the
    # count check and removed after one key reconciliation of that table alone.
    assert result.read == only(result.read, OFFENDER_ALERTS=1, OFFENDERS=1)
    assert result.deleted == 1 and result.reconciled == ["INCIDENT_CASE_PARTIES"]
    # Only the key range around the deleted row was compared, not the table's keys.
    assert 0 < result.keys_compared < 0.5 * result_rows(store, "INCIDENT_CASE_PARTIES")
    assert_mirror_is_source(store, prison_db)
    with store.connect() as conn:
        assert mirror.data_as_at(conn)[0] == when
        resolution = conn.execute(sa.select(mirror.person_resolution).where(
            mirror.person_resolution.c.offender_id == changed["offender"])).one()
    assert resolution.method == "index"  # a corrected record keeps its place in the index

    # Nothing changed: nothing read.
    quiet = sync_once(home, store, look_back=STRICT)
    assert quiet.ok and quiet.rows_read == 0 and quiet.upserted == 0 and quiet.reconciled == []


def test_default_look_back_rereads_only_the_last_minutes(home):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    first = sync_once(home, store)
    window = {n: _look_back_rows(prison_db, store, n) for n in mirror.MIRROR}
    result = sync_once(home, store)
    assert result.ok
    assert result.read == window
    assert result.rows_read < first.rows_read / 100


def _look_back_rows(prison_db: sa.Engine, store: sa.Engine, name: str) -> int:
    """Rows of `name` inside the default look-back behind its cursor: what a sync re-reads."""
    with store.connect() as conn:
        cursor = conn.execute(sa.select(mirror.sync_state.c.cursor_modify)
                              .where(mirror.sync_state.c.table_name == name)).scalar()
    with prison_db.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {name} WHERE MODIFY_DATETIME >= :t"),
                            {"t": stamp(conn, cursor - LOOK_BACK)}).scalar()


@pytest.mark.parametrize("look_back", [STRICT, LOOK_BACK], ids=["no-look-back", "look-back"])
def test_rows_tied_on_modify_datetime_are_never_lost(home, look_back):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store, look_back=look_back).ok
    overlap = _look_back_rows(prison_db, store, "OFFENDER_ALERTS") if look_back else 0
    when = greatest_modify(prison_db) + dt.timedelta(hours=1)
    with prison_db.begin() as conn:
        books = [r[0] for r in conn.execute(sa.text(
            "SELECT OFFENDER_BOOK_ID FROM OFFENDER_ALERTS GROUP BY OFFENDER_BOOK_ID "
            "ORDER BY OFFENDER_BOOK_ID"))]
        low, high = books[0], books[-1]
        for seq in range(900, 905):  # five rows at one MODIFY_DATETIME, read two to a page
            clone_row(conn, "OFFENDER_ALERTS", "OFFENDER_BOOK_ID = :b AND ALERT_SEQ = "
                      "(SELECT MIN(ALERT_SEQ) FROM OFFENDER_ALERTS WHERE OFFENDER_BOOK_ID = :b)",
                      {"b": high}, ALERT_SEQ=seq, MODIFY_DATETIME=stamp(conn, when))
    result = sync_once(home, store, look_back=look_back, page_size=2)
    assert result.read["OFFENDER_ALERTS"] == 5 + overlap
    assert_mirror_is_source(store, prison_db)

    # A row committed late, stamped with the same MODIFY_DATETIME but a key below the cursor's:
    # the look-back re-reads it; without one, the count check finds it and reads it by key.
    with prison_db.begin() as conn:
        clone_row(conn, "OFFENDER_ALERTS", "OFFENDER_BOOK_ID = :b AND ALERT_SEQ = "
                  "(SELECT MIN(ALERT_SEQ) FROM OFFENDER_ALERTS WHERE OFFENDER_BOOK_ID = :b)",
                  {"b": low}, ALERT_SEQ=900, MODIFY_DATETIME=stamp(conn, when))
    late = sync_once(home, store, look_back=look_back, page_size=2)
    assert late.ok
    assert_mirror_is_source(store, prison_db)
    if look_back:
        assert late.read["OFFENDER_ALERTS"] == 6 and late.reconciled == []
    else:
        assert late.read["OFFENDER_ALERTS"] == 1 and late.reconciled == ["OFFENDER_ALERTS"]


def test_a_failed_sync_leaves_the_store_as_it_was(home):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store).ok
    before = store_snapshot(store)
    with store.connect() as conn:
        as_at_before = mirror.data_as_at(conn)
    change_source(prison_db, greatest_modify(prison_db) + dt.timedelta(hours=1))
    with prison_db.begin() as conn:  # the last table goes: the run fails after upserting the rest
        conn.execute(sa.text("DROP TABLE OIC_HEARINGS"))

    result = sync_once(home, store)
    assert not result.ok and "OIC_HEARINGS" in result.error
    assert result.read["OFFENDER_ALERTS"] >= 1  # it had got that far
    assert store_snapshot(store) == before
    with store.connect() as conn:
        assert mirror.data_as_at(conn) == as_at_before
        runs = conn.execute(sa.select(mirror.sync_runs).order_by(mirror.sync_runs.c.run_id)).all()
    assert [r.error is None for r in runs] == [True, False]
    assert "OIC_HEARINGS" in runs[-1].error


def test_an_unreachable_prison_database_is_recorded(home, tmp_path):
    settings = Settings(home=home.home, prison_db=f"sqlite:///{tmp_path / 'missing.sqlite'}")
    result = sync_once(settings)
    assert not result.ok and "no prison database" in result.error
    assert not (tmp_path / "missing.sqlite").exists()  # read-only: never creates the source
    with open_store(settings).connect() as conn:
        assert conn.execute(sa.select(mirror.sync_runs.c.error)).scalar() == result.error


def _truth_people(settings: Settings, n: int) -> list[dict]:
    """`n` people (deterministic) who have prison and court records in the world."""
    truth = settings.home / "truth"
    rows = duckdb.sql(f"""
        with r as (select person_id, list(distinct system) as systems, list(record_id) filter
                   (where system = 'prison') as prison_records
                   from '{truth}/records.parquet' group by person_id)
        select p.person_id, p.forename, p.middle_name, p.surname, p.sex, p.dob, p.pnc_id,
               r.prison_records
        from '{truth}/persons.parquet' p join r using (person_id)
        where list_contains(r.systems, 'prison') and list_contains(r.systems, 'magistrates')
        order by hash(p.person_id) limit {n}""").fetchall()
    names = ("person_id", "forename", "middle_name", "surname", "sex", "dob", "pnc", "prison_records")
    return [dict(zip(names, r)) for r in rows]


def test_a_new_prison_record_is_scored_on_arrival_and_joins_the_right_person(home):
    """People received again under a new prison number, a record the index never saw: each is
    scored against the index on arrival and should join the person the index holds them as."""
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store).ok
    people = _truth_people(home, 20)
    links = dict(warehouse_rows(home, "select record_id, person_id from linkage.person_links "
                                      "where system = 'prison'"))
    when = greatest_modify(prison_db) + dt.timedelta(hours=1)
    with prison_db.begin() as conn:
        next_id = conn.execute(sa.text("SELECT MAX(OFFENDER_ID) FROM OFFENDERS")).scalar() + 1
        for i, person in enumerate(people):
            person["offender_id"] = next_id + i
            conn.execute(sa.text(
                "INSERT INTO OFFENDERS (OFFENDER_ID, OFFENDER_ID_DISPLAY, LAST_NAME, FIRST_NAME, "
                "MIDDLE_NAME, BIRTH_DATE, SEX_CODE, CREATE_DATETIME, MODIFY_DATETIME) "
                "VALUES (:o, :d, :l, :f, :m, :b, :s, :t, :t)"),
                {"o": next_id + i, "d": f"Z{9000 + i}ZZ", "l": person["surname"].upper(),
                 "f": person["forename"].upper(),
                 "m": person["middle_name"].upper() if person["middle_name"] else None,
                 "b": person["dob"].isoformat(), "s": person["sex"], "t": stamp(conn, when)})
            if person["pnc"]:
                conn.execute(sa.text(
                    "INSERT INTO OFFENDER_IDENTIFIERS (OFFENDER_ID, OFFENDER_ID_SEQ, IDENTIFIER_TYPE, "
                    "IDENTIFIER, CREATE_DATETIME, MODIFY_DATETIME) VALUES (:o, 1, 'PNC', :p, :t, :t)"),
                    {"o": next_id + i, "p": person["pnc"], "t": stamp(conn, when)})
        stranger, alias = next_id + len(people), next_id + len(people) + 1
        conn.execute(sa.text(
            "INSERT INTO OFFENDERS (OFFENDER_ID, OFFENDER_ID_DISPLAY, LAST_NAME, FIRST_NAME, "
            "BIRTH_DATE, SEX_CODE, ALIAS_OFFENDER_ID, CREATE_DATETIME, MODIFY_DATETIME) VALUES "
            "(:o, 'Z0001XX', 'QWERTYUIOP', 'ZEPHYRINUS', '1931-02-03', 'M', NULL, :t, :t), "
            "(:a, :d, 'SMYTHE-NEWNAME', :f, :b, :s, :root, :t, :t)"),
            {"o": stranger, "a": alias, "root": people[0]["offender_id"], "d": "Z9000ZZ",
             "f": people[0]["forename"].upper(), "b": people[0]["dob"].isoformat(),
             "s": people[0]["sex"], "t": stamp(conn, when)})

    result = sync_once(home, store)
    assert result.ok, result.error
    assert result.scored == len(people) + 1  # the alias takes its root's person unscored
    with store.connect() as conn:
        got = {r.offender_id: r for r in conn.execute(sa.select(mirror.person_resolution).where(
            mirror.person_resolution.c.offender_id >= next_id))}
    right = 0
    for person in people:
        expected = {links[r] for r in person["prison_records"] if r in links}
        row = got[person["offender_id"]]
        assert row.method in ("scored", "unresolved")
        right += row.method == "scored" and row.person_id in expected
        if row.method == "scored":
            assert 0.5 <= row.confidence <= 1.0
    assert right / len(people) >= 0.9, f"{right} of {len(people)} joined the right person"
    assert (got[stranger].method, got[stranger].person_id, got[stranger].confidence) == \
        ("unresolved", f"prison:{stranger}", 1.0)
    root = got[people[0]["offender_id"]]
    assert (got[alias].person_id, got[alias].method) == (root.person_id, root.method)


def test_linked_history_shows_a_violent_conviction_from_the_courts(home):
    """A prisoner's convictions for violence come from the court systems through the index."""
    assert sync_once(home).ok
    violent = warehouse_rows(home, f"""
        select l.record_id, o.court_type, o.defendant_id, o.offence_group
        from linkage.person_links l join core.offence o using (person_id)
        where l.system = 'prison' and o.convicted
          and o.offence_group = '{VIOLENT_GROUPS[0]}'
        order by l.record_id, o.offence_id""")
    assert violent, "the world has prisoners convicted of violence"
    offender_id, court, defendant, group = violent[0]
    store = open_store(home)
    history, res = mirror.linked_history, mirror.person_resolution
    with store.connect() as conn:
        person = conn.execute(sa.select(res.c.person_id)
                              .where(res.c.offender_id == int(offender_id))).scalar()
        rows = conn.execute(sa.select(history).where(history.c.person_id == person)).all()
        flagged = conn.execute(sa.select(history.c.source_system, history.c.source_record,
                                         history.c.person_id, history.c.detail)
                               .where(history.c.is_violence)).all()
        kinds = set(conn.execute(sa.select(history.c.kind).distinct()).scalars())
    hit = [r for r in rows if (r.source_system, r.source_record) == (court, defendant)
           and r.kind == "court_conviction" and r.detail == group]
    assert hit and all(r.is_violence and 0 < r.confidence <= 1 and r.event_date for r in hit)
    assert kinds == {"court_conviction", "probation_risk", "probation_breach"}
    assert {d for *_, d in flagged} <= set(VIOLENT_GROUPS)

    # Measured against the answer key: the court record behind each violence flag belongs to
    # the same true person as a prison record of that person.
    truth = dict(duckdb.sql(f"select system || ':' || record_id, person_id "
                            f"from '{home.home / 'truth' / 'records.parquet'}'").fetchall())
    with store.connect() as conn:
        prison_truth: dict[str, set[str]] = {}
        for oid, pid in conn.execute(sa.select(res.c.offender_id, res.c.person_id)):
            prison_truth.setdefault(pid, set()).add(truth[f"prison:{oid}"])
    right = sum(truth[f"{s}:{r}"] in prison_truth[p] for s, r, p, _ in flagged)
    assert right / len(flagged) >= 0.95, f"{right} of {len(flagged)} violence flags on the right person"


def test_resolution_waits_while_the_warehouse_is_locked(home):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    assert sync_once(home, store).ok
    when = greatest_modify(prison_db) + dt.timedelta(hours=1)
    with prison_db.begin() as conn:
        new_id = conn.execute(sa.text("SELECT MAX(OFFENDER_ID) FROM OFFENDERS")).scalar() + 1
        clone_row(conn, "OFFENDERS", "OFFENDER_ID = 1", {}, OFFENDER_ID=new_id,
                  OFFENDER_ID_DISPLAY="Z1234ZZ", CREATE_DATETIME=stamp(conn, when),
                  MODIFY_DATETIME=stamp(conn, when))
    # Another process writing the warehouse (as `justice link` would) holds its lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                "print('locked', flush=True); time.sleep(120)"),
         str(home.home / "warehouse.duckdb")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        waiting = sync_once(home, store)
    finally:
        holder.kill()
        holder.wait()
    assert waiting.ok
    assert "waits for a later sync" in waiting.note
    res = mirror.person_resolution
    with store.connect() as conn:
        assert conn.execute(sa.select(mirror.sync_runs.c.note)
                            .where(mirror.sync_runs.c.run_id == waiting.run_id)).scalar() == waiting.note
        assert conn.execute(sa.select(res).where(res.c.offender_id == new_id)).first() is None
        assert conn.execute(sa.select(mirror.mirror_table("OFFENDERS"))
                            .where(mirror.mirror_table("OFFENDERS").c.offender_id == new_id)).first()

    later = sync_once(home, store)  # nothing new in the prison: the waiting record is resolved
    assert later.ok and later.note is None and later.scored == 1
    with store.connect() as conn:
        row = conn.execute(sa.select(res).where(res.c.offender_id == new_id)).one()
        original = conn.execute(sa.select(res.c.person_id).where(res.c.offender_id == 1)).scalar()
    assert (row.method, row.person_id) == ("scored", original)


def test_a_rebuilt_warehouse_resolves_everyone_again(home):
    store = open_store(home)
    assert sync_once(home, store).ok
    assert sync_once(home, store).resolved == 0
    warehouse = home.home / "warehouse.duckdb"
    stat = warehouse.stat()
    os.utime(warehouse, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = sync_once(home, store)
    with store.connect() as conn:
        offenders = conn.execute(sa.select(sa.func.count()).select_from(mirror.person_resolution)).scalar()
    assert again.ok and again.resolved == offenders and again.history_rows > 0


def test_a_source_without_a_mirrored_column_still_syncs(home):
    """A prison database made before CREATE_USER_ID existed: the mirror column is null."""
    with sa.create_engine(home.prison_db_url).begin() as conn:
        conn.execute(sa.text("ALTER TABLE OFFENDER_ALERTS DROP COLUMN CREATE_USER_ID"))
    store = open_store(home)
    assert sync_once(home, store).ok
    alerts = mirror.mirror_table("OFFENDER_ALERTS")
    with store.connect() as conn:
        users = conn.execute(sa.select(alerts.c.create_user_id).distinct()).scalars().all()
        count = conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar()
    assert users == [None] and count > 0


def test_syncer_runs_in_the_background_until_stopped(home):
    prison_db = sa.create_engine(home.prison_db_url)
    store = open_store(home)
    hooked = []
    syncer = Syncer(home, store, interval=0.2, after_sync=hooked.append).start()
    try:
        deadline = time.monotonic() + 60
        while syncer.last_result is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert syncer.last_result is not None and syncer.last_result.ok
        when = greatest_modify(prison_db) + dt.timedelta(hours=1)
        change_source(prison_db, when)
        while time.monotonic() < deadline:
            with store.connect() as conn:
                if mirror.data_as_at(conn)[0] == when:
                    break
            time.sleep(0.05)
        with store.connect() as conn:
            assert mirror.data_as_at(conn)[0] == when
        assert syncer.run_now().ok
    finally:
        syncer.stop()
    assert not syncer._thread.is_alive()
    # The hook (the web app warms its roll cache there) saw every successful run, in order.
    assert hooked and all(r.ok for r in hooked) and hooked[-1] is syncer.last_result
    assert_mirror_is_source(store, prison_db)


def test_cli_sync_once(home, tmp_path):
    from typer.testing import CliRunner

    from justice.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["sync", "--home", str(home.home), "--once"])
    assert result.exit_code == 0, result.output
    assert "read" in result.output and "data as at" in result.output
    missing = runner.invoke(app, ["sync", "--home", str(home.home), "--once",
                                  "--prison-db", f"sqlite:///{tmp_path / 'none.sqlite'}"])
    assert missing.exit_code == 2 and "no prison database" in missing.output


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the store for several workers, and a prison database in PostgreSQL


def _database(server_url: str) -> str:
    """A new, empty database on the test server; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _prison_in_postgres(settings: Settings, server_url: str) -> str:
    """The world's prison database copied into a new PostgreSQL database with the emitter's
    own loader; its URL."""
    url = _database(server_url)
    sqlite = sa.create_engine(settings.prison_db_url)
    rows = {}
    with sqlite.connect() as conn:
        for name, (spec, _) in mirror.MIRROR.items():
            data = conn.execute(sa.text(f"SELECT {', '.join(spec.columns)} FROM {name}")).all()
            rows[name] = {c: [r[i] for r in data] for i, c in enumerate(spec.columns)}
    prison.write_database(url, rows)
    return url


@pytest.fixture
def pg_home(home, postgres_url) -> Settings:
    """The world with its prison database and its serving store in PostgreSQL."""
    return Settings(home=home.home, prison_db=_prison_in_postgres(home, postgres_url),
                    serving_db=_database(postgres_url))


@pytest.mark.postgres
def test_postgres_first_and_incremental_sync(pg_home):
    prison_db = sa.create_engine(pg_home.prison_db_url)
    store = open_store(pg_home)
    first = sync_once(pg_home, store, look_back=STRICT)
    assert first.ok, first.error
    assert_mirror_is_source(store, prison_db)
    with store.connect() as conn:
        assert mirror.data_as_at(conn)[0] == greatest_modify(prison_db)
        assert conn.execute(sa.select(sa.func.count()).select_from(mirror.person_resolution)).scalar() \
            == first.read["OFFENDERS"]
        assert conn.execute(sa.select(sa.func.count()).select_from(mirror.linked_history)
                            .where(mirror.linked_history.c.is_violence)).scalar() > 0

    when = greatest_modify(prison_db) + dt.timedelta(hours=1)
    change_source(prison_db, when)
    result = sync_once(pg_home, store, look_back=STRICT)
    assert result.ok, result.error
    assert result.read == only(result.read, OFFENDER_ALERTS=1, OFFENDERS=1)
    assert result.deleted == 1 and result.reconciled == ["INCIDENT_CASE_PARTIES"]
    assert_mirror_is_source(store, prison_db)
    with store.connect() as conn:
        assert mirror.data_as_at(conn)[0] == when


@pytest.mark.postgres
def test_postgres_source_lost_mid_run_leaves_the_store_as_it_was(pg_home):
    prison_db = sa.create_engine(pg_home.prison_db_url, pool_pre_ping=True)  # its line is cut too
    store = open_store(pg_home)
    assert sync_once(pg_home, store).ok
    before = store_snapshot(store)
    change_source(prison_db, greatest_modify(prison_db) + dt.timedelta(hours=1))
    database = sa.engine.make_url(pg_home.prison_db_url).database
    admin = sa.create_engine(pg_home.prison_db_url, isolation_level="AUTOCOMMIT")

    def cut_the_line(table: str, rows: int) -> None:
        if table == "OFFENDER_ALERTS":  # half-way: earlier tables are upserted in the store
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": database})

    result = sync_once(pg_home, store, progress=cut_the_line)
    assert not result.ok and result.error
    assert result.read.get("OFFENDERS", 0) >= 1  # it had upserted rows before the line went
    assert store_snapshot(store) == before
    with store.connect() as conn:
        assert conn.execute(sa.select(mirror.sync_runs.c.error).order_by(
            mirror.sync_runs.c.run_id.desc()).limit(1)).scalar() == result.error
    recovered = sync_once(pg_home, store)
    assert recovered.ok
    assert_mirror_is_source(store, prison_db)


@pytest.mark.postgres
def test_postgres_two_syncers_never_write_at_once(home, postgres_url):
    settings = Settings(home=home.home, serving_db=_database(postgres_url))
    store = open_store(settings)
    from justice.web.sync import ADVISORY_LOCK

    with store.connect() as other:  # another syncer, mid-run
        assert other.execute(sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK))).scalar()
        skipped = sync_once(settings, store)
        other.rollback()
    assert skipped.skipped and not skipped.ok and skipped.rows_read == 0
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mirror.sync_runs)).scalar() == 0
    assert sync_once(settings, store).ok
