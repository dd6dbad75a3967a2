"""The published datasets the explorer may serve, read from HOME/reports/data.

What the explorer may read is decided here and nowhere else: the aggregate files listed in the
publish manifest (data/manifest.json) that exports.yaml also names as aggregate. A file the
manifest or exports.yaml marks ``person_level`` is never opened, and no path is ever built from
a request: a dataset is looked up by name in the catalogue, and its file is the one the
catalogue found. The files are small (one row per published cell), so each is read once into
memory and read again only when `justice build` has published a new manifest.

Per dataset, datasets.yaml (beside this module) says which columns are dimensions, which
measures may be added up across which dimensions, and which rates can be recomputed from their
counts; the dbt manifest, when the build left one, gives the descriptions and definitions.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq
import yaml

from justice import disclosure
from justice.errors import ConfigError
from justice.transform.publish import exports

if TYPE_CHECKING:
    # Only an annotation here; its home moved from publish to exports (publish re-exports
    # `exports`, not the class).
    from justice.transform.exports import Export

log = logging.getLogger(__name__)

SYMBOL_CONFIDENTIAL = "[c]"
SYMBOL_NOT_AVAILABLE = "[x]"
SYMBOL_NOT_APPLICABLE = "[z]"
NO_VALUE = "(none)"
"""How a dimension value the file leaves empty is shown."""


@dataclass(frozen=True)
class Measure:
    """A column a table can show: a count (protected, added up), an extra sum (published and
    added up, e.g. prisoner days), a ratio recomputed from two of them, or a published derived
    value (a mean or median) shown only where a cell is one published row."""

    name: str
    kind: str  # "count" | "sum" | "ratio" | "published"
    sources: tuple[str, ...] = ()  # ratio: (numerator, denominator); published: its counts
    scale: float = 1.0
    percent: bool = False
    description: str = ""

    @property
    def label(self) -> str:
        """The measure's name as a heading."""
        return _label(self.name)


