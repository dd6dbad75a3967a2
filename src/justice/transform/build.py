"""The transform step's entry points. `stage`: what `justice ingest` runs after landing (the
generated staging, quarantine and audit models, with their tests). `build` (`justice build`): the
analysts' datasets: dbt seeds (versioned reference data), the canonical `core` model keyed on
person_id, and the `marts`, with every dbt test, on the warehouse that `justice ingest` and
`justice link` filled. `docs`: the dbt docs site."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from justice.engine import Engine, engine_for, lake
from justice.errors import TransformError
from justice.settings import Settings
from justice.sources.spec import SourceSpec, specs_for
from justice.transform import publish
from justice.transform.dbt_project import write_project

BUILD_SELECTION = ("path:seeds", "path:models/core", "path:models/marts")

# What `justice ingest` builds; core and marts need linkage first and are `justice build`'s.
STAGING_SELECTION = ("path:models/staging", "path:models/quarantine", "path:models/audit")


# What the readers of the serving warehouse need after each step (on an engine that builds
# elsewhere, these are copied into HOME/warehouse.duckdb).
STAGING_SCHEMAS = ("staging", "quarantine", "audit")
BUILD_SCHEMAS = ("reference", "core", "marts")  # seeds are built into `reference`


def stage(settings: Settings, specs: list[SourceSpec], raw_tables: list[str], *,
          engine: Engine | None = None) -> Path:
    """Generate the staging project for what has landed and run `dbt build` (models and tests)
    on the engine (the settings' engine unless one is given)."""
    # A caller's engine is the caller's to close.
    with nullcontext(engine) if engine is not None else engine_for(settings) as eng:
        project = write_project(settings, specs, raw_tables, engine=eng)
        eng.run_dbt(project, "build", "--select", *STAGING_SELECTION)
        eng.serve(STAGING_SCHEMAS)
    return project


def build(settings: Settings, progress: Callable[[str, int, int], None] | None = None,
          *, outputs: bool = True) -> Path:
    """Write the dbt working project, run `dbt build` on seeds, core and marts (every model and
    dbt test), then publish the disclosure-controlled data tool files and charts in
    HOME/reports/ (justice.transform.publish) unless `outputs` is false.

    `progress(step, done, total)` is called as each dbt node and each output finishes."""
    with engine_for(settings) as engine:
        if not engine.has_table("staging"):
            raise TransformError(f"nothing staged on {engine.name}: run `justice ingest` and "
                                 "`justice link` first")
        if not engine.has_table("linkage", "person_links"):
            raise TransformError(f"no person index on {engine.name}: run `justice link` first")
        project = write_project(settings, specs_for(settings), lake.raw_tables(settings),
                                analytics=True, engine=engine)
        engine.run_dbt(project, "build", "--select", *BUILD_SELECTION,
                       progress=(lambda node, done, total: progress(f"dbt {node}", done, total))
                       if progress else None)
        engine.serve(BUILD_SCHEMAS)
    if outputs:
        publish.publish(settings, progress=progress)
    return project


def docs(settings: Settings) -> Path:
    """Generate the dbt docs site (every model, column and test, with lineage) into
    HOME/reports/dbt-docs/ and return the folder; open its index.html, or `justice docs --serve`."""
    with engine_for(settings) as engine:
        if not engine.has_table("core"):
            raise TransformError(f"no core model on {engine.name}: run `justice build` first")
        # `justice ingest` rewrites the working project without the analysts' models: write it whole.
        project = write_project(settings, specs_for(settings), lake.raw_tables(settings),
                                analytics=True, engine=engine)
        engine.run_dbt(project, "docs", "generate")
    out = settings.reports_dir / "dbt-docs"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        (out / name).write_bytes((project / "target" / name).read_bytes())
    return out

