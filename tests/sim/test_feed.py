"""The live prison (`justice feed`): invariants of what it writes, on SQLite and PostgreSQL,
determinism, corrections and deletions, releases and transfers, and the growing answer key.

Each test copies the session's small world (`small_truth`: truth/ and the prison database) and
runs the feed on the copy; the feed's rates are multiplied so a few simulated weeks are busy.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import signal
import sqlite3
import threading
import time
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from justice.errors import ConfigError, SimulationError
from justice.sim import feed_state as fs
from justice.sim.feed import FeedOptions, LivePrison, load_rates, run_feed
from justice.sim.legacy import ethnicity, prison

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
BUSY = FeedOptions(seed=7, speed=6 * 3600, rate=20, tick=1, steps=60)  # 15 days, 20x the rates


def _copy(small_truth, dest):
    """A copy of the small world's truth and prison database: (home folder, SQLite URL)."""
    out, _ = small_truth
    shutil.copytree(out / "truth", dest / "truth")
    (dest / "legacy" / "prison").mkdir(parents=True)
    shutil.copy2(out / "legacy" / "prison" / prison.DB_FILE, dest / "legacy" / "prison")
    return dest, f"sqlite:///{dest / 'legacy' / 'prison' / prison.DB_FILE}"


@pytest.fixture
def home(small_truth, tmp_path):
    """A fresh copy of the small world to run the feed on."""
    return _copy(small_truth, tmp_path / "home")


def _events(home) -> list[dict]:
    return fs.read_feed_truth(home / "truth", "events")


def _all(conn, sql: str) -> list[tuple]:
    return [tuple(fs._text(v) for v in r) for r in conn.exec_driver_sql(sql).all()]


def _check_roll(conn) -> None:
    """No cell over capacity; a CSRA-high prisoner alone; bookings and beds agree."""
    over = _all(conn, """SELECT LIVING_UNIT_ID, COUNT(*) FROM OFFENDER_BOOKINGS
                         WHERE ACTIVE_FLAG = 'Y' GROUP BY LIVING_UNIT_ID HAVING COUNT(*) > 2""")
    assert over == []
    shared_high = _all(conn, """
        SELECT b.OFFENDER_BOOK_ID FROM OFFENDER_BOOKINGS b
        JOIN OFFENDER_ASSESSMENTS a ON a.OFFENDER_BOOK_ID = b.OFFENDER_BOOK_ID
        WHERE b.ACTIVE_FLAG = 'Y' AND a.REVIEW_SUP_LEVEL_TYPE = 'HIGH'
          AND a.ASSESSMENT_SEQ = (SELECT MAX(ASSESSMENT_SEQ) FROM OFFENDER_ASSESSMENTS x
                                  WHERE x.OFFENDER_BOOK_ID = b.OFFENDER_BOOK_ID)
          AND a.CREATE_DATETIME >= '2026-01-01'
          AND (SELECT COUNT(*) FROM OFFENDER_BOOKINGS o WHERE o.ACTIVE_FLAG = 'Y'
               AND o.LIVING_UNIT_ID = b.LIVING_UNIT_ID) > 1""")
    assert shared_high == []
    # Every booking on the roll has exactly one open bed assignment, in the booking's cell.
    mismatch = _all(conn, """
        SELECT b.OFFENDER_BOOK_ID FROM OFFENDER_BOOKINGS b
        LEFT JOIN BED_ASSIGNMENT_HISTORIES h ON h.OFFENDER_BOOK_ID = b.OFFENDER_BOOK_ID
             AND h.ASSIGNMENT_END_DATE IS NULL
        WHERE b.ACTIVE_FLAG = 'Y' AND b.CREATE_DATETIME >= '2026-01-01'
        GROUP BY b.OFFENDER_BOOK_ID, b.LIVING_UNIT_ID
        HAVING COUNT(h.BED_ASSIGN_SEQ) != 1 OR MAX(h.LIVING_UNIT_ID) != b.LIVING_UNIT_ID""")
    assert mismatch == []


