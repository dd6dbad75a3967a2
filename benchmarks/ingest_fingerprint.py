"""Fingerprint a home's landed lake, to show a change to landing left the lake as it was.

Run: .venv/bin/python benchmarks/ingest_fingerprint.py HOME [--out FILE] [--compare FILE]
For every raw table under HOME/lake/raw: its row count, each landed file's column names and
types (the distinct schemas), and an order-independent checksum of its rows (the sum of DuckDB's
`hash` of each row, modulo 2**64, and the count of distinct row hashes). Values that differ from
one run to the next by design are left out of the checksum: the load's id and extraction time
(`_load_id`, `_extracted_at`) and a loads table's `load_id`, `started_at` and `finished_at`.
The ledger in dlt's state (each file's SHA-256 and row count) is fingerprinted too.
`--compare` prints the tables whose fingerprint differs from an earlier `--out` and exits 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import zlib
from pathlib import Path

RUN_VALUES = {"_load_id", "_extracted_at"}
LOADS_RUN_VALUES = RUN_VALUES | {"load_id", "started_at", "finished_at"}


def table_fingerprint(con, folder: Path) -> dict:
    """Rows, schemas and checksum of one raw table's Parquet files."""
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet"))
    schemas = sorted({json.dumps([(f.name, str(f.type)) for f in pq.read_schema(p)])
                      for p in files})
    source = f"read_parquet('{folder}/*.parquet', union_by_name = true)"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    skip = LOADS_RUN_VALUES if folder.name.endswith("__loads") else RUN_VALUES
    kept = [c for c in columns if c not in skip]
    row = "row(" + ", ".join(f'"{c}"' for c in kept) + ")"
    n, total, distinct = con.execute(
        f"SELECT count(*), sum(hash({row})::HUGEINT) % 18446744073709551616, "
        f"count(DISTINCT hash({row})) FROM {source}").fetchone()
    return {"rows": n, "schemas": [json.loads(s) for s in schemas], "checksum": str(total),
            "distinct_rows": distinct}


def ledger(raw: Path) -> dict:
    """Each system's file ledger from dlt's newest saved state: file -> (sha256, rows)."""
    out: dict[str, dict] = {}
    for path in sorted((raw / "_dlt_pipeline_state").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            state = json.loads(zlib.decompress(base64.b64decode(rec["state"])))
            for source in state.get("sources", {}).values():
                for name, res in source.get("resources", {}).items():
                    files = {f: [v.get("sha256"), v.get("rows")]
                             for f, v in res.get("files", {}).items()}
                    if files or res.get("cursors"):
                        out[name] = {"files": files, "cursors": res.get("cursors", {})}
    return out


def fingerprint(home: Path) -> dict:
    """The whole lake's fingerprint (see the module docstring)."""
    import duckdb

    raw = home / "lake" / "raw"
    con = duckdb.connect()
    tables = {}
    for folder in sorted(p for p in raw.iterdir() if p.is_dir()):
        if folder.name.startswith("_dlt") or not any(folder.glob("*.parquet")):
            continue
        tables[folder.name] = table_fingerprint(con, folder)
    return {"tables": tables, "ledger": ledger(raw)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--compare", type=Path, default=None)
    args = parser.parse_args()
    fp = fingerprint(args.home)
    if args.out:
        args.out.write_text(json.dumps(fp, indent=1, sort_keys=True))
    for name, t in fp["tables"].items():
        print(f"{name:<45} {t['rows']:>11,} rows  {len(t['schemas'])} schema(s)  {t['checksum']}")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = sorted(n for n in set(before["tables"]) | set(fp["tables"])
                        if before["tables"].get(n) != fp["tables"].get(n))
        if before["ledger"] != fp["ledger"]:
            differ.append("(ledger)")
        print("identical to " + str(args.compare) if not differ else "DIFFERENT: " + ", ".join(differ))
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
