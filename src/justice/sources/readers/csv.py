"""CSV reader: one delimited text file with a header line -> Batches of source text plus lineage.

What it does with a file, in order:

* **Encoding** is the spec's ``encoding`` (e.g. ``cp1252``); it must be ASCII-compatible (the
  line and field separators are found in the raw bytes). A UTF-8 byte-order mark at the start of
  a UTF-8 file is skipped.
* **Options** (``spec.options``): ``delimiter`` (default ``,``), ``quotechar`` (default ``"``;
  a doubled quote inside a quoted field is a literal quote), ``header`` (default true) and
  ``chunk_rows`` (rows per Batch, default 100,000). With ``header: false`` the columns are
  named by 1-based position, so a field's ``source`` is ``"1"``, ``"2"``, ...
* **Header**: each declared field's ``source`` is matched to a header name exactly first, then
  with surrounding whitespace stripped on both sides (the magistrates' export writes
  ``Postcode`` with a trailing space). A missing required field raises SchemaDriftError; a
  missing optional field lands as a column of nulls. Header names the spec does not declare are
  kept as ``x_<snake_case name>`` (``x_column_<n>`` for a blank name) and listed in
  ``Batch.new_columns``.
* **Values** are the field text exactly as written, quotes removed: never trimmed or converted.
  CSV has no null, so an empty field is ``""``; null only means "the file has no such column".
* **Locator** ``line N``: the 1-based physical line (``\\n``-terminated) where the record
  starts; the header is line 1.
* **Rejects** (``Batch.rejects``, each with the record's raw text, undecodable bytes as
  ``\\xNN``): ``undecodable`` (bytes not valid in the declared encoding: only that record),
  ``ragged_row`` (field count differs from the header's), ``truncated_row`` (the file's last
  record is cut short: ragged without a final line end, or inside an unclosed quote),
  ``field_too_long`` (a field over 1,000,000 characters), ``malformed_row`` (the csv parser
  refused it, e.g. a bare carriage return inside an unquoted field).
* **Blank lines** hold no record and are skipped (their line numbers still count). Every other
  record is either a row or a reject: rows read = rows + rejects.
* **Whole-file problems** raise SourceError: an empty (0-byte) file, no header line, a header
  that cannot be decoded, no line end within 64 MiB (not line-oriented text).

How it stays fast without losing a row: the file is read in binary blocks of about 8 MiB, cut at
a line end outside quotes (even quote count), and decoded per block. pyarrow's C++ parser takes
a block when every record in it is one line: lines with undecodable bytes (found by the decoder)
and ragged lines (reported by pyarrow's invalid-row handler) are set aside and re-read one by
one by the careful path, Python's csv module, so they get exactly the rejects that path gives.
A block pyarrow cannot take whole (a quoted line break, a blank line, unbalanced quotes, an
over-long field) is halved at a record boundary and each half tried again; pieces under 16 KiB
go to the careful path directly. The result is the same whatever the block size (tested).
Measured: 1,000,000 magistrates' rows (216 MB) landed in about 1.6-3.3 s, 0.7-1.0 times DuckDB's
read_csv to Parquet with the Parquet writing included (benchmarks/ingest_csv.py; docs/ingest.md).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from justice.errors import ConfigError, SchemaDriftError, SourceError
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage, extra_column, lineage_arrays
from justice.sources.spec import SourceSpec, TableSpec

MAX_FIELD_CHARS = 1_000_000
"""A longer field is a reject (`field_too_long`): no real CSV value is that long."""
BLOCK_BYTES = 8 << 20
"""Bytes read at a time; a block is parsed as one unit."""
MAX_BLOCK_BYTES = 4 * BLOCK_BYTES
"""A block whose quotes never balance is cut at its last line end once it grows this big."""
MAX_LINE_BYTES = 64 << 20
"""No line end within this many bytes: the file is not line-oriented text."""
SMALL_BLOCK_BYTES = 16 << 10
"""Below this, Python's csv module is quicker than setting up pyarrow's parser."""
BATCH_ROWS = 100_000
MB = 1 << 20
THREADED_BYTES = 2 * MB
"""pyarrow parses a block at least this big on several threads."""
OPTIONS = ("delimiter", "quotechar", "header", "chunk_rows")

_BOM = codecs.BOM_UTF8
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes

_MARK_ERRORS = "justice-csv-mark"
_ERRORS = threading.local()
"""Byte offsets of the undecodable bytes met by the last decode with _MARK_ERRORS (per thread)."""


def _mark_error(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    _ERRORS.offsets.append(exc.start)
    return "\ufffd", exc.end


codecs.register_error(_MARK_ERRORS, _mark_error)

# The csv module's default field limit (131,072) is below ours; raise it (process-wide) so an
# over-long field reaches our own check and becomes a reject instead of a parser error.
if csv.field_size_limit() < MAX_LINE_BYTES:
    csv.field_size_limit(MAX_LINE_BYTES)


@dataclass(frozen=True)
class _Options:
    delimiter: str
    quotechar: str
    header: bool
    chunk_rows: int
    encoding: str
    """The codec's canonical name."""


