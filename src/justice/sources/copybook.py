"""COBOL copybooks: parse a flat record layout, encode and decode fixed-width EBCDIC records.

The simulated probation system (modelled on an nDelius mainframe export) writes fixed-block
cp037 records and the platform's reader decodes them; both use this module, so the layout is
understood in exactly one place.

Supported: one 01 record of group and elementary items (levels 02-49); PIC X(n), 9(n),
S9(n)V9(m) (repeated symbols such as 999V99 too); USAGE DISPLAY (zoned decimal, sign
overpunched in the last byte's zone nibble) and COMP-3 / COMPUTATIONAL-3 / PACKED-DECIMAL,
also inherited from a group; FILLER; 88-level conditions and VALUE clauses (both ignored);
sequence numbers in columns 1-6; comments in column 7 or on lines starting with ``*``.
Rejected with an error naming the line: OCCURS, REDEFINES, RENAMES, binary and floating-point
usages, SIGN SEPARATE, JUSTIFIED and edited pictures.

Signs: nibble C or F is positive and D negative (D only in signed fields); anything else marks
the value invalid. The encoder writes C/D for signed fields and F for unsigned ones. FILLER
bytes are not fields; the encoder fills them with EBCDIC spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from justice.errors import CopybookError

Kind = Literal["alnum", "zoned", "packed"]
MAX_DIGITS = 18  # every 18-digit value fits in int64, so decoding never overflows

# cp037 maps the 256 byte values one-to-one onto U+0000..U+00FF, so two 256-entry tables
# translate whole columns in either direction with numpy fancy indexing.
_DECODE = np.frombuffer(bytes(range(256)).decode("cp037").encode("utf-32-le"), dtype="<u4")
_DECODE = _DECODE.astype(np.uint32)
_ENCODE = np.zeros(256, dtype=np.uint8)
_ENCODE[_DECODE] = np.arange(256, dtype=np.uint8)
_SPACE = 0x40

_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|\S+")
_NAME = re.compile(r"[A-Z0-9]+(?:-+[A-Z0-9]+)*")
_REPEAT = re.compile(r"([X9])\((\d+)\)")
_NUMERIC_PIC = re.compile(r"(S?)(9*)(?:V(9*))?")
_PACKED_USAGES = {"COMP-3", "COMPUTATIONAL-3", "PACKED-DECIMAL"}
_OTHER_USAGES = {"COMP", "COMP-1", "COMP-2", "COMP-4", "COMP-5", "COMPUTATIONAL", "BINARY",
                 "COMPUTATIONAL-1", "COMPUTATIONAL-2", "COMPUTATIONAL-4", "COMPUTATIONAL-5",
                 "POINTER", "INDEX"}
_REJECTED = {
    "OCCURS": "flatten the table into numbered items (e.g. ADDR-1, ADDR-2)",
    "REDEFINES": "describe one layout per copybook",
    "SIGN": "use a trailing overpunched sign (plain S9) instead of SIGN ... SEPARATE",
    "JUSTIFIED": "remove it; alphanumeric fields are left-justified",
    "JUST": "remove it; alphanumeric fields are left-justified",
    "BLANK": "remove BLANK WHEN ZERO; edited fields are not supported",
}
_CLAUSES = {"PIC", "PICTURE", "USAGE", "VALUE", "VALUES", "DISPLAY", "IS", "ARE",
            *_PACKED_USAGES, *_OTHER_USAGES, *_REJECTED}


@dataclass(frozen=True)
class Field:
    """One elementary item: where it sits in the record and how its bytes are coded."""

    name: str
    offset: int
    length: int
    kind: Kind
    digits: int = 0
    scale: int = 0
    signed: bool = False


@dataclass(frozen=True)
class Copybook:
    """A parsed record layout: named fields (FILLER omitted) at fixed byte offsets."""

    record_name: str
    fields: tuple[Field, ...]
    record_length: int
    source: str = "<copybook>"

    def field(self, name: str) -> Field:
        """Return the field called ``name`` (snake_case)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.source}: no field {name!r}; fields are "
                       f"{', '.join(f.name for f in self.fields)}")


@dataclass
class _Item:
    level: int
    name: str
    line: int
    elementary: bool
    usage: str | None
    children: int = 0


def _error(source: str, line: int, message: str) -> CopybookError:
    return CopybookError(f"{source} line {line}: {message}")


