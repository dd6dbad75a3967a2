"""Statistical disclosure control for everything analysts export.

Two rules, both applied by `protect` to any table before it leaves the warehouse:

1. **Small counts are suppressed.** A count from 1 to `threshold - 1` (default 10, configurable
   by `JUSTICE_DISCLOSURE_THRESHOLD`) is replaced by null and flagged; zeros are published (a
   zero reveals nothing about a person) unless `suppress_zeros`. A rate or mean computed from a
   suppressed count is suppressed with it.
2. **Secondary suppression**, so published totals cannot reveal a suppressed cell by
   subtraction. The table is read as a hypercube over its dimension columns; for every line of
   cells that sums to a published total (all cells sharing every dimension but one, the total
   being their sum over that one), a line with exactly one suppressed cell gets a second one (a
   non-zero cell if there is one, preferring cells that complete other lines, then the
   smallest). This repeats until no line has exactly one (primary plus complementary
   suppression, the standard method for published count tables). Count columns that add up to
   another on every row (`sums`: assaults = on prisoners + on staff) make each row a line too,
   so a hidden part cannot be had by subtraction from its published total.

Analysts' outputs carry pseudonymous person ids, never names or identifiers: `pseudonymise`
maps a person_id to a keyed hash (HMAC-SHA-256, first 16 hex characters) that is stable for one
key and useless without it; `assert_no_identifiers` refuses a table with a column that names or
identifies a person.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from justice.errors import ConfigError

DEFAULT_THRESHOLD = 10
IDENTIFYING_COLUMNS = frozenset({
    "forename", "forenames", "first_name", "middle_name", "middle_names", "surname", "last_name", "name",
    "dob", "date_of_birth", "birth_date", "postcode", "pnc", "pnc_id", "pnc_core", "cro", "cro_number",
    "cro_core", "prison_number", "offender_id_display", "crn", "unique_id", "record_id", "defendant_id",
    "offender_id", "person_id",
})


def threshold_from_env() -> int:
    value = os.environ.get("JUSTICE_DISCLOSURE_THRESHOLD", str(DEFAULT_THRESHOLD))
    try:
        threshold = int(value)
    except ValueError:
        raise ConfigError(f"JUSTICE_DISCLOSURE_THRESHOLD={value!r} is not a whole number") from None
    if threshold < 1:
        raise ConfigError(f"JUSTICE_DISCLOSURE_THRESHOLD={threshold}: must be at least 1")
    return threshold


def protect(table: pa.Table, *, dims: list[str], counts: list[str], derived: dict[str, list[str]] | None = None,
            sums: dict[str, list[str]] | None = None, threshold: int | None = None,
            suppress_zeros: bool = False) -> pa.Table:
    """`table` with small counts suppressed (primary and secondary) and a boolean column
    `<count>_suppressed` per count column.

    dims: the columns that identify a cell (e.g. quarter, court_type, case_type);
    counts: the count columns to protect;
    derived: columns computed from counts, each suppressed when any of its counts is
    (e.g. ``{"rate": ["reoffenders", "offenders"]}``);
    sums: count columns that are the sum of others on every row (e.g.
    ``{"assault_incidents": ["assaults_on_prisoners", "assaults_on_staff"]}``): each such row is
    one more line of cells, so a hidden part cannot be had by subtraction from its total.
    """
    threshold = threshold_from_env() if threshold is None else int(threshold)
    if threshold < 1:
        raise ConfigError(f"disclosure threshold {threshold}: must be at least 1")
    sums = sums or {}
    missing = [c for c in (*dims, *counts, *(derived or {})) if c not in table.column_names]
    if missing:
        raise ConfigError(f"disclosure control: no column(s) {', '.join(missing)} in the table "
                          f"(it has {', '.join(table.column_names)})")
    stray = sorted({c for total, parts in sums.items() for c in (total, *parts)} - set(counts))
    if stray:
        raise ConfigError(f"disclosure control: sums name {', '.join(stray)}, which are not among the counts")
    keys = [tuple(row) for row in zip(*(table.column(d).to_pylist() for d in dims))] if dims else [()] * table.num_rows
    if len(set(keys)) != len(keys):
        raise ConfigError(f"disclosure control: the dimensions {dims} do not identify one row each")
    n = table.num_rows
    values: list = []
    primary: list[bool] = []
    for count in counts:
        column = table.column(count).to_pylist()
        bad = [v for v in column if v is not None and (not isinstance(v, int) or v < 0)]
        if bad:
            raise ConfigError(f"disclosure control: {count!r} must hold non-negative whole numbers, "
                              f"found {bad[0]!r}")
        values += column
        primary += [v is not None and (0 < v < threshold or (suppress_zeros and v == 0)) for v in column]
    # Cell k is row k % n of count column k // n. Lines: along each dimension within a column,
    # and across the columns a sum ties together within a row.
    lines: list[list[int]] = []
    for c in range(len(counts)):
        for d in range(len(dims)):
            by: dict[tuple, list[int]] = {}
            for i, key in enumerate(keys):
                by.setdefault(key[:d] + key[d + 1:], []).append(c * n + i)
            lines += [cells for cells in by.values() if len(cells) > 1]
    for total, parts in sums.items():
        cols = [counts.index(total), *(counts.index(p) for p in parts)]
        lines += [[c * n + i for c in cols] for i in range(n)]
    order = [(c, keys[k]) for c, k in ((k // n, k % n) for k in range(len(values)))]
    suppressed = _secondary(values, primary, lines, order)
    out = table
    flags: dict[str, list[bool]] = {}
    for c, count in enumerate(counts):
        flags[count] = suppressed[c * n:(c + 1) * n]
        mask = pa.array(flags[count])
        out = out.set_column(out.column_names.index(count), count,
                             pc.if_else(mask, pa.scalar(None, out.column(count).type), out.column(count)))
        out = out.append_column(f"{count}_suppressed", mask)
    for column, sources in (derived or {}).items():
        hide = [any(flags[s][i] for s in sources if s in flags) for i in range(n)]
        col = out.column(column)
        out = out.set_column(out.column_names.index(column), column,
                             pc.if_else(pa.array(hide), pa.scalar(None, col.type), col))
    return out


def _secondary(values: list, suppressed: list[bool], lines: list[list[int]], order: list[tuple]) -> list[bool]:
    """Complementary suppression until no line of cells has exactly one hidden cell.

    A line is a set of cells whose sum is published (or is itself one of the cells), so one
    hidden cell in it can be had by subtraction. The complement chosen for a line is the cell
    that also completes most other lines holding exactly one hidden cell (so hidden cells form
    rectangles rather than spreading), then the smallest value, then `order`: a cheap heuristic
    for the least information lost."""
    suppressed = list(suppressed)
    member: list[list[int]] = [[] for _ in values]
    for li, cells in enumerate(lines):
        for k in cells:
            member[k].append(li)

    def hidden(li: int) -> int:
        return sum(suppressed[k] for k in lines[li])

    changed = True
    while changed:
        changed = False
        for li, cells in enumerate(lines):
            if hidden(li) != 1:
                continue
            # A zero is a complement of last resort: hiding it loses nothing, but a line of
            # zeros around one hidden cell would give that cell away.
            candidates = [k for k in cells if not suppressed[k] and values[k] is not None]
            if not candidates:
                continue
            pick = min(candidates, key=lambda k: (values[k] == 0,
                                                  -sum(hidden(m) == 1 for m in member[k] if m != li),
                                                  values[k], order[k]))
            suppressed[pick] = True
            changed = True
    return suppressed


def pseudonymise(values: Iterable[str | None], key: bytes | str) -> list[str | None]:
    """Keyed pseudonyms of person ids (HMAC-SHA-256, 16 hex characters); None stays None."""
    if not key:
        raise ConfigError("pseudonymisation needs a secret key")
    k = key.encode() if isinstance(key, str) else key
    return [None if v is None else hmac.new(k, str(v).encode(), hashlib.sha256).hexdigest()[:16] for v in values]


def assert_no_identifiers(table: pa.Table, allowed: Iterable[str] = ()) -> None:
    """Refuse a table carrying a column that names or identifies a person."""
    found = sorted(set(table.column_names) & (IDENTIFYING_COLUMNS - set(allowed)))
    if found:
        raise ConfigError(f"an analysts' export may not carry identifying column(s): {', '.join(found)} "
                          "(use pseudonymised ids)")