@dataclass(frozen=True)
class _Columns:
    """How the file's columns map to the batch's columns."""

    count: int
    """Fields per record (the header's count)."""
    names: tuple[str, ...]
    """Output column names: declared fields (our names), then x_ columns for undeclared ones."""
    sources: tuple[int | None, ...]
    """For each output column, its 0-based file column; None for an absent optional field."""
    new_columns: tuple[str, ...]


@dataclass
class _Parsed:
    """One block's result: rows as pyarrow columns (file order) and rejects."""

    columns: list[pa.Array | pa.ChunkedArray]
    lines: pa.Array
    """int64 line number of each row."""
    rejects: list[tuple[int, str, str, str]]
    """(line, rule, reason, raw) per rejected record."""


def read(spec: SourceSpec, location: str, lineage: Lineage, *, cursor: str | None = None,
         relative_name: str | None = None) -> Iterator[Batch]:
    """Read one CSV file as the spec's (single) table; yields Batches of chunk_rows rows (the
    last fewer; one empty Batch for a header-only file), each with the rejects met since the
    previous one. `cursor` is unused: a file is loaded whole."""
    del cursor  # file-cursor sources are incremental by file, not within one
    table = _only_table(spec)
    opts = _options(spec)
    name = relative_name or Path(location).name
    try:
        f = open(location, "rb")  # noqa: SIM115 - closed in the finally below (generator)
    except OSError as exc:
        raise SourceError(f"{location}: cannot be opened ({exc.strerror}); check the path and "
                          "its permissions") from None
    try:
        yield from _read_open(spec, table, opts, f, location, name, lineage)
    finally:
        f.close()


def _read_open(spec: SourceSpec, table: TableSpec, opts: _Options, f: BinaryIO, location: str,
               name: str, lineage: Lineage) -> Iterator[Batch]:
    blocks = _blocks(f, opts.quotechar.encode("ascii"), location)
    first = next(blocks, None)
    if first is None:
        raise SourceError(f"{location} is empty (0 bytes); re-extract it or remove it")
    block, at_eof, balanced = first
    if opts.encoding in ("utf-8", "utf-8-sig") and block.startswith(_BOM):
        block = block[len(_BOM):]
    header, header_lines, used = _header(block, opts, location)
    cols = _match_columns(table, header, location)
    block, line = block[used:], 1 + header_lines

    pending: list[_Parsed] = []
    carry: pa.Table | None = None  # rows (with lineage) built but not yet yielded
    n_pending = 0  # rows and rejects in carry and pending
    emitted = False

    def cut(final: bool) -> Iterator[Batch]:
        """Batches of exactly chunk_rows rows from what is pending; the rest stays (unless
        final, or rejects came with it: those are handed over now, with the rest)."""
        nonlocal pending, carry, n_pending, emitted
        built = _batch(spec, table, cols, pending, name, lineage)
        rows = built.rows if carry is None else pa.concat_tables([carry, built.rows])
        rejects, start, size = built.rejects, 0, opts.chunk_rows
        while rows.num_rows - start >= size:
            yield Batch(table.name, rows.slice(start, size), rejects, cols.new_columns)
            rejects, start, emitted = REJECT_SCHEMA.empty_table(), start + size, True
        rest = rows.slice(start)
        pending, carry, n_pending = [], rest, rest.num_rows
        if rejects.num_rows or (final and (rest.num_rows or not emitted)):
            yield Batch(table.name, rest, rejects, cols.new_columns)
            carry, n_pending, emitted = None, 0, True

    while True:
        if block:
            newlines = block.count(b"\n")
            for parsed in _parse_block(block, line, newlines, cols.count, opts, at_eof=at_eof,
                                       balanced=balanced):
                pending.append(parsed)
                n_pending += len(parsed.lines) + len(parsed.rejects)
            line += newlines
        if n_pending >= opts.chunk_rows:
            yield from cut(final=False)
        nxt = next(blocks, None)
        if nxt is None:
            break
        block, at_eof, balanced = nxt
    yield from cut(final=True)


