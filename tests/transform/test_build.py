"""`justice build` and `justice docs`: the dbt seeds, core and marts on a linked world, every model
and column documented, and clear errors when a step before it has not run."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from justice.cli import app
from justice.errors import TransformError
from justice.settings import Settings
from justice.transform.build import build, docs

runner = CliRunner()


def test_build_says_what_to_run_first(tmp_path):
    with pytest.raises(TransformError, match="justice ingest"):
        build(Settings(home=tmp_path))
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    with pytest.raises(TransformError, match="justice link"):
        build(Settings(home=tmp_path))
    out = runner.invoke(app, ["build", "--home", str(tmp_path)])
    assert out.exit_code == 2 and "justice link" in out.output
    with pytest.raises(TransformError, match="justice build"):
        docs(Settings(home=tmp_path))


@pytest.fixture(scope="module")
def built(built_home):
    return built_home, built_home.home / "transform"


def test_core_tables_are_built(built):
    settings, _ = built
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'core'").fetchall()}
    finally:
        con.close()
    assert tables, "justice build made no core tables"


def test_every_core_and_mart_column_is_documented(built):
    settings, project = built
    out = docs(settings)
    assert (out / "index.html").stat().st_size > 100_000
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    catalog = json.loads((project / "target" / "catalog.json").read_text())
    undocumented = []
    for uid, node in catalog["nodes"].items():
        if node["metadata"]["schema"] not in ("core", "marts", "reference"):
            continue
        documented = manifest["nodes"][uid]
        if not documented.get("description"):
            undocumented.append(uid)
        for col in node["columns"]:
            if not documented["columns"].get(col, {}).get("description"):
                undocumented.append(f"{uid}.{col}")
    assert not undocumented, undocumented[:20]
