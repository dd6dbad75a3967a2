"""Tests for justice.sources.copybook: parsing, known byte vectors, round trips, bad data."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from justice.errors import CopybookError, SourceError
from justice.sources.copybook import (
    Copybook,
    Field,
    decode_records,
    encode_records,
    parse_copybook,
)

SAMPLE = """\
000100*****************************************************************
000200* NDELIUS OFFENDER EXTRACT - DAILY                               *
000300*****************************************************************
000400 01  PROBATION-RECORD.                                            PROBREC
000500     05  CRN                     PIC X(7).                        PROBREC
000600     05  PNC-ID                  PIC X(13).
000700     05  FILLER                  PIC X(2).
000800     05  OFFENDER-NAME.
000900         10  SURNAME             PIC X(20).
001000         10  FORENAME            PIC X(15).
001100     05  DATE-OF-BIRTH           PIC 9(8).
001200     05  TIER                    PIC S9(3).
001300     05  ORDER-LENGTH-DAYS       PIC S9(5) USAGE IS COMP-3.
001400     05  UNPAID-WORK-HOURS       PIC 9(4)V99 COMPUTATIONAL-3.
001500     05  FINE-BALANCE            PIC S9(7)V99
001600                                 COMP-3.
001700     05  STATUS-CODE             PIC X.
001800         88  STATUS-ACTIVE       VALUE 'A'.
      * free-form style comment between items
* another comment in column 1
           05  RISK-SCORE              PIC S999V9 VALUE ZERO.
       05  FILLER                      PIC X(5).