# ----------------------------------------------------------------------------------------------
# Spec and header
# ----------------------------------------------------------------------------------------------


def _only_table(spec: SourceSpec) -> TableSpec:
    if len(spec.tables) != 1:
        raise ConfigError(f"{spec.path}: tables: a csv source has exactly one table per file, "
                          f"not {len(spec.tables)}; split the spec")
    return spec.tables[0]


def _options(spec: SourceSpec) -> _Options:
    o = spec.options
    unknown = sorted(set(o) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{spec.path}: options: {', '.join(unknown)} not known to the csv "
                          f"reader (known: {', '.join(OPTIONS)})")
    delimiter, quotechar = str(o.get("delimiter", ",")), str(o.get("quotechar", '"'))
    for key, val in (("delimiter", delimiter), ("quotechar", quotechar)):
        if len(val) != 1 or not val.isascii() or val in "\r\n":
            raise ConfigError(f"{spec.path}: options.{key}: {val!r} must be one ASCII character "
                              "other than a line end")
    if delimiter == quotechar:
        raise ConfigError(f"{spec.path}: options: delimiter and quotechar must differ")
    header = o.get("header", True)
    if not isinstance(header, bool):
        raise ConfigError(f"{spec.path}: options.header: {header!r} must be true or false")
    chunk_rows = o.get("chunk_rows", BATCH_ROWS)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"{spec.path}: options.chunk_rows: {chunk_rows!r} must be a positive "
                          "integer")
    encoding = codecs.lookup(spec.encoding).name
    probe = "\n\r" + delimiter + quotechar + "azAZ09 "
    try:
        ascii_compatible = probe.encode(encoding) == probe.encode("ascii")
    except UnicodeError:
        ascii_compatible = False
    if not ascii_compatible:
        raise ConfigError(f"{spec.path}: encoding: the csv reader needs an ASCII-compatible "
                          f"encoding (such as utf-8 or cp1252), not {spec.encoding!r}; convert "
                          "the files to UTF-8 and declare encoding: utf-8")
    return _Options(delimiter, quotechar, header, chunk_rows, encoding)


def _csv_reader(lines, opts: _Options):
    return csv.reader(lines, delimiter=opts.delimiter, quotechar=opts.quotechar,
                      doublequote=True, skipinitialspace=False, strict=False)


def _header(block: bytes, opts: _Options, location: str) -> tuple[list[str], int, int]:
    """The header names, the lines they take and their bytes (0, 0 without a header line)."""
    lines = _split_lines(block)
    raw: list[bytes] = []

    def feed() -> Iterator[str]:
        for b in lines:
            raw.append(b)
            try:
                yield b.decode(opts.encoding)
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{location}: line {len(raw)} (the header) has bytes that are not valid "
                    f"{opts.encoding} at byte {exc.start}: "
                    f"{b.decode(opts.encoding, 'backslashreplace')[:200]!r}; check the spec's "
                    "encoding or repair the header") from None

    reader = _csv_reader(feed(), opts)
    try:
        record = next((r for r in reader if r), None)
    except csv.Error as exc:
        raise SourceError(f"{location}: the header line cannot be parsed as CSV ({exc}); "
                          "check the spec's delimiter and quotechar") from None
    if record is None:
        raise SourceError(f"{location} has no header line (only blank lines); re-extract it or "
                          "remove it")
    if not opts.header:
        return [str(i + 1) for i in range(len(record))], 0, 0
    return record, len(raw), sum(len(b) for b in raw)


