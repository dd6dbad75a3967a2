"""A provider's cohort file: the participants of a programme, read from CSV or xlsx.

    cohort = read_cohort("pathways-partnership__thinking-skills-programme__2016.xlsx")
    cohort.programme, cohort.provider, len(cohort.rows), cohort.rows[0].start_date

The layout is the one providers send (see justice.sim.legacy.interventions): optional title rows
(``Participant list – <programme>``, ``Provider: <provider>``), then a header row, then one
participant a row. The header is the row among the first 50 that names the most known columns;
names are matched case-insensitively, ignoring notes in brackets such as ``(if known)``, with the
usual synonyms (forename / first name / given name, surname / last name / family name, dob /
date of birth, sex / gender, start date / programme start date, pnc, prison number / noms).
First name, surname, date of birth and programme start date are required columns; gender, PNC
and prison number are optional.

Dates may be real Excel dates or text as people type them (``03/07/1985`` read day first,
``3 July 1985``, ``1985-07-03``, ``03-Jul-1985``). A blank date of birth means unknown; a blank
programme start date or surname is a problem.

Every problem is collected, not just the first, each as a :class:`CohortProblem` naming the
sheet or file row (1-based, as a spreadsheet shows it) and the column as headed in the file:

* whole-file problems (unreadable, empty, no header, required columns missing) always raise
  :class:`~justice.errors.CohortError`;
* row problems (an unreadable date, a date in the future, a date of birth after the start, a
  missing surname or start date, an unknown gender, a duplicate of an earlier row) raise too
  by default (``on_row_problem="raise"``); with ``on_row_problem="exclude"`` those rows are left
  out and listed in ``CohortFile.problems`` for the report, so a file with a few bad rows can
  still be evaluated (a duplicate keeps its first row).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from justice.errors import CohortError

HEADER_SCAN_ROWS = 50
"""How far down the sheet the header row is looked for."""

REQUIRED = ("forenames", "surname", "dob", "start_date")
FIELD_LABELS = {"forenames": "First name", "surname": "Surname", "dob": "Date of birth",
                "sex": "Gender", "start_date": "Programme start date", "pnc": "PNC",
                "prison_number": "Prison number"}

# Header text (normalised: lower case, no brackets, punctuation as spaces) -> field.
HEADER_SYNONYMS = {
    "forenames": ("first name", "first names", "firstname", "forename", "forenames",
                  "given name", "given names", "christian name"),
    "surname": ("surname", "last name", "lastname", "family name"),
    "dob": ("dob", "d o b", "date of birth", "birth date", "birthdate"),
    "sex": ("sex", "gender"),
    "start_date": ("start date", "programme start date", "program start date",
                   "programme start", "program start", "date started", "start"),
    "pnc": ("pnc", "pnc number", "pnc no", "pnc id", "pnc ref"),
    "prison_number": ("prison number", "prison no", "prisoner number", "noms",
                      "noms number", "noms no", "noms id"),
}
_FIELD_OF = {name: f for f, names in HEADER_SYNONYMS.items() for name in names}

SEX_VALUES = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F"}
SEX_UNKNOWN = {"", "u", "unknown", "not known", "not stated", "x", "other"}

EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 0 in Excel's 1900 date system
_TEXT_DATE_FORMATS = ("%d/%m/%Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%d", "%d-%b-%Y", "%d-%B-%Y",
                      "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y")
_TIME_SUFFIX = re.compile(r"[ T]00:00(:00(\.0+)?)?$")


@dataclass(frozen=True)
class CohortProblem:
    """One thing wrong with a cohort file: `row` is the 1-based sheet or file row (None for the
    whole file), `column` the column as headed in the file (None when no one column)."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (f"row {self.row}" if self.row else "",
                                      f"column {self.column!r}" if self.column else "") if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Participant:
    """One participant row as read: identity fields for the person index, and the start."""

    row: int
    forenames: str | None
    surname: str
    dob: dt.date | None
    sex: str | None
    start_date: dt.date
    pnc: str | None
    prison_number: str | None


@dataclass
class CohortFile:
    """A cohort file read: its participants, and the rows left out (with why)."""

    path: Path
    programme: str
    provider: str | None
    rows: list[Participant]
    header_row: int
    columns: dict[str, str]
    """field -> the column's heading in the file."""
    problems: list[CohortProblem] = field(default_factory=list)
    """Row problems of rows left out (only with ``on_row_problem="exclude"``)."""


def _raise(path: Path, problems: list[CohortProblem]) -> None:
    shown = problems[:50]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    lines = "\n".join(f"  {p}" for p in shown)
    raise CohortError(f"cohort file {path.name}: {len(problems)} problem(s); fix them and send "
                      f"the file again:\n{lines}{more}", problems)


def normalise_header(text: object) -> str:
    """A header cell as compared with the synonyms: lower case, bracketed notes and
    punctuation dropped, spaces collapsed."""
    s = re.sub(r"\([^)]*\)", " ", str(text)).lower()
    s = re.sub(r"[^a-z0-9]+", " ", s)
    return " ".join(s.split())