"""


@pytest.fixture(scope="module")
def book() -> Copybook:
    return parse_copybook(SAMPLE, source="probation.cpy")


def test_parse_names_offsets_and_lengths(book: Copybook) -> None:
    assert book.record_name == "probation_record"
    layout = [(f.name, f.offset, f.length, f.kind) for f in book.fields]
    assert layout == [
        ("crn", 0, 7, "alnum"),
        ("pnc_id", 7, 13, "alnum"),
        ("surname", 22, 20, "alnum"),  # FILLER X(2) occupies 20-21 but is not a field
        ("forename", 42, 15, "alnum"),
        ("date_of_birth", 57, 8, "zoned"),
        ("tier", 65, 3, "zoned"),
        ("order_length_days", 68, 3, "packed"),  # 5 digits → 5//2+1
        ("unpaid_work_hours", 71, 4, "packed"),  # 6 digits → 4 bytes, pad nibble
        ("fine_balance", 75, 5, "packed"),  # 9 digits → 5 bytes
        ("status_code", 80, 1, "alnum"),
        ("risk_score", 81, 4, "zoned"),
    ]
    assert book.record_length == 90  # trailing FILLER X(5) counts
    assert book.field("fine_balance") == Field("fine_balance", 75, 5, "packed", 9, 2, True)
    assert book.field("date_of_birth").signed is False
    assert book.field("risk_score").scale == 1


def test_group_usage_is_inherited() -> None:
    text = "01 R.\n 05 G COMP-3.\n  10 A PIC S9(4).\n  10 B PIC 9(3).\n 05 C PIC X.\n"
    book = parse_copybook(text)
    assert [(f.kind, f.length) for f in book.fields] == [("packed", 3), ("packed", 2),
                                                        ("alnum", 1)]


def _one(pic: str) -> Copybook:
    return parse_copybook(f"01 REC.\n   05 VAL PIC {pic}.\n")


@pytest.mark.parametrize(
    ("pic", "value", "expected"),
    [
        ("S9(3) COMP-3", 123, b"\x12\x3c"),
        ("S9(3) COMP-3", -123, b"\x12\x3d"),
        ("9(3) COMP-3", 123, b"\x12\x3f"),
        ("S9(4) COMP-3", 1234, b"\x01\x23\x4c"),  # even digit count: leading pad nibble
        ("S9(3)", 123, b"\xf1\xf2\xc3"),
        ("S9(3)", -123, b"\xf1\xf2\xd3"),
        ("S9(3)", 0, b"\xf0\xf0\xc0"),
        ("9(3)", 42, b"\xf0\xf4\xf2"),
        ("X(4)", "Ab1", b"\xc1\x82\xf1\x40"),
    ],
)
def test_known_byte_vectors(pic: str, value: object, expected: bytes) -> None:
    book = _one(pic)
    assert encode_records(book, {"val": [value]}) == expected
    decoded = decode_records(book, expected)
    assert decoded.columns["val"][0] == str(value)
    assert not decoded.invalid["val"][0]


@pytest.mark.parametrize(
    ("pic", "values", "expected"),
    [
        ("S9(7)V99 COMP-3", ["-1234567.89", "0", "99.5", "0.01", "9999999.99"],
         ["-1234567.89", "0.00", "99.50", "0.01", "9999999.99"]),
        ("S9(6)V99 COMP-3", ["-999999.99", "1.5", "-0.07"], ["-999999.99", "1.50", "-0.07"]),
        ("9(5) COMP-3", ["0", "99999", "7"], ["0", "99999", "7"]),
        ("9(4)V99", ["12.34", "0", "9999.99"], ["12.34", "0.00", "9999.99"]),
        ("S9(5)", ["123", "-123", "0", "-99999"], ["123", "-123", "0", "-99999"]),
        ("S9(18)", [str(10**18 - 1), str(-(10**18 - 1))], [str(10**18 - 1), str(-(10**18 - 1))]),
    ],
)
def test_numeric_round_trip(pic: str, values: list[str], expected: list[str]) -> None:
    book = _one(pic)
    blob = encode_records(book, {"val": [Decimal(v) for v in values]})
    assert len(blob) == len(values) * book.record_length
    decoded = decode_records(book, blob)
    assert decoded.columns["val"].tolist() == expected
    scale = book.fields[0].scale
    assert decoded.numeric_values("val").tolist() == [int(Decimal(v).scaleb(scale))
                                                       for v in values]
    assert not decoded.invalid["val"].any()


def test_full_record_round_trip(book: Copybook) -> None:
    columns = {
        "crn": ["X123456", "A000001", None],
        "pnc_id": ["2001/0012345A", "", "99/123456Z"],
        "surname": ["O'Brien", "Ní Bhriain", "Smith-Jones"],
        "forename": ["Seán", "Zoë", None],
        "date_of_birth": [19800101, 20011231, None],
        "tier": [3, -2, 0],
        "order_length_days": [365, 0, -1],
        "unpaid_work_hours": [Decimal("120.5"), 0, None],
        "fine_balance": [Decimal("-250.75"), Decimal(1000000), None],
        "status_code": ["A", "I", None],
        "risk_score": [Decimal("-12.3"), Decimal("99.9"), 0],
    }
    blob = encode_records(book, columns)
    assert len(blob) == 3 * 90
    assert blob[20:22] == b"\x40\x40"  # FILLER is written as EBCDIC spaces
    decoded = decode_records(book, blob)
    assert decoded.n_records == 3 and decoded.trailing_bytes == 0
    assert decoded.columns["surname"].tolist() == ["O'Brien", "Ní Bhriain", "Smith-Jones"]
    assert decoded.columns["forename"].tolist() == ["Seán", "Zoë", ""]
    assert decoded.columns["crn"].tolist() == ["X123456", "A000001", ""]
    assert decoded.columns["date_of_birth"].tolist() == ["19800101", "20011231", "0"]
    assert decoded.columns["fine_balance"].tolist() == ["-250.75", "1000000.00", "0.00"]
    assert decoded.columns["unpaid_work_hours"].tolist() == ["120.50", "0.00", "0.00"]
    assert decoded.columns["risk_score"].tolist() == ["-12.3", "99.9", "0.0"]
    assert decoded.columns["order_length_days"].tolist() == ["365", "0", "-1"]
    assert not decoded.invalid_records().any()


def test_numpy_columns_are_accepted() -> None:
    book = parse_copybook("01 R.\n 05 N PIC S9(5)V9 COMP-3.\n 05 T PIC X(3).\n")
    blob = encode_records(book, {"n": np.array([-5, 12, 0]), "t": np.array(["a", "bc", ""])})
    decoded = decode_records(book, np.frombuffer(blob, dtype=np.uint8))
    assert decoded.columns["n"].tolist() == ["-5.0", "12.0", "0.0"]
    assert decoded.columns["t"].tolist() == ["a", "bc", ""]


def test_invalid_nibbles_are_flagged_not_fatal() -> None:
    book = parse_copybook("01 R.\n 05 P PIC S9(3) COMP-3.\n 05 Z PIC S9(3).\n 05 U PIC 9(2).\n")
    good = bytes.fromhex("123c" "f1f2c3" "f4f2")
    bad_digit = bytes.fromhex("1a3c" "f1f2c3" "f4f2")  # nibble A is not a digit
    bad_sign = bytes.fromhex("1237" "f1f2c3" "f4f2")  # 7 is not a sign nibble
    bad_zone = bytes.fromhex("123c" "f1c2c3" "f4f2")  # zone C before the last byte
    spaces = bytes.fromhex("123c" "404040" "f4f2")  # uninitialised zoned field
    negative_unsigned = bytes.fromhex("123c" "f1f2c3" "f4d2")
    decoded = decode_records(book, good + bad_digit + bad_sign + bad_zone + spaces
                             + negative_unsigned)
    assert decoded.invalid["p"].tolist() == [False, True, True, False, False, False]
    assert decoded.invalid["z"].tolist() == [False, False, False, True, True, False]
    assert decoded.invalid["u"].tolist() == [False, False, False, False, False, True]
    assert decoded.columns["p"].tolist() == ["123", None, None, "123", "123", "123"]
    assert decoded.numeric_values("p").tolist() == [123, 0, 0, 123, 123, 123]
    assert decoded.invalid_fields(4) == ("z",)
    assert decoded.invalid_records().tolist() == [False, True, True, True, True, True]
    assert decoded.field_bytes("z")[4].tobytes() == b"\x40\x40\x40"


def test_packed_pad_nibble_must_be_zero() -> None:
    book = _one("S9(4) COMP-3")
    decoded = decode_records(book, bytes.fromhex("01234c" "91234c"))
    assert decoded.invalid["val"].tolist() == [False, True]


def test_truncated_trailing_record() -> None:
    book = _one("X(10)")
    data = encode_records(book, {"val": ["a", "b", "c"]}) + b"\xc1\xc2\xc3"
    with pytest.raises(CopybookError) as caught:
        decode_records(book, data, strict=True, source="offenders.dat")
    message = str(caught.value)
    assert "offenders.dat" in message and "33 bytes" in message
    assert "10-byte records" in message and "byte offset 30" in message
    decoded = decode_records(book, memoryview(data))
    assert decoded.n_records == 3
    assert decoded.trailing_bytes == 3 and decoded.trailing_offset == 30
    assert decoded.columns["val"].tolist() == ["a", "b", "c"]


def test_empty_input() -> None:
    decoded = decode_records(_one("S9(3) COMP-3"), b"")
    assert decoded.n_records == 0 and decoded.columns["val"].tolist() == []


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("01 R.\n 05 A PIC X(3).\n 05 B PIC X(A).\n",
         ["probation.cpy line 3", "PIC clause 'X(A)' is not understood", "X(n), 9(n)"]),
        ("01 R.\n 05 A PIC X(3).\n 05 B PIC X(2)\n       OCCURS 5 TIMES.\n",
         ["probation.cpy line 4", "OCCURS is not supported", "flatten"]),
        ("01 R.\n 05 A PIC 9(3) COMP.\n", ["line 2", "USAGE COMP is not supported"]),
        ("01 R.\n 05 A PIC X(3)\n 05 B PIC X.\n", ["line 3", "missing period at the end of line 2"]),
        ("01 R.\n 05 A PIC X(3).\n 05 B PIC 9(19).\n", ["line 3", "19 digits"]),
        ("01 R.\n 05 A PIC X(3).\n 05 A PIC X.\n", ["line 3", "defined twice"]),
        ("01 R.\n 05 A PIC X(3).\n    10 B PIC X.\n", ["line 3", "has a PIC clause"]),
        ("01 R.\n 05 G.\n 05 A PIC X.\n", ["line 2", "group item 'G'"]),
        ("05 A PIC X.\n", ["line 1", "before any 01"]),
        ("01 R.\n 05 A PIC X.\n01 S.\n 05 B PIC X.\n", ["line 3", "second 01"]),
        ("01 R.\n 05 A PIC X COMP-3.\n", ["line 2", "COMP-3 needs a numeric PIC"]),
        ("01 R.\n 05 A PIC X", ["line 2", "no terminating period"]),
        ("* nothing here\n", ["no 01 record"]),
    ],
)
def test_parse_errors_name_source_and_line(text: str, fragments: list[str]) -> None:
    with pytest.raises(CopybookError) as caught:
        parse_copybook(text, source="probation.cpy")
    assert isinstance(caught.value, SourceError)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("pic", "value", "fragment"),
    [
        ("X(3)", "abcd", "record 1: 4 characters do not fit PIC X(3)"),
        ("X(3)", "a€", "record 1: character '€' cannot be written"),
        ("X(3)", 12, "record 1: expected str or None, got int"),
        ("9(3)", 1000, "record 1: 1000 does not fit"),
        ("9(3)", -1, "record 1: -1 does not fit"),
        ("S9(3)V9", Decimal("1.25"), "more than 1 decimal places"),
        ("S9(3)V9", 1.5, "expected int, Decimal or None, got float"),
        ("S9(3)V9 COMP-3", Decimal(1000), "record 1: 1000 does not fit"),
    ],
)
def test_encode_errors_name_field_and_record(pic: str, value: object, fragment: str) -> None:
    book = _one(pic)
    good = "ok" if book.fields[0].kind == "alnum" else 1
    with pytest.raises(CopybookError, match="field 'val'") as caught:
        encode_records(book, {"val": [good, value]})
    assert fragment in str(caught.value)


def test_encode_rejects_missing_or_ragged_columns() -> None:
    book = parse_copybook("01 R.\n 05 A PIC X.\n 05 B PIC 9.\n")
    with pytest.raises(CopybookError, match=r"missing: \['b'\]"):
        encode_records(book, {"a": ["x"]})
    with pytest.raises(CopybookError, match="different lengths"):
        encode_records(book, {"a": ["x"], "b": [1, 2]})


def test_large_decode_is_correct(book: Copybook) -> None:
    n = 200_000
    rng = np.random.default_rng(7)
    fines = rng.integers(-(10**9) + 1, 10**9, size=n)
    tiers = rng.integers(-999, 1000, size=n)
    crns = np.char.add("X", (np.arange(n) % 1_000_000).astype(str))
    columns = {f.name: [None] * n for f in book.fields}
    columns.update(crn=crns, tier=tiers, order_length_days=tiers * 7)
    columns["fine_balance"] = [Decimal(int(v)).scaleb(-2) for v in fines]
    blob = encode_records(book, columns)
    decoded = decode_records(book, blob, strict=True)
    assert decoded.n_records == n
    assert np.array_equal(decoded.numeric_values("fine_balance"), fines)
    assert np.array_equal(decoded.numeric_values("tier"), tiers)
    assert np.array_equal(decoded.numeric_values("order_length_days"), tiers * 7)
    assert decoded.columns["crn"][123_456] == "X123456"
    assert decoded.columns["tier"][:5].tolist() == [str(v) for v in tiers[:5]]
    assert decoded.columns["surname"][-1] == ""
    assert not decoded.invalid_records().any()
