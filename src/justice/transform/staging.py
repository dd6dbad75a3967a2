"""Generate the SQL of the dbt staging, quarantine and audit models from the source specs.

A source's spec already says each field's type, format and whether it is required, so the
staging model of every raw table is generated from it: a new or changed source is a YAML edit.
For each raw table `<system>__<table>` these make (justice.transform.dbt_project writes them into
HOME/transform, a working copy of the dbt project in this package):

- `staging.<system>__<table>__checked`: every raw row, fields trimmed and typed, with the list of
  rules it breaks (`_failures`: rule, field, reason); a table on an engine whose dialect says so
  (`checked_as_table`: DuckDB and Spark), else a view;
- `staging.<system>__<table>`: the rows that break none (every version a source sent);
- `staging.<system>__<table>__latest`: the current version of each record (by record key; a
  later modify time, load or file supersedes an earlier one);
- `quarantine.<system>__<table>`: the rows that break at least one, with the first rule, every
  reason in plain English, and the row's lineage and raw values;
- `quarantine.<system>__rejects`: rows set aside at read time (ragged, undecodable, ...);
- `audit.reconciliation`: per system and load, rows read at extraction against rows staged plus
  rows quarantined, with a dbt test that they are equal.

The SQL is written in one engine's dialect (`dialect`: the engine's `sql_dialect`, DuckDB's by
default). Most of it is common SQL; the engine's SQLDialect (justice.engine) says the rest:
string literals (Spark reads backslash escapes and joins '' as two literals), date parsing (a
spec's strftime formats translated to Spark's datetime patterns), regular expressions (the check
that a number is plain digits before either engine's cast), and the list of broken rules
(DuckDB list literals and lambdas, Spark arrays and arrow lambdas).
"""

from __future__ import annotations

from pathlib import Path

from justice.engine.base import SQLDialect
from justice.engine.duckdb import DUCKDB_SQL
from justice.errors import ConfigError
from justice.sources.spec import LINEAGE_COLUMNS, FieldSpec, SourceSpec, TableSpec

LINEAGE = ", ".join(LINEAGE_COLUMNS)

# What a register's number must look like, checked before the cast. Each engine's cast reads more,
# and not alike: DuckDB reads '1.5' as the integer 2, '1_000' as 1000 and '0x10' as 16 where Spark
# gives null, so a value that is not plain digits (with a sign, and for a decimal one point) is
# quarantined as not a number on both, not silently changed on one.
WHOLE_NUMBER = "[+-]?[0-9]+"
DECIMAL_NUMBER = "[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)"


def _formats(f: FieldSpec) -> tuple[str, ...]:
    return f.format if isinstance(f.format, tuple) else (f.format or "",)


def _formats_text(f: FieldSpec) -> str:
    return " or ".join(f.format) if isinstance(f.format, tuple) else str(f.format)


def _parsed(spec: SourceSpec, f: FieldSpec, value: str, d: SQLDialect) -> str:
    """`value` parsed with the field's formats; a format the dialect cannot use is the spec's
    error, named with its file and field."""
    try:
        return d.parse_timestamp(value, _formats(f))
    except ValueError as exc:
        raise ConfigError(f"{spec.path}: field {f.name} ({f.source}): {exc}; staging on "
                          f"{d.name} cannot parse it: change the spec's format") from None


def _typed(spec: SourceSpec, f: FieldSpec, d: SQLDialect) -> tuple[str, str | None, str | None]:
    """(typed SQL expression, failure condition, failure reason SQL) for one field."""
    v = f"nullif(trim({f.name}), '')"
    if f.null_values:
        v = f"case when {v} in ({', '.join(d.literal(x) for x in f.null_values)}) then null else {v} end"
    present = f"{v} is not null"
    if f.type == "string":
        return v, None, None
    if f.type == "integer":
        expr = f"case when {d.full_match(v, WHOLE_NUMBER)} then try_cast({v} as bigint) end"
        what = "a whole number"
    elif f.type == "decimal":
        expr = f"case when {d.full_match(v, DECIMAL_NUMBER)} then try_cast({v} as decimal(18, 4)) end"
        what = "a number"
    elif f.type == "boolean":
        expr = (f"case upper({v}) when 'Y' then true when 'YES' then true when 'TRUE' then true when '1' then true "
                f"when 'N' then false when 'NO' then false when 'FALSE' then false when '0' then false end")
        what = "yes or no"
    elif f.type == "date":
        expr = d.as_date(_parsed(spec, f, v, d)) if f.format else f"try_cast({v} as date)"
        what = f"a date in {_formats_text(f)} form" if f.format else "a date"
    else:  # datetime
        expr = _parsed(spec, f, v, d) if f.format else f"try_cast({v} as timestamp)"
        what = f"a date and time in {_formats_text(f)} form" if f.format else "a date and time"
    reason = f"{d.literal(f.source + ' ' + chr(39))} || {v} || {d.literal(chr(39) + ' is not ' + what)}"
    return expr, f"{present} and {expr} is null", reason


