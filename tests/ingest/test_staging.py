"""Staging generated from the spec: typed rows, quarantine with reasons, reconciliation test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from homes import warehouse_rows as _query

from justice import warehouse
from justice.engine import engine_for
from justice.engine.dbt import run_dbt_process as run_dbt
from justice.errors import TransformError
from justice.ingest import landing
from justice.settings import Settings
from justice.sources.spec import parse_spec
from justice.transform.build import stage
from justice.transform.dbt_project import write_project

sys.path.insert(0, str(Path(__file__).parent))
import fake_reader

SPEC = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
    {"name": "items", "record_key": ["key"], "fields": [
        {"source": "key", "name": "key", "required": True},
        {"source": "value", "name": "value", "type": "integer"}]}]}, "lines.yaml")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setattr(landing, "reader_for", lambda spec: fake_reader.read)
    (tmp_path / "legacy" / "lines").mkdir(parents=True)
    return Settings(home=tmp_path)



def _build(home: Settings) -> None:
    landing.land_system(SPEC, home)
    stage(home, [SPEC], engine_for(home).refresh_raw_views([]))


def test_rows_are_typed_quarantined_with_reasons_and_reconciled(home):
    (home.legacy_dir / "lines" / "a.txt").write_text("1,10\n2,ten\n ,30\nBAD\n3, 40 \n")
    _build(home)
    assert _query(home, "select key, value from staging.lines__items order by key") == [("1", 10), ("3", 40)]
    q = _query(home, "select raw_key, rule, reason, _locator from quarantine.lines__items order by _locator")
    assert q == [("2", "invalid_integer", "value 'ten' is not a whole number", "line 2"),
                 (" ", "missing_required", "key is required but empty", "line 3")]
    assert _query(home, "select rule from quarantine.lines__rejects") == [("bad_line",)]
    rec = _query(home, "select system, rows_read, rows_staged, rows_quarantined from audit.reconciliation")
    assert rec == [("lines", 5, 2, 3)]


def test_a_field_added_to_the_spec_after_a_load_stages_as_null_for_that_load(home):
    (home.legacy_dir / "lines" / "a.txt").write_text("1,10\n2,20\n")
    _build(home)
    # The spec gains an optional field (as prison.yaml gained race_code): the lake landed under
    # the old spec has no such column, and staging from the new spec still reads it.
    newer = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
        {"name": "items", "record_key": ["key"], "fields": [
            {"source": "key", "name": "key", "required": True},
            {"source": "value", "name": "value", "type": "integer"},
            {"source": "colour", "name": "colour"}]}]}, "lines.yaml")
    stage(home, [newer], engine_for(home).refresh_raw_views([newer]))
    assert _query(home, "select key, value, colour from staging.lines__items order by key") == [
        ("1", 10, None), ("2", 20, None)]
    # Without the spec the view is the files as landed, and staging from the new spec cannot
    # read it: the column really is missing (this is what the views' nulls are for).
    with pytest.raises(TransformError, match="colour"):
        stage(home, [newer], engine_for(home).refresh_raw_views([]))


def test_the_reconciliation_test_fails_when_a_row_goes_missing(home):
    (home.legacy_dir / "lines" / "a.txt").write_text("1,10\n2,20\n")
    landing.land_system(SPEC, home)
    tables = engine_for(home).refresh_raw_views([])
    # Simulate a row lost between extraction and staging: drop one landed row from the view.
    con = warehouse.connect(home)
    con.execute("create table raw.items_copy as select * from raw.lines__items")
    con.execute("create or replace view raw.lines__items as select * from raw.items_copy where key <> '2'")
    con.close()
    project = write_project(home, [SPEC], tables, engine=engine_for(home))
    with pytest.raises(TransformError, match="reconciles"):
        run_dbt(project, "build")
