"""Excel reader: one .xlsx workbook -> Batches of cell text plus lineage, one table per sheet.

What it does with a workbook:

* **Sheet**: each table's ``source`` names its sheet; without one, the table is the first sheet.
  A named sheet that is missing raises SchemaDriftError (with the sheets there are).
* **Header row**: people put title rows above the header, so the header is the row, among the
  first 50, that holds the most of the table's declared ``source`` names (matched exactly, then
  with surrounding whitespace stripped); ``options.header_row`` (1-based) fixes it instead. A
  missing required field raises SchemaDriftError; a missing optional one lands as nulls; header
  cells the spec does not declare are kept as ``x_<snake_case name>`` and listed in
  ``Batch.new_columns``.
* **Values** are what a person sees in the cell, as text: text as typed (never trimmed); a date
  or date-time stored as an Excel date as ISO ``YYYY-MM-DD`` (``YYYY-MM-DD HH:MM:SS`` when it has
  a time of day); a number without a spurious ``.0`` (``42``, ``12.5``); TRUE/FALSE for
  booleans; a formula's last computed value. An empty cell is null; text typed as a date (such
  as ``3 July 1985``) stays text for staging to parse.
* **Rows**: every row below the header is a record except fully empty rows, which are skipped.
  Locator ``sheet <name> row N``, the 1-based sheet row (so ``<file>:<N>`` names the record).
* **Rejects**: ``ragged_row`` for a row with a value in a column that has no header name (the
  raw text is the row's cells joined with tabs; the reason gives the column letters).
* **Whole-file problems** raise SourceError: an empty file, a file that is not an xlsx workbook
  (an old .xls, a CSV renamed, a damaged or truncated zip), a sheet with no rows at all. A
  workbook found damaged part way through raises SourceError too; batches already yielded for
  it should then be discarded with the rest of the file.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import ParseError

import openpyxl
import pyarrow as pa
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from justice.errors import ConfigError, SchemaDriftError, SourceError
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage, extra_column, lineage_arrays
from justice.sources.spec import SourceSpec, TableSpec

HEADER_SCAN_ROWS = 50
"""How far down a sheet the header row is looked for."""
BATCH_ROWS = 100_000
OPTIONS = ("header_row", "chunk_rows")


@dataclass(frozen=True)
class _Columns:
    """How the sheet's columns map to the batch's columns."""

    header_row: int
    names: tuple[str, ...]
    """Output column names: declared fields (our names), then x_ columns for undeclared ones."""
    sources: tuple[int | None, ...]
    """For each output column, its 0-based sheet column; None for an absent optional field."""
    named: frozenset[int]
    """0-based columns with a header name."""
    new_columns: tuple[str, ...]


def read(spec: SourceSpec, location: str, lineage: Lineage, *, cursor: str | None = None,
         relative_name: str | None = None) -> Iterator[Batch]:
    """Read one workbook: for each table of the spec, Batches of at most chunk_rows rows (one
    empty Batch for a sheet with a header and no rows). `cursor` is unused: a file is loaded
    whole."""
    del cursor  # file-cursor sources are incremental by file, not within one
    header_row, chunk_rows = _options(spec)
    name = relative_name or Path(location).name
    wb = _open(location)
    try:
        for table in spec.tables:
            yield from _read_sheet(spec, table, wb, location, name, lineage, header_row,
                                   chunk_rows)
    finally:
        wb.close()


def _options(spec: SourceSpec) -> tuple[int | None, int]:
    o = spec.options
    unknown = sorted(set(o) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{spec.path}: options: {', '.join(unknown)} not known to the xlsx "
                          f"reader (known: {', '.join(OPTIONS)})")
    header_row = o.get("header_row")
    if header_row is not None and (not isinstance(header_row, int) or header_row < 1):
        raise ConfigError(f"{spec.path}: options.header_row: {header_row!r} must be a 1-based "
                          "row number")
    chunk_rows = o.get("chunk_rows", BATCH_ROWS)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"{spec.path}: options.chunk_rows: {chunk_rows!r} must be a positive "
                          "integer")
    return header_row, chunk_rows


def _open(location: str):
    path = Path(location)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"{location}: cannot be opened ({exc.strerror}); check the path and "
                          "its permissions") from None
    if size == 0:
        raise SourceError(f"{location} is empty (0 bytes); re-extract it or remove it")
    try:
        return openpyxl.load_workbook(location, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ParseError, OSError, EOFError,
            ValueError, TypeError) as exc:
        raise SourceError(
            f"{location}: not a readable .xlsx workbook ({type(exc).__name__}: {exc}); if it is "
            "an old .xls or another format, save it as .xlsx; if it is damaged, re-extract it"
        ) from None


def _sheet(wb, table: TableSpec, location: str):
    if table.source is None:
        return wb.worksheets[0]
    if table.source not in wb.sheetnames:
        raise SchemaDriftError(
            f"{location}: no sheet {table.source!r} for table {table.name} (sheets: "
            f"{', '.join(repr(s) for s in wb.sheetnames)}); update the spec or the source")
    return wb[table.source]


def cell_text(value: object) -> str | None:
    """A cell's value as a person sees it, as text (None for an empty cell)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _match(table: TableSpec, header: list[str | None]) -> dict[str, int]:
    """Our field name -> 0-based column: exact source name first, then whitespace-stripped."""
    used: set[int] = set()
    found: dict[str, int] = {}
    for exact in (True, False):
        for fs in table.fields:
            if fs.name in found:
                continue
            want = fs.source if exact else fs.source.strip()
            for i, h in enumerate(header):
                if h is not None and i not in used and (h if exact else h.strip()) == want:
                    found[fs.name] = i
                    used.add(i)
                    break
    return found


