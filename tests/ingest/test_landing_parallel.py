"""Files read by worker processes land exactly as files read one by one: the same rows, rejects,
ledger and errors, in the same order, with a failed file isolated and unchanged files skipped."""

from __future__ import annotations

import json
import os

import pytest

from justice import warehouse
from justice.engine import engine_for, lake
from justice.errors import ConfigError
from justice.ingest import landing
from justice.settings import Settings
from justice.sources.spec import parse_spec

SPEC = parse_spec({"system": "fines", "format": "csv", "files": "*.csv", "options": {"chunk_rows": 3},
                   "tables": [{"name": "payments", "record_key": ["account"], "fields": [
                       {"source": "Account", "name": "account", "required": True},
                       {"source": "Amount", "name": "amount", "type": "decimal"}]}]}, "fines.yaml")

FILES = {
    "a.csv": "Account,Amount\n1,10.00\n2,oops\n3,5\n4,6\n5,7\n",
    "b.csv": "Account,Amount\n6,1\n7,2,extra\n8,3\n",  # a ragged row: a reject
    "c.csv": "Amount\n9\n",  # no Account column: the whole file fails
    "d.csv": "Account,Amount,Note\n10,4,late\n11,5,\n",  # an undeclared column: x_note
}


def _home(tmp_path, name: str, workers: int) -> Settings:
    folder = tmp_path / name / "legacy" / "fines"
    folder.mkdir(parents=True)
    for file, text in FILES.items():
        (folder / file).write_text(text)
    return Settings(home=tmp_path / name, ingest_workers=workers)


FINES_TABLES = ("fines__payments", "fines__rejects")


def _lake(home: Settings, tables: tuple[str, ...] | None = None) -> dict[str, list[tuple]]:
    """Each raw table's columns and sorted rows (every raw table unless named), without the
    columns that differ from run to run (load ids, extraction and load times)."""
    engine_for(home).refresh_raw_views([])
    con = warehouse.connect(home, read_only=True)
    try:
        out = {}
        for table in tables or lake.raw_tables(home):
            cols = [c for c, *_ in con.execute(f"DESCRIBE raw.{table}").fetchall()
                    if c not in ("_load_id", "_extracted_at", "load_id", "started_at", "finished_at")]
            out[table] = [tuple(cols)] + sorted(con.execute(
                f"SELECT {', '.join(cols)} FROM raw.{table}").fetchall(), key=repr)
        return out
    finally:
        con.close()


def _summary(report) -> list[tuple]:
    return [(f.file, f.rows_landed, f.rows_rejected, f.new_columns, bool(f.error), f.skipped)
            for f in report.files]


@pytest.mark.parametrize("spool_rows", [250_000, 1])  # in memory, and spilled to disk by workers
def test_files_read_by_workers_land_as_files_read_in_turn(tmp_path, monkeypatch, spool_rows):
    monkeypatch.setattr(landing, "SPOOL_ROWS", spool_rows)
    serial_home = _home(tmp_path, "serial", 1)
    serial = landing.land_system(SPEC, serial_home)

    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    used = []
    real_pool = landing.ProcessPoolExecutor
    monkeypatch.setattr(landing, "ProcessPoolExecutor",
                        lambda *a, **k: used.append(a) or real_pool(*a, **k))
    parallel_home = _home(tmp_path, "parallel", 2)
    parallel = landing.land_system(SPEC, parallel_home)
    assert used, "the files were not read by worker processes"

    assert _summary(parallel) == _summary(serial)
    assert [f.file for f in parallel.files if f.error] == ["c.csv"]
    assert "Account" in next(f.error for f in parallel.files if f.error)
    assert (parallel.rows_landed, parallel.rows_rejected) == (9, 1)
    assert _lake(parallel_home, FINES_TABLES) == _lake(serial_home, FINES_TABLES)
    rejects = _lake(parallel_home, FINES_TABLES)["fines__rejects"]
    assert [(r[2], r[3], r[4]) for r in rejects[1:]] == [("b.csv", "line 3", "ragged_row")]

    # The ledger written by a parallel load is honoured: a re-run skips every landed file and
    # tries the failed one again.
    again = landing.land_system(SPEC, parallel_home)
    assert [(f.file, f.skipped, bool(f.error)) for f in again.files] == [
        ("a.csv", True, False), ("b.csv", True, False), ("c.csv", False, True),
        ("d.csv", True, False)]


def _data_files(home: Settings, table: str) -> list:
    return sorted((home.home / "lake" / "raw" / table).glob("*.parquet"))