@dataclass
class Dataset:
    """One published aggregate file, its metadata, and its rows (dimension values as text)."""

    name: str
    title: str
    topic: str
    description: str
    model: str  # the dbt model (marts.<name>) the file is published from
    model_path: str
    time: str | None
    dims: tuple[str, ...]
    labels: dict[str, str]
    measures: dict[str, Measure]
    not_additive: dict[str, frozenset[str]]  # measure -> dimensions it cannot be added across
    default_query: str
    column_descriptions: dict[str, str]
    published_at: str
    threshold: int
    suppressed_cells: dict[str, int]
    path: Path
    frame: pd.DataFrame = field(repr=False)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Published rows (cells of the finest grain)."""
        return len(self.frame)

    @property
    def coverage(self) -> str:
        """The first and last period of the time dimension, e.g. "2014Q1 to 2025Q4"."""
        if not self.time or not self.values.get(self.time):
            return ""
        periods = self.values[self.time]
        return f"{periods[0]} to {periods[-1]}"

    @property
    def options(self) -> dict[str, list[tuple[str, str]]]:
        """Per dimension, its values with their labels (for the builder's filters; made once)."""
        made = self.__dict__.get("_options")
        if made is None:
            made = self.__dict__["_options"] = {
                d: [(v, self.value_label(d, v)) for v in self.values[d]] for d in self.dims}
        return made

    def value_label(self, dim: str, value: str) -> str:
        """A dimension value as shown: the code and its name where the file has one; an empty
        value (the file's null: e.g. no sentence length band for a remand prisoner) as "(none)",
        never a blank heading."""
        if value == "":
            return NO_VALUE
        name = self.value_labels.get(dim, {}).get(value)
        return f"{value} {name}" if name and name != value else value

    def dim_label(self, dim: str) -> str:
        """A dimension's name as a heading."""
        return _label(dim)


def _label(column: str) -> str:
    words = column.replace("_", " ").replace(" per 1000", " per 1,000").replace("self harm", "self-harm")
    return words[:1].upper() + words[1:]


@cache
def explorer_config() -> dict:
    """datasets.yaml, parsed (its shape is checked as each dataset is read)."""
    source = resources.files("justice.explore").joinpath("datasets.yaml")
    try:
        doc = yaml.safe_load(source.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc.get("datasets"), dict):
        raise ConfigError(f"{source}: needs a `datasets:` mapping of dataset name to reading rules")
    return doc


def _dbt_models(reports: Path) -> dict[str, dict]:
    """Model name -> {description, columns, path} from the dbt manifest the build left (the
    published docs' copy first); empty when there is none."""
    home = reports.parent
    for path in (reports / "dbt-docs" / "manifest.json", home / "transform" / "target" / "manifest.json"):
        if not path.is_file():
            continue
        try:
            nodes = json.loads(path.read_text("utf-8")).get("nodes", {})
        except (OSError, ValueError):
            log.warning("explorer: cannot read the dbt manifest %s", path)
            continue
        return {n["name"]: {"description": n.get("description") or "",
                            "columns": {c: (d.get("description") or "").strip()
                                        for c, d in (n.get("columns") or {}).items()},
                            "path": n.get("original_file_path") or ""}
                for n in nodes.values() if n.get("resource_type") == "model"}
    return {}


def _measures(spec: Export, rules: dict, columns: list[str], descriptions: dict[str, str]) -> dict[str, Measure]:
    ratios = rules.get("ratios") or {}
    percent = set(rules.get("percent") or [])
    out: dict[str, Measure] = {}
    for count in spec.counts:
        if count in columns:
            out[count] = Measure(count, "count", description=descriptions.get(count, ""))
    for extra in rules.get("measures") or []:
        if extra in columns:
            out[extra] = Measure(extra, "sum", description=descriptions.get(extra, ""))
    for name, sources in spec.derived.items():
        if name not in columns:
            continue
        if name in ratios:
            numerator, denominator, scale = ratios[name]
            # Recomputed only from counts that cover everything disclosure control hides it
            # with: otherwise a recomputed rate could show what the published one withholds.
            if numerator in out and denominator in out and set(sources) <= {numerator, denominator}:
                out[name] = Measure(name, "ratio", (numerator, denominator), float(scale),
                                    name in percent, descriptions.get(name, ""))
                continue
        out[name] = Measure(name, "published", tuple(sources), percent=name in percent,
                            description=descriptions.get(name, ""))
    return out


def _read(name: str, spec: Export, entry: dict, path: Path, manifest: dict, models: dict) -> Dataset:
    rules = explorer_config()["datasets"].get(name) or {}
    table = pq.read_table(path)
    # Defence in depth: exports.yaml already refuses identifying columns in aggregate files.
    disclosure.assert_no_identifiers(table)
    columns = table.column_names
    model = models.get(name, {})
    descriptions = model.get("columns", {})
    dims = tuple(d for d in (rules.get("dims") or spec.dims) if d in columns)
    if len(dims) < len(rules.get("dims") or spec.dims):
        log.warning("explorer: %s lacks dimension(s) %s (published by an older build?)", name,
                    sorted(set(rules.get("dims") or spec.dims) - set(columns)))
    measures = _measures(spec, rules, columns, descriptions)
    frame = table.to_pandas()
    for dim in dims:
        # Dimension values are text everywhere (query strings, downloads): dates as ISO dates.
        frame[dim] = frame[dim].map(lambda v: "" if pd.isna(v) else str(v))
    not_additive: dict[str, set[str]] = {}
    for dim, names in (rules.get("not_additive_over") or {}).items():
        if dim in dims:
            for measure in names:
                not_additive.setdefault(measure, set()).add(dim)
    labels = {d: c for d, c in (rules.get("labels") or {}).items() if d in dims and c in columns}
    values = {d: tuple(sorted(frame[d].unique())) for d in dims}
    value_labels = {d: dict(zip(frame[d], frame[c].astype(str))) for d, c in labels.items()}
    time = rules.get("time") if rules.get("time") in dims else None
    return Dataset(
        name=name, title=spec.title, topic=rules.get("topic", "Other"),
        description=model.get("description", "").strip(), model=f"marts.{name}",
        model_path=model.get("path", ""), time=time, dims=dims, labels=labels, measures=measures,
        not_additive={m: frozenset(d) for m, d in not_additive.items()},
        default_query=rules.get("default") or "", column_descriptions=descriptions,
        published_at=str(manifest.get("published_at", "")),
        threshold=int(manifest.get("threshold") or disclosure.DEFAULT_THRESHOLD),
        suppressed_cells=dict(entry.get("suppressed_cells") or {}), path=path, frame=frame,
        values=values, value_labels=value_labels)


@dataclass
class Catalogue:
    """The servable datasets of one publish (by name, in exports.yaml's order)."""

    reports: Path
    published_at: str
    datasets: dict[str, Dataset]

    def get(self, name: str) -> Dataset | None:
        """The dataset called `name`, or None (person-level and unknown names alike)."""
        return self.datasets.get(name)


_cache: dict[Path, tuple[tuple[int, int, int], Catalogue]] = {}
_cache_lock = threading.Lock()


def load_catalogue(reports: Path) -> Catalogue:
    """The catalogue of `reports` (HOME/reports), read again only when the manifest changes;
    empty when nothing has been published."""
    manifest_path = reports / "data" / "manifest.json"
    try:
        stamp = _stamp(manifest_path)
    except FileNotFoundError:
        return Catalogue(reports, "", {})
    cached = _cache.get(reports)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with _cache_lock:
        cached = _cache.get(reports)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        catalogue = _build(reports, manifest_path)
        _cache[reports] = (stamp, catalogue)
        return catalogue


def _stamp(manifest_path: Path) -> tuple[int, int, int]:
    st = manifest_path.stat()
    # A publish swaps in a new data folder: a new file, so a new inode even within a tick.
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def current_catalogue(reports: Path) -> Catalogue | None:
    """The catalogue of `reports` if it has been read and the manifest has not changed since;
    None otherwise (it is never read here: that can take seconds)."""
    cached = _cache.get(reports)
    try:
        return cached[1] if cached is not None and cached[0] == _stamp(
            reports / "data" / "manifest.json") else None
    except FileNotFoundError:
        return None


def _build(reports: Path, manifest_path: Path) -> Catalogue:
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{manifest_path}: not valid JSON ({exc}); run `justice build` again") from None
    specs = exports()
    models = _dbt_models(reports)
    datasets: dict[str, Dataset] = {}
    files = manifest.get("files") or {}
    for name, spec in specs.items():
        entry = files.get(name)
        if entry is None or spec.person_level or entry.get("person_level", True):
            continue  # not published, or person-level: never served
        path = reports / "data" / f"{name}.parquet"
        if not path.is_file():
            log.warning("explorer: the manifest lists %s but %s is missing", name, path)
            continue
        datasets[name] = _read(name, spec, entry, path, manifest, models)
    return Catalogue(reports, str(manifest.get("published_at", "")), datasets)