def _match_columns(table: TableSpec, header: list[str], location: str) -> _Columns:
    """Declared fields to header positions: exact name first, then whitespace-stripped."""
    used: set[int] = set()
    found: dict[str, int] = {}
    for exact in (True, False):
        for fs in table.fields:
            if fs.name in found:
                continue
            want = fs.source if exact else fs.source.strip()
            for i, h in enumerate(header):
                if i not in used and (h if exact else h.strip()) == want:
                    found[fs.name] = i
                    used.add(i)
                    break
    missing = [fs.source for fs in table.fields if fs.required and fs.name not in found]
    if missing:
        raise SchemaDriftError(
            f"{location}: required column(s) {', '.join(repr(m) for m in missing)} not in the "
            f"header (line 1: {', '.join(repr(h) for h in header)}); update the spec or the "
            "source")
    names = [fs.name for fs in table.fields]
    sources: list[int | None] = [found.get(fs.name) for fs in table.fields]
    taken = set(names)
    new: list[str] = []
    for i, h in enumerate(header):
        if i in used:
            continue
        col = extra_column(h, taken, f"column_{i + 1}")
        names.append(col)
        sources.append(i)
        new.append(col)
    return _Columns(len(header), tuple(names), tuple(sources), tuple(new))


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


def _blocks(f: BinaryIO, quote: bytes, location: str) -> Iterator[tuple[bytes, bool, bool]]:
    """The file as (block, at_eof, balanced) pieces, each ending at a line end outside quotes
    (the last may end anywhere); `balanced`: known to hold an even number of quotes."""
    carry = b""
    while True:
        chunk = f.read(BLOCK_BYTES)
        if not chunk:
            if carry:
                yield carry, True, False
            return
        buf = carry + chunk if carry else chunk
        forced = len(buf) >= MAX_BLOCK_BYTES
        cut = _record_cut(buf, quote, forced)
        if cut is None:
            if len(buf) > MAX_LINE_BYTES:
                raise SourceError(f"{location}: no line end within {MAX_LINE_BYTES >> 20} MiB "
                                  f"(from byte {f.tell() - len(buf)}); this is not a line-oriented "
                                  "CSV file: check the file and the spec's format")
            carry = buf
            continue
        yield buf[:cut], False, not forced
        carry = buf[cut:]


def _record_cut(buf: bytes, quote: bytes, forced: bool, end: int | None = None) -> int | None:
    """Offset just past the last line end (before `end`) with an even number of quotes before
    it (a record boundary in well-formed CSV), or past the last line end at all when `forced`."""
    pos = buf.rfind(b"\n", 0, len(buf) if end is None else end)
    if pos < 0:
        return None
    if forced:
        return pos + 1
    odd = buf.count(quote, 0, pos) & 1
    while odd:
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return None
        odd ^= buf.count(quote, prev + 1, pos) & 1
        pos = prev
    return pos + 1


def _split_lines(block: bytes) -> list[bytes]:
    """Physical lines, each keeping its \\n (the last may lack one)."""
    parts = block.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# ----------------------------------------------------------------------------------------------
# Parsing a block
# ----------------------------------------------------------------------------------------------


