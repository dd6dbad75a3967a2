"""UK criminal-justice person identifiers: formats, check characters, generators and validators.

Four identifiers are modelled, in the canonical form used throughout the platform:

* **PNC ID** ``YYYY/NNNNNNNC`` - Police National Computer person id. ``YYYY`` is the year the
  record was created, ``NNNNNNN`` a 7-digit serial (always zero-padded here; some systems print
  it without leading zeros, which :func:`normalise_pnc` accepts) and ``C`` a check letter.
* **CRO number** ``NNNNNN/YYC`` - Criminal Records Office number: 6-digit serial, 2-digit year,
  check letter.
* **Prison number** ``A1234BC`` - letter, 4 digits, 2 letters (NOMIS style).
* **Probation CRN** ``X123456`` - case reference number: letter and 6 digits.

Both check letters use the same modulus-23 scheme: take the 2-digit year followed by the
zero-padded serial as one integer, reduce it mod 23 and index :data:`CHECK_ALPHABET` (23 letters;
I, O and S are left out because they are confused with 1, 0 and 5). For example
``1998/1234567L``: 981234567 mod 23 = 11, and ``CHECK_ALPHABET[11]`` is ``L``.

Because 23 is prime and larger than any digit difference, the check letter detects every
single-digit substitution and every transposition of two adjacent digits within YY and the
serial. The PNC century digits are not covered: ``2098/1234567L`` is as valid as ``1998/...``.

Generators are vectorised: they take a :class:`numpy.random.Generator` and return numpy object
arrays of ``str``. They never give two people the same id (serials are drawn without
replacement within each year), because a shared true id would poison record-linkage ground truth.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "CHECK_ALPHABET",
    "CRN_RE",
    "CRO_RE",
    "PNC_RE",
    "PRISON_NUMBER_RE",
    "cro_check_char",
    "is_valid_crn",
    "is_valid_cro",
    "is_valid_pnc",
    "is_valid_prison_number",
    "make_crns",
    "make_cro_numbers",
    "make_pnc_ids",
    "make_prison_numbers",
    "normalise_cro",
    "normalise_pnc",
    "pnc_check_char",
    "valid_cro_mask",
    "valid_pnc_mask",
]

CHECK_ALPHABET = "ZABCDEFGHJKLMNPQRTUVWXY"
"""Check letters indexed by (YY followed by serial) mod 23."""

PNC_RE = re.compile(r"^(\d{4})/(\d{7})([A-Z])$")
CRO_RE = re.compile(r"^(\d{6})/(\d{2})([A-Z])$")
PRISON_NUMBER_RE = re.compile(r"^[A-Z]\d{4}[A-Z]{2}$")
CRN_RE = re.compile(r"^[A-Z]\d{6}$")

# Tolerant forms accepted by the normalisers (after strip + upper-case): short serials.
_PNC_LOOSE_RE = re.compile(r"^(\d{4})/(\d{1,7})([A-Z])$")
_CRO_LOOSE_RE = re.compile(r"^(\d{1,6})/(\d{2})([A-Z])$")

PNC_MAX_SERIAL = 9_999_999
CRO_MAX_SERIAL = 999_999

_ALPHABET_CODES = np.frombuffer(CHECK_ALPHABET.encode("ascii"), dtype=np.uint8)
_LETTERS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_PRISON_SPACE = 26 * 10_000 * 26 * 26
_CRN_SPACE = 26 * 1_000_000


# --------------------------------------------------------------------------------------------
# Check characters and scalar validation
# --------------------------------------------------------------------------------------------


def pnc_check_char(year: int, serial: int) -> str:
    """Check letter of PNC ID ``year/serial``: alphabet[int(YY + 7-digit serial) % 23]."""
    if not 0 <= serial <= PNC_MAX_SERIAL:
        raise ValueError(f"PNC serial {serial} is outside 0..{PNC_MAX_SERIAL}")
    return CHECK_ALPHABET[((year % 100) * 10_000_000 + serial) % 23]


def cro_check_char(year: int, serial: int) -> str:
    """Check letter of CRO number ``serial/YY``: alphabet[int(YY + 6-digit serial) % 23]."""
    if not 0 <= serial <= CRO_MAX_SERIAL:
        raise ValueError(f"CRO serial {serial} is outside 0..{CRO_MAX_SERIAL}")
    return CHECK_ALPHABET[((year % 100) * 1_000_000 + serial) % 23]


def is_valid_pnc(s: object) -> bool:
    """True if ``s`` is a canonical PNC ID (``YYYY/NNNNNNNC``) with the right check letter."""
    if not isinstance(s, str):
        return False
    m = PNC_RE.match(s)
    return bool(m) and pnc_check_char(int(m[1]), int(m[2])) == m[3]


def is_valid_cro(s: object) -> bool:
    """True if ``s`` is a canonical CRO number (``NNNNNN/YYC``) with the right check letter."""
    if not isinstance(s, str):
        return False
    m = CRO_RE.match(s)
    return bool(m) and cro_check_char(int(m[2]), int(m[1])) == m[3]


def is_valid_prison_number(s: object) -> bool:
    """True if ``s`` has the prison-number form ``A1234BC`` (there is no check character)."""
    return isinstance(s, str) and PRISON_NUMBER_RE.match(s) is not None


def is_valid_crn(s: object) -> bool:
    """True if ``s`` has the probation CRN form ``X123456`` (there is no check character)."""
    return isinstance(s, str) and CRN_RE.match(s) is not None


def normalise_pnc(s: object, *, require_check: bool = True) -> str | None:
    """Canonical PNC ID from a messy one (case, whitespace, unpadded serial), or None.

    ``" 1998/1234l "`` becomes ``"1998/0001234L"`` if that check letter is right. With
    ``require_check=False`` a well-formed id with a wrong check letter is still returned.
    """
    if not isinstance(s, str):
        return None
    m = _PNC_LOOSE_RE.match(s.strip().upper())
    if m is None:
        return None
    year, serial, check = int(m[1]), int(m[2]), m[3]
    if require_check and pnc_check_char(year, serial) != check:
        return None
    return f"{m[1]}/{serial:07d}{check}"


def normalise_cro(s: object, *, require_check: bool = True) -> str | None:
    """Canonical CRO number from a messy one (case, whitespace, unpadded serial), or None."""
    if not isinstance(s, str):
        return None
    m = _CRO_LOOSE_RE.match(s.strip().upper())
    if m is None:
        return None
    serial, yy, check = int(m[1]), m[2], m[3]
    if require_check and cro_check_char(int(yy), serial) != check:
        return None
    return f"{serial:06d}/{yy}{check}"


# --------------------------------------------------------------------------------------------
# Vectorised validation
# --------------------------------------------------------------------------------------------


def _fixed_width_codes(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(candidate mask, code points of the candidates as an (m, width) uint32 matrix)."""
    flat = np.asarray(values, dtype=object).ravel()
    cand = np.fromiter(
        (isinstance(v, str) and len(v) == width for v in flat), dtype=bool, count=flat.size
    )
    # A fixed-width unicode array is UCS-4 underneath, so viewing it as uint32 gives every
    # character's code point without a Python-level loop.
    strs = np.array(flat[cand].tolist(), dtype=f"U{width}")
    codes = strs.view(np.uint32).reshape(-1, width)
    return cand, codes