def _parent_columns(table: TableSpec) -> list[str]:
    """Parent key columns a nested source copies onto each row that are not declared fields."""
    names = {f.name for f in table.fields}
    return [k for k in table.parent_key if k not in names]


def _columns(table: TableSpec) -> str:
    return ", ".join([*_parent_columns(table), *(f.name for f in table.fields)])


def checked_sql(spec: SourceSpec, table: TableSpec, dialect: SQLDialect = DUCKDB_SQL) -> str:
    """The `__checked` model: typed fields and the rules each raw row breaks."""
    d = dialect
    cols = [f"    nullif(trim({k}), '') as {k}" for k in _parent_columns(table)]
    checks = []
    for f in table.fields:
        expr, bad, reason = _typed(spec, f, d)
        cols.append(f"    {expr} as {f.name}")
        if bad:
            checks.append(f"        case when {bad} then {d.failure('invalid_' + f.type, f.name, reason)} end")
        if f.required:
            missing = d.literal(f.source + " is required but empty")
            checks.append(f"        case when nullif(trim({f.name}), '') is null then "
                          f"{d.failure('missing_required', f.name, missing)} end")
    raw_cols = ", ".join(f"{f.name} as raw_{f.name}" for f in table.fields)
    config = "{{ config(materialized='table') }}\n" if d.checked_as_table else ""
    return (f"-- generated from {Path(spec.path).name}: do not edit; edit the spec\n{config}"
            f"select\n" + ",\n".join(cols) + ",\n"
            f"    {d.failures(checks)} as _failures,\n"
            f"    {raw_cols},\n    {LINEAGE}\n"
            f"from {{{{ source('raw', '{spec.system}__{table.name}') }}}}\n")


def staged_sql(spec: SourceSpec, table: TableSpec, dialect: SQLDialect = DUCKDB_SQL) -> str:
    """The staged model: the rows of `__checked` that break no rule."""
    d = dialect
    cols = _columns(table)
    return (f"-- generated: rows of raw.{spec.system}__{table.name} that break no rule\n"
            f"select {cols}, {LINEAGE}\nfrom {{{{ ref('{spec.system}__{table.name}__checked') }}}}\n"
            f"where {d.count('_failures')} = 0\n")


def latest_sql(spec: SourceSpec, table: TableSpec) -> str:
    """The current version of each record: a later load, file or modify time supersedes (the same
    SQL on every engine)."""
    cols = _columns(table)
    key = ", ".join(table.record_key)
    # The locator last: a source that sends the same row twice in one file makes a tie the
    # engines would break differently (their data is the same; their locator is not).
    order = ((f"{table.cursor_field} desc nulls last, " if table.cursor_field else "")
             + "_load_id desc, _file desc, _locator desc")
    # A subquery, not QUALIFY: Spark has no QUALIFY.
    return (f"-- generated: the latest version of each {key} in staging.{spec.system}__{table.name}\n"
            f"select {cols}, {LINEAGE}\nfrom (\n"
            f"    select *, row_number() over (partition by {key} order by {order}) as _version\n"
            f"    from {{{{ ref('{spec.system}__{table.name}') }}}}\n"
            f") as versions\nwhere _version = 1\n")


def quarantined_sql(spec: SourceSpec, table: TableSpec, dialect: SQLDialect = DUCKDB_SQL) -> str:
    """The quarantine model: the rows of `__checked` that break a rule, with why. `failures` is
    JSON in the serving warehouse on every engine (Spark's copy casts its string back:
    justice.engine.spark.SERVED_AS_JSON)."""
    d = dialect
    raws = ", ".join([*_parent_columns(table), *(f"raw_{f.name}" for f in table.fields)])
    return (f"-- generated: rows of raw.{spec.system}__{table.name} set aside by staging rules\n"
            f"select {LINEAGE},\n    {d.first_rule('_failures')} as rule,\n"
            f"    {d.reasons('_failures')} as reason,\n"
            f"    to_json(_failures) as failures,\n    {raws}\n"
            f"from {{{{ ref('{spec.system}__{table.name}__checked') }}}}\nwhere {d.count('_failures')} > 0\n")


def reconciliation_sql(systems: dict[str, tuple[list[str], bool]]) -> str:
    """Per system and load: rows read (counted at extraction) vs staged + quarantined (the same SQL
    on every engine)."""
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
    # `string` and cast(): both engines read them (Spark has no `::`, nor varchar without a length).
    empty = "select cast(null as string) as load_id, cast(0 as bigint) as n where false"
    return ("-- generated: one row per system and load\n"
            f"with read as ({read}),\n"
            f"staged as (select load_id, sum(n) as n from ({' union all '.join(staged) or empty}) as s group by 1),\n"
            f"quarantined as (select load_id, sum(n) as n from ({' union all '.join(quarantined) or empty}) as q "
            "group by 1)\n"
            "select read.system, read.load_id, cast(read.rows_read as bigint) as rows_read,\n"
            "    cast(coalesce(staged.n, 0) as bigint) as rows_staged,\n"
            "    cast(coalesce(quarantined.n, 0) as bigint) as rows_quarantined\n"
            "from read left join staged using (load_id) left join quarantined using (load_id)\n")