def _columns(table: TableSpec, header_row: int, header: list[str | None], sheet: str,
             location: str) -> _Columns:
    found = _match(table, header)
    missing = [fs.source for fs in table.fields if fs.required and fs.name not in found]
    if missing:
        shown = ", ".join(repr(h) for h in header if h is not None)
        raise SchemaDriftError(
            f"{location}: sheet {sheet!r}: required column(s) "
            f"{', '.join(repr(m) for m in missing)} not in the header (row {header_row}: "
            f"{shown}); update the spec or the source")
    names = [fs.name for fs in table.fields]
    sources: list[int | None] = [found.get(fs.name) for fs in table.fields]
    used = set(found.values())
    taken = set(names)
    new: list[str] = []
    for i, h in enumerate(header):
        if h is None or i in used:
            continue
        col = extra_column(h, taken, f"column_{get_column_letter(i + 1).lower()}")
        names.append(col)
        sources.append(i)
        new.append(col)
    named = frozenset(i for i, h in enumerate(header) if h is not None)
    return _Columns(header_row, tuple(names), tuple(sources), named, tuple(new))


def _find_header(table: TableSpec, rows: list[tuple[int, list[str | None]]], fixed: int | None,
                 sheet: str, location: str) -> tuple[int, list[str | None]]:
    """(sheet row, header cells) of the header row."""
    if fixed is not None:
        for n, cells in rows:
            if n == fixed:
                return n, cells
        raise SchemaDriftError(f"{location}: sheet {sheet!r} has no row {fixed} "
                               "(options.header_row); update the spec or the source")
    best, best_hits = None, 0
    for n, cells in rows:
        hits = len(_match(table, cells))
        if hits > best_hits:
            best, best_hits = (n, cells), hits
    if best is None:
        raise SchemaDriftError(
            f"{location}: sheet {sheet!r}: none of the first {HEADER_SCAN_ROWS} rows holds any "
            f"of the declared columns ({', '.join(repr(f.source) for f in table.fields)}); "
            "update the spec (or set options.header_row) or the source")
    return best


