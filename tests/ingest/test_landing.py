"""Landing semantics, whatever the format: nothing lost, loaded once, bad files isolated, and a
killed run leaves nothing half-visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from justice import warehouse
from justice.engine import engine_for, lake
from justice.ingest import landing
from justice.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
import fake_reader


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setattr(landing, "reader_for", lambda spec: fake_reader.read)
    (tmp_path / "legacy" / "lines").mkdir(parents=True)
    return Settings(home=tmp_path)


def _write(home: Settings, name: str, *lines: str) -> None:
    (home.legacy_dir / "lines" / name).write_text("\n".join(lines) + "\n")


def _land(home: Settings):
    report = landing.land_system(fake_reader.SPEC, home)
    engine_for(home).refresh_raw_views([])
    return report


def _rows(home: Settings, table: str = "lines__items") -> list[tuple]:
    con = warehouse.connect(home, read_only=True)
    try:
        return sorted(con.execute(f"SELECT key, value, _file FROM raw.{table}").fetchall())
    finally:
        con.close()


def test_every_row_is_landed_or_set_aside(home):
    _write(home, "a.txt", "1,x", "BAD", "2,y")
    report = _land(home)
    assert (report.rows_read, report.rows_landed, report.rows_rejected) == (3, 2, 1)
    assert _rows(home) == [("1", "x", "a.txt"), ("2", "y", "a.txt")]
    rejects = warehouse.rejects(home, "lines")
    assert [(r["_file"], r["_locator"], r["rule"]) for r in rejects] == [("a.txt", "line 2", "bad_line")]
    loads = warehouse.load_history(home)
    assert loads[0]["rows_read"] == loads[0]["rows_landed"] + loads[0]["rows_rejected"] == 3


def test_rerun_adds_nothing_and_a_new_file_adds_only_its_rows(home):
    _write(home, "a.txt", "1,x")
    _land(home)
    again = _land(home)
    assert again.rows_read == 0 and [f.skipped for f in again.files] == [True]
    assert _rows(home) == [("1", "x", "a.txt")]
    _write(home, "b.txt", "2,y")
    third = _land(home)
    assert third.rows_landed == 1
    assert _rows(home) == [("1", "x", "a.txt"), ("2", "y", "b.txt")]


def test_a_changed_file_is_loaded_again(home):
    _write(home, "a.txt", "1,x")
    _land(home)
    _write(home, "a.txt", "1,x-corrected")
    report = _land(home)
    assert report.rows_landed == 1
    # Both versions are kept in raw (lossless); staging takes the latest.
    assert [r[1] for r in _rows(home)] == ["x", "x-corrected"]


@pytest.mark.parametrize("spool_rows", [250_000, 0])  # rows in memory; on disk as Parquet
def test_a_file_that_fails_part_way_lands_nothing_and_others_still_load(home, monkeypatch,
                                                                       spool_rows):
    monkeypatch.setattr(landing, "SPOOL_ROWS", spool_rows)
    _write(home, "a.txt", "BROKEN", "1,x")
    _write(home, "b.txt", "2,y")
    report = _land(home)
    failed = [f for f in report.files if f.error]
    assert [f.file for f in failed] == ["a.txt"] and "re-extract" in failed[0].error
    assert _rows(home) == [("2", "y", "b.txt")]
    # Nothing of the spool is left behind (the failed file's Parquet is removed, not landed).
    assert list((home.home / ".dlt").glob("spool-*")) == []
    # The failed file is tried again next time; once mended it loads.
    _write(home, "a.txt", "1,x")
    _land(home)
    assert _rows(home) == [("1", "x", "a.txt"), ("2", "y", "b.txt")]


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import fake_reader
    from justice.engine import engine_for
    from justice.ingest import landing
    from justice.settings import Settings
    landing.reader_for = lambda spec: fake_reader.read
    home = Settings(home={home!r})
    landing.land_system(fake_reader.SPEC, home)
    engine_for(home).refresh_raw_views([])
""")


