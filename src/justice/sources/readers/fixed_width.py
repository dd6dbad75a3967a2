"""Fixed-width reader: one file of fixed-length EBCDIC records laid out by a COBOL copybook.

The spec (``format: fixed_width``, ``encoding: cp037``) has one table; each field's ``source``
is a copybook item name (``EVENT-NUMBER``; ``event_number`` works too). Options:

* ``copybook`` (required): the copybook file. A bare name or relative path is looked for beside
  the data file first (the system folder, where the extract ships its copybook), then relative
  to the spec file's folder; an absolute path is used as it is.
* ``chunk_records`` (default 100,000): whole records decoded per Batch. The file is read in
  blocks of that many records, so memory stays bounded whatever the file's size.
* ``allow_empty_files`` (default false): whether a 0-byte file is a legitimate "nothing
  changed" extract (one empty Batch) rather than an error.

Values (decoded by ``justice.sources.copybook``, vectorised):

* ``PIC X`` fields: the cp037 text with the trailing pad spaces removed (they are the field's
  padding, not data: a fixed-width field cannot tell them apart); leading and inner spaces
  stay; an all-blank field is ``""``, never null.
* Unsigned ``PIC 9(n)`` DISPLAY fields: their n digits as written, leading zeros kept
  (``00000000`` for a date that is not recorded, ``001`` for event 1).
* Signed, scaled or COMP-3 fields: the exact decimal value (``-12``, ``45.0``, ``36.25``): their
  bytes have no printable form.
* Null only for a declared, not required field the copybook lacks.

Rows: the declared fields under our names, then copybook fields the spec does not declare as
``x_<name>`` (in Batch.new_columns), then lineage; ``_file`` is `relative_name` (else the file
name) and ``_locator`` is ``byte <offset>``, the record's first byte in the file.

Rejects (``raw`` is the record's bytes in hex: EBCDIC records are binary, and the hex keeps
every byte): ``invalid_numeric`` (a zoned or packed field whose nibbles are not a valid number),
``invalid_text`` (a PIC X field holding EBCDIC control bytes 00-3F or FF, which no text has:
LOW-VALUES or binary garbage), each naming the fields and their byte offsets; and
``truncated_record`` for bytes after the last whole record (the transfer was cut short). Such
records are set aside whole rather than landed with a damaged field, so staging only ever sees
decodable records and nothing is lost. Rows read = rows + rejects.

Whole-file problems raise SourceError: the copybook missing or unparsable (CopybookError), a
required field not in the copybook (SchemaDriftError), an unreadable or empty file (unless
``allow_empty_files``), and a copybook that does not fit the data: more than half the whole
records of the first block invalid while the file's length is not a multiple of the record
length, or the block holds at least 10 records (a wrong record length shifts every field).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from justice.errors import SchemaDriftError, SourceError
from justice.sources.copybook import Copybook, DecodedBatch, Field, decode_records, parse_copybook
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage, lineage_arrays
from justice.sources.spec import SourceSpec, TableSpec

CHUNK_RECORDS = 100_000
MISMATCH_SHARE = 0.5
MISMATCH_MIN_RECORDS = 10
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[:0x40] = True  # EBCDIC control characters; 0x40 is the space
_CONTROL[0xFF] = True


@dataclass(frozen=True)
class _Plan:
    """Which copybook field lands under which of our names."""

    table: TableSpec
    columns: tuple[tuple[str, Field], ...]
    """(our name, copybook field): declared fields found, then undeclared ones (x_ names). A
    declared, not required field the copybook lacks is not here and lands as nulls."""
    new_columns: tuple[str, ...]
    labels: dict[str, str]
    """Copybook field name -> the name messages use (the spec's source, else the COBOL name)."""
    text_positions: np.ndarray
    """Byte positions within a record of every PIC X field (checked for control bytes)."""


def read(spec: SourceSpec, location: str, lineage: Lineage, *, cursor: str | None = None,
         relative_name: str | None = None) -> Iterator[Batch]:
    """Yield the Batches of one fixed-width file at `location` (see the module docstring).

    `cursor` is ignored: fixed-width extracts are incremental by file (spec ``cursor: file``).
    """
    del cursor
    path = Path(location)
    file = relative_name or path.name
    if spec.encoding.lower().replace("_", "").replace("-", "") not in ("cp037", "ibm037", "037"):
        raise SourceError(f"{spec.path}: encoding {spec.encoding!r} is not supported for "
                          "fixed_width sources; the copybook codec reads EBCDIC cp037")
    if len(spec.tables) != 1:
        raise SourceError(f"{spec.path}: a fixed_width spec has one table per copybook record, "
                          f"found {len(spec.tables)}; split it into one spec per layout")
    book = _copybook(spec, path)
    plan = _plan(spec, spec.tables[0], book, file)
    chunk = spec.options.get("chunk_records", CHUNK_RECORDS)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise SourceError(f"{spec.path}: options.chunk_records is {chunk!r}; give a positive "
                          "whole number of records per batch")
    length = book.record_length
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"{spec.system}: {file} cannot be read ({exc.strerror}); check the "
                          "file exists and is readable") from None
    with handle:
        if size == 0:
            if not spec.options.get("allow_empty_files", False):
                raise SourceError(f"{spec.system}: {file} is empty (0 bytes); expected "
                                  f"{length}-byte records. Re-send the extract, or set "
                                  "options.allow_empty_files if an empty file means no change")
            yield _batch(spec, plan, decode_records(book, b""), 0, file, lineage)
            return
        offset = 0
        while True:
            try:
                block = handle.read(chunk * length)
            except OSError as exc:
                raise SourceError(f"{spec.system}: {file} could not be read at byte {offset:,} "
                                  f"({exc.strerror}); check the file and load it again") from None
            if not block:
                break
            decoded = decode_records(book, block, source=file)
            if offset == 0:
                _check_fit(spec, book, decoded, size, file)
            tail = block[decoded.trailing_offset:] if decoded.trailing_bytes else b""
            yield _batch(spec, plan, decoded, offset, file, lineage, tail)
            offset += len(block)