def _check_tables(conn, world_end: str) -> None:
    for name in prison.table_names():
        rows = _all(conn, f"SELECT CREATE_DATETIME, MODIFY_DATETIME FROM {name}")
        assert all(m >= c for c, m in rows), name
        assert all(STAMP.match(c) and STAMP.match(m) for c, m in rows), name
    # Sequences continue the batch emitter's: contiguous per booking, one active movement.
    for table, seq in (("OFFENDER_EXTERNAL_MOVEMENTS", "MOVEMENT_SEQ"),
                       ("BED_ASSIGNMENT_HISTORIES", "BED_ASSIGN_SEQ"),
                       ("OFFENDER_ASSESSMENTS", "ASSESSMENT_SEQ")):
        gaps = _all(conn, f"SELECT OFFENDER_BOOK_ID FROM {table} GROUP BY OFFENDER_BOOK_ID "
                          f"HAVING MIN({seq}) != 1 OR MAX({seq}) != COUNT(*)")
        assert gaps == [], table
    assert _all(conn, """SELECT OFFENDER_BOOK_ID FROM OFFENDER_EXTERNAL_MOVEMENTS
                         GROUP BY OFFENDER_BOOK_ID
                         HAVING SUM(CASE WHEN ACTIVE_FLAG = 'Y' THEN 1 ELSE 0 END) != 1""") == []
    # Closed bookings are OUT with no open bed; open ones are IN.
    assert _all(conn, """SELECT COUNT(*) FROM OFFENDER_BOOKINGS WHERE ACTIVE_FLAG = 'N' AND
                         (IN_OUT_STATUS != 'OUT' OR AGY_LOC_ID != 'OUT' OR BOOKING_END_DATE IS NULL
                          OR LIVING_UNIT_ID IS NOT NULL)""") == [(0,)]
    assert _all(conn, """SELECT COUNT(*) FROM OFFENDER_BOOKINGS WHERE ACTIVE_FLAG = 'Y' AND
                         (IN_OUT_STATUS != 'IN' OR AGY_LOC_ID = 'OUT')""") == [(0,)]
    # Nothing the feed wrote is dated before the world's end (a booking the batch emitter made
    # on the world's last day is stamped that day, after midnight: not the feed's).
    assert _all(conn, f"""SELECT COUNT(*) FROM OFFENDER_BOOKINGS WHERE CREATE_DATETIME > '{world_end} 23:59:59'
                          AND BOOKING_BEGIN_DATE <= '{world_end}'""") == [(0,)]


def _check_foreign_keys(conn) -> None:
    orphans = {
        "booking": "SELECT COUNT(*) FROM OFFENDER_BOOKINGS b LEFT JOIN OFFENDERS o "
                   "ON o.OFFENDER_ID = b.OFFENDER_ID WHERE o.OFFENDER_ID IS NULL",
        "bed": "SELECT COUNT(*) FROM BED_ASSIGNMENT_HISTORIES h LEFT JOIN AGENCY_INTERNAL_LOCATIONS l "
               "ON l.INTERNAL_LOCATION_ID = h.LIVING_UNIT_ID WHERE l.INTERNAL_LOCATION_TYPE IS NULL "
               "OR l.INTERNAL_LOCATION_TYPE != 'CELL'",
        "party": "SELECT COUNT(*) FROM INCIDENT_CASE_PARTIES p LEFT JOIN INCIDENT_CASES c "
                 "ON c.INCIDENT_CASE_ID = p.INCIDENT_CASE_ID WHERE c.INCIDENT_CASE_ID IS NULL",
        "alert": "SELECT COUNT(*) FROM OFFENDER_ALERTS a LEFT JOIN OFFENDER_BOOKINGS b "
                 "ON b.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID WHERE b.OFFENDER_BOOK_ID IS NULL",
    }
    for what, sql in orphans.items():
        assert _all(conn, sql) == [(0,)], what