def _sheet_rows(path: Path) -> list[tuple]:
    """All rows of the file's first sheet (xlsx) or the CSV, as tuples of cell values."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            _raise(path, [CohortProblem(None, None, f"cannot be read as an Excel .xlsx workbook "
                                                    f"({exc.__class__.__name__}: {exc}); save it "
                                                    "as .xlsx or CSV")])
        try:
            return [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            _raise(path, [CohortProblem(None, None, f"the workbook is damaged part way through "
                                                    f"({exc.__class__.__name__}: {exc}); save it "
                                                    "again as .xlsx or CSV")])
        finally:
            wb.close()
    if suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "cp1252", "latin-1"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        rows: list[tuple] = []
        reader = csv.reader(io.StringIO(text, newline=""))
        line = 1  # where the next record starts: a quoted cell may hold line breaks
        try:
            for cells in reader:
                # Pad with blank rows so that a row's index + 1 is the line it starts on.
                while len(rows) < line - 1:
                    rows.append(())
                rows.append(tuple(cells))
                line = reader.line_num + 1
        except csv.Error as exc:
            _raise(path, [CohortProblem(reader.line_num, None, f"cannot be read as CSV: {exc}")])
        return rows
    _raise(path, [CohortProblem(None, None, f"a cohort file must be .xlsx or .csv, not "
                                            f"{path.suffix or 'a file with no extension'}")])
    return []  # unreachable: _raise raises


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_date(value: object) -> dt.date:
    """A cell as a date: an Excel date, an Excel serial number, or text in a common form
    (day first); ValueError if it is none of those."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2_958_466:  # Excel's serial range (1900-01-01 to 9999-12-31)
            return EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise ValueError(f"{value!r} is not an Excel date")
    text = _TIME_SUFFIX.sub("", " ".join(str(value).split()))
    for fmt in _TEXT_DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{str(value)!r} is not a date (write it as dd/mm/yyyy, e.g. 03/07/1985)")


def _find_header(rows: list[tuple]) -> tuple[int, dict[int, str]] | None:
    """The 0-based header row and its recognised columns (column index -> field)."""
    best: tuple[int, dict[int, str]] | None = None
    for i, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
        found = {c: _FIELD_OF[normalise_header(v)] for c, v in enumerate(cells)
                 if not _blank(v) and normalise_header(v) in _FIELD_OF}
        if len(found) >= 2 and (best is None or len(found) > len(best[1])):
            best = (i, found)
    return best


def _title_parts(rows: list[tuple], header: int, path: Path) -> tuple[str, str | None]:
    """Programme and provider: from the title rows above the header, else the file name
    (``<provider>__<programme>__<years>``), else the file's stem."""
    programme = provider = None
    for cells in rows[:header]:
        for v in cells:
            if _blank(v):
                continue
            s = str(v).strip()
            m = re.match(r"(?i)provider\s*:\s*(.+)$", s)
            if m:
                provider = provider or m.group(1).strip()
                continue
            m = re.match(r"(?i)participant list\s*[-\u2013\u2014:]\s*(.+)$", s)
            if m:
                programme = programme or m.group(1).strip()
    parts = path.stem.split("__")
    if len(parts) >= 2:
        def titled(slug: str) -> str:
            return " ".join(w[:1].upper() + w[1:] for w in slug.split("-"))
        provider = provider or titled(parts[0])
        programme = programme or titled(parts[1])
    return programme or path.stem, provider


def _read_row(cells: tuple, rowno: int, columns: dict[str, int], heading: dict[int, str],
              today: dt.date) -> tuple[Participant | None, list[CohortProblem]]:
    """One participant row: the Participant, or None and its problems."""
    mine: list[CohortProblem] = []

    def cell(f: str) -> object:
        c = columns.get(f)
        return cells[c] if c is not None and c < len(cells) else None

    def problem(f: str, message: str) -> None:
        mine.append(CohortProblem(rowno, heading[columns[f]], message))

    forenames, surname = _text(cell("forenames")), _text(cell("surname"))
    if surname is None:
        problem("surname", "surname is blank")
    dob = start = None
    if not _blank(cell("dob")):
        try:
            dob = parse_date(cell("dob"))
        except ValueError as exc:
            problem("dob", f"date of birth {exc}")
    if _blank(cell("start_date")):
        problem("start_date", "programme start date is blank")
    else:
        try:
            start = parse_date(cell("start_date"))
        except ValueError as exc:
            problem("start_date", f"programme start date {exc}")
    if dob and dob > today:
        problem("dob", f"date of birth {dob:%d/%m/%Y} is in the future")
    if start and start > today:
        problem("start_date", f"programme start date {start:%d/%m/%Y} is in the future")
    if dob and start and dob > start and dob <= today:
        problem("dob", f"date of birth {dob:%d/%m/%Y} is after the programme start date "
                       f"{start:%d/%m/%Y}")
    sex = None
    raw_sex = _text(cell("sex"))
    if raw_sex is not None:
        key = raw_sex.lower()
        if key in SEX_VALUES:
            sex = SEX_VALUES[key]
        elif key not in SEX_UNKNOWN:
            problem("sex", f"gender {raw_sex!r} is not one of Male, Female, M, F "
                           "(leave it blank if not known)")
    if mine:
        return None, mine
    return Participant(rowno, forenames, surname, dob, sex, start, _text(cell("pnc")),
                       _text(cell("prison_number"))), mine


