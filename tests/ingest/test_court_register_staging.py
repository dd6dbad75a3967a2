"""The court register lands through `justice ingest` and stages whole: every court of the world
with its exact HMCTS region, typed dates, nothing quarantined."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from homes import warehouse_rows as _query
from typer.testing import CliRunner

from justice.cli import app
from justice.settings import Settings
from justice.sim.params import SimulationParams
from justice.sim.world import simulate_to


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    out = tmp_path_factory.mktemp("register")
    simulate_to(SimulationParams(persons=300, seed=5), out)
    result = CliRunner().invoke(app, ["ingest", "--system", "court_register", "--home", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return Settings(home=out), json.loads(result.output)



def test_register_lands_without_rejects(home):
    settings, reports = home
    [report] = reports
    n_courts = pq.read_metadata(settings.truth_dir / "courts.parquet").num_rows
    assert (report["system"], report["rows_read"], report["rows_landed"], report["rows_rejected"]) == (
        "court_register", n_courts, n_courts, 0)


def test_staged_register_equals_the_truth_courts(home):
    settings, _ = home
    truth = settings.truth_dir / "courts.parquet"
    staged = _query(settings, "select court_code, court_name, court_type, region "
                              "from staging.court_register__courts__latest order by court_code")
    want = _query(settings, f"select court_code, court_name, court_type, region from read_parquet('{truth}') "
                            "order by court_code")
    assert staged == want
    types = _query(settings, "select distinct typeof(open_date), typeof(close_date), count(open_date), count(close_date) "
                             "from staging.court_register__courts__latest group by all")
    assert types == [("DATE", "DATE", len(want), 0)]


def test_nothing_is_quarantined_and_the_load_reconciles(home):
    settings, _ = home
    assert _query(settings, "select count(*) from quarantine.court_register__courts") == [(0,)]
    rec = _query(settings, "select system, rows_read, rows_staged, rows_quarantined from audit.reconciliation")
    assert [(s, read == staged, quarantined) for s, read, staged, quarantined in rec] == [("court_register", True, 0)]


def test_checked_rows_are_a_table_and_the_rest_of_staging_views_over_it(home):
    settings, _ = home
    kinds = dict(_query(settings, "select table_name, table_type from information_schema.tables "
                                  "where table_schema = 'staging' and table_name like 'court_register__courts%'"))
    assert kinds == {"court_register__courts__checked": "BASE TABLE", "court_register__courts": "VIEW",
                     "court_register__courts__latest": "VIEW"}