def test_what_the_feed_writes_keeps_the_prisons_invariants(home, small_truth):
    folder, url = home
    _, world = small_truth
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        before = dict(_all(conn, "SELECT 'offender', MAX(OFFENDER_ID) FROM OFFENDERS UNION ALL "
                                 "SELECT 'booking', MAX(OFFENDER_BOOK_ID) FROM OFFENDER_BOOKINGS"))
        # An alert with a planned end inside the run (as the batch world writes open ACCTs).
        planned = _all(conn, """SELECT a.OFFENDER_BOOK_ID, a.ALERT_SEQ FROM OFFENDER_ALERTS a
                                JOIN OFFENDER_BOOKINGS b ON b.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID
                                WHERE b.ACTIVE_FLAG = 'Y' AND a.ALERT_STATUS = 'ACTIVE'
                                ORDER BY 1, 2""")[0]
        conn.exec_driver_sql("UPDATE OFFENDER_ALERTS SET EXPIRY_DATE = '2026-01-05' WHERE "
                             f"OFFENDER_BOOK_ID = {planned[0]} AND ALERT_SEQ = {planned[1]}")
        conn.commit()
        live = LivePrison(conn, folder / "truth", BUSY)
        assert live.state.clock == fs.seconds_of("2026-01-01")  # the day after the world ends
        for _ in range(BUSY.steps):
            live.step(int(BUSY.tick * BUSY.speed))
            _check_roll(conn)
        # The running counts of the roll (the exposures) agree with counting it again.
        st = live.state
        running = (list(st.roll_ids), st.prone_on_roll, +st.alerts_on_roll)
        st.count_roll()
        assert running == (st.roll_ids, st.prone_on_roll, +st.alerts_on_roll)
        conn.commit()
        _check_tables(conn, world.params.end.isoformat())
        _check_foreign_keys(conn)
        assert _all(conn, "SELECT SIMULATED_NOW, TICKS FROM FEED_CLOCK") == [("2026-01-16 00:00:00", 60)]
        new_offenders = _all(conn, f"SELECT OFFENDER_ID FROM OFFENDERS WHERE OFFENDER_ID > {before['offender']}")
        assert [r[0] for r in new_offenders] == list(range(before["offender"] + 1,
                                                           before["offender"] + 1 + len(new_offenders)))
        # Alerts end on their planned day: none on the roll is still active past it.
        assert _all(conn, """SELECT COUNT(*) FROM OFFENDER_ALERTS a JOIN OFFENDER_BOOKINGS b
                             ON b.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID WHERE b.ACTIVE_FLAG = 'Y'
                             AND a.ALERT_STATUS = 'ACTIVE' AND a.EXPIRY_DATE < '2026-01-16'""") == [(0,)]
        assert _all(conn, "SELECT ALERT_STATUS, MODIFY_DATETIME >= '2026-01-05' FROM OFFENDER_ALERTS "
                          f"WHERE OFFENDER_BOOK_ID = {planned[0]} AND ALERT_SEQ = {planned[1]}") in (
            [("INACTIVE", 1)], [])  # [] when deleted in error before its day
        users = _all(conn, "SELECT CREATE_USER_ID FROM OFFENDER_ALERTS WHERE CREATE_DATETIME >= '2026-01-01'")
        assert users and all(re.fullmatch(r"[A-Z]+_GEN", u) for (u,) in users)
    engine.dispose()
    counts = Counter(e["kind"] for e in _events(folder))
    for kind in ("reception", "release", "transfer", "cell_move", "alert_raised", "alert_closed",
                 "csra_assessed", "non_association", "incident", "adjudication", "correction"):
        assert counts[kind] > 0, kind
    kinds = Counter(e["detail"].split(":")[0] for e in _events(folder) if e["kind"] == "incident")
    assert set(kinds) == {"SELF_HARM", "ASSAULT_ON_PRISONER", "ASSAULT_ON_STAFF"}