# --------------------------------------------------------------------------------------------
# The copybook and the spec
# --------------------------------------------------------------------------------------------


def _copybook(spec: SourceSpec, data: Path) -> Copybook:
    """Find and parse the spec's copybook: beside the data, else relative to the spec file."""
    name = spec.options.get("copybook")
    if not name:
        raise SourceError(f"{spec.path}: options.copybook is missing; name the COBOL copybook "
                          "that lays out the records (e.g. probation.cpy)")
    given = Path(str(name))
    places = [given] if given.is_absolute() else [data.parent / given]
    if not given.is_absolute() and spec.path != "<spec>":
        places.append(Path(spec.path).parent / given)
    for place in places:
        if place.is_file():
            try:
                text = place.read_text("ascii", errors="replace")
            except OSError as exc:
                raise SourceError(f"{spec.system}: copybook {place} cannot be read "
                                  f"({exc.strerror})") from None
            return parse_copybook(text, source=str(place))
    raise SourceError(f"{spec.system}: copybook {name} not found (looked in "
                      f"{', '.join(str(p) for p in places)}); put it beside the data files or "
                      "give its path in the spec's options.copybook")


def _cobol(name: str) -> str:
    return name.upper().replace("_", "-")


def _plan(spec: SourceSpec, table: TableSpec, book: Copybook, file: str) -> _Plan:
    """Match the declared fields to the copybook's; SchemaDriftError for missing required ones."""
    by_name = {f.name: f for f in book.fields}
    columns: list[tuple[str, Field]] = []
    missing = []
    labels: dict[str, str] = {}
    used = set()
    needed = {*table.record_key, *(f.name for f in table.fields if f.required)}
    for f in table.fields:
        field = by_name.get(f.source.strip().lower().replace("-", "_"))
        if field is None or field.name in used:
            if f.name in needed:
                missing.append(f)
            continue
        used.add(field.name)
        labels[field.name] = f.source
        columns.append((f.name, field))
    if missing:
        raise SchemaDriftError(
            f"{spec.system}: {file}: the copybook {book.source} has no field "
            f"{', '.join(f'{f.source} (field {f.name}, required)' for f in missing)}; its fields "
            f"are {', '.join(_cobol(f.name) for f in book.fields)}. Update the spec or the source")
    taken = {f.name for f in table.fields}
    new = []
    for field in book.fields:
        if field.name in used:
            continue
        name = "x_" + field.name
        while name in taken:
            name += "_"
        taken.add(name)
        new.append(name)
        labels[field.name] = _cobol(field.name)
        columns.append((name, field))
    text = [np.arange(f.offset, f.offset + f.length) for _, f in columns if f.kind == "alnum"]
    positions = np.concatenate(text) if text else np.zeros(0, dtype=np.int64)
    return _Plan(table, tuple(columns), tuple(new), labels, positions)


def _check_fit(spec: SourceSpec, book: Copybook, decoded: DecodedBatch, size: int,
               file: str) -> None:
    """Raise when the first block shows the copybook does not describe this file's records."""
    n = decoded.n_records
    if n == 0:
        return
    share = float(decoded.invalid_records().mean())
    if share > MISMATCH_SHARE and (size % book.record_length or n >= MISMATCH_MIN_RECORDS):
        raise SourceError(
            f"{spec.system}: {file} does not fit the copybook {book.source}: {share:.0%} of the "
            f"first {n:,} records have invalid numeric fields"
            + (f" and the file's {size:,} bytes are not a whole number of "
               f"{book.record_length}-byte records" if size % book.record_length else "")
            + "; check the copybook is this file's layout (record length, field order) and that "
            "the file was transferred in binary")


# --------------------------------------------------------------------------------------------
# Decoded records -> a Batch
# --------------------------------------------------------------------------------------------


