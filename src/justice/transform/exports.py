"""The data tool files' specifications (exports.yaml) and the disclosure control applied to a mart
before it leaves the warehouse: aggregate tables get small counts suppressed with complementary
suppression (justice.disclosure); person-level files carry keyed pseudonyms instead of person ids
and no identifying column. `justice.transform.publish` writes the files, the charts draw from the
same protected totals, and `justice.datasets` and the explorer read the same specifications.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from justice import disclosure, warehouse
from justice.errors import ConfigError, TransformError
from justice.settings import Settings

PSEUDONYM_KEY_ENV = "JUSTICE_PSEUDONYM_KEY"


@dataclass(frozen=True)
class Export:
    """One data tool file: a mart and how it is protected (see exports.yaml)."""

    name: str
    title: str
    dims: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    derived: dict[str, list[str]] = field(default_factory=dict)
    sums: dict[str, list[str]] = field(default_factory=dict)
    # total -> {dimension: [values]}: rows where the total is not the sum of its parts (it is
    # still protected as a line there: that only protects more than it must)
    sums_except: dict[str, dict[str, list]] = field(default_factory=dict)
    person_level: bool = False
    pseudonymise: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def exports(path: Path | None = None) -> dict[str, Export]:
    """The export specifications, validated (a bad entry names its key)."""
    source = path or Path(str(resources.files("justice.transform").joinpath("exports.yaml")))
    try:
        doc = yaml.safe_load(source.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    entries = doc.get("exports")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{source}: needs an `exports:` mapping of mart name to specification")
    out: dict[str, Export] = {}
    allowed = {"title", "dims", "counts", "derived", "sums", "person_level", "pseudonymise", "columns"}
    for name, spec in entries.items():
        where = f"{source}: exports.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(spec) - allowed
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")
        if not spec.get("title"):
            raise ConfigError(f"{where}.title: required")
        person_level = bool(spec.get("person_level", False))
        if person_level and (spec.get("counts") or spec.get("dims")):
            raise ConfigError(f"{where}: a person-level file has no dims or counts to suppress")
        if not person_level and not spec.get("counts"):
            raise ConfigError(f"{where}.counts: an aggregate file needs the count columns to protect")
        if person_level and not spec.get("columns"):
            raise ConfigError(f"{where}.columns: a person-level file publishes only the columns listed")
        sums, sums_except = _sums(spec.get("sums") or {}, spec, where)
        derived = spec.get("derived") or {}
        for col, sources in derived.items():
            stray = set(sources) - set(spec.get("counts") or [])
            if stray:
                raise ConfigError(f"{where}.derived.{col}: {', '.join(sorted(stray))} is not one of its counts")
        out[name] = Export(name=name, title=str(spec["title"]), dims=list(spec.get("dims") or []),
                           counts=list(spec.get("counts") or []), derived={k: list(v) for k, v in derived.items()},
                           sums=sums, sums_except=sums_except,
                           person_level=person_level, pseudonymise=list(spec.get("pseudonymise") or []),
                           columns=list(spec.get("columns") or []))
    return out


def _sums(entries: dict, spec: dict, where: str) -> tuple[dict[str, list[str]], dict[str, dict[str, list]]]:
    """`sums:` entries, each `total: [parts]` (on every row) or `total: {parts: [...],
    except_where: {dimension: [values]}}` (on every row but those)."""
    sums: dict[str, list[str]] = {}
    excepted: dict[str, dict[str, list]] = {}
    for total, entry in entries.items():
        at = f"{where}.sums.{total}"
        if isinstance(entry, dict):
            unknown = set(entry) - {"parts", "except_where"}
            if unknown or not isinstance(entry.get("parts"), list):
                raise ConfigError(f"{at}: give `parts: [...]` and optionally `except_where: {{dimension: "
                                  f"[values]}}`{' (unknown: ' + ', '.join(sorted(unknown)) + ')' if unknown else ''}")
            parts, rule = entry["parts"], entry.get("except_where") or {}
            if not isinstance(rule, dict) or any(not isinstance(v, list) for v in rule.values()):
                raise ConfigError(f"{at}.except_where: a mapping of dimension to a list of values")
            stray_dims = set(rule) - set(spec.get("dims") or [])
            if stray_dims:
                raise ConfigError(f"{at}.except_where: {', '.join(sorted(stray_dims))} is not one of its dims")
            if rule:
                excepted[total] = {k: list(v) for k, v in rule.items()}
        elif isinstance(entry, list):
            parts = entry
        else:
            raise ConfigError(f"{at}: a list of the counts it is the sum of")
        stray = {total, *parts} - set(spec.get("counts") or [])
        if stray:
            raise ConfigError(f"{at}: {', '.join(sorted(stray))} is not one of its counts")
        sums[total] = list(parts)
    return sums, excepted


def declared_sum_rows(table: pa.Table, spec: Export, total: str) -> pa.Array:
    """A boolean mask of the rows on which `total` is declared to be the sum of its parts."""
    mask = pa.array([True] * table.num_rows)
    for dim, values in spec.sums_except.get(total, {}).items():
        mask = pc.and_(mask, pc.invert(pc.is_in(table.column(dim), value_set=pa.array(values))))
    return mask


def check_sums(table: pa.Table, spec: Export) -> None:
    """Raise ConfigError if a declared row sum does not hold on a row it is declared for: the
    protection leans on it, so a spec that says so wrongly must not publish."""
    for total, parts in spec.sums.items():
        absent = [c for c in (total, *parts) if c not in table.column_names]
        if absent:
            continue  # disclosure.protect names the missing column
        added = table.column(parts[0]).fill_null(0)
        for part in parts[1:]:
            added = pc.add(added, table.column(part).fill_null(0))
        wrong = pc.and_(declared_sum_rows(table, spec, total),
                        pc.not_equal(table.column(total).fill_null(0), added))
        bad = table.filter(wrong)
        if bad.num_rows:
            first = bad.slice(0, 1).select(spec.dims).to_pylist()[0]
            raise ConfigError(
                f"exports.{spec.name}.sums.{total}: is not {' + '.join(parts)} on {bad.num_rows} of "
                f"{table.num_rows} row(s), e.g. {', '.join(f'{k}={v}' for k, v in first.items())}; fix "
                f"the mart, or declare the rows it does not hold on with `except_where`")


def pseudonym_key(settings: Settings) -> bytes:
    """The secret key for pseudonyms: JUSTICE_PSEUDONYM_KEY, else HOME/secrets/pseudonym.key,
    created (random, readable by its owner only) on first use. The same key gives the same
    pseudonym for a person in every output, so analysts can join files; keep it out of exports."""
    env = os.environ.get(PSEUDONYM_KEY_ENV)
    if env:
        return env.encode()
    path = settings.secrets_dir / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def read_mart(settings: Settings, name: str) -> pa.Table:
    """A mart as built, straight from the warehouse (read-only), its rows in a set order: which
    cells complementary suppression picks among equal candidates follows row order, and a
    table's storage order is no promise (Spark's copy of a mart stores the same rows in
    another order), so the same mart must always publish the same files."""
    path = settings.warehouse_path
    if not warehouse.has_table(settings, "marts", name):
        raise TransformError(f"no mart marts.{name} in {path}: run `justice build` first")
    con = warehouse.connect(settings, read_only=True)
    try:
        return con.sql(f'select * from marts."{name}" order by all').to_arrow_table()
    finally:
        con.close()


def protect_export(table: pa.Table, spec: Export, *, key: bytes | None = None,
                   threshold: int | None = None) -> pa.Table:
    """Apply the export's disclosure control to a mart's rows."""
    if spec.person_level:
        if key is None:
            raise ConfigError(f"{spec.name}: a person-level export needs the pseudonym key")
        absent = [c for c in (*spec.columns, *spec.pseudonymise) if c not in table.column_names]
        if absent:
            raise ConfigError(f"exports.{spec.name}: the mart has no column(s) {', '.join(absent)}")
        # Only the listed columns leave: a new mart column (a source key, say) is not published
        # until someone decides it may be.
        table = table.select([c for c in table.column_names if c in spec.columns or c in spec.pseudonymise])
        for col in spec.pseudonymise:
            values = disclosure.pseudonymise(table.column(col).to_pylist(), key)
            new = col.removesuffix("_id") + "_pseudonym"
            table = table.set_column(table.column_names.index(col), new, pa.array(values, pa.string()))
        disclosure.assert_no_identifiers(table)
        return table
    disclosure.assert_no_identifiers(table)
    for col in spec.counts:
        if col in table.column_names and not pa.types.is_integer(table.column(col).type):
            try:
                table = table.set_column(table.column_names.index(col), col, pc.cast(table.column(col), pa.int64()))
            except pa.ArrowInvalid as exc:
                raise ConfigError(f"exports.{spec.name}: count column {col!r} is not whole numbers: {exc}") from None
    check_sums(table, spec)
    try:
        return disclosure.protect(table, dims=spec.dims, counts=spec.counts, derived=spec.derived, sums=spec.sums,
                                  threshold=threshold)
    except ConfigError as exc:
        raise ConfigError(f"exports.{spec.name}: {exc}") from None