def test_a_file_spooled_to_disk_lands_as_one_kept_in_memory_and_is_not_encoded_again(
        tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    homes = {}
    for spool_rows in (250_000, 0):  # every file in memory; every file spooled as Parquet
        monkeypatch.setattr(landing, "SPOOL_ROWS", spool_rows)
        home = homes[spool_rows] = _home(tmp_path, f"spool{spool_rows}", 1)
        (home.legacy_dir / "fines" / "d.csv").rename(tmp_path / f"d{spool_rows}.csv")
        reports = [landing.land_system(SPEC, home)]
        if spool_rows == 0:
            # The first load's files are the spooled Parquet files themselves, taken by dlt as
            # they are: only the lineage columns have statistics (dlt's writer gives every
            # column statistics).
            for table in FINES_TABLES:
                for path in _data_files(home, table):
                    meta = pq.ParquetFile(path).metadata
                    stats = {meta.schema.column(i).name: meta.row_group(0).column(i).is_stats_set
                             for i in range(meta.num_columns)}
                    assert stats["_file"] and not stats["_locator"], (table, stats)
        # A file with a column the earlier load did not have, then one without it.
        (tmp_path / f"d{spool_rows}.csv").rename(home.legacy_dir / "fines" / "d.csv")
        reports.append(landing.land_system(SPEC, home))
        (home.legacy_dir / "fines" / "e.csv").write_text("Account,Amount\n12,8\n13,9,x\n")
        reports.append(landing.land_system(SPEC, home))
        homes[spool_rows] = (home, [_summary(r) for r in reports])
    (memory, memory_reports), (disk, disk_reports) = homes[250_000], homes[0]
    assert disk_reports == memory_reports
    assert disk_reports[2] == [("a.csv", 0, 0, [], False, True), ("b.csv", 0, 0, [], False, True),
                               ("c.csv", 0, 0, [], True, False), ("d.csv", 0, 0, [], False, True),
                               ("e.csv", 1, 1, [], False, False)]
    assert _lake(disk, FINES_TABLES) == _lake(memory, FINES_TABLES)
    payments = _lake(disk, FINES_TABLES)["fines__payments"]
    assert len(payments) == 1 + 10 and "x_note" in payments[0]
    assert list((disk.home / ".dlt").glob("spool-*")) == []


DB_SPEC = {"system": "gaol", "format": "database", "url": "sqlite:///{legacy}/gaol/gaol.sqlite",
           "cursor": "modified_timestamp", "tables": [
               {"name": "inmates", "source": "INMATES", "record_key": ["inmate_id"],
                "cursor_field": "modified", "fields": [
                    {"source": "INMATE_ID", "name": "inmate_id", "type": "integer", "required": True},
                    {"source": "SURNAME", "name": "surname"},
                    {"source": "MODIFIED", "name": "modified", "required": True}]},
               {"name": "moves", "source": "MOVES", "record_key": ["move_id"],
                "cursor_field": "modified", "fields": [
                    {"source": "MOVE_ID", "name": "move_id", "type": "integer", "required": True},
                    {"source": "MODIFIED", "name": "modified", "required": True}]}]}


def _gaol(tmp_path, name: str, workers: int) -> Settings:
    import sqlite3

    folder = tmp_path / name / "legacy" / "gaol"
    folder.mkdir(parents=True)
    con = sqlite3.connect(folder / "gaol.sqlite")
    con.execute("CREATE TABLE INMATES (INMATE_ID INTEGER, SURNAME TEXT, MODIFIED TEXT)")
    con.execute("CREATE TABLE MOVES (MOVE_ID INTEGER, WING TEXT, MODIFIED TEXT)")
    con.executemany("INSERT INTO INMATES VALUES (?, ?, ?)",
                    [(1, "Smith", "2025-01-01 10:00:00"), (2, None, "2025-01-02 10:00:00")])
    # Text that is not UTF-8: a reject.
    con.execute("INSERT INTO INMATES VALUES (3, CAST(X'4FD5427269656E' AS TEXT), "
                "'2025-01-03 10:00:00')")
    con.executemany("INSERT INTO MOVES VALUES (?, ?, ?)",
                    [(i, "B", f"2025-02-{i:02d} 09:00:00") for i in range(1, 6)])
    con.commit()
    con.close()
    return Settings(home=tmp_path / name, ingest_workers=workers)


def _cursor_state(home: Settings, spec) -> dict:
    import dlt

    pipeline = dlt.attach(pipeline_name=f"justice_{spec.system}", pipelines_dir=str(home.home / ".dlt"))
    return pipeline.state["sources"][spec.system]["resources"][f"{spec.system}_rows"]["cursors"]


def test_a_database_read_table_by_table_by_workers_lands_as_one_read(tmp_path, monkeypatch):
    import sqlite3

    spec = parse_spec(DB_SPEC, "gaol.yaml")
    serial_home = _gaol(tmp_path, "serial", 1)
    serial = landing.land_system(spec, serial_home)
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    parallel_home = _gaol(tmp_path, "parallel", 2)
    parallel = landing.land_system(spec, parallel_home)

    assert _summary(parallel) == _summary(serial)
    assert (parallel.rows_landed, parallel.rows_rejected) == (7, 1)
    assert parallel.files[0].new_columns == ["x_wing"]
    lake = _lake(parallel_home)
    assert lake == _lake(serial_home)
    assert [r[4] for r in lake["gaol__rejects"][1:]] == ["undecodable_text"]
    state = _cursor_state(parallel_home, spec)
    assert state == _cursor_state(serial_home, spec)
    assert json.loads(state["gaol"]) == {"inmates": "2025-01-03 10:00:00",
                                         "moves": "2025-02-05 09:00:00"}

    # The next load takes only what changed since each table's cursor.
    for home in (serial_home, parallel_home):
        con = sqlite3.connect(home.legacy_dir / "gaol" / "gaol.sqlite")
        con.execute("INSERT INTO MOVES VALUES (6, 'C', '2025-03-01 09:00:00')")
        con.commit()
        con.close()
    serial_again = landing.land_system(spec, serial_home)
    parallel_again = landing.land_system(spec, parallel_home)
    assert parallel_again.rows_landed == serial_again.rows_landed == 1
    assert _lake(parallel_home) == _lake(serial_home)
    assert _cursor_state(parallel_home, spec) == _cursor_state(serial_home, spec)


def test_a_database_table_that_fails_fails_the_whole_database_with_the_error_of_one_read(
        tmp_path, monkeypatch):
    broken = json.loads(json.dumps(DB_SPEC))
    broken["tables"][1]["fields"].append({"source": "DEST", "name": "dest", "required": True})
    broken["tables"][0]["fields"].append({"source": "DOB", "name": "dob", "required": True})
    spec = parse_spec(broken, "gaol.yaml")
    serial = landing.land_system(spec, _gaol(tmp_path, "serial", 1))
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    parallel_home = _gaol(tmp_path, "parallel", 2)
    parallel = landing.land_system(spec, parallel_home)
    assert parallel.files[0].error == serial.files[0].error.replace("/serial/", "/parallel/")
    assert "DOB" in parallel.files[0].error and "DEST" in parallel.files[0].error
    assert parallel.rows_read == 0
    assert [t for t in lake.raw_tables(parallel_home) if not t.endswith(("__loads", "__load_errors"))] == []


def test_a_program_piped_to_python_lands_its_files_in_one_process(tmp_path, monkeypatch):
    import sys
    import types

    # Spawned workers re-run the main script; `python -` has none, so files are read in turn.
    piped = types.ModuleType("__main__")
    piped.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "__main__", piped)
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(landing, "ProcessPoolExecutor", None)  # would fail if used
    report = landing.land_system(SPEC, _home(tmp_path, "piped", 2))
    assert (report.rows_landed, report.rows_rejected) == (9, 1)


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_bad_worker_count_is_a_clear_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("JUSTICE_INGEST_WORKERS", value)
    with pytest.raises(ConfigError, match="JUSTICE_INGEST_WORKERS"):
        Settings.from_env(home=tmp_path)


