"""Tests for justice.sources.readers.xlsx: the simulated interventions workbooks, cell values as
a person sees them, header finding, and every way a workbook can be bad."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import xlsxwriter

from justice.errors import ConfigError, SchemaDriftError, SourceError
from justice.sources.readers import xlsx as reader
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage
from justice.sources.spec import LINEAGE_COLUMNS, builtin_spec_dir, load_spec, parse_spec

LINEAGE = Lineage(load_id="load-1", extracted_at="2026-01-02T03:04:05")
HEADER = ["First name", "Surname", "Date of birth", "Gender", "Programme start date",
          "PNC (if known)", "Prison number (if known)"]
TITLE = [["Participant list \u2013 Thinking Skills"], ["Provider: Pathways"], []]


@pytest.fixture(scope="module")
def spec():
    return load_spec(builtin_spec_dir() / "interventions.yaml")


def workbook(path: Path, rows: list[list], sheet: str = "Participants",
             extra: dict[str, list[list]] | None = None) -> Path:
    """An .xlsx with `rows` from A1 down (None = empty cell) and optional extra sheets."""
    wb = openpyxl.Workbook()
    for i, (name, data) in enumerate([(sheet, rows), *(extra or {}).items()]):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = name
        for r, values in enumerate(data, start=1):
            for c, v in enumerate(values, start=1):
                if v is not None:
                    ws.cell(r, c, v)
    wb.save(path)
    return path


def participant(first: str = "Ann", dob: object = dt.datetime(1985, 7, 3)) -> list:
    return [first, "Smith", dob, "Female", dt.datetime(2019, 5, 1), None, "A1234BC"]


def read_all(spec, path: Path, **kw) -> list[Batch]:
    return list(reader.read(spec, str(path), LINEAGE, **kw))


def rows_of(batches: list[Batch]) -> pa.Table:
    return pa.concat_tables([b.rows for b in batches])


def check_accounting(batches: list[Batch], expected_records: int) -> None:
    """Rows read = rows + rejects, and every batch is well formed."""
    assert sum(b.rows.num_rows + b.rejects.num_rows for b in batches) == expected_records
    for b in batches:
        assert b.rejects.schema == REJECT_SCHEMA
        assert tuple(b.rows.column_names[-len(LINEAGE_COLUMNS):]) == LINEAGE_COLUMNS
        assert all(t == pa.string() for t in b.rows.schema.types)


# ---------------------------------------------------------------------------------------------
# The simulated system
# ---------------------------------------------------------------------------------------------


def test_reads_every_simulated_participant_row(small_truth, spec) -> None:
    out, _ = small_truth
    root = out / "legacy" / "interventions"
    files = sorted(root.glob(spec.files))
    assert files
    batches = []
    for f in files:
        got = read_all(spec, f, relative_name=f.name)
        assert len(got) == 1 and got[0].new_columns == () and got[0].rejects.num_rows == 0
        batches += got
    rows = rows_of(batches)
    truth = pq.read_table(out / "truth" / "records.parquet")
    truth = truth.filter(pc.equal(truth["system"], "interventions"))
    check_accounting(batches, truth.num_rows)
    keys = [f"{f}:{loc.removeprefix('sheet Participants row ')}"
            for f, loc in zip(rows["_file"].to_pylist(), rows["_locator"].to_pylist(), strict=True)]
    assert sorted(keys) == sorted(truth["record_id"].to_pylist())
    # programme start is always an Excel date: ISO text; dates of birth mostly so
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", v) for v in rows["programme_start_date"].to_pylist())
    dobs = [v for v in rows["date_of_birth"].to_pylist() if v is not None]
    iso = sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", v)) for v in dobs)
    assert iso > 0.7 * len(dobs) and iso < len(dobs)  # some typed as text in other styles
    assert set(rows["_system"].to_pylist()) == {"interventions"}
    assert None in rows["pnc_id"].to_pylist()  # an empty cell is null


# ---------------------------------------------------------------------------------------------
# Values as a person sees them
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (None, None), ("", ""), ("  Ann ", "  Ann "), ("3 July 1985", "3 July 1985"),
    (42, "42"), (42.0, "42"), (-7.0, "-7"), (12.5, "12.5"), (0.1, "0.1"), (1e20, "1e+20"),
    (True, "TRUE"), (False, "FALSE"),
    (dt.datetime(1985, 7, 3), "1985-07-03"), (dt.datetime(2019, 5, 1, 9, 30), "2019-05-01 09:30:00"),
    (dt.date(2001, 2, 3), "2001-02-03"), (dt.time(14, 5), "14:05:00"),
])
def test_cell_text(value, text) -> None:
    assert reader.cell_text(value) == text


def test_values_in_a_workbook(tmp_path) -> None:
    s = parse_spec({"system": "t", "format": "xlsx", "files": "*.xlsx", "tables": [{
        "name": "t", "fields": [{"source": c, "name": f"c{i}"} for i, c in enumerate("ABCDEF")]}]})
    f = tmp_path / "v.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("Sheet1")
    date = wb.add_format({"num_format": "dd/mm/yyyy"})
    ws.write_row(0, 0, list("ABCDEF"))
    ws.write_number(1, 0, 31231.0, date)  # an Excel date serial shown as a date
    ws.write_number(1, 1, 1234.0)
    ws.write_number(1, 2, 2.75)
    ws.write_boolean(1, 3, True)
    ws.write_formula(1, 4, "=B2*2", None, 2468)  # the cached result is what a person sees
    ws.write_string(1, 5, "03-Jul-1985")
    wb.close()
    (row,) = rows_of(read_all(s, f)).to_pylist()
    assert [row[f"c{i}"] for i in range(6)] == ["1985-07-03", "1234", "2.75", "TRUE", "2468",
                                                "03-Jul-1985"]
    assert row["_locator"] == "sheet Sheet1 row 2"


# ---------------------------------------------------------------------------------------------
# Header row, sheets, columns
# ---------------------------------------------------------------------------------------------


def test_header_is_found_below_title_rows(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [*TITLE, HEADER, participant("Ann"), [], participant("Bob")])
    (batch,) = read_all(spec, f)
    rows = batch.rows.to_pylist()
    assert [r["first_name"] for r in rows] == ["Ann", "Bob"]
    assert [r["_locator"] for r in rows] == ["sheet Participants row 5",
                                             "sheet Participants row 7"]  # the blank row 6
    assert rows[0]["date_of_birth"] == "1985-07-03" and rows[0]["pnc_id"] is None
    assert rows[0]["_file"] == "p.xlsx"


def test_header_row_option(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [*TITLE, HEADER, participant()])
    fixed = parse_spec({**_raw(spec), "options": {"header_row": 4}})
    assert rows_of(read_all(fixed, f)).num_rows == 1
    wrong = parse_spec({**_raw(spec), "options": {"header_row": 2}})
    with pytest.raises(SchemaDriftError, match="row 2"):
        read_all(wrong, f)
    with pytest.raises(ConfigError, match="header_row"):
        read_all(parse_spec({**_raw(spec), "options": {"header_row": 0}}), f)
    with pytest.raises(ConfigError, match="headr_row"):
        read_all(parse_spec({**_raw(spec), "options": {"headr_row": 4}}), f)


def _raw(spec) -> dict:
    """The interventions spec as YAML data, to vary."""
    t = spec.tables[0]
    return {"system": spec.system, "format": "xlsx", "files": spec.files, "tables": [{
        "name": t.name, "source": t.source, "fields": [
            {"source": f.source, "name": f.name, "required": f.required} for f in t.fields]}]}


def test_header_with_stray_spaces_matches(tmp_path, spec) -> None:
    header = [h + " " if h == "Gender" else h for h in HEADER]
    f = workbook(tmp_path / "p.xlsx", [header, participant()])
    assert rows_of(read_all(spec, f))["gender"].to_pylist() == ["Female"]


def test_missing_required_column_is_schema_drift(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [*TITLE, HEADER[1:], participant()[1:]])
    with pytest.raises(SchemaDriftError, match=r"p\.xlsx.*'First name'.*row 4.*update the spec "
                                               r"or the source"):
        read_all(spec, f)


def test_no_header_at_all_is_schema_drift(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [["Name", "Born"], ["Ann", "1985"]])
    with pytest.raises(SchemaDriftError, match="none of the first 50 rows"):
        read_all(spec, f)


def test_missing_optional_column_is_null_and_new_column_is_kept(tmp_path, spec) -> None:
    header = [*HEADER[:5], "Referral route", None, "Notes"]
    f = workbook(tmp_path / "p.xlsx", [header, [*participant()[:5], "Court", None, "ok"]])
    (batch,) = read_all(spec, f)
    assert batch.new_columns == ("x_referral_route", "x_notes")
    (row,) = batch.rows.to_pylist()
    assert row["pnc_id"] is None and row["prison_number"] is None
    assert (row["x_referral_route"], row["x_notes"]) == ("Court", "ok")


def test_value_under_no_header_is_a_ragged_row(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [*TITLE, HEADER, participant("Ann"),
                                      [*participant("Bob"), None, "left early"],
                                      participant("Cy")])
    batches = read_all(spec, f)
    check_accounting(batches, 3)
    (rej,) = batches[0].rejects.to_pylist()
    assert (rej["rule"], rej["_locator"]) == ("ragged_row", "sheet Participants row 6")
    assert "column(s) I" in rej["reason"] and "left early" in rej["raw"] and "Bob" in rej["raw"]
    assert rows_of(batches)["first_name"].to_pylist() == ["Ann", "Cy"]


def test_sheet_choice(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [["notes"]], sheet="Read me",
                 extra={"Participants": [HEADER, participant()]})
    assert rows_of(read_all(spec, f)).num_rows == 1  # the named sheet, not the first
    f2 = workbook(tmp_path / "q.xlsx", [HEADER, participant()], sheet="Sheet1")
    with pytest.raises(SchemaDriftError, match=r"no sheet 'Participants'.*'Sheet1'"):
        read_all(spec, f2)
    first = parse_spec({**_raw(spec), "tables": [{**_raw(spec)["tables"][0], "source": None}]})
    (batch,) = read_all(first, f2)
    assert batch.rows["_locator"].to_pylist() == ["sheet Sheet1 row 2"]


def test_two_tables_two_sheets(tmp_path, spec) -> None:
    s = parse_spec({"system": "t", "format": "xlsx", "files": "*.xlsx", "tables": [
        {"name": "a", "source": "A", "fields": [{"source": "x", "name": "x"}]},
        {"name": "b", "source": "B", "fields": [{"source": "y", "name": "y"}]}]})
    f = workbook(tmp_path / "t.xlsx", [["x"], [1]], sheet="A", extra={"B": [["y"], [2], [3]]})
    got = read_all(s, f)
    assert [(b.table, b.rows.num_rows) for b in got] == [("a", 1), ("b", 2)]


def test_batches_are_bounded(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [HEADER] + [participant(f"P{i}") for i in range(250)])
    s = parse_spec({**_raw(spec), "options": {"chunk_rows": 100}})
    batches = read_all(s, f)
    assert [b.rows.num_rows for b in batches] == [100, 100, 50]
    check_accounting(batches, 250)


def test_header_only_gives_one_empty_batch(tmp_path, spec) -> None:
    (batch,) = read_all(spec, workbook(tmp_path / "p.xlsx", [*TITLE, HEADER]))
    assert batch.rows.num_rows == 0 and batch.rows.column_names[0] == "first_name"


def test_wrong_stored_dimensions_do_not_drop_rows(tmp_path, spec) -> None:
    """A writer that records a too-small sheet size must not make rows vanish."""
    f = workbook(tmp_path / "p.xlsx", [HEADER] + [participant(f"P{i}") for i in range(5)])
    _rewrite_member(f, "xl/worksheets/sheet1.xml",
                    lambda xml: re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:B2"/>',
                                       xml))
    assert rows_of(read_all(spec, f))["prison_number"].to_pylist() == ["A1234BC"] * 5


# ---------------------------------------------------------------------------------------------
# Whole-file problems
# ---------------------------------------------------------------------------------------------


def _rewrite_member(path: Path, member: str, change) -> None:
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            z.writestr(info, change(data) if info.filename == member else data)


def test_empty_file(tmp_path, spec) -> None:
    f = tmp_path / "p.xlsx"
    f.write_bytes(b"")
    with pytest.raises(SourceError, match=r"p\.xlsx is empty.*re-extract it or remove it"):
        read_all(spec, f)


@pytest.mark.parametrize("content", [
    b"First name,Surname\r\nAnn,Smith\r\n",  # a CSV named .xlsx
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),  # an old .xls (OLE2) or encrypted xlsx
    b"PK\x03\x04 not really a zip",
])
def test_not_an_xlsx_workbook(tmp_path, spec, content) -> None:
    f = tmp_path / "p.xlsx"
    f.write_bytes(content)
    with pytest.raises(SourceError, match=r"p\.xlsx: not a readable \.xlsx workbook"):
        read_all(spec, f)


def test_truncated_workbook(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [HEADER] + [participant(f"P{i}") for i in range(200)])
    data = f.read_bytes()
    f.write_bytes(data[:len(data) // 2])
    with pytest.raises(SourceError, match="not a readable"):
        read_all(spec, f)


def test_damaged_sheet(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [HEADER] + [participant(f"P{i}") for i in range(200)])
    _rewrite_member(f, "xl/worksheets/sheet1.xml", lambda xml: xml[:len(xml) // 2])
    with pytest.raises(SourceError, match=r"sheet 'Participants' is damaged after row \d+"):
        read_all(spec, f)


def test_empty_sheet(tmp_path, spec) -> None:
    f = workbook(tmp_path / "p.xlsx", [])
    with pytest.raises(SourceError, match="sheet 'Participants' is empty"):
        read_all(spec, f)


def test_missing_file(tmp_path, spec) -> None:
    with pytest.raises(SourceError, match="cannot be opened"):
        read_all(spec, tmp_path / "nope.xlsx")