@pytest.mark.postgres
def test_postgres_gets_the_same_rows_as_sqlite(home, postgres_url):
    folder, url = home
    # The same starting database on both: the SQLite tables copied into PostgreSQL.
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = {}
        for name in prison.table_names():
            result = conn.exec_driver_sql(f"SELECT * FROM {name}")
            cols = list(result.keys())
            data = result.all()
            tables[name] = {c: [r[i] for r in data] for i, c in enumerate(cols)}
    engine.dispose()
    prison.write_database(postgres_url, tables)
    pg_truth = folder / "pg"
    shutil.copytree(folder / "truth", pg_truth / "truth")
    options = FeedOptions(seed=7, speed=6 * 3600, rate=20, tick=1, steps=40)
    run_feed(url, folder / "truth", options)
    run_feed(postgres_url, pg_truth / "truth", options)
    lite, pg = sa.create_engine(url), sa.create_engine(postgres_url)
    try:
        with lite.connect() as a, pg.connect() as b:
            _check_roll(b)
            _check_foreign_keys(b)
            for name in [*prison.table_names(), fs.FEED_CLOCK]:
                ours = sorted(_all(a, f"SELECT * FROM {name}"), key=repr)
                theirs = sorted(_all(b, f"SELECT * FROM {name}"), key=repr)
                assert theirs == ours, name
    finally:
        lite.dispose()
        pg.dispose()
    assert _events(folder) == _events(pg_truth)


def test_same_seed_same_tables_in_one_run_or_two(home, small_truth, tmp_path):
    folder, url = home
    other, other_url = _copy(small_truth, tmp_path / "again")
    third, third_url = _copy(small_truth, tmp_path / "third")
    run_feed(url, folder / "truth", BUSY)
    half = dataclasses.replace(BUSY, steps=30)
    run_feed(other_url, other / "truth", half)
    run_feed(other_url, other / "truth", half)  # carries on where the first run stopped
    run_feed(third_url, third / "truth", dataclasses.replace(BUSY, seed=8))

    def dump(path) -> list[str]:
        with sqlite3.connect(path / "legacy" / "prison" / prison.DB_FILE) as con:
            return list(con.iterdump())

    assert dump(folder) == dump(other)
    assert _events(folder) == _events(other)
    assert fs.read_feed_truth(folder / "truth", "records") == fs.read_feed_truth(other / "truth", "records")
    assert dump(folder) != dump(third)  # another seed is another history


