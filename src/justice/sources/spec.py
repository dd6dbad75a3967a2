"""Source specs: one YAML file per legacy system says how to read it, so that adding or changing a
source is a data edit, not code.

A spec declares the system's format and encoding, where its data is (a file pattern under the
system's folder, or a database URL), and one or more tables: each with its fields (the source's
name, our name, a type and format for staging, whether it is required), its record key, and the
incremental cursor. Readers (one per format) turn a source into Arrow tables of source values as
strings plus lineage; staging types them later using the same spec.

Example (`specs/magistrates.yaml`, abridged)::

    system: magistrates
    format: csv
    encoding: cp1252
    files: "**/libra_*.csv"
    cursor: file
    tables:
      - name: defendant_offences
        record_key: [defendant_id]
        fields:
          - {source: "Case No.", name: case_number, required: true}
          - {source: "D.O.B", name: dob, type: date, format: "%d/%m/%Y"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from justice.errors import ConfigError
from justice.settings import Settings

FORMATS = ("csv", "xml", "database", "fixed_width", "xlsx")
TYPES = ("string", "integer", "decimal", "date", "datetime", "boolean")
CURSORS = ("file", "modified_timestamp")
LINEAGE_COLUMNS = ("_system", "_table", "_file", "_locator", "_load_id", "_extracted_at")
"""Columns every reader adds to every row: where it came from and in which load."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FieldSpec:
    """One source field: its name in the source, our name, and how staging types it."""

    source: str
    """The field's name (or path, or column) exactly as the source writes it."""
    name: str
    """Our snake_case name for it in the raw and staging tables."""
    type: str = "string"
    """Staging type: one of TYPES. Raw always keeps the source text."""
    format: str | tuple[str, ...] | None = None
    """A parse format for dates, e.g. %d/%m/%Y, or a list of them tried in order (sources where
    people type dates in several styles)."""
    required: bool = False
    """A source without this field is rejected whole (SchemaDriftError)."""
    null_values: tuple[str, ...] = ()
    """Source values that mean "not recorded" (e.g. 00000000 for a date), nulled in staging."""


