"""Generate the dbt staging, quarantine and audit models from the source specs, and run dbt.

A source's spec already says each field's type, format and whether it is required, so the
staging model of every raw table is generated from it: a new or changed source is a YAML edit.
For each raw table `<system>__<table>` this writes, in HOME/transform (a working copy of the dbt
project in this package):

- `staging.<system>__<table>__checked`: every raw row, fields trimmed and typed, with the list of
  rules it breaks (`_failures`: rule, field, reason);
- `staging.<system>__<table>`: the rows that break none (every version a source sent);
- `staging.<system>__<table>__latest`: the current version of each record (by record key; a
  later modify time, load or file supersedes an earlier one);
- `quarantine.<system>__<table>`: the rows that break at least one, with the first rule, every
  reason in plain English, and the row's lineage and raw values;
- `quarantine.<system>__rejects`: rows set aside at read time (ragged, undecodable, ...);
- `audit.reconciliation`: per system and load, rows read at extraction against rows staged plus
  rows quarantined, with a dbt test that they are equal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import yaml

from justice.errors import TransformError
from justice.settings import Settings
from justice.sources.spec import LINEAGE_COLUMNS, FieldSpec, SourceSpec, TableSpec

LINEAGE = ", ".join(LINEAGE_COLUMNS)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _formats(f: FieldSpec) -> str:
    """The SQL for a field's parse format(s): DuckDB's strptime takes a list and tries each."""
    if isinstance(f.format, tuple):
        return "[" + ", ".join(_lit(x) for x in f.format) + "]"
    return _lit(f.format or "")


def _formats_text(f: FieldSpec) -> str:
    return " or ".join(f.format) if isinstance(f.format, tuple) else str(f.format)


def _typed(f: FieldSpec) -> tuple[str, str | None, str | None]:
    """(typed SQL expression, failure condition, failure reason SQL) for one field."""
    v = f"nullif(trim({f.name}), '')"
    if f.null_values:
        v = f"case when {v} in ({', '.join(_lit(x) for x in f.null_values)}) then null else {v} end"
    present = f"{v} is not null"
    if f.type == "string":
        return v, None, None
    if f.type == "integer":
        expr = f"try_cast({v} as bigint)"
        what = "a whole number"
    elif f.type == "decimal":
        expr = f"try_cast({v} as decimal(18, 4))"
        what = "a number"
    elif f.type == "boolean":
        expr = (f"case upper({v}) when 'Y' then true when 'YES' then true when 'TRUE' then true when '1' then true "
                f"when 'N' then false when 'NO' then false when 'FALSE' then false when '0' then false end")
        what = "yes or no"
    elif f.type == "date":
        expr = f"try_strptime({v}, {_formats(f)})::date" if f.format else f"try_cast({v} as date)"
        what = f"a date in {_formats_text(f)} form" if f.format else "a date"
    else:  # datetime
        expr = f"try_strptime({v}, {_formats(f)})" if f.format else f"try_cast({v} as timestamp)"
        what = f"a date and time in {_formats_text(f)} form" if f.format else "a date and time"
    reason = f"{_lit(f.source + ' ' + chr(39))} || {v} || {_lit(chr(39) + ' is not ' + what)}"
    return expr, f"{present} and {expr} is null", reason


def _parent_columns(table: TableSpec) -> list[str]:
    """Parent key columns a nested source copies onto each row that are not declared fields."""
    names = {f.name for f in table.fields}
    return [k for k in table.parent_key if k not in names]


def _columns(table: TableSpec) -> str:
    return ", ".join([*_parent_columns(table), *(f.name for f in table.fields)])


def checked_sql(spec: SourceSpec, table: TableSpec) -> str:
    """The `__checked` model: typed fields and the rules each raw row breaks."""
    cols = [f"    nullif(trim({k}), '') as {k}" for k in _parent_columns(table)]
    checks = []
    for f in table.fields:
        expr, bad, reason = _typed(f)
        cols.append(f"    {expr} as {f.name}")
        if bad:
            checks.append(f"        case when {bad} then {{'rule': 'invalid_{f.type}', 'field': {_lit(f.name)}, "
                          f"'reason': {reason}}} end")
        if f.required:
            checks.append(f"        case when nullif(trim({f.name}), '') is null then {{'rule': 'missing_required', "
                          f"'field': {_lit(f.name)}, 'reason': {_lit(f.source + ' is required but empty')}}} end")
    raw_cols = ", ".join(f"{f.name} as raw_{f.name}" for f in table.fields)
    failures = ",\n".join(checks) if checks else "        null"
    return (f"-- generated from {Path(spec.path).name}: do not edit; edit the spec\n"
            f"select\n" + ",\n".join(cols) + ",\n"
            f"    list_filter([\n{failures}\n    ], lambda x: x is not null) as _failures,\n"
            f"    {raw_cols},\n    {LINEAGE}\n"
            f"from {{{{ source('raw', '{spec.system}__{table.name}') }}}}\n")


def staged_sql(spec: SourceSpec, table: TableSpec) -> str:
    cols = _columns(table)
    return (f"-- generated: rows of raw.{spec.system}__{table.name} that break no rule\n"
            f"select {cols}, {LINEAGE}\nfrom {{{{ ref('{spec.system}__{table.name}__checked') }}}}\n"
            f"where len(_failures) = 0\n")


def latest_sql(spec: SourceSpec, table: TableSpec) -> str:
    """The current version of each record: a later load, file or modify time supersedes."""
    cols = _columns(table)
    key = ", ".join(table.record_key)
    order = (f"{table.cursor_field} desc nulls last, " if table.cursor_field else "") + "_load_id desc, _file desc"
    return (f"-- generated: the latest version of each {key} in staging.{spec.system}__{table.name}\n"
            f"select {cols}, {LINEAGE}\nfrom {{{{ ref('{spec.system}__{table.name}') }}}}\n"
            f"qualify row_number() over (partition by {key} order by {order}) = 1\n")


def quarantined_sql(spec: SourceSpec, table: TableSpec) -> str:
    raws = ", ".join([*_parent_columns(table), *(f"raw_{f.name}" for f in table.fields)])
    return (f"-- generated: rows of raw.{spec.system}__{table.name} set aside by staging rules\n"
            f"select {LINEAGE},\n    _failures[1].rule as rule,\n"
            f"    array_to_string(list_transform(_failures, lambda x: x.reason), '; ') as reason,\n"
            f"    to_json(_failures) as failures,\n    {raws}\n"
            f"from {{{{ ref('{spec.system}__{table.name}__checked') }}}}\nwhere len(_failures) > 0\n")


def reconciliation_sql(systems: dict[str, tuple[list[str], bool]]) -> str:
    """Per system and load: rows read (counted at extraction) vs staged + quarantined."""
    read = " union all ".join(f"select system, load_id, rows_read from {{{{ source('raw', '{s}__loads') }}}}"
                              for s in systems)
    staged, quarantined = [], []
    for system, (tables, has_rejects) in systems.items():
        for t in tables:
            staged.append(f"select _load_id as load_id, count(*) as n from {{{{ ref('{t}') }}}} group by 1")
            quarantined.append(f"select _load_id as load_id, count(*) as n from {{{{ ref('q_{t}') }}}} group by 1")
        if has_rejects:
            quarantined.append(f"select _load_id as load_id, count(*) as n from {{{{ ref('q_{system}__rejects') }}}} "
                               "group by 1")
    empty = "select null::varchar as load_id, 0::bigint as n where false"
    return ("-- generated: one row per system and load\n"
            f"with read as ({read}),\n"
            f"staged as (select load_id, sum(n) as n from ({' union all '.join(staged) or empty}) group by 1),\n"
            f"quarantined as (select load_id, sum(n) as n from ({' union all '.join(quarantined) or empty}) group by 1)\n"
            "select read.system, read.load_id, read.rows_read::bigint as rows_read,\n"
            "    coalesce(staged.n, 0)::bigint as rows_staged, coalesce(quarantined.n, 0)::bigint as rows_quarantined\n"
            "from read left join staged using (load_id) left join quarantined using (load_id)\n")


ANALYTICS = ("core", "marts", "seeds")


def write_project(settings: Settings, specs: list[SourceSpec], raw_tables: list[str], *,
                  analytics: bool = False) -> Path:
    """Write HOME/transform: the package's dbt project plus models generated for landed tables.

    The analysts' models (core, marts) and seeds are included only with `analytics` (for
    `justice build`): they need every system staged and linked, and dbt compiles every model in
    a project, so staging a subset of systems must not see them."""
    target = settings.transform_dir
    package = Path(str(resources.files("justice.transform")))
    if target.exists():
        shutil.rmtree(target)
    skip = ("*.py", "__pycache__", "target", "logs", *(() if analytics else ANALYTICS))
    shutil.copytree(package, target, ignore=shutil.ignore_patterns(*skip))
    present = set(raw_tables)
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
            (folder / f"{name}__checked.sql").write_text(checked_sql(spec, table))
            (folder / f"{name}.sql").write_text(staged_sql(spec, table))
            if table.record_key:
                (folder / f"{name}__latest.sql").write_text(latest_sql(spec, table))
            qfolder = models / "quarantine"
            qfolder.mkdir(parents=True, exist_ok=True)
            (qfolder / f"q_{name}.sql").write_text(
                "{{ config(alias='" + name + "') }}\n" + quarantined_sql(spec, table))
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
    (target / "profiles.yml").write_text(yaml.safe_dump({"justice": {"target": "duckdb", "outputs": {"duckdb": {
        "type": "duckdb", "path": str((settings.warehouse_path).resolve()), "schema": "main",
        "threads": 2}}}}))
    return target


# dbt's console line for a node: "12:00:01  3 of 69 OK created sql table model core.person ...".
_DBT_STEP = re.compile(r"\b(\d+) of (\d+) (START|OK|PASS|WARN|ERROR|FAIL|SKIP)\w*\s+(?:.*\s)?(\S+)\s+\.{3}")

# What `justice ingest` builds; core and marts need linkage first and are `justice build`'s.
STAGING_SELECTION = ("path:models/staging", "path:models/quarantine", "path:models/audit")


def run_dbt(project: Path, *args: str, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Run dbt on the working project in a child process; raise with the failing nodes if any.

    A child process keeps dbt's global state and dbt-duckdb's open database handle out of ours.
    `progress(node, done, total)` is called as each model, seed and test finishes.
    """
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project),
           "--no-version-check", "--log-path", str(project / "logs")]
    lines: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        done = 0
        for line in proc.stdout:
            lines.append(line)
            step = _DBT_STEP.search(line)
            if step and step.group(3) != "START":
                done += 1
                if progress is not None:
                    progress(step.group(4), done, int(step.group(2)))
    output = "".join(lines)
    if proc.returncode == 0:
        return
    failures = []
    results = project / "target" / "run_results.json"
    if results.exists():
        for r in json.loads(results.read_text()).get("results", []):
            if r.get("status") not in ("success", "pass", "skipped"):
                name = r.get("unique_id", "?").split(".", 2)[-1]
                failures.append(f"{name}: {r.get('status')} {(r.get('message') or '').strip()}".strip())
    detail = "; ".join(failures) or output.strip()[-2000:]
    raise TransformError(f"dbt {' '.join(args)} failed: {detail} (log: {project / 'logs' / 'dbt.log'})")


def stage(settings: Settings, specs: list[SourceSpec], raw_tables: list[str]) -> Path:
    """Generate the staging project for what has landed and run `dbt build` (models and tests)."""
    project = write_project(settings, specs, raw_tables)
    run_dbt(project, "build", "--select", *STAGING_SELECTION)
    return project