def test_corrections_and_deletions_happen_at_their_rates(home):
    folder, url = home
    rates = load_rates()
    # Only corrections and deletions, so the roll stays as it is.
    for name, ev in rates["events"].items():
        ev["rate"] = 0.0 if name not in ("correction", "alert_deleted") else ev["rate"]
    options = FeedOptions(seed=3, speed=86_400, rate=200, tick=1, steps=30)
    engine = sa.create_engine(url)
    active = ("SELECT COUNT(*) FROM OFFENDER_ALERTS a JOIN OFFENDER_BOOKINGS b ON "
              "b.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID WHERE b.ACTIVE_FLAG = 'Y' AND "
              "a.ALERT_STATUS = 'ACTIVE'")
    expected = Counter()
    with engine.connect() as conn:
        alerts_before = set(_all(conn, "SELECT OFFENDER_BOOK_ID, ALERT_SEQ FROM OFFENDER_ALERTS"))
        alert_time = {(b, s): (c, m) for b, s, c, m in _all(
            conn, "SELECT OFFENDER_BOOK_ID, ALERT_SEQ, CREATE_DATETIME, MODIFY_DATETIME FROM OFFENDER_ALERTS")}
        conn.commit()
        live = LivePrison(conn, folder / "truth", options, rates)
        for _ in range(options.steps):
            # The expected count is the rate times the exposure, tick by tick (deletions use up
            # the alerts they happen to).
            exposure = {"correction": len(live.state.bookings), "alert_deleted": _all(conn, active)[0][0]}
            conn.commit()
            for kind, n in exposure.items():
                expected[kind] += rates["events"][kind]["rate"] * options.rate * n  # one day a tick
            live.step(86_400)
    events = _events(folder)
    counts = Counter(e["kind"] for e in events)
    assert set(counts) == {"correction", "alert_deleted"}
    for kind, mean in expected.items():
        assert mean > 15
        assert abs(counts[kind] - mean) < 4 * math.sqrt(mean), (kind, counts[kind], mean)
    with engine.connect() as conn:
        alerts_after = set(_all(conn, "SELECT OFFENDER_BOOK_ID, ALERT_SEQ FROM OFFENDER_ALERTS"))
        deleted = {(e["offender_book_id"], int(e["detail"].split(":")[1]))
                   for e in events if e["kind"] == "alert_deleted"}
        assert alerts_before - alerts_after == deleted  # a deleted row is gone, nothing else
        # A corrected alert keeps its key and creation; only MODIFY_DATETIME moves on.
        for e in events:
            if e["kind"] == "correction" and e["detail"].startswith("OFFENDER_ALERTS"):
                seq = int(e["detail"].split()[1])
                key = (e["offender_book_id"], seq)
                if key in alerts_after:
                    created, modified = _all(conn, "SELECT CREATE_DATETIME, MODIFY_DATETIME FROM "
                                                   f"OFFENDER_ALERTS WHERE OFFENDER_BOOK_ID = {key[0]} "
                                                   f"AND ALERT_SEQ = {seq}")[0]
                    assert created == alert_time[key][0]
                    assert modified > alert_time[key][1] and modified >= e["at"]
        names = [e for e in events if e["kind"] == "correction" and e["detail"] == "OFFENDERS names"]
        for e in names:
            created, modified = _all(conn, "SELECT CREATE_DATETIME, MODIFY_DATETIME FROM OFFENDERS "
                                           f"WHERE OFFENDER_ID = {e['offender_id']}")[0]
            assert created < "2026-01-01" <= modified
    engine.dispose()


def test_releases_and_transfers_show_in_the_bookings(home):
    folder, url = home
    run_feed(url, folder / "truth", BUSY)
    events = _events(folder)
    last = {}
    for e in events:
        if e["offender_book_id"] is not None and e["kind"] in ("release", "transfer", "reception"):
            last[e["offender_book_id"]] = e
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        released = [e for e in last.values() if e["kind"] == "release"]
        assert released
        for e in released:
            row = _all(conn, "SELECT ACTIVE_FLAG, BOOKING_STATUS, IN_OUT_STATUS, AGY_LOC_ID, "
                             "BOOKING_END_DATE, LIVING_UNIT_ID, MODIFY_DATETIME FROM OFFENDER_BOOKINGS "
                             f"WHERE OFFENDER_BOOK_ID = {e['offender_book_id']}")[0]
            assert row[:4] == ("N", "C", "OUT", "OUT")
            assert row[4] == e["at"][:10] and row[5] is None and row[6] >= e["at"]
            move = _all(conn, "SELECT MOVEMENT_TYPE, TO_AGY_LOC_ID FROM OFFENDER_EXTERNAL_MOVEMENTS "
                              f"WHERE OFFENDER_BOOK_ID = {e['offender_book_id']} AND ACTIVE_FLAG = 'Y'")
            assert move == [("REL", "OUT")]
        moved = [e for e in last.values() if e["kind"] == "transfer"]
        assert moved
        for e in moved:
            source, dest = e["detail"].split(">")
            assert source != dest
            agy, unit = _all(conn, "SELECT b.AGY_LOC_ID, l.AGY_LOC_ID FROM OFFENDER_BOOKINGS b JOIN "
                                   "AGENCY_INTERNAL_LOCATIONS l ON l.INTERNAL_LOCATION_ID = b.LIVING_UNIT_ID "
                                   f"WHERE b.OFFENDER_BOOK_ID = {e['offender_book_id']}")[0]
            assert agy == unit == dest
            trn = _all(conn, "SELECT FROM_AGY_LOC_ID, TO_AGY_LOC_ID, MOVEMENT_REASON_CODE FROM "
                             f"OFFENDER_EXTERNAL_MOVEMENTS WHERE OFFENDER_BOOK_ID = {e['offender_book_id']} "
                             "AND ACTIVE_FLAG = 'Y' AND MOVEMENT_TYPE = 'TRN'")
            assert trn == [(source, dest, "NOTR")]
    engine.dispose()