def _parse_block(block: bytes, first_line: int, newlines: int, ncols: int, opts: _Options, *,
                 at_eof: bool, balanced: bool) -> list[_Parsed]:
    """Fast path when the block is clean; else halve it (at a record boundary) and try again, so
    only the small pieces around a bad record are parsed the careful way."""
    if len(block) >= SMALL_BLOCK_BYTES:
        fast = _parse_fast(block, first_line, newlines, ncols, opts, at_eof, balanced)
        if fast is not None:
            return [fast]
        cut = _record_cut(block, opts.quotechar.encode("ascii"), False, len(block) // 2)
        if cut:
            k = block.count(b"\n", 0, cut)
            return (_parse_block(block[:cut], first_line, k, ncols, opts, at_eof=False,
                                 balanced=True)
                    + _parse_block(block[cut:], first_line + k, newlines - k, ncols, opts,
                                   at_eof=at_eof, balanced=balanced))
    return [_parse_slow(block, first_line, ncols, opts, at_eof)]


def _parse_fast(block: bytes, first_line: int, newlines: int, ncols: int, opts: _Options,
                at_eof: bool, balanced: bool) -> _Parsed | None:
    """pyarrow's parser on a block of one-line records. The lines it cannot take (a ragged row,
    which its invalid-row handler reports by line, or a line with undecodable bytes) are re-read
    one by one by the careful path, so they become exactly the rejects that path would make.
    None when the block as a whole needs the careful path (a quoted line break, a blank line,
    unbalanced quotes, an over-long field)."""
    if not balanced and block.count(opts.quotechar.encode("ascii")) & 1:
        return None
    undecodable: list[int] = []  # 0-based lines of the block holding undecodable bytes
    if block.isascii():
        data = block
    else:
        _ERRORS.offsets = []
        text = block.decode(opts.encoding, _MARK_ERRORS)  # bad bytes -> U+FFFD, lines dropped
        offsets, _ERRORS.offsets = _ERRORS.offsets, []
        if offsets:
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\n"))
            undecodable = np.unique(np.searchsorted(ends, offsets)).tolist()
        data = block if opts.encoding == "utf-8" and not undecodable else text.encode("utf-8")
    invalid: list[int] = []  # 0-based lines of the rows pyarrow found ragged (-1: not known)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(-1 if row.number is None else row.number - 1)
        return "skip"

    names = [f"c{i}" for i in range(ncols)]
    # Threads speed up a big block, but then the handler is not told line numbers: a block with
    # ragged rows is parsed again on one thread to learn them.
    for threads in (len(data) >= THREADED_BYTES, False):
        invalid.clear()
        try:
            t = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=names, block_size=MB,
                                               use_threads=threads),
                parse_options=pacsv.ParseOptions(
                    delimiter=opts.delimiter, quote_char=opts.quotechar, double_quote=True,
                    escape_char=False, newlines_in_values=False, ignore_empty_lines=True,
                    invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                    quoted_strings_can_be_null=False),
            )
        except pa.ArrowInvalid:
            return None
        if -1 not in invalid:
            break
    n_lines = newlines + (0 if block.endswith(b"\n") else 1)
    if t.num_rows + len(invalid) != n_lines or -1 in invalid:
        return None  # a quoted line break or a blank line: line numbers need the careful path
    row_line = np.delete(np.arange(n_lines, dtype=np.int64), np.array(invalid, dtype=np.int64))
    if undecodable:
        keep = ~np.isin(row_line, undecodable)
        t, row_line = t.filter(pa.array(keep)), row_line[keep]
    # Bytes >= characters in UTF-8, so fields under the limit in bytes are under it in chars.
    if len(data) > MAX_FIELD_CHARS and any(
            len(c) and pc.max(pc.binary_length(c)).as_py() > MAX_FIELD_CHARS for c in t.columns):
        return None
    rejects: list[tuple[int, str, str, str]] = []
    bad = sorted(set(undecodable).union(invalid))
    if bad:
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\n")) + 1
        starts = np.concatenate([[0], ends]).tolist()
        for i in bad:
            end = starts[i + 1] if i + 1 < len(starts) else len(block)
            one = _parse_slow(block[starts[i]:end], first_line + i, ncols, opts,
                              at_eof and i == n_lines - 1)
            if len(one.lines) or len(one.rejects) != 1:
                return None  # the two parsers disagree about this line: let the careful one say
            rejects += one.rejects
    return _Parsed(t.columns, pa.array(row_line + first_line), rejects)


def _parse_slow(block: bytes, first_line: int, ncols: int, opts: _Options,
                at_eof: bool) -> _Parsed:
    """Python's csv module line by line: every record is a row or a reject with its reason."""
    lines = _split_lines(block)
    raw: list[bytes] = []
    undecodable: list[bool] = []
    enc = opts.encoding

    def feed() -> Iterator[str]:
        for b in lines:
            raw.append(b)
            try:
                yield b.decode(enc)
            except UnicodeDecodeError:
                undecodable.append(True)
                yield b.decode(enc, "surrogateescape")  # bad byte 0xNN -> U+DCNN, found below

    rows: list[list[str]] = []
    row_lines: list[int] = []
    rejects: list[tuple[int, str, str, str]] = []
    reader = _csv_reader(feed(), opts)
    line = first_line
    while True:
        raw.clear()
        undecodable.clear()
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.append((line, "malformed_row", f"the CSV parser refused the record: {exc}",
                            _raw_text(raw, enc)))
            line += len(raw)
            continue
        start, line = line, line + len(raw)
        if not record:
            continue  # a blank line
        last = at_eof and line - first_line == len(lines)
        if undecodable or last or len(record) != ncols or sum(map(len, raw)) > MAX_FIELD_CHARS:
            problem = _problem(record, raw, ncols, opts, last)
            if problem:
                rejects.append((start, *problem, _raw_text(raw, enc)))
                continue
        rows.append(record)
        row_lines.append(start)
    # One pyarrow array sliced per column: far cheaper than an array per column for small blocks.
    n = len(rows)
    flat = pa.array([v for column in zip(*rows, strict=True) for v in column], pa.string())
    columns = [flat.slice(i * n, n) for i in range(ncols)]
    return _Parsed(columns, pa.array(row_lines, pa.int64()), rejects)


