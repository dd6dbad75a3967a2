"""The explorer's query layer: what it may read, how it adds cells up without revealing a
suppressed one, derived measures, and the refusal of bad queries."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from itertools import product

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from published import PERSON_SECRET, RECEIPTS, publish_sample

from justice.explore import QueryError, downloads, load_catalogue, parse_query, run_query
from justice.explore import table as table_module
from justice.explore.charts import charts_of
from justice.explore.table import TOTAL


def table_of(catalogue, name, query):
    dataset = catalogue.get(name)
    return run_query(dataset, parse_query(dataset, query))


def shown(table, row, col, measure):
    cell = table.cell(row, col, measure)
    return cell.symbol or cell.value


# ---------------------------------------------------------------- what may be read

def test_only_published_aggregate_files_are_in_the_catalogue(catalogue):
    assert set(catalogue.datasets) == {"court_receipts_disposals", "court_open_caseload",
                                       "proven_reoffending"}
    assert catalogue.get("proven_reoffending_cohort") is None  # person-level: never served
    assert catalogue.get("unlisted") is None  # in the folder, not in the manifest
    assert catalogue.get("../data/proven_reoffending_cohort") is None
    for dataset in catalogue.datasets.values():
        assert PERSON_SECRET not in dataset.frame.to_csv()


def test_an_empty_dimension_value_is_shown_as_none_not_a_blank_heading(catalogue):
    # A file's null dimension value (no sentence length band for a remand prisoner) arrives as
    # "" in queries and downloads and is headed "(none)"; other values keep their own labels.
    ds = catalogue.get("court_receipts_disposals")
    assert ds.value_label("case_type", "") == "(none)"
    assert ds.value_label("case_type", "trial") == "trial"
    assert ds.value_label("court_code", "C1") == "C1 Alpha Crown Court"


def test_a_manifest_entry_without_person_level_is_not_served(tmp_path):
    data = publish_sample(tmp_path / "home")
    manifest = json.loads((data / "manifest.json").read_text())
    del manifest["files"]["court_open_caseload"]["person_level"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert load_catalogue(tmp_path / "home" / "reports").get("court_open_caseload") is None


def test_nothing_published_is_an_empty_catalogue(tmp_path):
    assert load_catalogue(tmp_path / "reports").datasets == {}


def test_metadata_from_the_manifest_and_config(catalogue):
    ds = catalogue.get("court_receipts_disposals")
    assert ds.published_at == "2026-12-01T09:30:00+00:00" and ds.threshold == 10
    assert ds.dims == ("quarter", "court_type", "case_type", "region", "court_code")
    assert ds.coverage == "2024Q1 to 2024Q4" and ds.model == "marts.court_receipts_disposals"
    assert ds.value_label("court_code", "C1") == "C1 Alpha Crown Court"


# ---------------------------------------------------------------- suppression and totals

def test_suppressed_cells_stay_suppressed_with_a_footnote(catalogue):
    t = table_of(catalogue, "court_receipts_disposals",
                 "measure=receipts&row=quarter&row=court_code&col=case_type")
    assert shown(t, ("2024Q2", "C1"), ("appeal",), "receipts") == "[c]"  # 4: primary
    assert shown(t, ("2024Q3", "M2"), ("summary",), "receipts") == 0  # a zero is published
    assert shown(t, ("2024Q4", "M1"), ("summary",), "receipts") == RECEIPTS[("2024Q4", "M1", "summary")]
    assert any(note.startswith("[c] confidential") and "under 10" in note for note in t.footnotes())


def test_a_total_that_includes_a_suppressed_cell_is_itself_suppressed(catalogue):
    t = table_of(catalogue, "court_receipts_disposals",
                 "measure=receipts&row=quarter&col=court_type&totals=1")
    # Crown in 2024Q2 includes the hidden 4: adding the published cells only would reveal it
    # by subtraction from any published total.
    assert shown(t, ("2024Q2",), ("crown",), "receipts") == "[c]"
    assert shown(t, (TOTAL,), ("crown",), "receipts") == "[c]"
    assert shown(t, (TOTAL,), (TOTAL,), "receipts") == "[c]"
    magistrates = sum(v for (q, code, _), v in RECEIPTS.items() if code.startswith("M") and q == "2024Q4")
    assert shown(t, ("2024Q4",), ("magistrates",), "receipts") == magistrates
    all_magistrates = sum(v for (_, code, _), v in RECEIPTS.items() if code.startswith("M"))
    assert shown(t, (TOTAL,), ("magistrates",), "receipts") == all_magistrates


QUERIES = [f"measure=receipts&measure=disposals&row={r}&col={c}&totals=1{f}"
           for r, c in (("quarter", "court_type"), ("court_code", "case_type"), ("quarter", "region"),
                        ("case_type", "quarter"), ("region", "court_type"))
           for f in ("", "&f.court_type=crown", "&f.quarter=2024Q2&f.quarter=2024Q3")]


@pytest.mark.parametrize("query", QUERIES)
def test_no_total_can_be_differenced_to_a_hidden_cell(catalogue, query):
    """Wherever a total is a number, every cell it adds up is a number too: nothing shown
    minus the other shown cells leaves a hidden one."""
    t = table_of(catalogue, "court_receipts_disposals", query)
    body_rows = [r for r in t.row_keys if r != (TOTAL,)]
    body_cols = [c for c in t.col_keys if c != (TOTAL,)]
    for measure in t.query.measures:
        for row in body_rows:
            if t.cell(row, (TOTAL,), measure).value is not None:
                assert all(t.cell(row, c, measure).symbol not in ("[c]",) for c in body_cols), (row, measure)
        for col in body_cols:
            if t.cell((TOTAL,), col, measure).value is not None:
                assert all(t.cell(r, col, measure).symbol not in ("[c]",) for r in body_rows), (col, measure)
        # and every number is the sum of published cells, none of them hidden
        ds = t.dataset
        frame = ds.frame
        for row, col in product(t.row_keys, t.col_keys):
            cell = t.cell(row, col, measure)
            if cell.value is None:
                continue
            part = frame
            for dim, values in t.query.filters:
                part = part[part[dim].isin(values)]
            for dim, value in zip((*t.query.rows, *t.query.cols), (*row, *col)):
                if value != TOTAL:
                    part = part[part[dim] == value]
            assert not part[f"{measure}_suppressed"].any()
            assert cell.value == part[measure].sum()


# ---------------------------------------------------------------- derived and not additive

def test_rates_are_recomputed_from_counts_and_hide_with_them(catalogue):
    t = table_of(catalogue, "proven_reoffending",
                 "measure=rate&measure=offenders&row=cohort_quarter&f.breakdown=sex&totals=1")
    published = catalogue.get("proven_reoffending").frame
    sex = published[published.breakdown == "sex"]
    hidden_quarters = set(sex[sex.reoffenders_suppressed].cohort_quarter)
    # Q4's F reoffenders (7) are hidden, and a complement in another quarter with them.
    assert "2024Q4" in hidden_quarters and 1 < len(hidden_quarters) < 4
    for quarter in ("2024Q1", "2024Q2", "2024Q3", "2024Q4"):
        rows = sex[sex.cohort_quarter == quarter]
        if quarter in hidden_quarters:
            assert shown(t, (quarter,), (), "rate") == "[c]"
        else:
            expected = rows.reoffenders.sum() / rows.offenders.sum()
            assert shown(t, (quarter,), (), "rate") == pytest.approx(expected)
        assert shown(t, (quarter,), (), "offenders") == rows.offenders.sum()
    # offenders cannot be added over quarters (a person may be in several cohorts)
    assert shown(t, (TOTAL,), (), "offenders") == "[z]"
    assert shown(t, (TOTAL,), (), "rate") == "[z]"


def test_a_rate_at_the_published_grain_is_the_published_rate(catalogue):
    t = table_of(catalogue, "proven_reoffending",
                 "measure=rate&row=cohort_quarter&col=breakdown_value&f.breakdown=sex")
    published = catalogue.get("proven_reoffending").frame
    row = published[(published.cohort_quarter == "2024Q2") & (published.breakdown_value == "M")]
    assert shown(t, ("2024Q2",), ("M",), "rate") == pytest.approx(float(row["rate"].iloc[0]))
    assert shown(t, ("2024Q4",), ("F",), "rate") == "[c]"


def test_overlapping_breakdowns_are_not_added(catalogue):
    t = table_of(catalogue, "proven_reoffending", "measure=offenders&row=cohort_quarter")
    assert {shown(t, r, (), "offenders") for r in t.row_keys} == {"[z]"}
    assert "[z]" in t.symbols and any(n.startswith("[z]") for n in t.footnotes())


def test_medians_only_at_the_published_grain_and_stocks_not_added_over_time(catalogue):
    t = table_of(catalogue, "court_open_caseload",
                 "measure=median_age_days&measure=open_cases&row=quarter_end&col=case_type&"
                 "f.court_type=crown&totals=1")
    first = t.row_keys[0]
    assert shown(t, first, ("trial",), "median_age_days") == 50.0
    assert shown(t, first, (TOTAL,), "median_age_days") == "[z]"  # a median of two medians
    assert shown(t, first, (TOTAL,), "open_cases") == 100 + 130  # added across case types
    assert shown(t, (TOTAL,), ("trial",), "open_cases") == "[z]"  # a stock added over quarters
    share = table_of(catalogue, "court_open_caseload",
                     "measure=share_open_a_year_or_more&row=quarter_end&f.court_type=crown")
    assert shown(share, first, (), "share_open_a_year_or_more") == pytest.approx(24 / 230)


# ---------------------------------------------------------------- bad queries

@pytest.mark.parametrize(("query", "message"), [
    ("measure=nope", "has no measure 'nope'"),
    ("measure=receipts;drop table marts", "has no measure"),
    ("measure=receipts&row=../../proven_reoffending_cohort", "has no dimension"),
    ("measure=receipts&row=person_pseudonym", "has no dimension 'person_pseudonym'"),
    ("measure=receipts&col=court_name", "has no dimension 'court_name'"),
    ("measure=receipts&f.person_id=1", "has no dimension 'person_id'"),
    ("measure=receipts&f.court_type=crown' or '1'='1", "no court_type"),
    ("measure=receipts&row=quarter&col=quarter", "in both the rows and the columns"),
    ("measure=receipts&totals=maybe", "totals"),
    ("measure=receipts&file=/etc/passwd", "unknown parameter 'file'"),
    ("measure=receipts_suppressed", "has no measure"),
    ("row=quarter", "choose at least one measure"),
])
def test_bad_queries_are_refused_saying_what(catalogue, query, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("'", "'")):
        parse_query(catalogue.get("court_receipts_disposals"), query)


def test_too_many_parameters_or_cells_are_refused(catalogue, monkeypatch):
    ds = catalogue.get("court_receipts_disposals")
    with pytest.raises(QueryError, match="parameters"):
        parse_query(ds, "&".join(["measure=receipts"] * 1001))
    monkeypatch.setattr(table_module, "MAX_CELLS", 10)
    with pytest.raises(QueryError, match="cells"):
        run_query(ds, parse_query(ds, "measure=receipts&row=quarter&row=court_code&totals=1"))


def test_a_query_round_trips_through_its_query_string(catalogue):
    ds = catalogue.get("court_receipts_disposals")
    query = parse_query(ds, "f.region=Wales&col=court_type&measure=disposals&measure=receipts"
                            "&row=quarter&totals=1&f.quarter=2024Q3&f.quarter=2024Q1")
    again = parse_query(ds, query.query_string())
    assert again == query and again.query_string() == query.query_string()
    assert query.filter_values("quarter") == ("2024Q1", "2024Q3")  # the dataset's order
    assert parse_query(ds, "") == parse_query(ds, ds.default_query)


# ---------------------------------------------------------------- downloads and charts

def test_downloads_hold_the_tables_cells(catalogue):
    t = table_of(catalogue, "court_receipts_disposals",
                 "measure=receipts&row=quarter&col=court_type&totals=1")
    records = t.records()
    assert len(records) == len(t.row_keys) * len(t.col_keys)
    as_csv = pacsv.read_csv(io.BytesIO(downloads.as_csv(t)),
                            convert_options=pacsv.ConvertOptions(strings_can_be_null=True)).to_pylist()
    as_parquet = pq.read_table(io.BytesIO(downloads.as_parquet(t))).to_pylist()
    as_json = downloads.as_json(t)["records"]
    for got in (as_csv, as_parquet, as_json):
        assert [(r["quarter"], r["court_type"], r["value"], r["symbol"]) for r in got] == [
            (r["quarter"], r["court_type"], r["value"], r["symbol"]) for r in records]
    assert ("2024Q2", "crown", None, "[c]") in [(r["quarter"], r["court_type"], r["value"], r["symbol"])
                                                for r in as_csv]


def test_charts_are_svg_with_gaps_for_withheld_figures(catalogue):
    t = table_of(catalogue, "court_receipts_disposals", "measure=receipts&row=quarter&col=court_type")
    [chart] = charts_of(t)
    svg = ET.fromstring(chart.svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.get("role") == "img" and svg.find(f"{ns}title").text.startswith("Receipts")
    crown = dict(zip(chart.periods, chart.series[0].values))
    assert crown["2024Q2"] is None and crown["2024Q4"] is not None
    # the crown line is broken at the hidden quarters: it starts again after the gap
    paths = [p.get("d") for p in svg.iter(f"{ns}path")]
    assert any(d.count("M") == 1 for d in paths)
    assert "style=" not in chart.svg
    assert charts_of(table_of(catalogue, "court_receipts_disposals",
                              "measure=receipts&row=court_type")) == []


def test_a_new_publish_is_read_again(tmp_path):
    data = publish_sample(tmp_path / "home")
    reports = tmp_path / "home" / "reports"
    first = load_catalogue(reports)
    assert load_catalogue(reports) is first  # read once while the manifest is unchanged
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["published_at"] = "2026-12-02T10:00:00+00:00"
    del manifest["files"]["court_open_caseload"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    again = load_catalogue(reports)
    assert again.published_at == "2026-12-02T10:00:00+00:00"
    assert again.get("court_open_caseload") is None and again.get("proven_reoffending") is not None