def _run_script(home: Settings, env: dict) -> subprocess.Popen:
    code = SCRIPT.format(tests=str(Path(__file__).parent), home=str(home.home))
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def test_a_run_killed_mid_load_ends_as_a_clean_run_would(home, tmp_path):
    for i in range(5):
        _write(home, f"f{i}.txt", f"{i},v{i}")
    _write(home, "f5.txt", "SLOW", "5,v5")
    marker = tmp_path / "marker"
    env = {**os.environ, "JUSTICE_TEST_MARKER": str(marker)}
    proc = _run_script(home, env)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the load never reached the slow file"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Nothing of the killed run is visible...
    engine_for(home).refresh_raw_views([])
    assert lake.raw_tables(home) == [] or _rows(home) == []
    assert list((home.home / ".dlt").glob("spool-lines-*")), "the killed run left no spool folder"
    # ...and a re-run (the slow file mended) ends exactly as a clean run would.
    _write(home, "f5.txt", "5,v5")
    proc = _run_script(home, env)
    assert proc.wait(timeout=120) == 0
    assert _rows(home) == [(str(i), f"v{i}", f"f{i}.txt") for i in range(6)]
    # The killed run's spool folder is removed by the next run (and the next run's own when done).
    assert list((home.home / ".dlt").glob("spool-*")) == []


def test_the_spool_keeps_columns_that_appear_part_way(tmp_path, monkeypatch):
    import pyarrow as pa

    monkeypatch.setattr(landing, "SPOOL_ROWS", 2)
    spool = landing._Spool(str(tmp_path))
    spool.add("t", pa.table({"a": ["1", "2", "3"]}))
    spool.add("t", pa.table({"a": ["4"], "x_new": ["n"]}))
    import pyarrow.parquet as pq

    parts = spool.detach()
    assert all(isinstance(p, landing.SpooledFile) for _, p in parts)  # over the limit: on disk
    assert [p.rows for _, p in parts] == [3, 1]
    out = pa.concat_tables([pq.read_table(p.path) for _, p in parts], promote_options="default")
    assert out.to_pylist() == [{"a": "1", "x_new": None}, {"a": "2", "x_new": None}, {"a": "3", "x_new": None},
                               {"a": "4", "x_new": "n"}]


def test_a_new_file_hashed_while_it_is_read_is_in_the_ledger(home, monkeypatch):
    monkeypatch.setattr(landing, "HASH_ALONGSIDE_BYTES", 0)
    _write(home, "a.txt", "1,x")
    _write(home, "b.txt", "BROKEN", "2,y")
    first = _land(home)
    assert [(f.file, bool(f.error)) for f in first.files] == [("a.txt", False), ("b.txt", True)]
    again = _land(home)
    assert [(f.file, f.skipped) for f in again.files] == [("a.txt", True), ("b.txt", False)]
    _write(home, "a.txt", "1,x-corrected")
    assert _land(home).rows_landed == 1


def test_a_spooled_file_tries_a_dictionary_only_for_repeating_columns(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(landing, "SPOOL_ROWS", 0)
    n = 20_000
    rows = pa.table({"court": ["C1", "C2"] * (n // 2), "name": [f"person {i}" for i in range(n)],
                     "_file": ["a.csv"] * n, "_locator": [f"line {i + 2}" for i in range(n)]})
    spool = landing._Spool(str(tmp_path))
    spool.add("t", rows)
    [(_, part)] = spool.detach()
    assert part.rows == n and pq.read_table(part.path).equals(rows)
    meta = pq.ParquetFile(part.path).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    dictionary = {name: "RLE_DICTIONARY" in c.encodings or "PLAIN_DICTIONARY" in c.encodings
                  for name, c in chunks.items()}
    assert dictionary == {"court": True, "name": False, "_file": True, "_locator": False}
    assert {name: c.is_stats_set for name, c in chunks.items()} == {
        "court": False, "name": False, "_file": True, "_locator": False}
