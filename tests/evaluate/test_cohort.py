"""Reading a provider's cohort file: layouts, header synonyms, dates, and every input error
named by row and column."""

from __future__ import annotations

import datetime as dt

import pytest
import xlsxwriter

from justice.errors import CohortError, JusticeError
from justice.evaluate.cohort import CohortProblem, parse_date, read_cohort, write_csv

TODAY = dt.date(2026, 6, 1)
HEADER = ["First name", "Surname", "Date of birth", "Gender", "Programme start date",
          "PNC (if known)", "Prison number (if known)"]


def _xlsx(path, rows, title=True):
    """A workbook laid out as the providers' are: title rows, blank, header at row 4."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Participants")
    date = wb.add_format({"num_format": "dd/mm/yyyy"})
    r0 = 0
    if title:
        ws.write_string(0, 0, "Participant list \u2013 Thinking Skills Programme")
        ws.write_string(1, 0, "Provider: Pathways Partnership")
        r0 = 3
    for i, row in enumerate(rows):
        for c, v in enumerate(row):
            if isinstance(v, dt.date):
                ws.write_datetime(r0 + i, c, dt.datetime.combine(v, dt.time()), date)
            elif isinstance(v, (int, float)):
                ws.write_number(r0 + i, c, v)
            elif v is not None:
                ws.write_string(r0 + i, c, v)
    wb.close()
    return path


def _problems(excinfo) -> set[tuple]:
    return {(p.row, p.column) for p in excinfo.value.problems}


def test_reads_a_provider_workbook(tmp_path):
    path = _xlsx(tmp_path / "pathways-partnership__thinking-skills-programme__2016.xlsx", [
        HEADER,
        ["Jon", "Smith", dt.date(1985, 7, 3), "Male", dt.date(2016, 2, 1), "2009/1234567A", None],
        ["ANNE", "jones", "3 July 1985", "Female", dt.date(2016, 3, 1), None, "A1234BC"],
        ["Ali", "Khan", None, None, dt.date(2016, 4, 1), None, None],
        [None] * 7,  # blank trailing rows are how sheets end, not participants
        [None] * 7,
    ])
    cohort = read_cohort(path, today=TODAY)
    assert cohort.programme == "Thinking Skills Programme"
    assert cohort.provider == "Pathways Partnership"
    assert cohort.header_row == 4
    assert [p.row for p in cohort.rows] == [5, 6, 7]
    jon, anne, ali = cohort.rows
    assert (jon.forenames, jon.surname, jon.dob, jon.sex, jon.start_date, jon.pnc) == (
        "Jon", "Smith", dt.date(1985, 7, 3), "M", dt.date(2016, 2, 1), "2009/1234567A")
    assert (anne.dob, anne.sex, anne.prison_number) == (dt.date(1985, 7, 3), "F", "A1234BC")
    assert (ali.dob, ali.sex) == (None, None)  # blank means unknown, not an error
    assert cohort.problems == []


def test_a_list_written_as_csv_reads_back_the_same(tmp_path):
    path = _xlsx(tmp_path / "list.xlsx", [
        HEADER,
        ["Jon", "Smith", dt.date(1985, 7, 3), "Male", dt.date(2016, 2, 1), "2009/1234567A", None],
        ["Ali", "Khan", None, "Female", dt.date(2016, 4, 1), None, "A1234BC"],
        ["Ali", "Khan", None, "Female", dt.date(2016, 4, 1), None, "A1234BC"],  # a duplicate
    ])
    kept = read_cohort(path, today=TODAY, on_row_problem="exclude").rows
    assert write_csv(kept, tmp_path / "list.csv") == 2
    again = read_cohort(tmp_path / "list.csv", today=TODAY).rows
    fields = ("forenames", "surname", "dob", "sex", "start_date", "pnc", "prison_number")
    assert [[getattr(p, f) for f in fields] for p in again] == [
        [getattr(p, f) for f in fields] for p in kept]
    assert [p.row for p in again] == [2, 3]


def test_csv_with_header_synonyms_and_text_dates(tmp_path):
    path = tmp_path / "my list.csv"
    path.write_text(
        "Employment scheme participants\n"
        "\n"
        "Given name,Family Name,D.O.B.,Sex,Start Date,PNC,NOMS\n"
        "Jon,Smith,03/07/1985,M,01/02/2016,,A1234BC\n"
        "Ann,Jones,3 July 1985,f,2016-02-01,2009/1234567A,\n"
        "Bob,Brown,1985-07-03,male,01-Feb-2016,,\n"
        "Cy,Green,03-Jul-1985,FEMALE,1 February 2016,,\n"
        ",,,,,,\n", encoding="utf-8")
    cohort = read_cohort(path, today=TODAY)
    assert cohort.header_row == 3
    assert cohort.columns == {"forenames": "Given name", "surname": "Family Name", "dob": "D.O.B.",
                              "sex": "Sex", "start_date": "Start Date", "pnc": "PNC",
                              "prison_number": "NOMS"}
    assert {p.dob for p in cohort.rows} == {dt.date(1985, 7, 3)}
    assert {p.start_date for p in cohort.rows} == {dt.date(2016, 2, 1)}
    assert [p.sex for p in cohort.rows] == ["M", "F", "M", "F"]
    assert [p.row for p in cohort.rows] == [4, 5, 6, 7]
    assert cohort.programme == "my list" and cohort.provider is None


def test_dates_excel_serials_and_text():
    assert parse_date(31_231.0) == dt.date(1985, 7, 3)  # an Excel serial left unformatted
    assert parse_date("03/07/1985") == dt.date(1985, 7, 3)  # day first, as in the UK
    assert parse_date("1985-07-03 00:00:00") == dt.date(1985, 7, 3)
    for bad in ("31/02/1993", "13/13/1990", "next week", "1985"):
        with pytest.raises(ValueError, match="not a date"):
            parse_date(bad)


def test_every_row_problem_is_reported_with_row_and_column(tmp_path):
    path = _xlsx(tmp_path / "list.xlsx", [
        HEADER,
        ["Jon", "Smith", dt.date(1985, 7, 3), "Male", dt.date(2016, 2, 1), None, None],   # 5 ok
        ["Ann", "Jones", "31/02/1993", "Female", dt.date(2016, 2, 1), None, None],        # 6
        ["Bob", "Brown", dt.date(1980, 1, 1), "Male", dt.date(2027, 1, 1), None, None],   # 7
        ["Cy", "Green", dt.date(2017, 1, 1), "Male", dt.date(2016, 1, 1), None, None],    # 8
        ["Di", None, dt.date(1980, 1, 1), "Female", dt.date(2016, 1, 1), None, None],     # 9
        ["Ed", "Hill", dt.date(1980, 1, 1), "Bloke", dt.date(2016, 1, 1), None, None],    # 10
        ["JON", "SMITH", dt.date(1985, 7, 3), "M", dt.date(2016, 2, 1), None, None],      # 11 dup
        ["Fay", "Ray", dt.date(2030, 1, 1), "F", None, None, None],                       # 12
        ["Gus", "Lee", dt.date(1980, 1, 1), "M", "soon", None, None],                     # 13
    ])
    with pytest.raises(CohortError) as excinfo:
        read_cohort(path, today=TODAY)
    dup = "First name, Surname, Date of birth, Programme start date"
    assert _problems(excinfo) == {
        (6, "Date of birth"), (7, "Programme start date"), (8, "Date of birth"),
        (9, "Surname"), (10, "Gender"), (11, dup), (12, "Date of birth"),
        (12, "Programme start date"), (13, "Programme start date")}
    by_row = {(p.row, p.column): p.message for p in excinfo.value.problems}
    assert "'31/02/1993' is not a date" in by_row[6, "Date of birth"]
    assert "in the future" in by_row[7, "Programme start date"]
    assert "after the programme start" in by_row[8, "Date of birth"]
    assert "duplicates row 5" in by_row[11, dup]
    assert "in the future" in by_row[12, "Date of birth"]
    assert "blank" in by_row[12, "Programme start date"]
    message = str(excinfo.value)
    assert "9 problem(s)" in message and "row 11" in message and "row 6, column 'Date of birth'" in message
    assert isinstance(excinfo.value, JusticeError)


def test_exclude_leaves_bad_rows_out_and_lists_them(tmp_path):
    path = _xlsx(tmp_path / "list.xlsx", [
        HEADER,
        ["Jon", "Smith", dt.date(1985, 7, 3), "Male", dt.date(2016, 2, 1), None, None],
        ["Ann", "Jones", "31/02/1993", "Female", dt.date(2016, 2, 1), None, None],
        ["Jon", "Smith", dt.date(1985, 7, 3), "Male", dt.date(2016, 2, 1), None, None],
        ["Bob", "Brown", dt.date(1980, 1, 1), "Male", dt.date(2016, 5, 1), None, None],
    ])
    cohort = read_cohort(path, on_row_problem="exclude", today=TODAY)
    assert [p.row for p in cohort.rows] == [5, 8]  # the duplicate keeps its first row
    assert [(p.row, p.column) for p in cohort.problems] == [
        (6, "Date of birth"), (7, "First name, Surname, Date of birth, Programme start date")]
    with pytest.raises(ValueError):
        read_cohort(path, on_row_problem="ignore")


def test_missing_and_misnamed_columns(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Name,Surname,Birthday,Gender,Start date\nJon,Smith,03/07/1985,M,01/02/2016\n")
    with pytest.raises(CohortError) as excinfo:
        read_cohort(path, today=TODAY)
    (problem,) = excinfo.value.problems
    assert problem.row == 1
    assert "First name, Date of birth not found" in problem.message
    assert "required columns are First name, Surname, Date of birth, Programme start date" in (
        problem.message)
    assert "'Name', 'Surname', 'Birthday', 'Gender', 'Start date'" in problem.message


def test_two_columns_for_one_field(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Forename,First name,Surname,DOB,Start date\nJon,Jon,Smith,03/07/1985,"
                    "01/02/2016\n")
    with pytest.raises(CohortError) as excinfo:
        read_cohort(path, today=TODAY)
    assert _problems(excinfo) == {(1, "First name")}
    assert "'Forename' and 'First name'" in excinfo.value.problems[0].message


def test_no_header_row(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CohortError, match="no header row found.*first row has 'a', 'b', 'c'"):
        read_cohort(path, today=TODAY)


@pytest.mark.parametrize("content, match", [
    (b"", "the file is empty"),
    (b"\n\n,,,\n", "the file is empty"),
    (b"First name,Surname,Date of birth,Programme start date\n,,,\n",
     "no participants: the file has a header row"),
])
def test_empty_files(tmp_path, content, match):
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    with pytest.raises(CohortError, match=match):
        read_cohort(path, today=TODAY)


def test_unreadable_files(tmp_path):
    fake = tmp_path / "list.xlsx"
    fake.write_text("First name,Surname\n")  # a CSV renamed to .xlsx
    with pytest.raises(CohortError, match="cannot be read as an Excel .xlsx workbook"):
        read_cohort(fake)
    old = tmp_path / "list.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(CohortError, match="must be .xlsx or .csv, not .xls"):
        read_cohort(old)
    with pytest.raises(CohortError, match="no such file"):
        read_cohort(tmp_path / "absent.csv")


def test_problem_text():
    assert str(CohortProblem(7, "Date of birth", "bad")) == "row 7, column 'Date of birth': bad"
    assert str(CohortProblem(None, None, "the file is empty")) == "the file is empty"


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text('First name,Surname,Date of birth,Programme start date\n'
                    '"Jon\nPaul",Smith,03/07/1985,01/02/2016\n'
                    'Ann,Jones,31/02/1993,01/02/2016\n', encoding="utf-8")
    with pytest.raises(CohortError) as excinfo:
        read_cohort(path, today=TODAY)
    assert _problems(excinfo) == {(4, "Date of birth")}  # the row on lines 2-3 comes first
    cohort = read_cohort(path, on_row_problem="exclude", today=TODAY)
    assert [(p.row, p.forenames) for p in cohort.rows] == [(2, "Jon\nPaul")]