def test_the_answer_key_grows_with_the_right_people(home, small_truth):
    folder, url = home
    _, world = small_truth
    run_feed(url, folder / "truth", BUSY)
    events_before = _events(folder)
    records = fs.read_feed_truth(folder / "truth", "records")
    persons = {p["person_id"]: p for p in fs.read_feed_truth(folder / "truth", "persons")}
    world_ids = set(world.tables["persons"]["person_id"].tolist())
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        before = pq.read_table(folder / "truth" / "records.parquet").to_pydict()
        prison_before = sum(s == "prison" for s in before["system"])
        offenders = _all(conn, "SELECT OFFENDER_ID, BIRTH_DATE, OFFENDER_ID_DISPLAY, FIRST_NAME, "
                               "LAST_NAME FROM OFFENDERS")
        assert len(offenders) == prison_before + len(records)  # a record for every new row
        new_ids = {r["record_id"] for r in records}
        new = {str(o): (d, f, s) for o, d, _, f, s in offenders if str(o) in new_ids}
        assert len(new) == len(records)
        true = {p: (str(np.datetime64(int(d), "D")), f.upper(), s.upper()) for p, d, f, s in zip(
            *(world.tables["persons"][c].tolist() for c in ("person_id", "dob", "forename", "surname")),
            strict=True)}
        true.update({p: (v["dob"], v["forename"].upper(), v["surname"].upper()) for p, v in persons.items()})
        # Kinds that change the forename or surname: the prison's correctable name mess (less the
        # middle-name kinds) and another identity given (an alias, a relative's borrowed name).
        name_mess = (prison.NAME_KINDS - {"middle_missing", "middle_wrong"}) | prison.DECEIT_KINDS
        dob_mess = {"dob_missing", "dob_shift", "dob_first_jan", "dob_day_month_swap",
                    "false_dob"} | prison.DECEIT_KINDS
        kinds, clean = Counter(), 0
        for r in records:
            assert r["system"] == "prison"
            person = r["person_id"]
            labels = set(r["mess"].split(",")) - {""}
            kinds["known" if person in world_ids else "new"] += 1
            if person not in world_ids:
                assert re.fullmatch(r"PF\d{8}", person)
            # The row is the true person's identity with exactly the mess its label names.
            dob, first, last = new[r["record_id"]]
            if not labels & dob_mess:
                assert dob == true[person][0], r
            if not labels & name_mess:
                assert (first, last) == true[person][1:], r
                clean += 1
        assert kinds["known"] > 0 and kinds["new"] > 0 and clean > 0
        # Each new row records the person's true ethnicity as the batch emitter would.
        true_group = dict(zip(world.tables["persons"]["person_id"].tolist(),
                              world.tables["persons"]["ethnicity"].tolist(), strict=True))
        true_group.update({p: v["ethnicity"] for p, v in persons.items()})
        assert set(true_group.values()) <= set(ethnicity.GROUPS)
        race = dict(_all(conn, "SELECT OFFENDER_ID, RACE_CODE FROM OFFENDERS"))
        ids = [int(r["record_id"]) for r in records]
        who = np.array([r["person_id"] for r in records], dtype=object)
        expected = ethnicity.recorded_codes(who, np.array([true_group[p] for p in who], object),
                                            np.array(ids))
        assert [race[i] for i in ids] == expected.tolist()
        # Prison numbers stay unique to their root row, except where the world's answer key
        # says a number was issued again or an alias row was left untied (issue 13's mess).
        numbers = [n for _, _, n, _, _ in offenders]
        shared = {int(r) for r, m in zip(before["record_id"], before["mess"], strict=True)
                  if {"prison_number_reused", "alias_untied"} & set(m.split(","))}
        displays = [d for o, d in _all(conn, "SELECT OFFENDER_ID, OFFENDER_ID_DISPLAY FROM "
                                             "OFFENDERS WHERE ALIAS_OFFENDER_ID IS NULL")
                    if o not in shared]
        assert len(set(displays)) == len(displays) and len(numbers) >= len(displays)
        # Every event's booking belongs to the event's person.
        person_of = {int(r["record_id"]): r["person_id"] for r in records}
        person_of.update({int(r): p for s, r, p in zip(before["system"], before["record_id"],
                                                       before["person_id"], strict=True) if s == "prison"})
        owner = dict(_all(conn, "SELECT OFFENDER_BOOK_ID, OFFENDER_ID FROM OFFENDER_BOOKINGS"))
        for e in _events(folder):
            if e["offender_book_id"] is not None and e["kind"] != "alert_deleted":
                assert person_of[owner[e["offender_book_id"]]] == e["person_id"], e
    engine.dispose()
    assert not (set(persons) & world_ids)
    # A run's tick parts are merged into one part per kind when it stops.
    feed = folder / "truth" / "feed"
    assert all(len(list((feed / kind).glob("*.parquet"))) == 1 for kind in ("events", "records", "persons"))
    # A part of a tick the database never committed (a crash between the two) goes at the next start.
    clock = fs.seconds_of(run_feed(url, folder / "truth", FeedOptions(steps=0)).ended_at)
    stale = feed / "events" / f"{clock:012d}-{clock + 60:012d}.parquet"
    shutil.copy2(next((feed / "events").glob("*.parquet")), stale)
    run_feed(url, folder / "truth", FeedOptions(steps=0))
    assert not stale.exists() and len(_events(folder)) == len(events_before)


