"""A tiny line-per-row reader for testing landing independently of the real formats.

Each line is `key,value`; a line `BAD` is a row-level reject; a file whose first line is
`BROKEN` raises SourceError after yielding a batch (a file that fails part-way); a file whose
first line is `SLOW` writes a marker file named by JUSTICE_TEST_MARKER and sleeps (to be killed).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa

from justice.errors import SourceError
from justice.sources.reading import REJECT_SCHEMA, Batch, lineage_arrays
from justice.sources.spec import parse_spec

SPEC = parse_spec({"system": "lines", "format": "csv", "files": "*.txt", "tables": [
    {"name": "items", "record_key": ["key"], "fields": [
        {"source": "key", "name": "key", "required": True}, {"source": "value", "name": "value"}]}]},
    "lines.yaml")


def read(spec, location, lineage, *, cursor=None, relative_name=None):
    name = relative_name or Path(location).name
    lines = Path(location).read_text().splitlines()
    if lines and lines[0] == "SLOW":
        Path(os.environ["JUSTICE_TEST_MARKER"]).write_text("reading")
        time.sleep(60)
    good = [(i + 1, ln) for i, ln in enumerate(lines) if ln not in ("BAD", "BROKEN", "SLOW")]
    bad = [(i + 1, ln) for i, ln in enumerate(lines) if ln == "BAD"]
    rows = pa.table({"key": [ln.split(",")[0] for _, ln in good], "value": [ln.split(",")[1] for _, ln in good],
                     **lineage_arrays(spec, "items", name, [f"line {i}" for i, _ in good], lineage)})
    rejects = pa.table({**lineage_arrays(spec, "items", name, [f"line {i}" for i, _ in bad], lineage),
                        "rule": ["bad_line"] * len(bad), "reason": ["the line says BAD"] * len(bad),
                        "raw": [ln for _, ln in bad]}, schema=REJECT_SCHEMA)
    yield Batch(table="items", rows=rows, rejects=rejects)
    if lines and lines[0] == "BROKEN":
        raise SourceError(f"{name}: broken part-way; re-extract it")