def read_cohort(path: str | Path, *, on_row_problem: str = "raise",
                today: dt.date | None = None) -> CohortFile:
    """Read a provider's cohort file (CSV or xlsx); raise CohortError listing every problem.

    `on_row_problem`: "raise" (default) or "exclude" (leave bad rows out, listed in
    ``problems``). `today`: dates after it are in the future (default: today's date)."""
    if on_row_problem not in ("raise", "exclude"):
        raise ValueError(f"on_row_problem must be 'raise' or 'exclude', not {on_row_problem!r}")
    path = Path(path)
    today = today or dt.date.today()
    if not path.is_file():
        _raise(path, [CohortProblem(None, None, f"no such file: {path}")])
    if path.stat().st_size == 0:
        _raise(path, [CohortProblem(None, None, "the file is empty")])
    rows = _sheet_rows(path)
    # Blank trailing rows (and cells) are how spreadsheets end; they are not participants.
    while rows and all(_blank(v) for v in rows[-1]):
        rows.pop()
    if not rows:
        _raise(path, [CohortProblem(None, None, "the file is empty")])
    found = _find_header(rows)
    required = ", ".join(FIELD_LABELS[f] for f in REQUIRED)
    if found is None:
        seen = [str(v) for v in rows[0] if not _blank(v)]
        _raise(path, [CohortProblem(None, None, f"no header row found in the first "
                                                f"{HEADER_SCAN_ROWS} rows: the required columns "
                                                f"are {required}; the first row has "
                                                f"{', '.join(map(repr, seen)) or 'nothing'}")])
    header, col_field = found
    header_cells = rows[header]
    heading = {c: str(header_cells[c]).strip() for c in col_field}
    problems: list[CohortProblem] = []
    columns: dict[str, int] = {}
    for c, f in col_field.items():
        if f in columns:
            problems.append(CohortProblem(header + 1, heading[c],
                                          f"two columns mean {FIELD_LABELS[f]}: "
                                          f"{heading[columns[f]]!r} and {heading[c]!r}; keep one"))
        else:
            columns[f] = c
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        present = [str(v).strip() for v in header_cells if not _blank(v)]
        problems.append(CohortProblem(
            header + 1, None,
            f"required column(s) {', '.join(FIELD_LABELS[f] for f in missing)} not found: the "
            f"required columns are {required} (optional: Gender, PNC, Prison number); the header "
            f"row has {', '.join(map(repr, present))}"))
    if problems:
        _raise(path, problems)
    programme, provider = _title_parts(rows, header, path)

    participants: list[Participant] = []
    row_problems: list[CohortProblem] = []
    first_of: dict[tuple, int] = {}
    for i in range(header + 1, len(rows)):
        cells = rows[i]
        if all(_blank(v) for v in cells):
            continue
        rowno = i + 1
        participant, mine = _read_row(cells, rowno, columns, heading, today)
        if participant is not None:
            key = ((participant.forenames or "").casefold(), participant.surname.casefold(),
                   participant.dob, participant.start_date)
            if key in first_of:
                columns_named = ", ".join(heading[columns[f]] for f in
                                          ("forenames", "surname", "dob", "start_date"))
                mine.append(CohortProblem(rowno, columns_named,
                                          f"duplicates row {first_of[key]} (same names, date of "
                                          "birth and programme start date); remove one"))
            else:
                first_of[key] = rowno
        if mine:
            row_problems.extend(mine)
            continue
        participants.append(participant)
    if row_problems and on_row_problem == "raise":
        _raise(path, row_problems)
    if not participants:
        _raise(path, row_problems + [CohortProblem(
            header + 2, None, "no participants: the file has a header row and no readable rows "
                              "under it")])
    return CohortFile(path, programme, provider, participants, header + 1,
                      {f: heading[c] for f, c in columns.items()}, row_problems)


CSV_HEADER = ("First name", "Surname", "Date of birth", "Gender", "Programme start date",
              "PNC (if known)", "Prison number (if known)")
"""The column headings `write_csv` writes: the providers' own (legacy/interventions/ workbooks)."""


def write_csv(participants: Iterable[Participant], out: Path) -> int:
    """Write participants as a cohort CSV `read_cohort` reads back (dates ISO, sex M/F); for
    joining several lists into one request, or passing on a cleaned list. Returns rows written."""
    rows = 0
    with Path(out).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for p in participants:
            writer.writerow([p.forenames or "", p.surname, p.dob.isoformat() if p.dob else "",
                             p.sex or "", p.start_date.isoformat(), p.pnc or "",
                             p.prison_number or ""])
            rows += 1
    return rows
