"""Write the truth tables as Parquet, byte-identically for the same params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def write_truth(tables: dict[str, dict[str, np.ndarray]], params: dict, calibration: list[dict],
                out: Path) -> list[Path]:
    """Write `out/truth/<table>.parquet`, `params.json` and `calibration.json`."""
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(tables):
        path = truth / f"{name}.parquet"
        # No statistics timestamps or writer-dependent metadata: same input, same bytes.
        pq.write_table(to_arrow(tables[name]), path, compression="zstd", write_statistics=True)
        written.append(path)
    (truth / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    (truth / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    return written + [truth / "params.json", truth / "calibration.json"]
