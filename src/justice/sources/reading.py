"""What every reader yields: batches of source values as strings plus lineage, and rejects.

A reader never drops a row silently. Each row it reads is either in a batch's `rows` or in its
`rejects` with the rule it broke and a plain-English reason; problems that make a whole file
unreadable (missing required column, empty, unreadable) raise SourceError/SchemaDriftError with
the file, the column and what to do, so the caller can skip that file and load the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from justice.sources.spec import LINEAGE_COLUMNS, SourceSpec

REJECT_SCHEMA = pa.schema([
    ("_system", pa.string()), ("_table", pa.string()), ("_file", pa.string()), ("_locator", pa.string()),
    ("_load_id", pa.string()), ("_extracted_at", pa.string()),
    ("rule", pa.string()), ("reason", pa.string()), ("raw", pa.string()),
])
"""Read-level rejects: lineage, the rule broken (e.g. `ragged_row`), a reason, the raw record text
(bytes that cannot be decoded are written as \\xNN escapes, so nothing is lost)."""


@dataclass(frozen=True)
class Lineage:
    """The load a batch belongs to."""

    load_id: str
    extracted_at: str
    """ISO timestamp of the extraction (the caller's clock, not the reader's)."""


@dataclass
class Batch:
    """Rows of one raw table from one source file (or database table), plus what was set aside."""

    table: str
    """Our table name (TableSpec.name)."""
    rows: pa.Table
    """Every field as pa.string() (our names), then the LINEAGE_COLUMNS."""
    rejects: pa.Table = field(default_factory=lambda: REJECT_SCHEMA.empty_table())
    new_columns: tuple[str, ...] = ()
    """Source columns the spec does not declare: kept (under a snake_case name) and reported."""
    cursor: str | None = None
    """For incremental sources: the highest cursor value seen in this batch."""


class Reader(Protocol):
    """A format reader: `read(spec, path_or_url, lineage, cursor=..., relative_name=...)` yields
    Batches. `relative_name` is the file's name relative to the system folder (lineage `_file`);
    the caller commits a file's rows only if the generator finishes without raising."""

    def __call__(self, spec: SourceSpec, location: str, lineage: Lineage, *,
                 cursor: str | None = None, relative_name: str | None = None) -> Iterator[Batch]: ...


def lineage_arrays(spec: SourceSpec, table: str, file: str, locators: list[str] | pa.Array,
                   lineage: Lineage) -> dict[str, pa.Array]:
    """The LINEAGE_COLUMNS for n rows of one table of one file."""
    n = len(locators)

    def constant(value: str) -> pa.Array:
        # Repeated in Arrow: a Python list of n copies costs more than reading the rows did.
        return pa.repeat(pa.scalar(value, pa.string()), n)

    values = {
        "_system": constant(spec.system),
        "_table": constant(table),
        "_file": constant(file),
        "_locator": pa.array(locators, pa.string()),
        "_load_id": constant(lineage.load_id),
        "_extracted_at": constant(lineage.extracted_at),
    }
    assert tuple(values) == LINEAGE_COLUMNS
    return values


def snake_name(name: str) -> str:
    """A source's column or element name in snake_case (CamelCase split; other characters to _)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()


def extra_column(source_name: str, taken: set[str], fallback: str) -> str:
    """The raw name of a source column the spec does not declare: x_<snake>, made unique in
    `taken` (which it joins); `fallback` names a column whose header is blank."""
    base = "x_" + (snake_name(source_name) or fallback)
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name