def test_bad_input_gives_clear_errors(tmp_path, home):
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(SimulationError, match="14 of the 14 NOMIS tables are missing"):
        run_feed(f"sqlite:///{empty}", home[0] / "truth", FeedOptions(steps=1))
    with pytest.raises(ConfigError, match="--speed -2"):
        FeedOptions(speed=-2)
    with pytest.raises(ConfigError, match="--steps or --duration"):
        FeedOptions(steps=3, duration=5)
    with pytest.raises(SimulationError, match="no records.parquet"):
        run_feed(home[1], tmp_path / "nowhere", FeedOptions(steps=1))
    # A database that does not belong to the truth folder beside it.
    engine = sa.create_engine(home[1])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO OFFENDERS (OFFENDER_ID, OFFENDER_ID_DISPLAY, CREATE_DATETIME, "
                             "MODIFY_DATETIME) VALUES (999999, 'Z9999ZZ', '2020-01-01 10:00:00', "
                             "'2020-01-01 10:00:00')")
    engine.dispose()
    with pytest.raises(SimulationError, match="OFFENDERS row 999999 .* has no person"):
        run_feed(home[1], home[0] / "truth", FeedOptions(steps=1))


def test_cli_feed_prints_a_summary_and_fails_clearly(home):
    from justice.cli import app

    folder, _ = home
    runner = CliRunner()
    result = runner.invoke(app, ["feed", "--home", str(folder), "--speed", "3600", "--rate", "10",
                                 "--steps", "24", "--json"])
    assert result.exit_code == 0, result.output
    assert '"ticks": 24' in result.output and '"to": "2026-01-02 00:00:00"' in result.output
    bad = runner.invoke(app, ["feed", "--home", str(folder), "--speed", "-1", "--steps", "1"])
    assert bad.exit_code == 2 and "--speed -1" in bad.output