def test_no_worker_count_means_one_per_core(tmp_path, monkeypatch):
    monkeypatch.delenv("JUSTICE_INGEST_WORKERS", raising=False)
    assert Settings.from_env(home=tmp_path).ingest_workers == (os.cpu_count() or 1)
    monkeypatch.setenv("JUSTICE_INGEST_WORKERS", "3")
    assert Settings.from_env(home=tmp_path).ingest_workers == 3


def test_systems_landed_with_shared_workers_land_as_with_their_own(tmp_path, monkeypatch):
    """One set of worker processes serves every system of a `justice ingest`: the files and a
    database's tables land as when each system starts its own, and the processes are started
    once, not once per system."""
    spec = parse_spec(DB_SPEC, "gaol.yaml")
    own_home = _gaol(tmp_path, "own", 2)
    (own_home.legacy_dir / "fines").mkdir()
    shared_home = _gaol(tmp_path, "shared", 2)
    (shared_home.legacy_dir / "fines").mkdir()
    for home in (own_home, shared_home):
        for file, text in FILES.items():
            (home.legacy_dir / "fines" / file).write_text(text)
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    own = [landing.land_system(SPEC, own_home), landing.land_system(spec, own_home)]

    started = []
    real_pool = landing.ProcessPoolExecutor
    monkeypatch.setattr(landing, "ProcessPoolExecutor",
                        lambda *a, **k: started.append(a) or real_pool(*a, **k))
    with landing.Workers() as workers:
        shared = [landing.land_system(SPEC, shared_home, workers=workers),
                  landing.land_system(spec, shared_home, workers=workers)]
    assert started == [(2,)], "one pool of two workers for both systems"
    assert [_summary(r) for r in shared] == [_summary(r) for r in own]
    assert [(r.rows_landed, r.rows_rejected) for r in shared] == [(9, 1), (7, 1)]
    # (a failed file's error names the file, so its home)
    assert repr(_lake(shared_home)).replace("/shared/", "/own/") == repr(_lake(own_home))


def test_shared_workers_are_replaced_when_a_worker_dies(tmp_path, monkeypatch):
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)
    home = _home(tmp_path, "fines", 2)
    with landing.Workers() as workers:
        pool = workers.pool(2)
        pids = [pool.submit(os.getpid).result() for _ in range(2)]
        os.kill(pids[0], 9)
        with pytest.raises(Exception):  # noqa: B017 - BrokenProcessPool, whatever submits next
            for _ in range(4):
                pool.submit(os.getpid).result()
        report = landing.land_system(SPEC, home, workers=workers)
        assert workers.pool(2) is not pool
    assert (report.rows_landed, report.rows_rejected) == (9, 1)
