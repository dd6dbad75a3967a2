"""Write the truth tables as Parquet, byte-identically for the same params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from justice.sim import one_offs
from justice.sim.courts import NONE

DATE_COLUMNS_END = ("_date", "dob")


def to_arrow(columns: dict[str, np.ndarray]) -> pa.Table:
    """One truth table as Arrow: day numbers become dates, NaN and sentinels become nulls."""
    arrays = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if name.endswith(DATE_COLUMNS_END):
            days = values.astype(np.int64)
            mask = days == NONE
            arrays[name] = pa.array(np.where(mask, 0, days).astype(np.int32), type=pa.date32(), mask=mask)
        elif values.dtype.kind == "S":  # fixed-width ASCII ids (sim/one_offs.py)
            arrays[name] = pa.array(values).cast(pa.string())
        elif values.dtype == object:
            arrays[name] = pa.array(values.tolist(), type=pa.string())
        elif values.dtype.kind == "f":
            arrays[name] = pa.array(values, mask=np.isnan(values))
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


# One-off summary cases turned into the careers' tables' rows at a time (sim/one_offs.py): a
# million-person world holds about three million.
ONE_OFF_CHUNK = 250_000


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with `schema`'s columns in its order and types; a column it lacks is all null."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def write_truth(tables: dict[str, dict[str, np.ndarray]], params: dict, calibration: list[dict],
                out: Path) -> list[Path]:
    """Write `out/truth/<table>.parquet`, `params.json` and `calibration.json`.

    The one-off summary cases (`one_off_cases`) are written as their own table and also as rows
    of persons, court_cases, offences, hearings and disposals after the careers' rows, made a
    slice at a time, so every reader of those tables sees the whole world.
    """
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    written = []
    one_off = tables.get("one_off_cases")
    n_one_off = len(one_off["case_id"]) if one_off is not None else 0
    writers: dict[str, tuple[pq.ParquetWriter, pa.Schema]] = {}
    try:
        for name in sorted(tables):
            path = truth / f"{name}.parquet"
            table = to_arrow(tables[name])
            written.append(path)
            if n_one_off and name in one_offs.TRUTH_TABLES:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd", write_statistics=True)
                writers[name] = (writer, table.schema)
                writer.write_table(table)
            else:
                # No statistics timestamps or writer-dependent metadata: same input, same bytes.
                pq.write_table(table, path, compression="zstd", write_statistics=True)
            del table
        for lo in range(0, n_one_off, ONE_OFF_CHUNK):
            rows = one_offs.truth_rows(one_off, lo, min(n_one_off, lo + ONE_OFF_CHUNK))
            for name, (writer, schema) in writers.items():
                writer.write_table(conform(to_arrow(rows[name]), schema))
    finally:
        for writer, _ in writers.values():
            writer.close()
    (truth / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    (truth / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    return written + [truth / "params.json", truth / "calibration.json"]
