"""A table query, parsed from a query string and checked against its dataset.

The query string holds the whole query, so a table can be bookmarked and shared::

    measure=receipts&measure=disposals&row=quarter&col=court_type&f.court_type=crown&totals=1

``measure`` (one or more) names what the cells show; ``row`` and ``col`` put dimensions in the
rows and columns (in the order given); ``f.<dimension>`` keeps only the values given (none: all);
``totals=1`` adds a total row and column. Every name and value must be one the dataset declares:
anything else (an unknown column, SQL, a path) is refused with a `QueryError` that says what.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from justice.errors import QueryError
from justice.explore.catalogue import Dataset

FILTER_PREFIX = "f."
MAX_PARAMETERS = 1000
MAX_SHOWN = 40  # characters of a refused name or value repeated in a message


@dataclass(frozen=True)
class Query:
    """What a table shows: measures, row and column dimensions, filters, totals."""

    measures: tuple[str, ...]
    rows: tuple[str, ...] = ()
    cols: tuple[str, ...] = ()
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (dimension, values), dataset order
    totals: bool = False

    def filter_values(self, dim: str) -> tuple[str, ...]:
        """The values kept of `dim` (empty: every value)."""
        return dict(self.filters).get(dim, ())

    def params(self) -> list[tuple[str, str]]:
        """The query as query-string pairs, in a fixed order (so equal queries have equal URLs)."""
        pairs = [("measure", m) for m in self.measures]
        pairs += [("row", d) for d in self.rows] + [("col", d) for d in self.cols]
        for dim, values in self.filters:
            pairs += [(FILTER_PREFIX + dim, v) for v in values]
        if self.totals:
            pairs.append(("totals", "1"))
        return pairs

    def query_string(self) -> str:
        """`params` encoded for a URL."""
        return urlencode(self.params())


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


def default_query(dataset: Dataset) -> Query:
    """The table a dataset opens with: datasets.yaml's ``default``, or (when it names a value
    this build did not publish) the first measure along the time dimension."""
    if dataset.default_query:
        try:
            return parse_query(dataset, dataset.default_query)
        except QueryError:
            pass
    return Query(measures=tuple(list(dataset.measures)[:1]),
                 rows=(dataset.time,) if dataset.time else ())


def parse_query(dataset: Dataset, pairs: list[tuple[str, str]] | str) -> Query:
    """The query of `pairs` (or a query string) on `dataset`; an empty one is the dataset's
    default table. Raises QueryError naming the first thing that is wrong."""
    if isinstance(pairs, str):
        pairs = parse_qsl(pairs, keep_blank_values=True)
    if len(pairs) > MAX_PARAMETERS:
        raise QueryError(f"the query has {len(pairs)} parameters; the most is {MAX_PARAMETERS}")
    if not pairs:
        return default_query(dataset)
    measures: list[str] = []
    rows: list[str] = []
    cols: list[str] = []
    filters: dict[str, list[str]] = {}
    totals = False
    dims = set(dataset.dims)
    for name, value in pairs:
        if name == "measure":
            if value not in dataset.measures:
                raise QueryError(f"measure: {dataset.name} has no measure {_shown(value)} "
                                 f"(it has {', '.join(dataset.measures)})")
            if value not in measures:
                measures.append(value)
        elif name in ("row", "col"):
            if value not in dims:
                raise QueryError(f"{name}: {dataset.name} has no dimension {_shown(value)} "
                                 f"(it has {', '.join(dataset.dims)})")
            target = rows if name == "row" else cols
            if value not in target:
                target.append(value)
        elif name.startswith(FILTER_PREFIX):
            dim = name[len(FILTER_PREFIX):]
            if dim not in dims:
                raise QueryError(f"{_shown(name)}: {dataset.name} has no dimension {_shown(dim)} "
                                 f"to filter (it has {', '.join(dataset.dims)})")
            if value not in dataset.values[dim]:
                raise QueryError(f"{name}: no {dim} {_shown(value)} in {dataset.name}")
            kept = filters.setdefault(dim, [])
            if value not in kept:
                kept.append(value)
        elif name == "totals":
            if value.lower() not in ("", "0", "1", "yes", "no", "on", "off", "true", "false"):
                raise QueryError(f"totals: {_shown(value)} is not yes or no (use totals=1)")
            totals = value.lower() in ("1", "yes", "on", "true")
        else:
            raise QueryError(f"unknown parameter {_shown(name)}: a query takes measure, row, col, "
                             f"totals and {FILTER_PREFIX}<dimension>")
    if not measures:
        raise QueryError("measure: choose at least one measure")
    both = [d for d in rows if d in cols]
    if both:
        raise QueryError(f"{both[0]} is in both the rows and the columns: choose one")
    ordered = tuple((d, tuple(v for v in dataset.values[d] if v in filters[d]))
                    for d in dataset.dims if d in filters)
    return Query(tuple(measures), tuple(rows), tuple(cols), ordered, totals)
