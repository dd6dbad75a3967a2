"""Tables from one published file: cells added up without revealing what disclosure control hid.

The only input is the published, protected file, in which a suppressed cell is already null (its
value never reaches the explorer). A table cell adds up the published cells that match it. The
rules, each checked in this order:

1. **Not additive** ([z]): a measure that means nothing added across a dimension (an open
   caseload at quarter end added over quarters, a cohort added over overlapping breakdowns) is
   [z] in any cell that spans more than one value of it.
2. **A sum that includes a suppressed cell is [c]**, totals included. Adding only the published
   cells would give a number that, taken from a total published elsewhere (or from the "all"
   row of the same file), reveals the hidden cells by subtraction. A total the file itself
   publishes as a row (proven reoffending's ``all`` breakdown) is a published cell like any
   other: a filter chooses it, and it is shown as published.
3. A published null that was not suppressed is [x] (not available); a cell with no published
   row is [x] too.
4. **Derived measures** are never added. A ratio (a rate, a share, a rate per 1,000) is
   recomputed from its added-up numerator and denominator, and is [c] if either is, [z] if
   either is [z] or the denominator is zero. Other derived values (means, medians) are shown
   only where a cell is exactly one published row, and are [z] anywhere else.

So every number a table shows is either a published number or a function of published numbers
of cells none of which was suppressed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from justice.explore.catalogue import (
    SYMBOL_CONFIDENTIAL,
    SYMBOL_NOT_APPLICABLE,
    SYMBOL_NOT_AVAILABLE,
    Dataset,
    Measure,
)
from justice.explore.query import Query, QueryError

TOTAL = "Total"
MAX_CELLS = 20_000

FOOTNOTES = {
    SYMBOL_CONFIDENTIAL: ("[c] confidential: hidden to protect people's identities (a count "
                          "under {threshold}, a cell hidden so that one cannot be worked out "
                          "from the others, or a total or rate that includes one)."),
    SYMBOL_NOT_AVAILABLE: "[x] not available: the published file has no figure for this cell.",
    SYMBOL_NOT_APPLICABLE: ("[z] not applicable: this measure cannot be added up across the "
                            "cells this one covers (a median, a figure at a point in time, or "
                            "overlapping groups), or its rate has no one to divide by."),
}


class Cell(NamedTuple):
    """One figure: a value, or None with the GSS symbol that says why."""

    value: float | int | None
    symbol: str | None = None


@dataclass
class Table:
    """The result of a query: keys of the rows and columns (tuples of dimension values, TOTAL
    in a total row or column) and, per measure, a grid of figures and a grid of symbols.

    The grids are numpy arrays (a handful of objects per table, however many cells it has), so
    the tables kept for reuse cost the garbage collector next to nothing to walk."""

    dataset: Dataset
    query: Query
    row_keys: list[tuple[str, ...]]
    col_keys: list[tuple[str, ...]]
    figures: dict[str, np.ndarray]  # measure -> [row, col] float64, NaN where a symbol stands
    marks: dict[str, np.ndarray]  # measure -> [row, col] object: the symbol, None with a figure
    symbols: set[str] = field(default_factory=set)
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    """What callers derive from the table (a page's view of it, its JSON), kept with it while
    the table is cached: a table never changes once made."""

    def cell(self, row: tuple[str, ...], col: tuple[str, ...], measure: str) -> Cell:
        """The cell at (row, col, measure); [x] where the file has no row for it."""
        index = self.memo.get("index")
        if index is None:
            index = self.memo["index"] = ({k: i for i, k in enumerate(self.row_keys)},
                                          {k: j for j, k in enumerate(self.col_keys)})
        i, j = index[0].get(row), index[1].get(col)
        if i is None or j is None or measure not in self.figures:
            return Cell(None, SYMBOL_NOT_AVAILABLE)
        mark = self.marks[measure][i, j]
        if mark is not None:
            return Cell(None, mark)
        return Cell(_python_value(self.dataset.measures[measure], float(self.figures[measure][i, j])))

    def values(self, measure: str) -> list[float | int | None]:
        """The figures of `measure`, row by row (a row's columns in order), as the cells hold
        them: None where a symbol stands."""
        kind = self.dataset.measures[measure].kind
        marks = self.marks[measure].ravel().tolist()
        figures = self.figures[measure].ravel().tolist()
        if kind == "count":
            return [None if m is not None else round(v) for v, m in zip(figures, marks)]
        if kind == "sum":
            return [None if m is not None else round(v, 2) for v, m in zip(figures, marks)]
        return [None if m is not None else v for v, m in zip(figures, marks)]

    @property
    def measures(self) -> list[Measure]:
        """The measures shown, in the query's order."""
        return [self.dataset.measures[m] for m in self.query.measures]

    def footnotes(self) -> list[str]:
        """The footnotes of the symbols this table uses, [c] then [x] then [z]."""
        return [FOOTNOTES[s].format(threshold=self.dataset.threshold)
                for s in (SYMBOL_CONFIDENTIAL, SYMBOL_NOT_AVAILABLE, SYMBOL_NOT_APPLICABLE)
                if s in self.symbols]

    def records(self) -> list[dict]:
        """The table in long form, one record per cell: its dimension values, the measure, the
        value (None where a symbol stands) and the symbol; what every download holds. Made
        afresh each time (callers keep what they make of it, not the records)."""
        dims = [*self.query.rows, *self.query.cols]
        names = list(self.query.measures)
        values = [self.values(m) for m in names]
        marks = [self.marks[m].ravel().tolist() for m in names]
        out = []
        n = 0
        for row in self.row_keys:
            for col in self.col_keys:
                place = dict(zip(dims, (*row, *col)))
                for k, measure in enumerate(names):
                    out.append({**place, "measure": measure, "value": values[k][n],
                                "symbol": marks[k][n]})
                n += 1
        return out


def _python_value(measure: Measure, value: float) -> float | int:
    """A figure as a cell holds it: a count whole, a sum to 2 places, a ratio as worked out."""
    if measure.kind == "count":
        return round(value)
    return round(value, 2) if measure.kind == "sum" else value


_HIDDEN = "__hidden__"
_MISSING = "__missing__"
_SIZE = "__rows__"
_SPAN = "__span__"
_FIRST = "__first__"
_FIRST_HIDDEN = "__first_hidden__"


@dataclass
class _Columns:
    """A dataset's columns as arrays, made once per dataset: each dimension as integer codes
    (into ``Dataset.values``), each measure as float64 (NaN where null) with its suppressed
    flags and its flags of nulls that were not suppressed."""

    codes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    hidden: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]  # per dimension, its values (object array): code -> value
    index: dict[str, dict[str, int]]  # per dimension, value -> code


def _columns(dataset: Dataset) -> _Columns:
    cached = getattr(dataset, "_columns", None)
    if cached is not None:
        return cached
    frame = dataset.frame
    labels = {d: np.array(dataset.values[d], dtype=object) for d in dataset.dims}
    codes = {d: np.searchsorted(labels[d], frame[d].to_numpy(object)).astype(np.int64)
             for d in dataset.dims}
    values, hidden, missing = {}, {}, {}
    for name in dataset.measures:
        values[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        flag = f"{name}_suppressed"
        hidden[name] = (frame[flag].fillna(False).to_numpy(bool) if flag in frame
                        else np.zeros(len(frame), bool))
        missing[name] = np.isnan(values[name]) & ~hidden[name]
    # The sources of published derived values (a median's count) may not be measures.
    for measure in dataset.measures.values():
        for source in measure.sources:
            if source not in values and source in frame:
                values[source] = pd.to_numeric(frame[source], errors="coerce").to_numpy(
                    np.float64, na_value=np.nan)
                flag = f"{source}_suppressed"
                hidden[source] = (frame[flag].fillna(False).to_numpy(bool) if flag in frame
                                  else np.zeros(len(frame), bool))
    index = {d: {v: i for i, v in enumerate(dataset.values[d])} for d in dataset.dims}
    cached = dataset._columns = _Columns(codes, values, hidden, missing, labels, index)
    return cached


def _base_columns(dataset: Dataset, measures: list[str]) -> list[str]:
    """The counts and sums the measures add up."""
    need: list[str] = []
    for name in measures:
        m = dataset.measures[name]
        for n in (name,) if m.kind in ("count", "sum") else m.sources if m.kind == "ratio" else ():
            if n not in need:
                need.append(n)
    return need


@dataclass
class _Groups:
    """The groups of one aggregation: per key dimension each group's value (as its code), and
    per name an array over groups."""

    codes: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    size: int


def _aggregate(columns: _Columns, rows: np.ndarray, keys: list[str], dataset: Dataset,
               measures: list[str]) -> _Groups:
    """The groups of `keys` among the published rows `rows` (indices): per group its codes, the
    sums, hidden and missing flags of the counts and sums the measures need, how many values
    it spans of each dimension a measure cannot be added across, the derived values of its
    first row (used where the group is one row), and its row count."""
    if len(rows) == 0:
        return _Groups({}, {}, 0)
    if keys:
        combined = np.zeros(len(rows), np.int64)
        for d in keys:
            combined = combined * len(dataset.values[d]) + columns.codes[d][rows]
        _, first, group = np.unique(combined, return_index=True, return_inverse=True)
    else:
        first, group = np.zeros(1, np.int64), np.zeros(len(rows), np.int64)
    n = len(first)
    out: dict[str, np.ndarray] = {_SIZE: np.bincount(group, minlength=n)}
    base = _base_columns(dataset, measures)
    for name in base:
        out[name] = np.bincount(group, weights=np.nan_to_num(columns.values[name][rows]), minlength=n)
        out[_HIDDEN + name] = np.bincount(group, weights=columns.hidden[name][rows], minlength=n) > 0
        out[_MISSING + name] = np.bincount(group, weights=columns.missing[name][rows], minlength=n) > 0
    for d in sorted({d for name in base for d in dataset.not_additive.get(name, ())}):
        width = len(dataset.values[d])
        pairs = np.unique(group * width + columns.codes[d][rows])
        out[_SPAN + d] = np.bincount(pairs // width, minlength=n)
    at_first = rows[first]
    for name in measures:
        measure = dataset.measures[name]
        if measure.kind in ("ratio", "published"):
            out[_FIRST + name] = columns.values[name][at_first]
        if measure.kind == "published":
            for source in measure.sources:
                if source in columns.values:
                    out[_FIRST + source] = columns.values[source][at_first]
                    out[_FIRST_HIDDEN + source] = columns.hidden[source][at_first]
    return _Groups({d: columns.codes[d][at_first] for d in keys}, out, n)


def _symbols(*rules: tuple[np.ndarray, str], n: int) -> np.ndarray:
    """Per group, the symbol of the first rule (mask, symbol) that holds; None where none."""
    out = np.full(n, None, dtype=object)
    for mask, symbol in reversed(rules):
        out = np.where(mask, symbol, out)
    return out


def _count_figures(g: _Groups, name: str, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Values (float) and symbols of a count or sum per group: [z] across a dimension it cannot
    be added over, [c] with a suppressed cell, [x] with a published null."""
    spans = [g.arrays[_SPAN + d] > 1 for d in dataset.not_additive.get(name, ())]
    not_additive = np.logical_or.reduce(spans) if spans else np.zeros(g.size, bool)
    symbols = _symbols((not_additive, SYMBOL_NOT_APPLICABLE),
                       (g.arrays[_HIDDEN + name], SYMBOL_CONFIDENTIAL),
                       (g.arrays[_MISSING + name], SYMBOL_NOT_AVAILABLE), n=g.size)
    return g.arrays[name], symbols


def _measure_figures(g: _Groups, measure: Measure, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Values and symbols of a measure per group (see the module doc for the rules)."""
    if measure.kind in ("count", "sum"):
        return _count_figures(g, measure.name, dataset)
    first = g.arrays[_FIRST + measure.name]
    single = g.arrays[_SIZE] == 1
    published = single & ~np.isnan(first)
    if measure.kind == "ratio":
        (num, num_sym), (den, den_sym) = (_count_figures(g, s, dataset) for s in measure.sources)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(published, first, num / np.where(den == 0, np.nan, den) * measure.scale)
        either = lambda symbol: (num_sym == symbol) | (den_sym == symbol)
        symbols = _symbols((published, None), (either(SYMBOL_NOT_APPLICABLE), SYMBOL_NOT_APPLICABLE),
                           (either(SYMBOL_CONFIDENTIAL), SYMBOL_CONFIDENTIAL),
                           (either(SYMBOL_NOT_AVAILABLE), SYMBOL_NOT_AVAILABLE),
                           (den == 0, SYMBOL_NOT_APPLICABLE), n=g.size)
        return values, symbols
    # A published mean or median: only where the cell is one published row.
    hidden = [g.arrays[_FIRST_HIDDEN + s] for s in measure.sources if _FIRST_HIDDEN + s in g.arrays]
    zero = [g.arrays[_FIRST + s] == 0 for s in measure.sources if _FIRST + s in g.arrays]
    symbols = _symbols((~single, SYMBOL_NOT_APPLICABLE), (published, None),
                       (np.logical_or.reduce(hidden) if hidden else np.zeros(g.size, bool),
                        SYMBOL_CONFIDENTIAL),
                       (np.logical_or.reduce(zero) if zero else np.zeros(g.size, bool),
                        SYMBOL_NOT_APPLICABLE),
                       (np.ones(g.size, bool), SYMBOL_NOT_AVAILABLE), n=g.size)
    return first, symbols


_results: OrderedDict[tuple, Table] = OrderedDict()
_results_lock = threading.Lock()
RESULTS_CACHED = 512  # published files change only at a build: a table is worth keeping


def kept_table(dataset: Dataset, query: Query) -> Table | None:
    """The table of `query` if it is among those kept (see `run_query`), else None."""
    key = (dataset.name, dataset.published_at, id(dataset), query)
    with _results_lock:
        table = _results.get(key)
        if table is not None:
            _results.move_to_end(key)
    return table


def run_query(dataset: Dataset, query: Query) -> Table:
    """The table `query` asks of `dataset` (see the module doc for the rules); QueryError if it
    would be too big to show."""
    key = (dataset.name, dataset.published_at, id(dataset), query)
    with _results_lock:
        if key in _results:
            _results.move_to_end(key)
            return _results[key]
    table = _compute(dataset, query)
    with _results_lock:
        _results[key] = table
        while len(_results) > RESULTS_CACHED:
            _results.popitem(last=False)
    return table


def _compute(dataset: Dataset, query: Query) -> Table:
    columns = _columns(dataset)
    keep = np.ones(dataset.rows, bool)
    for dim, values in query.filters:
        index = columns.index[dim]
        keep &= np.isin(columns.codes[dim], [index[v] for v in values])
    selected = np.nonzero(keep)[0]
    rows, cols, measures = list(query.rows), list(query.cols), list(query.measures)
    body = _aggregate(columns, selected, [*rows, *cols], dataset, measures)
    # A row (column) is one combination of its dimensions' codes, as one mixed-radix number:
    # codes follow the sorted values, so these numbers sort as the keys do.
    row_codes = _combined(body, rows, dataset)
    col_codes = _combined(body, cols, dataset)
    row_order = np.unique(row_codes) if rows else np.zeros(1, np.int64)
    col_order = np.unique(col_codes) if cols else np.zeros(1, np.int64)
    row_keys = _keys(row_order, rows, columns, dataset)
    col_keys = _keys(col_order, cols, columns, dataset)
    size = len(row_keys) * len(col_keys) * len(measures)
    if size > MAX_CELLS:
        raise QueryError(f"the table would have {size:,} cells; the most is {MAX_CELLS:,}: "
                         "filter it, or put fewer dimensions in the rows and columns")
    total_row = query.totals and bool(rows) and body.size > 0
    total_col = query.totals and bool(cols) and body.size > 0
    if total_row:
        row_keys.append((TOTAL,) * len(rows))
    if total_col:
        col_keys.append((TOTAL,) * len(cols))
    # The body, and with totals the total row (added over the row dimensions), the total
    # column (over the column dimensions) and the grand total.
    groupings: list[tuple[list[str], list[str], _Groups | None]] = [(rows, cols, body)]
    if query.totals:
        if rows:
            groupings.append(([], cols, None))
        if cols:
            groupings.append((rows, [], None))
        if rows and cols:
            groupings.append(([], [], None))
    shape = (len(row_keys), len(col_keys))
    # A combination with no published row stays [x].
    figures = {m: np.full(shape, np.nan) for m in measures}
    marks = {m: np.full(shape, SYMBOL_NOT_AVAILABLE, dtype=object) for m in measures}
    for by_rows, by_cols, groups in groupings:
        if groups is None:
            groups = _aggregate(columns, selected, [*by_rows, *by_cols], dataset, measures)
        if not groups.size:
            continue
        at_row = (np.searchsorted(row_order, _combined(groups, by_rows, dataset)) if by_rows
                  else np.full(groups.size, len(row_keys) - 1 if rows else 0))
        at_col = (np.searchsorted(col_order, _combined(groups, by_cols, dataset)) if by_cols
                  else np.full(groups.size, len(col_keys) - 1 if cols else 0))
        for name in measures:
            values, symbols = _measure_figures(groups, dataset.measures[name], dataset)
            figures[name][at_row, at_col] = np.where(np.equal(symbols, None), values, np.nan)
            marks[name][at_row, at_col] = symbols
    used: set[str] = set()
    for name in measures:
        used.update(marks[name].ravel().tolist())
    used.discard(None)
    return Table(dataset, query, row_keys, col_keys, figures, marks, used)


def _combined(groups: _Groups, dims: list[str], dataset: Dataset) -> np.ndarray:
    """Per group, its codes of `dims` as one mixed-radix number (the first dimension most
    significant)."""
    out = np.zeros(groups.size, np.int64)
    for d in dims if groups.size else ():
        out = out * len(dataset.values[d]) + groups.codes[d]
    return out


def _keys(order: np.ndarray, dims: list[str], columns: _Columns,
          dataset: Dataset) -> list[tuple[str, ...]]:
    """The keys (tuples of values) of the mixed-radix numbers `order`, in its order."""
    if not dims:
        return [()]
    parts = []
    rest = order
    for d in reversed(dims):
        width = len(dataset.values[d])
        parts.append(columns.labels[d][rest % width])
        rest = rest // width
    return list(zip(*(p.tolist() for p in reversed(parts))))