def _is_digit(codes: np.ndarray) -> np.ndarray:
    return (codes >= ord("0")) & (codes <= ord("9"))


def _digits_value(codes: np.ndarray) -> np.ndarray:
    """Integer value of a matrix of ASCII digit code points (one number per row)."""
    digits = codes.astype(np.int64) - ord("0")
    powers = 10 ** np.arange(codes.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits @ powers


def valid_pnc_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape as ``values``: element is a canonical PNC ID, check letter right."""
    arr = np.asarray(values, dtype=object)
    cand, c = _fixed_width_codes(arr, 13)
    ok = _is_digit(c[:, 0:4]).all(axis=1) & (c[:, 4] == ord("/")) & _is_digit(c[:, 5:12]).all(1)
    yy_serial = _digits_value(np.where(ok[:, None], c[:, [2, 3, *range(5, 12)]], ord("0")))
    ok &= c[:, 12] == _ALPHABET_CODES[yy_serial % 23]
    out = np.zeros(arr.size, dtype=bool)
    out[np.flatnonzero(cand)] = ok
    return out.reshape(arr.shape)


def valid_cro_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape as ``values``: element is a canonical CRO number, check right."""
    arr = np.asarray(values, dtype=object)
    cand, c = _fixed_width_codes(arr, 10)
    ok = _is_digit(c[:, 0:6]).all(axis=1) & (c[:, 6] == ord("/")) & _is_digit(c[:, 7:9]).all(1)
    yy_serial = _digits_value(np.where(ok[:, None], c[:, [7, 8, *range(6)]], ord("0")))
    ok &= c[:, 9] == _ALPHABET_CODES[yy_serial % 23]
    out = np.zeros(arr.size, dtype=bool)
    out[np.flatnonzero(cand)] = ok
    return out.reshape(arr.shape)


# --------------------------------------------------------------------------------------------
# Vectorised generators
# --------------------------------------------------------------------------------------------


def _digit_codes(numbers: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII codes of zero-padded decimal ``numbers``."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _codes_to_objects(codes: np.ndarray) -> np.ndarray:
    """Object array of str from an (n, width) uint8 ASCII matrix, without a Python loop."""
    n, width = codes.shape
    fixed = np.ascontiguousarray(codes).view(f"S{width}").reshape(n)
    return fixed.astype(f"U{width}").astype(object)


def _unique_serials_per_group(
    rng: np.random.Generator, groups: np.ndarray, max_serial: int, what: str
) -> np.ndarray:
    """Serials in 1..max_serial, drawn without replacement within each group value."""
    serials = np.empty(groups.size, dtype=np.int64)
    keys, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.cumsum(counts) - counts
    for key, start, count in zip(keys, starts, counts, strict=True):
        if count > max_serial:
            raise ValueError(
                f"cannot make {count} unique {what} serials for year {key}: at most {max_serial}"
            )
        serials[order[start : start + count]] = rng.choice(max_serial, size=count, replace=False)
    return serials + 1


def _as_years(years: np.ndarray) -> np.ndarray:
    y = np.asarray(years)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("years must be a 1-D integer array")
    if y.size and (y.min() < 1000 or y.max() > 9999):
        raise ValueError("years must be four-digit years (1000..9999)")
    return y.astype(np.int64)


def make_pnc_ids(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """Unique canonical PNC IDs, one per element of ``years`` (the record-creation year)."""
    y = _as_years(years)
    serials = _unique_serials_per_group(rng, y, PNC_MAX_SERIAL, "PNC")
    check = _ALPHABET_CODES[((y % 100) * 10_000_000 + serials) % 23]
    codes = np.empty((y.size, 13), dtype=np.uint8)
    codes[:, 0:4] = _digit_codes(y, 4)
    codes[:, 4] = ord("/")
    codes[:, 5:12] = _digit_codes(serials, 7)
    codes[:, 12] = check
    return _codes_to_objects(codes)


def make_cro_numbers(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """Unique canonical CRO numbers, one per element of ``years`` (four-digit years)."""
    y = _as_years(years)
    yy = y % 100
    # Uniqueness is per two-digit year, because 1998 and 1898 print the same.
    serials = _unique_serials_per_group(rng, yy, CRO_MAX_SERIAL, "CRO")
    check = _ALPHABET_CODES[(yy * 1_000_000 + serials) % 23]
    codes = np.empty((y.size, 10), dtype=np.uint8)
    codes[:, 0:6] = _digit_codes(serials, 6)
    codes[:, 6] = ord("/")
    codes[:, 7:9] = _digit_codes(yy, 2)
    codes[:, 9] = check
    return _codes_to_objects(codes)


def _check_n(n: int, space: int, what: str) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > space:
        raise ValueError(f"cannot make {n} unique {what}: only {space} exist")


def make_prison_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unique prison numbers of the form ``A1234BC``."""
    _check_n(n, _PRISON_SPACE, "prison numbers")
    k = rng.choice(_PRISON_SPACE, size=n, replace=False).astype(np.int64)
    k, tail2 = np.divmod(k, 26)
    k, tail1 = np.divmod(k, 26)
    head, digits = np.divmod(k, 10_000)
    codes = np.empty((n, 7), dtype=np.uint8)
    codes[:, 0] = _LETTERS[head]
    codes[:, 1:5] = _digit_codes(digits, 4)
    codes[:, 5] = _LETTERS[tail1]
    codes[:, 6] = _LETTERS[tail2]
    return _codes_to_objects(codes)


def make_crns(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unique probation case reference numbers of the form ``X123456``."""
    _check_n(n, _CRN_SPACE, "CRNs")
    k = rng.choice(_CRN_SPACE, size=n, replace=False).astype(np.int64)
    head, digits = np.divmod(k, 1_000_000)
    codes = np.empty((n, 7), dtype=np.uint8)
    codes[:, 0] = _LETTERS[head]
    codes[:, 1:7] = _digit_codes(digits, 6)
    return _codes_to_objects(codes)