@dataclass(frozen=True)
class TableSpec:
    """One table a source yields (a CSV file's rows, an XML element level, a database table)."""

    name: str
    """Raw table name, stored as <system>__<name>."""
    fields: tuple[FieldSpec, ...]
    record_key: tuple[str, ...] = ()
    """Our names of the fields that identify a record in the source (for updates and dedup)."""
    source: str | None = None
    """Format-specific location: the XML element path, the database table, the sheet name."""
    parent_key: tuple[str, ...] = ()
    """For nested sources (XML): our names of the parent's key fields copied onto each child row."""
    cursor_field: str | None = None
    """For cursor `modified_timestamp`: our name of the field that orders changes."""

    def field(self, name: str) -> FieldSpec:
        """The field with our name `name`."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def required_sources(self) -> tuple[str, ...]:
        """Source names of required fields."""
        return tuple(f.source for f in self.fields if f.required)


@dataclass(frozen=True)
class SourceSpec:
    """How to read one legacy system."""

    system: str
    format: str
    tables: tuple[TableSpec, ...]
    encoding: str = "utf-8"
    files: str | None = None
    """Glob, relative to the system's folder (HOME/legacy/<system>/)."""
    url: str | None = None
    """For databases: a SQLAlchemy URL; {legacy} is replaced by the legacy folder."""
    cursor: str = "file"
    """How increments are found: `file` (each file is loaded once) or `modified_timestamp`."""
    options: dict = field(default_factory=dict)
    """Format-specific options (CSV delimiter, copybook file, header row, ...)."""
    description: str = ""
    path: str = "<spec>"
    """Where the spec was read from (for messages)."""

    def table(self, name: str) -> TableSpec:
        """The table spec called `name`."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{self.path}: no table {name!r}")


def _error(path: str, where: str, what: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {what}")


def parse_spec(data: object, path: str = "<spec>") -> SourceSpec:
    """Validate a spec's parsed YAML and build a SourceSpec; errors name the file and the key."""
    if not isinstance(data, dict):
        raise _error(path, "top level", "expected a mapping with system, format and tables")
    for key in ("system", "format", "tables"):
        if key not in data:
            raise _error(path, key, "missing")
    system = str(data["system"])
    if not _NAME.match(system):
        raise _error(path, "system", f"{system!r} must be lower-case letters, digits and _")
    fmt = data["format"]
    if fmt not in FORMATS:
        raise _error(path, "format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    cursor = data.get("cursor", "file")
    if cursor not in CURSORS:
        raise _error(path, "cursor", f"{cursor!r} is not one of {', '.join(CURSORS)}")
    if fmt == "database":
        if not data.get("url"):
            raise _error(path, "url", "a database source needs a SQLAlchemy url")
    elif not data.get("files"):
        raise _error(path, "files", f"a {fmt} source needs a files pattern")
    encoding = str(data.get("encoding", "utf-8"))
    try:
        "".encode(encoding)
    except LookupError:
        raise _error(path, "encoding", f"{encoding!r} is not a known codec") from None
    raw_tables = data["tables"]
    if not isinstance(raw_tables, list) or not raw_tables:
        raise _error(path, "tables", "expected a non-empty list")
    tables = []
    seen_tables: set[str] = set()
    for i, t in enumerate(raw_tables):
        where = f"tables[{i}]"
        if not isinstance(t, dict) or "name" not in t or "fields" not in t:
            raise _error(path, where, "each table needs a name and fields")
        name = str(t["name"])
        if not _NAME.match(name) or name in seen_tables:
            raise _error(path, f"{where}.name", f"{name!r} must be a unique snake_case name")
        seen_tables.add(name)
        fields = []
        seen: set[str] = set()
        for j, f in enumerate(t["fields"] or []):
            fw = f"{where}.fields[{j}]"
            if not isinstance(f, dict) or "source" not in f or "name" not in f:
                raise _error(path, fw, "each field needs source and name")
            fname = str(f["name"])
            if not _NAME.match(fname) or fname.startswith("_") or fname in seen:
                raise _error(path, f"{fw}.name", f"{fname!r} must be a unique snake_case name")
            seen.add(fname)
            ftype = f.get("type", "string")
            if ftype not in TYPES:
                raise _error(path, f"{fw}.type", f"{ftype!r} is not one of {', '.join(TYPES)}")
            nulls = f.get("null_values") or []
            if not isinstance(nulls, list):
                raise _error(path, f"{fw}.null_values", "expected a list of strings")
            fmt_value = f.get("format")
            if isinstance(fmt_value, list):
                if not fmt_value or not all(isinstance(x, str) for x in fmt_value):
                    raise _error(path, f"{fw}.format", "a list of formats must hold strings")
                fmt_value = tuple(fmt_value)
            fields.append(FieldSpec(source=str(f["source"]), name=fname, type=ftype,
                                    format=fmt_value, required=bool(f.get("required", False)),
                                    null_values=tuple(str(x) for x in nulls)))
        if not fields:
            raise _error(path, f"{where}.fields", "a table needs at least one field")
        key = tuple(t.get("record_key") or ())
        parent = tuple(t.get("parent_key") or ())
        for k in key:
            if k not in seen and k not in parent:
                raise _error(path, f"{where}.record_key", f"{k!r} is not one of the table's fields")
        cursor_field = t.get("cursor_field")
        if cursor == "modified_timestamp" and cursor_field not in seen:
            raise _error(path, f"{where}.cursor_field", "needed (one of the table's fields) for a "
                         "modified_timestamp cursor")
        tables.append(TableSpec(name=name, fields=tuple(fields), record_key=key, source=t.get("source"),
                                parent_key=parent, cursor_field=cursor_field))
    return SourceSpec(system=system, format=fmt, tables=tuple(tables), encoding=encoding,
                      files=data.get("files"), url=data.get("url"), cursor=cursor,
                      options=dict(data.get("options") or {}), description=str(data.get("description", "")),
                      path=path)


def load_spec(path: str | Path) -> SourceSpec:
    """Read and validate one spec file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(f"{path}: not valid YAML at {where}") from None
    return parse_spec(data, str(path))


def builtin_spec_dir() -> Path:
    """The folder of the specs shipped with the platform (one per simulated legacy system)."""
    return Path(str(resources.files("justice.sources").joinpath("specs")))


def load_specs(*folders: str | Path) -> dict[str, SourceSpec]:
    """Every spec in the built-in folder and any extra folders; a later folder's spec for the same
    system replaces an earlier one (so a deployment can override a shipped spec)."""
    specs: dict[str, SourceSpec] = {}
    for folder in (builtin_spec_dir(), *folders):
        for path in sorted(Path(folder).glob("*.yaml")):
            spec = load_spec(path)
            specs[spec.system] = spec
    return specs


def specs_for(settings: Settings, system: str | None = None) -> list[SourceSpec]:
    """The built-in specs plus any in HOME/specs (which override by system name); with `system`,
    that system's alone (an unknown one is an error naming the known systems)."""
    extra = settings.specs_dir
    specs = load_specs(*([extra] if extra.is_dir() else []))
    if system is None:
        return list(specs.values())
    if system not in specs:
        raise ConfigError(f"--system {system!r}: no spec; known systems: {', '.join(sorted(specs))}")
    return [specs[system]]