def _batch(spec: SourceSpec, plan: _Plan, decoded: DecodedBatch, offset: int, file: str,
           lineage: Lineage, tail: bytes = b"") -> Batch:
    """One Batch from a decoded block that starts at byte `offset` of the file; `tail` is a
    partial record after the block's whole records (only at the end of the file)."""
    n = decoded.n_records
    length = decoded.copybook.record_length
    starts = offset + np.arange(n, dtype=np.int64) * length
    bad_numeric = decoded.invalid_records()
    bad_text = np.zeros(n, dtype=bool)
    control: dict[str, np.ndarray] = {}
    text_bytes = decoded.records[:, plan.text_positions]
    suspect = np.flatnonzero(((text_bytes < 0x40) | (text_bytes == 0xFF)).any(axis=1))
    if len(suspect):  # rare: find which fields hold the control bytes
        for _, field in plan.columns:
            if field.kind == "alnum":
                hit = np.zeros(n, dtype=bool)
                hit[suspect] = _CONTROL[decoded.field_bytes(field.name)[suspect]].any(axis=1)
                if hit.any():
                    control[field.name] = hit
                    bad_text |= hit
    rejected = bad_numeric | bad_text
    keep = None if not rejected.any() else ~rejected

    rows: dict[str, pa.Array] = {}
    found = dict(plan.columns)
    m = n if keep is None else int(keep.sum())
    for f in plan.table.fields:
        rows[f.name] = _values(decoded, found[f.name], keep) if f.name in found \
            else pa.nulls(m, pa.string())
    for name in plan.new_columns:
        rows[name] = _values(decoded, found[name], keep)
    kept = starts if keep is None else starts[keep]
    locators = pc.binary_join_element_wise("byte ", pa.array(kept).cast(pa.string()), "")
    rows.update(lineage_arrays(spec, plan.table.name, file, locators, lineage))

    parts = []
    if keep is not None:
        parts.append(_record_rejects(spec, plan, decoded, rejected, control, starts, file, lineage))
    if tail:
        parts.append(_truncated(spec, plan, decoded, offset, file, lineage, tail))
    rejects = pa.concat_tables(parts) if parts else REJECT_SCHEMA.empty_table()
    return Batch(table=plan.table.name, rows=pa.table(rows), rejects=rejects,
                 new_columns=plan.new_columns)


def _values(decoded: DecodedBatch, field: Field, keep: np.ndarray | None) -> pa.Array:
    """A field's text for the kept records (all when `keep` is None); see the module docstring."""
    array = pa.array(decoded.columns[field.name], pa.string())
    if keep is not None:
        array = array.filter(pa.array(keep))
    if field.kind == "zoned" and not field.signed and field.scale == 0:
        array = pc.utf8_lpad(array, field.digits, padding="0")
    return array


def _record_rejects(spec: SourceSpec, plan: _Plan, decoded: DecodedBatch, rejected: np.ndarray,
                    control: dict[str, np.ndarray], starts: np.ndarray, file: str,
                    lineage: Lineage) -> pa.Table:
    """Rejects for records with an invalid numeric field or control bytes in a text field."""
    index = np.flatnonzero(rejected)
    rules, reasons = [], []
    for i in index.tolist():
        start = int(starts[i])
        numeric = decoded.invalid_fields(i)
        text = [name for name, hit in control.items() if hit[i]]
        problems = []
        for name in numeric:
            field = decoded.copybook.field(name)
            what = "COMP-3 packed decimal" if field.kind == "packed" else "zoned decimal"
            problems.append(f"{plan.labels.get(name, _cobol(name))} at byte "
                            f"{start + field.offset:,} is not valid {what} (bytes "
                            f"{decoded.field_bytes(name)[i].tobytes().hex()})")
        for name in text:
            field = decoded.copybook.field(name)
            problems.append(f"{plan.labels.get(name, _cobol(name))} at byte "
                            f"{start + field.offset:,} holds EBCDIC control bytes (bytes "
                            f"{decoded.field_bytes(name)[i].tobytes().hex()})")
        rules.append("invalid_numeric" if numeric else "invalid_text")
        reasons.append(f"record at byte {start:,}: {'; '.join(problems)}; correct the record in "
                       "the source and re-send it")
    raws = [decoded.records[i].tobytes().hex() for i in index.tolist()]
    locators = [f"byte {int(starts[i])}" for i in index.tolist()]
    return pa.table({**lineage_arrays(spec, plan.table.name, file, locators, lineage),
                     "rule": pa.array(rules, pa.string()), "reason": pa.array(reasons, pa.string()),
                     "raw": pa.array(raws, pa.string())}, schema=REJECT_SCHEMA)


def _truncated(spec: SourceSpec, plan: _Plan, decoded: DecodedBatch, offset: int, file: str,
               lineage: Lineage, tail: bytes) -> pa.Table:
    """The reject for a partial record at the end of the file."""
    start = offset + decoded.trailing_offset
    length = decoded.copybook.record_length
    reason = (f"the file ends {len(tail)} bytes into a {length}-byte record that starts at byte "
              f"{start:,}: the last record is truncated; check the transfer was binary and "
              "complete, then re-send the file")
    return pa.table({**lineage_arrays(spec, plan.table.name, file, [f"byte {start}"], lineage),
                     "rule": pa.array(["truncated_record"], pa.string()),
                     "reason": pa.array([reason], pa.string()),
                     "raw": pa.array([tail.hex()], pa.string())}, schema=REJECT_SCHEMA)