def test_a_slow_start_does_not_eat_a_real_time_runs_duration(home, monkeypatch):
    """--duration counts wall seconds of feeding, from when the prison has been read: reading it
    slowly (a loaded machine) must not leave a one-second run with no tick."""
    import justice.sim.feed as feed_mod

    class SlowToRead(LivePrison):
        def __init__(self, *args, **kwargs):
            time.sleep(1.5)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(feed_mod, "LivePrison", SlowToRead)
    folder, url = home
    summary = run_feed(url, folder / "truth", FeedOptions(speed=60, tick=0.3, duration=1.0))
    assert 1 <= summary.ticks <= 4 and summary.seconds >= 1.5 + 0.3


def test_real_time_runs_stop_after_their_duration_or_at_ctrl_c(home):
    folder, url = home
    began = time.monotonic()
    summary = run_feed(url, folder / "truth", FeedOptions(speed=60, tick=0.3, duration=1.0))
    assert 1 <= summary.ticks <= 4 and time.monotonic() - began < 30  # generous: CI machines are loaded
    assert summary.ended_at == fs.stamp(fs.seconds_of(summary.started_at) + summary.ticks * 18)
    # Ctrl-C ends the run after the tick in hand: the clock stored is the last tick's end.
    # The interrupt is sent once a tick has been committed, not after a fixed delay: on a
    # loaded machine the run's start-up alone can outlast any fixed delay.
    watcher = sa.create_engine(url)

    def interrupt_after_first_tick() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with watcher.connect() as conn:
                if _all(conn, "SELECT TICKS FROM FEED_CLOCK")[0][0] > summary_ticks:
                    break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    with sa.create_engine(url).connect() as conn:
        summary_ticks = _all(conn, "SELECT TICKS FROM FEED_CLOCK")[0][0]
    threading.Thread(target=interrupt_after_first_tick, daemon=True).start()
    stopped = run_feed(url, folder / "truth", FeedOptions(speed=60, tick=0.3))
    watcher.dispose()
    assert stopped.ticks >= 1 and stopped.started_at == summary.ended_at
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert _all(conn, "SELECT SIMULATED_NOW FROM FEED_CLOCK") == [(stopped.ended_at,)]
    engine.dispose()


def test_a_failed_write_leaves_nothing_behind_and_the_feed_carries_on(home, small_truth, tmp_path):
    folder, url = home
    clean, clean_url = _copy(small_truth, tmp_path / "clean")
    run_feed(clean_url, clean / "truth", BUSY)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the database refuses the first transfer after a week
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON OFFENDER_EXTERNAL_MOVEMENTS "
                             "WHEN NEW.MOVEMENT_TYPE = 'TRN' AND NEW.MOVEMENT_DATE >= '2026-01-08' "
                             "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(SimulationError, match="nothing of it was committed"):
        run_feed(url, folder / "truth", BUSY)
    with engine.begin() as conn:
        now, ticks = _all(conn, "SELECT SIMULATED_NOW, TICKS FROM FEED_CLOCK")[0]
        assert 0 < ticks < BUSY.steps
        assert _all(conn, f"SELECT COUNT(*) FROM OFFENDER_BOOKINGS WHERE MODIFY_DATETIME >= '{now}'") == [(0,)]
        conn.exec_driver_sql("DROP TRIGGER refuse")
    assert all(e["at"] < now for e in _events(folder))  # the failed tick's answer key is gone
    run_feed(url, folder / "truth", dataclasses.replace(BUSY, steps=BUSY.steps - ticks))
    engine.dispose()

    def dump(path) -> list[str]:
        with sqlite3.connect(path / "legacy" / "prison" / prison.DB_FILE) as con:
            return list(con.iterdump())

    assert dump(folder) == dump(clean)
    assert _events(folder) == _events(clean)
