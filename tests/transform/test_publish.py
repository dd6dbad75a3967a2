"""The analysts' outputs of `justice build`: data tool files with disclosure control, charts, and
the `justice.datasets` API, on the shared built world."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from homes import copy_home

from justice import datasets, disclosure
from justice.engine.dbt import read_events
from justice.errors import ConfigError, TransformError
from justice.settings import Settings
from justice.transform import exports, publish

SPECS = exports.exports()


def _mart(settings, name):
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(f"select * from marts.{name}").to_arrow_table().to_pandas()
    finally:
        con.close()


def test_every_export_is_published_with_a_manifest(built_home):
    data = built_home.home / "reports" / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["threshold"] == disclosure.DEFAULT_THRESHOLD
    assert set(manifest["files"]) == set(SPECS)
    for name, spec in SPECS.items():
        table = pq.read_table(data / f"{name}.parquet")
        assert (data / f"{name}.csv").stat().st_size > 0
        assert table.num_rows == manifest["files"][name]["rows"] == len(_mart(built_home, name)), name
        disclosure.assert_no_identifiers(table)  # raises on a name, date of birth, id...
        for count in spec.counts:
            values = [v for v in table.column(count).to_pylist() if v is not None]
            assert not [v for v in values if 0 < v < manifest["threshold"]], (name, count)


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if not s.person_level])
def test_published_cells_are_the_marts_cells_or_suppressed_in_pairs(built_home, name):
    """A published count is the mart's count or suppressed; no line of cells (all dimensions but
    one fixed) has exactly one suppressed cell, so no total gives one away; derived rates are
    hidden with their counts."""
    spec = SPECS[name]
    published = pq.read_table(built_home.home / "reports" / "data" / f"{name}.parquet").to_pandas()
    mart = _mart(built_home, name)
    merged = published.merge(mart, on=spec.dims, suffixes=("", "_mart"))
    assert len(merged) == len(mart)
    for count in spec.counts:
        shown = merged[~merged[f"{count}_suppressed"]]
        assert (shown[count] == shown[f"{count}_mart"]).all(), count
        hidden = merged[merged[f"{count}_suppressed"]]
        assert hidden[count].isna().all()
        for d in spec.dims:
            others = [x for x in spec.dims if x != d]
            if not others:
                continue
            per_line = merged.groupby(others)[f"{count}_suppressed"].agg(["sum", "size"])
            assert not ((per_line["sum"] == 1) & (per_line["size"] > 1)).any(), (name, count, d)
    for col, sources in spec.derived.items():
        hide = merged[[f"{s}_suppressed" for s in sources]].any(axis=1)
        assert merged.loc[hide, col].isna().all(), col
    # A column that is the sum of others on every row: no row hides exactly one of them, and the
    # relation the spec declares holds on every row it is declared for (and on no excepted row,
    # else the exception would be needless).
    for total, parts in spec.sums.items():
        hidden = merged[[f"{c}_suppressed" for c in (total, *parts)]].sum(axis=1)
        assert not (hidden == 1).any(), (name, total)
        exact = merged[[f"{c}_mart" for c in parts]].sum(axis=1) == merged[f"{total}_mart"]
        excepted = pd.Series(False, index=merged.index)
        for dim, values in spec.sums_except.get(total, {}).items():
            excepted |= merged[dim].isin(values)
        assert exact[~excepted].all() and (~excepted).sum() > 0, (name, total)
        assert not exact[excepted & (merged[f"{total}_mart"] > 0)].any(), (name, total)


def test_person_level_file_carries_keyed_pseudonyms_only(built_home):
    spec = next(s for s in SPECS.values() if s.person_level)
    table = pq.read_table(built_home.home / "reports" / "data" / f"{spec.name}.parquet")
    # Only the listed columns: no source keys (index case, custody spell) that lead back to records.
    assert set(table.column_names) == set(spec.columns) | {"person_pseudonym"}
    assert not {"index_defendant_case_id", "index_custody_spell_id"} & set(table.column_names)
    key = (built_home.home / "secrets" / "pseudonym.key").read_text().strip().encode()
    mart = exports.read_mart(built_home, spec.name).to_pandas()  # in the order it is published
    expected = [hmac.new(key, p.encode(), hashlib.sha256).hexdigest()[:16] for p in mart["person_id"]]
    assert table.column("person_pseudonym").to_pylist() == expected
    assert len(set(expected)) == mart["person_id"].nunique()


def test_charts_of_the_headline_series(built_home):
    charts = built_home.home / "reports" / "charts"
    for name in ("court_open_caseload", "court_receipts_disposals", "court_timeliness", "proven_reoffending",
                 "safety_in_custody"):
        png = (charts / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
        assert (charts / f"{name}.csv").stat().st_size > 0
    # A chart at a data tool file's grain plots the file as published, suppressed points as gaps.
    plotted = pd.read_csv(charts / "proven_reoffending.csv")
    published = pq.read_table(built_home.home / "reports" / "data" / "proven_reoffending.parquet").to_pandas()
    overall = published[published["breakdown"] == "all"].set_index("cohort_quarter")["rate"].astype(float) * 100
    mine = plotted[plotted["group_name"] == "all offenders"].set_index("cohort_quarter")["rate_percent"]
    assert len(mine) == len(overall) > 0
    assert ((mine - overall.loc[mine.index]).abs().fillna(0) < 1e-9).all()
    assert mine.isna().sum() == overall.isna().sum()
    # A chart of totals protects its totals: a published point is the mart's total.
    totals = pd.read_csv(charts / "court_open_caseload.csv").dropna(subset=["open_cases"])
    mart = _mart(built_home, "court_open_caseload").groupby(["quarter_end", "court_type"])["open_cases"].sum()
    assert len(totals) > 0
    for row in totals.itertuples():
        assert mart.loc[(pd.Timestamp(row.quarter_end).date(), row.court_type)] == row.open_cases
        assert row.open_cases >= disclosure.DEFAULT_THRESHOLD or row.open_cases == 0


def test_datasets_api_returns_the_marts(built_home):
    """Unprotected, a dataset is the mart as SQL reads it; protected, it is the published file
    cell for cell (the published cells are checked against the mart independently above)."""
    home = built_home.home
    assert set(datasets.available()["dataset"]) == set(SPECS)
    t = datasets.court_timeliness(home=home)
    assert {"quarter", "court_type", "case_type", "stage", "median_days"} <= set(t.columns)
    key = SPECS["court_timeliness"].dims
    mart = _mart(built_home, "court_timeliness")
    pd.testing.assert_frame_equal(t.sort_values(key).reset_index(drop=True),
                                  mart.sort_values(key).reset_index(drop=True), check_dtype=False)
    for name, spec in SPECS.items():
        if spec.person_level:
            continue
        published = pq.read_table(home / "reports" / "data" / f"{name}.parquet").to_pandas()
        protected = getattr(datasets, name)(home=home, protected=True)
        pd.testing.assert_frame_equal(
            protected.sort_values(spec.dims).reset_index(drop=True)[published.columns],
            published.sort_values(spec.dims).reset_index(drop=True), check_dtype=False, obj=name)
    protected = datasets.court_open_caseload(home=home, protected=True)
    assert protected["open_cases"].isna().sum() > 0
    cohort = datasets.proven_reoffending_cohort(home=home)
    assert "person_id" not in cohort.columns and cohort["person_pseudonym"].str.fullmatch("[0-9a-f]{16}").all()
    for fn in (datasets.court_receipts_disposals, datasets.court_outcomes, datasets.proven_reoffending,
               datasets.safety_in_custody, datasets.safety_in_custody_national):
        assert len(fn(home=home)) > 0, fn.__name__


def test_datasets_api_says_when_nothing_is_built(tmp_path):
    with pytest.raises(TransformError, match="justice build"):
        datasets.court_timeliness(home=tmp_path)


def test_a_failed_publish_keeps_the_previous_outputs(built_home, tmp_path, monkeypatch):
    settings = copy_home(built_home, tmp_path / "home")
    shutil.copytree(built_home.home / "secrets", settings.home / "secrets")
    steps = []
    publish.publish(settings, progress=lambda step, done, total: steps.append((step, done, total)))
    assert steps[-1][1] == steps[-1][2] == len(SPECS) + 5 and [s[1] for s in steps] == sorted(s[1] for s in steps)
    before = _outputs(settings)
    broken = dict(SPECS)
    broken["court_outcomes"] = exports.Export(name="court_outcomes", title="x", dims=["quarter"],
                                              counts=["no_such_column"])
    with monkeypatch.context() as m:
        m.setattr(publish, "exports", lambda path=None: broken)
        with pytest.raises(ConfigError, match="court_outcomes.*no_such_column"):
            publish.publish(settings)
    assert _outputs(settings) == before
    # A chart that fails after every data file was written.
    from justice.transform import charts

    def broken_chart(*_):
        raise RuntimeError("chart broke")
    with monkeypatch.context() as m:
        m.setattr(charts, "CHARTS", [*charts.CHARTS, broken_chart])
        with pytest.raises(RuntimeError, match="chart broke"):
            publish.publish(settings)
    assert _outputs(settings) == before
    # The swap itself failing half-way: the charts cannot be put in place after the data was.
    real_replace = publish.os.replace

    def failing_replace(src, dst):
        if Path(src).name == "charts" and Path(dst) == settings.home / "reports" / "charts":
            raise OSError("disk full")
        return real_replace(src, dst)
    with monkeypatch.context() as m:
        m.setattr(publish.os, "replace", failing_replace)
        with pytest.raises(TransformError, match="previous outputs are kept"):
            publish.publish(settings)
    assert _outputs(settings) == before
    assert not list((settings.home / "reports").glob(".publish-*"))


def _outputs(settings) -> dict[str, bytes]:
    reports = settings.home / "reports"
    return {str(p.relative_to(reports)): p.read_bytes() for sub in ("data", "charts")
            for p in sorted((reports / sub).iterdir())}


def test_threshold_comes_from_the_environment(built_home, tmp_path, monkeypatch):
    settings = copy_home(built_home, tmp_path / "home")
    monkeypatch.setenv("JUSTICE_DISCLOSURE_THRESHOLD", "1")
    publish.publish(settings)
    table = pq.read_table(settings.home / "reports" / "data" / "court_open_caseload.parquet")
    assert not any(table.column("open_cases_suppressed").to_pylist())
    monkeypatch.setenv("JUSTICE_DISCLOSURE_THRESHOLD", "ten")
    with pytest.raises(ConfigError, match="JUSTICE_DISCLOSURE_THRESHOLD"):
        publish.publish(settings)


def test_a_declared_row_sum_that_does_not_hold_stops_the_publish():
    spec = exports.Export(name="assaults", title="t", dims=["q", "kind"],
                          counts=["all", "on_prisoners", "on_staff"],
                          sums={"all": ["on_prisoners", "on_staff"]},
                          sums_except={"all": {"kind": ["estimate"]}})
    good = pa.table({"q": ["2024Q1", "2024Q2", "2024Q2"], "kind": ["count", "count", "estimate"],
                     "all": [30, 40, 99], "on_prisoners": [20, 25, 10], "on_staff": [10, 15, 10]})
    assert exports.protect_export(good, spec).num_rows == 3  # the excepted row may differ
    bad = good.set_column(2, "all", pa.array([30, 41, 99]))
    with pytest.raises(ConfigError, match=r"exports.assaults.sums.all: is not on_prisoners \+ "
                                          r"on_staff on 1 of 3 row\(s\), e.g. q=2024Q2, kind=count"):
        exports.protect_export(bad, spec)


def test_export_spec_errors_name_the_entry(tmp_path):
    bad = tmp_path / "exports.yaml"
    bad.write_text("exports:\n  x:\n    title: t\n    counts: [a]\n    derived: {rate: [b]}\n")
    with pytest.raises(ConfigError, match=r"exports\.x\.derived\.rate: b is not one of its counts"):
        exports.exports(bad)
    bad.write_text("exports:\n  x:\n    title: t\n")
    with pytest.raises(ConfigError, match=r"exports\.x\.counts"):
        exports.exports(bad)
    bad.write_text("exports:\n  x:\n    title: t\n    counts: [a]\n    colour: red\n")
    with pytest.raises(ConfigError, match="unknown key"):
        exports.exports(bad)
    bad.write_text("exports:\n  x:\n    title: t\n    dims: [q]\n    counts: [a, b]\n"
                   "    sums: {a: {parts: [b], except_where: {region: [x]}}}\n")
    with pytest.raises(ConfigError, match=r"exports\.x\.sums\.a\.except_where: region is not one of its dims"):
        exports.exports(bad)


def test_pseudonym_key_is_created_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv(exports.PSEUDONYM_KEY_ENV, raising=False)
    settings = Settings(home=tmp_path)
    key = exports.pseudonym_key(settings)
    path = tmp_path / "secrets" / "pseudonym.key"
    assert len(key) == 64 and path.stat().st_mode & 0o077 == 0
    assert exports.pseudonym_key(settings) == key
    monkeypatch.setenv(exports.PSEUDONYM_KEY_ENV, "from-the-vault")
    assert exports.pseudonym_key(settings) == b"from-the-vault"


def test_dbt_json_events_give_progress_and_failures():
    """The runner reads dbt's JSON log (one event a line), not its console text."""
    def event(name, level="info", **data):
        return json.dumps({"info": {"name": name, "level": level, "msg": data.pop("msg", "")},
                           "data": data})

    def node(uid):
        return {"unique_id": uid, "node_status": "x"}

    lines = [
        event("MainReportVersion", version="=1.11.16"),
        event("LogStartLine", index=1, total=3, node_info=node("model.justice.person")),
        event("LogModelResult", index=1, total=3, status="success", node_info=node("model.justice.person")),
        "a Python warning printed by a library\n",
        event("LogTestResult", index=2, total=3, status="fail", node_info=node("test.justice.not_null_x")),
        event("LogSeedResult", index=3, total=3, status="success", node_info=node("seed.justice.codes")),
        event("RunResultError", level="error", msg="Got 2 results, configured to fail if != 0"),
    ]
    seen = []
    events = read_events(lines, lambda n, done, total: seen.append((n, done, total)))
    assert seen == [("person", 1, 3), ("not_null_x", 2, 3), ("codes", 3, 3)]
    assert events.failures == ["not_null_x: fail"]
    assert events.errors == ["Got 2 results, configured to fail if != 0"]
    assert events.other == ["a Python warning printed by a library"]