def _problem(record: list[str], raw: list[bytes], ncols: int, opts: _Options,
             last: bool) -> tuple[str, str] | None:
    """(rule, reason) when a parsed record cannot be a row, else None."""
    bad = next((i for i, v in enumerate(record) if _BAD_BYTES.search(v)), None)
    if bad is not None:
        reason = (f"field {bad + 1} has bytes that are not valid {opts.encoding}; check the "
                  "spec's encoding or repair the record")
        return "undecodable", reason
    if last and _open_quote_at_end(raw, opts):
        reason = ("the file ends inside a quoted field: the record (and the file) was cut short; "
                  "re-extract the file")
        return "truncated_row", reason
    if len(record) != ncols:
        if last and not raw[-1].endswith(b"\n"):
            reason = (f"the file's last line has {len(record)} fields, not {ncols}, and no line "
                      "end: the file was cut short; re-extract it")
            return "truncated_row", reason
        return "ragged_row", f"{len(record)} fields where the header has {ncols}"
    long = next((i for i, v in enumerate(record) if len(v) > MAX_FIELD_CHARS), None)
    if long is not None:
        reason = (f"field {long + 1} has {len(record[long]):,} characters, over the "
                  f"{MAX_FIELD_CHARS:,} limit")
        return "field_too_long", reason
    return None


def _open_quote_at_end(raw: list[bytes], opts: _Options) -> bool:
    """Whether the record's text ends inside a quoted field (strict parsing says so)."""
    text = b"".join(raw).decode(opts.encoding, "surrogateescape")
    try:
        list(csv.reader(io.StringIO(text, newline=""), delimiter=opts.delimiter,
                        quotechar=opts.quotechar, doublequote=True, strict=True))
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _raw_text(raw: list[bytes], enc: str) -> str:
    """The record's bytes as text without its final line end; bad bytes as \\xNN."""
    b = b"".join(raw)
    if b.endswith(b"\r\n"):
        b = b[:-2]
    elif b.endswith(b"\n"):
        b = b[:-1]
    return b.decode(enc, "backslashreplace")


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _locators(lines: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar("line "), pc.cast(lines, pa.string()), "")


def _batch(spec: SourceSpec, table: TableSpec, cols: _Columns, parsed: list[_Parsed],
           name: str, lineage: Lineage) -> Batch:
    n = sum(len(p.lines) for p in parsed)
    data: dict[str, pa.Array | pa.ChunkedArray] = {}
    for out, src in zip(cols.names, cols.sources, strict=True):
        if src is None:
            data[out] = pa.nulls(n, pa.string())
        else:
            chunks = [c for p in parsed for c in _chunks(p.columns[src])]
            data[out] = pa.chunked_array(chunks, pa.string())
    lines = pa.chunked_array([p.lines for p in parsed], pa.int64()).combine_chunks()
    data.update(lineage_arrays(spec, table.name, name, _locators(lines), lineage))
    rows = pa.table(data)
    rej = [r for p in parsed for r in p.rejects]
    if rej:
        lin = lineage_arrays(spec, table.name, name, [f"line {r[0]}" for r in rej], lineage)
        rejects = pa.table({**lin, "rule": pa.array([r[1] for r in rej], pa.string()),
                            "reason": pa.array([r[2] for r in rej], pa.string()),
                            "raw": pa.array([r[3] for r in rej], pa.string())},
                           schema=REJECT_SCHEMA)
    else:
        rejects = REJECT_SCHEMA.empty_table()
    return Batch(table=table.name, rows=rows, rejects=rejects, new_columns=cols.new_columns)