def _read_sheet(spec: SourceSpec, table: TableSpec, wb, location: str, name: str,
                lineage: Lineage, fixed_header: int | None, chunk_rows: int) -> Iterator[Batch]:
    ws = _sheet(wb, table, location)
    sheet = ws.title
    rows = _rows(ws, location, sheet)
    scanned: list[tuple[int, list[str | None]]] = []
    limit = fixed_header if fixed_header is not None else HEADER_SCAN_ROWS
    for n, cells in rows:
        scanned.append((n, cells))
        if n >= limit:
            break
    if not any(any(c is not None for c in cells) for _, cells in scanned):
        raise SourceError(f"{location}: sheet {sheet!r} is empty; re-extract the workbook or "
                          "remove it")
    header_row, header = _find_header(table, scanned, fixed_header, sheet, location)
    cols = _columns(table, header_row, header, sheet, location)

    def data_rows() -> Iterator[tuple[int, list[str | None]]]:
        yield from ((n, cells) for n, cells in scanned if n > header_row)
        yield from rows

    values: list[list[str | None]] = [[] for _ in cols.names]
    locators: list[str] = []
    rejects: list[tuple[str, str, str, str]] = []
    emitted = False
    for n, cells in data_rows():
        if all(c is None for c in cells):
            continue  # an empty row is not a record
        beyond = [i for i, c in enumerate(cells) if c is not None and i not in cols.named]
        if beyond:
            letters = ", ".join(get_column_letter(i + 1) for i in beyond)
            raw = "\t".join("" if c is None else c for c in cells)
            reason = (f"value(s) in column(s) {letters}, which have no header name (the header "
                      f"is row {header_row})")
            rejects.append((f"sheet {sheet} row {n}", "ragged_row", reason, raw))
        else:
            for out, src in zip(values, cols.sources, strict=True):
                out.append(cells[src] if src is not None and src < len(cells) else None)
            locators.append(f"sheet {sheet} row {n}")
        if len(locators) + len(rejects) >= chunk_rows:
            yield _batch(spec, table, cols, values, locators, rejects, name, lineage)
            values, locators, rejects = [[] for _ in cols.names], [], []
            emitted = True
    if locators or rejects or not emitted:
        yield _batch(spec, table, cols, values, locators, rejects, name, lineage)


def _rows(ws, location: str, sheet: str) -> Iterator[tuple[int, list[str | None]]]:
    """(1-based sheet row, cell texts) for every row; a damaged sheet is a SourceError."""
    n = 0
    try:
        # The sheet's stored dimensions can be wrong (too small would silently drop rows):
        # forget them and read every row the sheet holds, gaps included (as empty rows).
        ws.reset_dimensions()
        for n, row in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            yield n, [cell_text(v) for v in row]
    except (zipfile.BadZipFile, ParseError, EOFError, OSError, ValueError, KeyError) as exc:
        raise SourceError(f"{location}: sheet {sheet!r} is damaged after row {n} "
                          f"({type(exc).__name__}: {exc}); re-extract the workbook") from None


def _batch(spec: SourceSpec, table: TableSpec, cols: _Columns, values: list[list[str | None]],
           locators: list[str], rejects: list[tuple[str, str, str, str]], name: str,
           lineage: Lineage) -> Batch:
    data = {col: pa.array(v, pa.string()) for col, v in zip(cols.names, values, strict=True)}
    data.update(lineage_arrays(spec, table.name, name, locators, lineage))
    if rejects:
        lin = lineage_arrays(spec, table.name, name, [r[0] for r in rejects], lineage)
        rej = pa.table({**lin, "rule": pa.array([r[1] for r in rejects], pa.string()),
                        "reason": pa.array([r[2] for r in rejects], pa.string()),
                        "raw": pa.array([r[3] for r in rejects], pa.string())},
                       schema=REJECT_SCHEMA)
    else:
        rej = REJECT_SCHEMA.empty_table()
    return Batch(table=table.name, rows=pa.table(data), rejects=rej, new_columns=cols.new_columns)
