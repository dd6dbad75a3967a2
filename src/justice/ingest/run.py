"""`justice ingest`: land every legacy system (or one), refresh the engine's raw views over the
lake, then build staging, quarantine and the reconciliation with dbt (its tests included)."""

from __future__ import annotations

import datetime as dt

from justice.engine import engine_for
from justice.errors import JusticeError
from justice.ingest.landing import FileResult, LoadReport, Progress, Workers, land_system
from justice.settings import Settings
from justice.sources.spec import specs_for
from justice.transform.build import stage


def ingest(settings: Settings, system: str | None = None, *, progress: Progress = lambda *_: None) -> list[LoadReport]:
    """Land each system in turn; one system's failure is reported and the others still load."""
    reports = []
    with Workers() as workers:  # one set of worker processes for every system
        for spec in specs_for(settings, system):
            try:
                reports.append(land_system(spec, settings, progress=progress, workers=workers))
            except JusticeError as exc:
                now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                reports.append(LoadReport(system=spec.system, load_id="", started_at=now, finished_at=now,
                                          files=[FileResult(file=spec.files or spec.url or "", error=str(exc))]))
    every_spec = specs_for(settings)
    with engine_for(settings) as engine:
        tables = engine.refresh_raw_views(every_spec)
        # Staging covers every system that has landed, not only this run's, so it is always whole.
        stage(settings, every_spec, tables, engine=engine)
    return reports
