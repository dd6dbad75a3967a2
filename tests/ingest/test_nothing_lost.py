"""A simulated world's XML and CSV systems landed by shared worker processes: every element and
every record of the extracts is in the lake, as a row or as a reject, counted here without the
readers (so a reader or the landing that dropped a row, or landed one twice, fails)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lxml import etree

from justice.ingest import landing
from justice.settings import Settings
from justice.sources.spec import builtin_spec_dir, load_spec

NS = {"x": "urn:justice-sim:xhibit:1"}
CROWN_TABLES = {
    "case_messages": "/x:CaseMessages/x:CaseMessage",
    "defendants": "/x:CaseMessages/x:CaseMessage/x:Case/x:Defendants/x:Defendant",
    "offences": "/x:CaseMessages/x:CaseMessage/x:Case/x:Defendants/x:Defendant/x:Offences/x:Offence",
    "outcomes": "/x:CaseMessages/x:CaseMessage/x:Case/x:Defendants/x:Defendant/x:Outcomes/x:Outcome",
    "hearings": "/x:CaseMessages/x:CaseMessage/x:Case/x:Hearings/x:Hearing",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = tmp_path_factory.mktemp("world")
    simulate_to(SimulationParams(persons=1500, seed=3), out)
    return out


def _lake_rows(home: Path, table: str, rule_table: str | None = None) -> int:
    """Rows of one raw table in the lake (of a rejects table: only those of `rule_table`)."""
    files = sorted((home / "lake" / "raw" / table).glob("*.parquet"))
    if rule_table is None:
        return sum(pq.read_metadata(f).num_rows for f in files)
    return sum(pq.read_table(f, columns=["_table"])["_table"].to_pylist().count(rule_table)
               for f in files)


def _crown_elements(folder: Path) -> dict[str, int]:
    counts = dict.fromkeys(CROWN_TABLES, 0)
    for path in sorted(folder.glob("**/xhibit_*.xml")):
        doc = etree.parse(str(path))
        for table, xpath in CROWN_TABLES.items():
            counts[table] += int(doc.xpath(f"count({xpath})", namespaces=NS))
    return counts


def _csv_records(folder: Path, encoding: str) -> int:
    """Records after the header, blank lines aside, as Python's csv module reads them."""
    n = 0
    for path in sorted(folder.glob("**/*.csv")):
        text = path.read_bytes().decode(encoding, "surrogateescape")
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        n += len(records) - 1
    return n


@pytest.mark.parametrize("workers", [1, 2])
def test_every_element_and_record_of_a_world_is_landed_or_set_aside(world, tmp_path, monkeypatch,
                                                                     workers):
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 0)  # a small world: workers all the same
    home = tmp_path / "home"
    (home / "legacy").mkdir(parents=True)
    for system in ("crown", "magistrates"):
        (home / "legacy" / system).symlink_to(world / "legacy" / system)
    settings = Settings(home=home, ingest_workers=workers)
    with landing.Workers() as shared:
        crown = landing.land_system(load_spec(builtin_spec_dir() / "crown.yaml"), settings,
                                    workers=shared)
        mags_spec = load_spec(builtin_spec_dir() / "magistrates.yaml")
        mags = landing.land_system(mags_spec, settings, workers=shared)
    assert not crown.errors and not mags.errors

    elements = _crown_elements(world / "legacy" / "crown")
    assert elements["case_messages"] > 100 and elements["offences"] > elements["defendants"]
    for table, n in elements.items():
        landed = _lake_rows(home, f"crown__{table}")
        rejected = _lake_rows(home, "crown__rejects", table)
        assert landed + rejected == n, table
    assert crown.rows_read == sum(elements.values())

    records = _csv_records(world / "legacy" / "magistrates", mags_spec.encoding)
    assert records > 1000
    table = mags_spec.tables[0].name
    assert _lake_rows(home, f"magistrates__{table}") + _lake_rows(home, "magistrates__rejects") \
        == records == mags.rows_read


def test_workbooks_go_to_workers_by_their_reading_cost_not_their_bytes(world, tmp_path,
                                                                        monkeypatch):
    """xlsx bytes are zipped XML parsed in Python: a few MB of workbooks are worth reading in
    parallel though the same bytes of CSV are not; the rows are the same either way."""
    spec = load_spec(builtin_spec_dir() / "interventions.yaml")
    folder = world / "legacy" / "interventions"
    size = sum(p.stat().st_size for p in folder.glob("*.xlsx"))
    monkeypatch.setattr(landing, "PARALLEL_MIN_BYTES", 2 * size)
    started = []
    real_pool = landing.ProcessPoolExecutor
    monkeypatch.setattr(landing, "ProcessPoolExecutor",
                        lambda *a, **k: started.append(a) or real_pool(*a, **k))
    reports = []
    for name, cost in (("by_cost", {"xlsx": 50}), ("by_bytes", {})):
        monkeypatch.setattr(landing, "READ_COST", cost)
        home = tmp_path / name
        (home / "legacy").mkdir(parents=True)
        (home / "legacy" / "interventions").symlink_to(folder)
        reports.append(landing.land_system(spec, Settings(home=home, ingest_workers=2)))
        assert len(started) == 1, f"{name}: workers started only when the cost says so"
    by_cost, by_bytes = reports
    assert by_cost.rows_read == by_bytes.rows_read > 0
    assert [(f.file, f.rows_landed, f.rows_rejected) for f in by_cost.files] == \
        [(f.file, f.rows_landed, f.rows_rejected) for f in by_bytes.files]
