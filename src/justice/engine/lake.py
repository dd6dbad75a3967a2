"""What every engine needs to know about the lake, read from its files without a query engine:
which raw tables have landed, which loads completed, and which columns a source spec declares.

The lake is the contract between landing and the engines: Parquet under HOME/lake/raw/<table>/,
one file per load and part, named `<load_id>.<part>.parquet`, and dlt's `_dlt_loads/*.jsonl`
listing each load with status 0 once it completed. A file of a load that never completed (a run
killed part-way) is never read by any engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

from justice.errors import SourceError
from justice.settings import Settings

_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")

# The load id in a landed file's name: HOME/lake/raw/<table>/<load_id>.<part>.parquet
LOAD_ID_IN_FILE = r"/([0-9]+\.[0-9]+)\.[^/]*$"


def raw_dir(settings: Settings) -> Path:
    """HOME/lake/raw, resolved (engines read it by absolute path)."""
    return (settings.lake_dir / "raw").resolve()


def raw_tables(settings: Settings) -> list[str]:
    """Raw tables present in the lake (dlt's own bookkeeping tables excluded)."""
    raw = raw_dir(settings)
    if not raw.is_dir():
        return []
    return sorted(p.name for p in raw.iterdir()
                  if p.is_dir() and _TABLE.match(p.name) and any(p.glob("*.parquet")))


def completed_loads(settings: Settings) -> list[str]:
    """Ids of the loads dlt recorded as completed (status 0), oldest first."""
    folder = raw_dir(settings) / "_dlt_loads"
    if not folder.is_dir():
        return []
    done = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if int(entry["status"]) == 0:
                    done.append(str(entry["load_id"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(f"{path}:{n}: not a dlt load record ({exc})") from None
    return sorted(set(done), key=float)


def declared_columns(specs) -> dict[str, list[str]]:
    """raw table name -> the columns its spec declares (parent keys and fields).

    A column a spec declares but no landed file holds (a field added to the spec after those
    loads: older extracts did not carry it) is in the raw view as null, so staging generated from
    the current spec reads a lake landed under an earlier one."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        for table in spec.tables:
            names = [k for k in table.parent_key if k not in {f.name for f in table.fields}]
            out[f"{spec.system}__{table.name}"] = [*names, *(f.name for f in table.fields)]
    return out
