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


def test_every_model_is_built_with_rows_and_every_dbt_test_ran_and_passed(built):
    """Each core and mart model file is a table with rows; dbt's own record of the build lists
    every model, seed and test with success (a test skipped or a model left out would not fail
    the fixture's build); core.person is the person index, one row per person id."""
    settings, project = built
    models = {(f.parent.parent.name, f.stem)
              for f in (project / "models").glob("*/*/*.sql") if f.parent.parent.name in
              ("core", "marts")}
    assert len(models) >= 20, models
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    try:
        tables = set(con.execute("select table_schema, table_name from information_schema.tables "
                                 "where table_schema in ('core', 'marts')").fetchall())
        empty = [f"{s}.{t}" for s, t in sorted(models & tables)
                 if con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] == 0]
        people = con.execute("select count(*), count(distinct person_id) from core.person").fetchone()
        index = con.execute("select count(distinct person_id) from linkage.person_links").fetchone()
    finally:
        con.close()
    assert models <= tables, sorted(models - tables)
    assert not empty, empty
    assert people[0] == people[1] == index[0] > 2_000

    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    by_kind: dict[str, list[str]] = {}
    for r in results:
        by_kind.setdefault(r["unique_id"].split(".")[0], []).append(r["status"])
    assert set(by_kind["model"]) == set(by_kind["seed"]) == {"success"}, by_kind
    assert set(by_kind["test"]) == {"pass"}, sorted(set(by_kind["test"]))
    built_models = {tuple(r["unique_id"].split(".")[-1:]) for r in results
                    if r["unique_id"].startswith("model.")}
    assert {(name,) for _, name in models} <= built_models
    assert len(by_kind["test"]) >= 300 and len(by_kind["seed"]) >= 5


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
