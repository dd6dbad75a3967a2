"""Write HOME/transform, the working dbt project for this home: the package's project (seeds,
core and mart models, macros, tests) plus the staging, quarantine and audit models generated for
the raw tables that have landed (justice.transform.staging), the sources file and the profile."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import yaml

from justice.engine import Engine
from justice.settings import Settings
from justice.sources.spec import SourceSpec
from justice.transform.staging import (
    checked_sql,
    latest_sql,
    quarantined_sql,
    reconciliation_sql,
    staged_sql,
)

ANALYTICS = ("core", "marts", "seeds")


def write_project(settings: Settings, specs: list[SourceSpec], raw_tables: list[str], *,
                  engine: Engine, analytics: bool = False) -> Path:
    """Write HOME/transform: the package's dbt project plus models generated for landed tables.

    The profile is the engine's dbt target and the staging SQL is written in its dialect. The
    analysts' models (core, marts) and seeds are included only with `analytics` (for
    `justice build`): they need every system staged and linked, and dbt compiles every model in
    a project, so staging a subset of systems must not see them."""
    target = settings.transform_dir
    package = Path(str(resources.files("justice.transform")))
    if target.exists():
        shutil.rmtree(target)
    skip = ("*.py", "__pycache__", "target", "logs", *(() if analytics else ANALYTICS))
    shutil.copytree(package, target, ignore=shutil.ignore_patterns(*skip))
    present = set(raw_tables)
    dialect = engine.sql_dialect
    sources, systems = [], {}
    models = target / "models"
    for sub in ("staging", "quarantine", "audit", "core", "marts"):  # git keeps no empty folders
        (models / sub).mkdir(parents=True, exist_ok=True)
    for spec in specs:
        if f"{spec.system}__loads" not in present:
            continue
        sources.append({"name": f"{spec.system}__loads"})
        tables = []
        for table in spec.tables:
            name = f"{spec.system}__{table.name}"
            if name not in present:
                continue
            sources.append({"name": name})
            folder = models / "staging" / spec.system
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}__checked.sql").write_text(checked_sql(spec, table, dialect))
            (folder / f"{name}.sql").write_text(staged_sql(spec, table, dialect))
            if table.record_key:
                (folder / f"{name}__latest.sql").write_text(latest_sql(spec, table))
            qfolder = models / "quarantine"
            qfolder.mkdir(parents=True, exist_ok=True)
            (qfolder / f"q_{name}.sql").write_text(
                "{{ config(alias='" + name + "') }}\n" + quarantined_sql(spec, table, dialect))
            tables.append(name)
        has_rejects = f"{spec.system}__rejects" in present
        if has_rejects:
            sources.append({"name": f"{spec.system}__rejects"})
            (models / "quarantine").mkdir(parents=True, exist_ok=True)
            (models / "quarantine" / f"q_{spec.system}__rejects.sql").write_text(
                "{{ config(alias='" + spec.system + "__rejects') }}\n"
                f"-- generated: rows set aside at read time\nselect * from {{{{ source('raw', '{spec.system}__rejects') }}}}\n")
        systems[spec.system] = (tables, has_rejects)
    (models / "sources.yml").write_text(yaml.safe_dump({"version": 2, "sources": [
        {"name": "raw", "schema": "raw", "tables": sources}]}, sort_keys=False))
    if systems:
        (models / "audit" / "reconciliation.sql").write_text(reconciliation_sql(systems))
        (models / "audit" / "reconciliation.yml").write_text(yaml.safe_dump({"version": 2, "models": [{
            "name": "reconciliation",
            "description": "Per system and load: rows read at extraction, rows staged, rows quarantined.",
            "columns": [{"name": "system", "description": "Legacy system."},
                        {"name": "load_id", "description": "The load (see audit.loads)."},
                        {"name": "rows_read", "description": "Rows the reader counted in the source."},
                        {"name": "rows_staged", "description": "Rows that passed every staging rule."},
                        {"name": "rows_quarantined", "description": "Rows set aside at read time or by a rule."}],
            "data_tests": ["reconciles"]}]}, sort_keys=False))
    profile = engine.dbt_profile()
    (target / "profiles.yml").write_text(yaml.safe_dump({"justice": {
        "target": profile["type"], "outputs": {profile["type"]: profile}}}))
    return target
