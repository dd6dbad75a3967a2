"""The transform step's entry points. `stage`: what `justice ingest` runs after landing (the
generated staging, quarantine and audit models, with their tests). `build` (`justice build`): the
analysts' datasets: dbt seeds (versioned reference data), the canonical `core` model keyed on
person_id, and the `marts`, with every dbt test, on the warehouse that `justice ingest` and
`justice link` filled. `docs`: the dbt docs site."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from justice.errors import TransformError
from justice.ingest import warehouse
from justice.settings import Settings
from justice.sources.spec import SourceSpec, specs_for
from justice.transform import publish
from justice.transform.dbt_project import write_project
from justice.transform.dbt_runner import run_dbt

BUILD_SELECTION = ("path:seeds", "path:models/core", "path:models/marts")

# What `justice ingest` builds; core and marts need linkage first and are `justice build`'s.
STAGING_SELECTION = ("path:models/staging", "path:models/quarantine", "path:models/audit")


def stage(settings: Settings, specs: list[SourceSpec], raw_tables: list[str]) -> Path:
    """Generate the staging project for what has landed and run `dbt build` (models and tests)."""
    project = write_project(settings, specs, raw_tables)
    run_dbt(project, "build", "--select", *STAGING_SELECTION)
    return project


def build(settings: Settings, progress: Callable[[str, int, int], None] | None = None,
          *, outputs: bool = True) -> Path:
    """Write the dbt working project, run `dbt build` on seeds, core and marts (every model and
    dbt test), then publish the disclosure-controlled data tool files and charts in
    HOME/reports/ (justice.transform.publish) unless `outputs` is false.

    `progress(step, done, total)` is called as each dbt node and each output finishes."""
    path = settings.warehouse_path
    if not path.exists():
        raise TransformError(f"no warehouse at {path}: run `justice ingest` and `justice link` first")
    if not warehouse.has_table(settings, "linkage", "person_links"):
        raise TransformError("no person index in the warehouse: run `justice link` first")
    project = write_project(settings, specs_for(settings), warehouse.raw_tables(settings), analytics=True)
    run_dbt(project, "build", "--select", *BUILD_SELECTION,
            progress=(lambda node, done, total: progress(f"dbt {node}", done, total)) if progress else None)
    if outputs:
        publish.publish(settings, progress=progress)
    return project


def docs(settings: Settings) -> Path:
    """Generate the dbt docs site (every model, column and test, with lineage) into
    HOME/reports/dbt-docs/ and return the folder; open its index.html, or `justice docs --serve`."""
    if not warehouse.has_table(settings, "core"):
        raise TransformError(f"no core model in {settings.warehouse_path}: run `justice build` first")
    # `justice ingest` rewrites the working project without the analysts' models: write it whole.
    project = write_project(settings, specs_for(settings), warehouse.raw_tables(settings), analytics=True)
    run_dbt(project, "docs", "generate")
    out = settings.reports_dir / "dbt-docs"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        (out / name).write_bytes((project / "target" / name).read_bytes())
    return out
