"""The analysts' outputs of `justice build`: disclosure-controlled "data tool" files (Parquet and
CSV) of every mart named in exports.yaml, and charts of the headline series, in HOME/reports/.

Every file is protected before it is written (justice.transform.exports). Outputs are written to a
new folder and swapped in whole, so a failed publish leaves the previous outputs as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from justice import disclosure
from justice.errors import TransformError
from justice.settings import Settings
from justice.transform import charts
from justice.transform.exports import exports, protect_export, pseudonym_key, read_mart


def publish(settings: Settings, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Write every export and chart to HOME/reports/data and HOME/reports/charts; return the
    reports folder. A manifest (data/manifest.json) lists each file with its rows, suppressed
    cells and the threshold used."""
    specs = exports()
    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    work = reports / f".publish-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    (work / "charts").mkdir()
    threshold = disclosure.threshold_from_env()
    key = pseudonym_key(settings)
    files: dict[str, dict] = {}
    total = len(specs) + len(charts.CHARTS)
    done = 0
    published: dict[str, pa.Table] = {}
    try:
        for name, spec in specs.items():
            table = protect_export(read_mart(settings, name), spec, key=key, threshold=threshold)
            published[name] = table
            pq.write_table(table, work / "data" / f"{name}.parquet")
            pacsv.write_csv(table, work / "data" / f"{name}.csv")
            suppressed = {c: int(pc.sum(table.column(f"{c}_suppressed")).as_py() or 0) for c in spec.counts}
            files[name] = {"title": spec.title, "rows": table.num_rows, "person_level": spec.person_level,
                           "suppressed_cells": suppressed, "columns": table.column_names}
            done += 1
            if progress:
                progress(f"data {name}", done, total)
        for chart in charts.CHARTS:
            chart(settings, work / "charts", threshold, published)
            done += 1
            if progress:
                progress(f"chart {chart.__name__}", done, total)
        manifest = {"published_at": datetime.now(UTC).isoformat(timespec="seconds"), "threshold": threshold,
                    "files": files}
        (work / "data" / "manifest.json").write_text(json.dumps(manifest, indent=2))
        _swap(reports, work, ("data", "charts"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return reports


def _swap(reports: Path, work: Path, subs: tuple[str, ...]) -> None:
    """Put work/<sub> in place of reports/<sub> for every sub, or, if any move fails, put every
    previous folder back as it was."""
    placed: list[str] = []
    try:
        for sub in subs:
            if (reports / sub).exists():
                os.replace(reports / sub, work / f"{sub}.old")
        for sub in subs:
            os.replace(work / sub, reports / sub)
            placed.append(sub)
    except OSError as exc:
        for sub in placed:
            shutil.rmtree(reports / sub, ignore_errors=True)
        for sub in subs:
            if (work / f"{sub}.old").exists():
                os.replace(work / f"{sub}.old", reports / sub)
        raise TransformError(f"could not put the new outputs in {reports}: {exc}; the previous outputs are kept") from exc