def _statements(text: str, source: str) -> Iterator[list[tuple[str, int]]]:
    """Yield period-terminated statements as (token, line number) lists, comments removed."""
    pending: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.rstrip()
        head = line[:6]
        # Fixed format: columns 1-6 are a sequence number (or blank), column 7 an indicator,
        # columns 73-80 an identification area the compiler ignores.
        if len(line) > 6 and (head.isdigit() or not head.strip()) and line[6] in " *-/":
            if line[6] in "*/":
                continue
            line = line[7:72]
        code = line.split("*>", 1)[0]
        if code.lstrip().startswith("*"):
            continue
        for token in _TOKEN.findall(code):
            if token.endswith("."):
                if token != ".":
                    pending.append((token[:-1], lineno))
                if pending:
                    yield pending
                pending = []
            else:
                pending.append((token, lineno))
    if pending:
        raise _error(source, pending[0][1], "the statement starting here has no terminating "
                     "period; end it with '.'")


def _make_field(name: str, pic: str, usage: str | None, offset: int, source: str,
                line: int) -> Field:
    """Turn one PIC clause (plus usage) into a Field at ``offset``."""
    text = pic.upper()
    if any(int(n) > 32767 for n in re.findall(r"\((\d+)\)", text)):
        raise _error(source, line, f"PIC clause '{pic}' is longer than 32767; split the field")
    expanded = _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)
    numeric = _NUMERIC_PIC.fullmatch(expanded)
    if re.fullmatch(r"X+", expanded):
        if usage == "packed":
            raise _error(source, line, f"COMP-3 needs a numeric PIC, not '{pic}'; "
                         "use 9(n) or S9(n)V9(m)")
        return Field(name, offset, len(expanded), "alnum")
    if numeric is None or not (numeric.group(2) or numeric.group(3)):
        raise _error(source, line, f"PIC clause '{pic}' is not understood; "
                     "expected X(n), 9(n), S9(n)V9(m)")
    scale = len(numeric.group(3) or "")
    digits = len(numeric.group(2)) + scale
    if digits > MAX_DIGITS:
        raise _error(source, line, f"PIC clause '{pic}' has {digits} digits; at most "
                     f"{MAX_DIGITS} are supported (they must fit a 64-bit integer)")
    signed = bool(numeric.group(1))
    if usage == "packed":
        return Field(name, offset, digits // 2 + 1, "packed", digits, scale, signed)
    return Field(name, offset, digits, "zoned", digits, scale, signed)


def parse_copybook(text: str, *, source: str = "<copybook>") -> Copybook:
    """Parse a flat COBOL copybook (one 01 record) into a Copybook."""
    record_name: str | None = None
    stack: list[_Item] = []
    fields: list[Field] = []
    defined: dict[str, int] = {}
    offset = 0

    def close(item: _Item) -> None:
        if not item.elementary and item.children == 0:
            raise _error(source, item.line, f"group item '{item.name}' has no PIC clause and "
                         "no subordinate items; give it a PIC clause")

    for statement in _statements(text, source):
        level_token, line = statement[0]
        if not level_token.isdigit():
            raise _error(source, line, f"expected a level number, found '{level_token}'; "
                         "check for a missing period on the statement before")
        level = int(level_token)
        if level == 88:  # condition names describe values, not storage
            continue
        if not 1 <= level <= 49:
            raise _error(source, line, f"level {level_token} is not supported; use levels "
                         "01-49 (66 RENAMES and 77 items are not part of a record)")
        rest = statement[1:]
        name = "FILLER"
        if rest and rest[0][0].upper() not in _CLAUSES:
            name = rest[0][0].upper()
            if not _NAME.fullmatch(name):
                raise _error(source, line, f"'{rest[0][0]}' is not a valid COBOL name; use "
                             "letters, digits and inner hyphens")
            rest = rest[1:]
        pic: str | None = None
        pic_line = line
        usage: str | None = None
        i = 0
        while i < len(rest):
            word, at = rest[i]
            upper = word.upper()
            i += 1
            if upper in ("PIC", "PICTURE"):
                i += i < len(rest) and rest[i][0].upper() == "IS"
                if i >= len(rest):
                    raise _error(source, at, f"{upper} needs a picture string, e.g. X(10)")
                pic, pic_line = rest[i]
                i += 1
            elif upper in ("USAGE", "IS", "ARE"):
                continue  # noise words; the usage itself is the next token
            elif upper in _PACKED_USAGES:
                usage = "packed"
            elif upper == "DISPLAY":
                usage = "display"
            elif upper in ("VALUE", "VALUES"):  # initial values do not affect the layout
                i += i < len(rest) and rest[i][0].upper() in ("IS", "ARE")
                i += 1
            elif upper in _REJECTED:
                raise _error(source, at, f"{upper} is not supported; {_REJECTED[upper]}")
            elif upper in _OTHER_USAGES:
                raise _error(source, at, f"USAGE {upper} is not supported; only DISPLAY and "
                             "COMP-3 are")
            elif word.isdigit():
                raise _error(source, at, f"'{word}' looks like a level number inside a "
                             f"statement; add the missing period at the end of line {at - 1}")
            else:
                raise _error(source, at, f"'{word}' is not understood here; expected PIC, "
                             "USAGE, VALUE or a period")

        if level == 1 and record_name is not None:
            raise _error(source, line, f"a second 01 record '{name}'; put one record layout "
                         "in each copybook")
        popped: _Item | None = None
        while stack and stack[-1].level >= level:
            popped = stack.pop()
            close(popped)
        if popped is not None and popped.level != level:
            raise _error(source, line, f"level {level:02d} does not match an enclosing level; "
                         f"use {popped.level:02d} or a higher level number")
        if not stack and level != 1:
            raise _error(source, line, f"'{name}' at level {level:02d} comes before any 01 "
                         "record; start the copybook with an 01 level")
        if stack:
            parent = stack[-1]
            if parent.elementary:
                raise _error(source, line, f"'{name}' is subordinate to '{parent.name}' (line "
                             f"{parent.line}), which has a PIC clause; fix the level numbers")
            parent.children += 1
            usage = usage or parent.usage
        else:
            record_name = name.lower().replace("-", "_")
        stack.append(_Item(level, name, line, pic is not None, usage))
        if pic is None:
            continue
        snake = name.lower().replace("-", "_")
        made = _make_field(snake, pic, usage, offset, source, pic_line)
        offset += made.length
        if name == "FILLER":
            continue
        if snake in defined:
            raise _error(source, line, f"field '{snake}' is defined twice (lines "
                         f"{defined[snake]} and {line}); rename one")
        defined[snake] = line
        fields.append(made)
    for item in stack:
        close(item)
    if record_name is None or not fields:
        raise CopybookError(f"{source}: no 01 record with named fields was found; a copybook "
                            "needs an 01 level and at least one PIC item")
    return Copybook(record_name, tuple(fields), offset, source)


def _encode_alnum(f: Field, column: Sequence[Any], n: int) -> np.ndarray:
    """Encode one alnum column into an (n, length) uint8 array of cp037 bytes."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "U":
        text = column
    else:
        if not set(map(type, column)) <= {str, type(None)}:  # C-speed check; find culprit after
            index, value = next((i, v) for i, v in enumerate(column)
                                if v is not None and not isinstance(v, str))
            raise CopybookError(f"field '{f.name}' record {index}: expected str or None, "
                                f"got {type(value).__name__}")
        text = np.array(["" if v is None else v for v in column], dtype=str)
    too_long = np.flatnonzero(np.strings.str_len(text) > f.length) if n else []
    if len(too_long):
        index = int(too_long[0])
        raise CopybookError(f"field '{f.name}' record {index}: {len(text[index])} characters "
                            f"do not fit PIC X({f.length}); truncate the value before encoding")
    codes = text.astype(f"U{f.length}").view(np.uint32).reshape(n, f.length)
    codes = np.where(codes == 0, 0x20, codes)  # numpy pads short strings with NUL; want spaces
    bad = codes > 0xFF
    if bad.any():
        index, position = (int(k[0]) for k in np.nonzero(bad))
        raise CopybookError(f"field '{f.name}' record {index}: character "
                            f"{chr(codes[index, position])!r} cannot be written in EBCDIC "
                            "cp037; transliterate it before encoding")
    return _ENCODE[codes]


def _unscaled(f: Field, column: Sequence[Any]) -> np.ndarray:
    """Convert a numeric column to int64 unscaled values (value * 10**scale), checking range."""
    factor, limit = 10**f.scale, 10**f.digits
    low = -limit if f.signed else -1
    where = f"field '{f.name}' (PIC {'S' if f.signed else ''}9({f.digits - f.scale})" + (
        f"V9({f.scale}))" if f.scale else ")")
    array = column if isinstance(column, np.ndarray) else None
    if array is None and set(map(type, column)) <= {int}:
        array = np.array(column)  # plain ints: convert in C (object dtype if beyond int64)
    if array is not None and array.dtype.kind in "iu":  # whole numbers: check before scaling
        bad = (array >= limit // factor) | (array <= low // factor)
        if bad.any():
            index = int(np.argmax(bad))
            raise CopybookError(f"{where} record {index}: {array[index]} does not fit")
        return array.astype(np.int64) * factor
    out: list[int] = []
    for index, value in enumerate(column if array is None else array.tolist()):
        kind = type(value)
        if kind is int:
            unscaled = value * factor
        elif value is None:
            unscaled = 0  # a missing number is written as zero
        elif kind is Decimal and value.is_finite():
            scaled = value.scaleb(f.scale)
            unscaled = int(scaled)
            if unscaled != scaled:
                raise CopybookError(f"{where} record {index}: {value} has more than {f.scale} "
                                    "decimal places; round it before encoding")
        else:
            raise CopybookError(f"{where} record {index}: expected int, Decimal or None, got "
                                f"{kind.__name__} {value!r}")
        if not low < unscaled < limit:
            raise CopybookError(f"{where} record {index}: {value} does not fit")
        out.append(unscaled)
    return np.array(out, dtype=np.int64)


def _encode_numeric(f: Field, unscaled: np.ndarray) -> np.ndarray:
    """Encode unscaled int64 values as zoned or packed decimal bytes, shape (n, length)."""
    powers = 10 ** np.arange(f.digits - 1, -1, -1, dtype=np.int64)
    digits = ((np.abs(unscaled)[:, None] // powers) % 10).astype(np.uint8)
    negative = unscaled < 0
    sign = np.where(negative, 0xD, 0xC).astype(np.uint8) if f.signed else np.uint8(0xF)
    if f.kind == "zoned":
        out = digits | np.uint8(0xF0)
        out[:, -1] = (sign << 4) | digits[:, -1]
        return out
    nibbles = np.zeros((len(unscaled), 2 * f.length), dtype=np.uint8)
    nibbles[:, 2 * f.length - 1 - f.digits:-1] = digits  # an even digit count leaves a 0 pad
    nibbles[:, -1] = sign
    return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]


def encode_records(copybook: Copybook, columns: Mapping[str, Sequence[Any]]) -> bytes:
    """Encode equal-length columns into one blob of fixed-length cp037 records (no newlines)."""
    names = {f.name for f in copybook.fields}
    if set(columns) != names:
        missing, extra = sorted(names - set(columns)), sorted(set(columns) - names)
        raise CopybookError(f"{copybook.source}: columns do not match the copybook (missing: "
                            f"{missing}, unknown: {extra}); pass every field, None for blanks")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise CopybookError(f"{copybook.source}: columns have different lengths {lengths}")
    n = next(iter(lengths.values()))
    out = np.full((n, copybook.record_length), _SPACE, dtype=np.uint8)
    for f in copybook.fields:
        column = columns[f.name]
        if f.kind == "alnum":
            encoded = _encode_alnum(f, column, n)
        else:
            encoded = _encode_numeric(f, _unscaled(f, column))
        out[:, f.offset:f.offset + f.length] = encoded
    return out.tobytes()


@dataclass(frozen=True)
class DecodedBatch:
    """Decoded whole records: string columns, per-field invalid masks, any partial tail."""

    copybook: Copybook
    records: np.ndarray  # (n_records, record_length) uint8 view of the input
    columns: dict[str, np.ndarray]  # object arrays of str; None where a number is invalid
    invalid: dict[str, np.ndarray]  # bool per record; always False for alnum fields
    values: dict[str, np.ndarray]  # int64 unscaled numbers (0 where invalid)
    trailing_bytes: int = 0  # bytes after the last whole record (a truncated record)
    trailing_offset: int = 0  # byte offset where whole records end / the partial one starts

    @property
    def n_records(self) -> int:
        """Number of whole records decoded."""
        return int(self.records.shape[0])

    def numeric_values(self, name: str) -> np.ndarray:
        """Return a numeric field as int64 unscaled values (divide by 10**scale for the number)."""
        return self.values[name]

    def field_bytes(self, name: str) -> np.ndarray:
        """Return a field's raw bytes, shape (n_records, length), e.g. to quarantine them."""
        f = self.copybook.field(name)
        return self.records[:, f.offset:f.offset + f.length]

    def invalid_records(self) -> np.ndarray:
        """Return a bool mask of records with at least one invalid field."""
        mask = np.zeros(self.n_records, dtype=bool)
        for flags in self.invalid.values():
            mask |= flags
        return mask

    def invalid_fields(self, index: int) -> tuple[str, ...]:
        """Return the names of the invalid fields of record ``index``."""
        return tuple(name for name, flags in self.invalid.items() if flags[index])


def _render(digits: np.ndarray, negative: np.ndarray, scale: int) -> np.ndarray:
    """Render digit rows as exact decimal strings, e.g. 0,0,1,2,3,4 at scale 2 → '12.34'."""
    chars = digits.astype(np.uint32) + ord("0")
    if scale:
        chars = np.insert(chars, chars.shape[1] - scale, ord("."), axis=1)
    # Reinterpret each row of code points as one fixed-width string; no per-record Python.
    text = np.ascontiguousarray(chars).view(f"U{chars.shape[1]}").reshape(-1)
    text = np.strings.lstrip(text, "0")
    short = (np.strings.str_len(text) == 0) | np.strings.startswith(text, ".")
    text = np.where(short, np.strings.add("0", text), text)  # keep one integer digit
    return np.strings.add(np.where(negative, "-", ""), text)


def _decode_numeric(f: Field, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode zoned or packed bytes (n, length) into (strings, int64 unscaled, invalid mask)."""
    if f.kind == "zoned":
        digits, sign = raw & 0xF, raw[:, -1] >> 4
        bad = (raw[:, :-1] >> 4 != 0xF).any(axis=1)
    else:
        nibbles = np.empty((raw.shape[0], 2 * f.length), dtype=np.uint8)
        nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0xF
        digits, sign = nibbles[:, -1 - f.digits:-1], nibbles[:, -1]
        bad = (nibbles[:, :-1 - f.digits] != 0).any(axis=1)  # the pad nibble must be zero
    bad |= (digits > 9).any(axis=1)
    bad |= ~np.isin(sign, [0xC, 0xD, 0xF] if f.signed else [0xC, 0xF])
    powers = 10 ** np.arange(f.digits - 1, -1, -1, dtype=np.int64)
    values = digits.astype(np.int64) @ powers
    values = np.where(sign == 0xD, -values, values)
    values[bad] = 0  # garbage nibbles may have overflowed; never expose them as numbers
    strings = _render(digits, values < 0, f.scale).astype(object)
    strings[bad] = None
    return strings, values, bad


def decode_records(copybook: Copybook, data: bytes | memoryview | np.ndarray, *,
                   strict: bool = False, source: str = "<data>") -> DecodedBatch:
    """Decode a blob of fixed-length cp037 records into columns without per-record loops."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f"expected a uint8 array, got {data.dtype}")
        buffer = data.reshape(-1)
    else:
        buffer = np.frombuffer(data, dtype=np.uint8)
    length = copybook.record_length
    n, trailing = divmod(buffer.size, length)
    if trailing and strict:
        raise CopybookError(f"file {source}: {buffer.size:,} bytes is not a whole number of "
                            f"{length}-byte records; the last record is truncated at byte "
                            f"offset {n * length:,} ({trailing} of {length} bytes); check the "
                            "transfer was binary and complete, or decode with strict=False "
                            "to quarantine the partial record")
    records = buffer[: n * length].reshape(n, length)
    columns: dict[str, np.ndarray] = {}
    invalid: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    for f in copybook.fields:
        raw = records[:, f.offset:f.offset + f.length]
        if f.kind == "alnum":
            # Map bytes to code points, then reinterpret each row as one fixed-width string.
            codes = np.ascontiguousarray(_DECODE[raw])
            text = codes.view(f"U{f.length}").reshape(n)
            columns[f.name] = np.strings.rstrip(text, " ").astype(object)
            invalid[f.name] = np.zeros(n, dtype=bool)
            continue
        columns[f.name], values[f.name], invalid[f.name] = _decode_numeric(f, raw)
    return DecodedBatch(copybook, records, columns, invalid, values, trailing, n * length)
