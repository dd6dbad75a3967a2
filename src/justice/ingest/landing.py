"""Land one legacy system in the lake: read every new file (or changed database row) with the
system's reader and hand the Arrow batches to dlt, which writes Parquet under HOME/lake/raw/.

Guarantees:
- Nothing is lost: each source row lands in its raw table or in `<system>__rejects` with a rule
  and reason, and the load's counts (`<system>__loads`) say rows read = rows landed + rejected.
- Loaded once: a ledger in dlt's resource state (committed with the data it describes) records
  each file's SHA-256; a re-run skips unchanged files and reloads a file that changed. Database
  sources keep a modify-timestamp cursor per table instead.
- A bad file does not half-load: a file is read completely (spooled to disk if large) before any
  of it is handed on; a file that fails is reported in `<system>__load_errors`, left out of the
  ledger (so it is tried again next time) and every other file still loads.
- A killed run leaves no partial data visible: dlt finishes or discards the pending package on the
  next run, and the warehouse's raw views read only files of completed loads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from justice.errors import JusticeError, SourceError
from justice.settings import Settings
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage
from justice.sources.spec import SourceSpec

READER_MODULES = {
    "csv": "justice.sources.readers.csv",
    "xml": "justice.sources.readers.xml",
    "database": "justice.sources.readers.database",
    "fixed_width": "justice.sources.readers.fixed_width",
    "xlsx": "justice.sources.readers.xlsx",
}
FLUSH_ROWS = 100_000  # completed files' rows handed to dlt together
SPOOL_ROWS = 250_000  # above this a file's rows wait on disk, not in memory, until it has been read
Progress = Callable[[str, int, int], None]


@dataclass
class FileResult:
    """What happened to one file (or one database table) in a load."""

    file: str
    rows_landed: int = 0
    rows_rejected: int = 0
    new_columns: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False
    """Unchanged since an earlier load, so not read again."""

    @property
    def rows_read(self) -> int:
        return self.rows_landed + self.rows_rejected


@dataclass
class LoadReport:
    """One system's load: its id, files, counts and errors."""

    system: str
    load_id: str
    started_at: str
    finished_at: str = ""
    files: list[FileResult] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_landed(self) -> int:
        return sum(f.rows_landed for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    def to_json(self) -> dict:
        """A JSON-ready summary (for `justice ingest --json`)."""
        out = asdict(self)
        out.update(rows_read=self.rows_read, rows_landed=self.rows_landed, rows_rejected=self.rows_rejected,
                   files_loaded=sum(1 for f in self.files if not f.skipped and not f.error),
                   files_skipped=sum(1 for f in self.files if f.skipped), files_failed=len(self.errors))
        return out


def reader_for(spec: SourceSpec):
    """The `read` function of the spec's format."""
    try:
        return importlib.import_module(READER_MODULES[spec.format]).read
    except (KeyError, ModuleNotFoundError) as exc:
        raise SourceError(f"{spec.path}: no reader for format {spec.format!r} ({exc})") from None


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_files(spec: SourceSpec, folder: Path) -> list[Path]:
    """The spec's files under the system's folder, in a stable order."""
    return sorted(p for p in folder.glob(spec.files or "") if p.is_file())


class _Spool:
    """A file's batches, kept in memory while small and on disk once large, until it is done.

    The disk copy is Arrow IPC, not Parquet: it is read back once, right away, so the cheapest
    format to write and read wins. A table whose columns grow part-way (a new source column)
    starts a new segment with the wider schema, so nothing is dropped.
    """

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self.tables: dict[str, list[pa.Table]] = {}
        self.segments: dict[str, list[tuple[pa.ipc.RecordBatchStreamWriter, str, pa.Schema]]] = {}
        self.rows = 0
        self.n_files = 0

    def _segment(self, name: str, schema: pa.Schema) -> tuple[pa.ipc.RecordBatchStreamWriter, str, pa.Schema]:
        path = os.path.join(self.tmpdir, f"{self.n_files}.arrows")
        self.n_files += 1
        seg = (pa.ipc.new_stream(path, schema), path, schema)
        self.segments.setdefault(name, []).append(seg)
        return seg

    def _write(self, name: str, table: pa.Table) -> None:
        writer, _, schema = self.segments[name][-1]
        if not set(table.column_names) <= set(schema.names):
            writer, _, schema = self._segment(name, pa.unify_schemas([schema, table.schema]))
        writer.write_table(_unify(schema, table).select(schema.names).cast(schema))

    def add(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if name in self.segments:
            self._write(name, table)
            return
        self.tables.setdefault(name, []).append(table)
        if self.rows > SPOOL_ROWS:
            for key, parts in list(self.tables.items()):
                self._segment(key, pa.unify_schemas([p.schema for p in parts]))
                for part in parts:
                    self._write(key, part)
            self.tables.clear()

    def drain(self) -> Iterator[tuple[str, pa.Table]]:
        for name, parts in self.tables.items():
            for part in parts:
                yield name, part
        for name, segments in self.segments.items():
            for writer, path, _ in segments:
                writer.close()
                with pa.memory_map(path) as source:
                    for batch in pa.ipc.open_stream(source):
                        yield name, pa.Table.from_batches([batch])
                os.remove(path)
        self.tables.clear()
        self.segments.clear()


def _unify(schema: pa.Schema, table: pa.Table) -> pa.Table:
    """Keep spooled parts of one table compatible when a file adds columns part-way."""
    missing = [f for f in schema if f.name not in table.column_names]
    for f in missing:
        table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table


def _read_file(spec: SourceSpec, read, location: str, relative: str, lineage: Lineage, result: FileResult,
               spool: _Spool, cursor: str | None) -> str | None:
    """Read one file (or database) completely into the spool; returns the new cursor (JSON) if any."""
    # Database readers take and give a cursor per table: JSON {table: highest value landed}.
    table_cursors: dict[str, str] = json.loads(cursor) if cursor else {}
    schemas: dict[str, pa.Schema] = {}
    for batch in read(spec, location, lineage, cursor=cursor, relative_name=relative):
        batch: Batch
        rows = batch.rows
        if batch.table in schemas and rows.schema != schemas[batch.table]:
            rows = _unify(schemas[batch.table], rows)
        schemas.setdefault(batch.table, rows.schema)
        spool.add(f"{spec.system}__{batch.table}", rows)
        spool.add(f"{spec.system}__rejects", batch.rejects.cast(REJECT_SCHEMA))
        result.rows_landed += rows.num_rows
        result.rows_rejected += batch.rejects.num_rows
        result.new_columns = sorted(set(result.new_columns) | set(batch.new_columns))
        if batch.cursor is not None:
            table_cursors[batch.table] = batch.cursor
    return json.dumps(table_cursors, sort_keys=True) if table_cursors else None


def land_system(spec: SourceSpec, settings: Settings, *, progress: Progress = lambda *_: None) -> LoadReport:
    """Land every new or changed file (or database change) of one system; return the report."""
    import dlt
    from dlt.destinations import filesystem

    read = reader_for(spec)
    now = dt.datetime.now(dt.UTC)
    load_id = f"{spec.system}-{now:%Y%m%dT%H%M%S%f}"
    report = LoadReport(system=spec.system, load_id=load_id, started_at=now.isoformat(timespec="seconds"))
    lineage = Lineage(load_id=load_id, extracted_at=report.started_at)
    folder = settings.legacy_dir / spec.system

    if spec.format == "database":
        url = (spec.url or "").replace("{legacy}", str(settings.legacy_dir.resolve()))
        locations = [(url, spec.system)]
    else:
        if not folder.is_dir():
            raise SourceError(f"{spec.system}: no folder {folder}; run `justice simulate` or put the "
                              "system's extract there")
        locations = [(str(p), str(p.relative_to(folder))) for p in source_files(spec, folder)]

    # Small files are handed on together: dlt's cost is per item, not per row.
    pending: dict[str, list[pa.Table]] = {}
    pending_rows = [0]

    def flush() -> Iterator:
        for name, parts in pending.items():
            yield dlt.mark.with_table_name(pa.concat_tables(parts, promote_options="default"), name)
        pending.clear()
        pending_rows[0] = 0

    def rows() -> Iterator:
        state = dlt.current.resource_state()
        ledger = state.setdefault("files", {})
        cursors = state.setdefault("cursors", {})
        with tempfile.TemporaryDirectory(prefix=f"justice-{spec.system}-") as tmpdir:
            for i, (location, relative) in enumerate(locations):
                progress(spec.system, i, len(locations))
                result = FileResult(file=relative)
                report.files.append(result)
                digest = None
                if spec.format != "database":
                    digest = sha256_of(Path(location))
                    if ledger.get(relative, {}).get("sha256") == digest:
                        result.skipped = True
                        continue
                spool = _Spool(tmpdir)
                try:
                    cursor = _read_file(spec, read, location, relative, lineage, result, spool,
                                        cursors.get(relative))
                except JusticeError as exc:
                    result.error = str(exc)
                    result.rows_landed = result.rows_rejected = 0
                    spool.drain()  # discard: nothing of a failed file lands
                    continue
                # The file was read whole without error: its rows may now go on, in batches.
                for name, table in spool.drain():
                    pending.setdefault(name, []).append(table)
                    pending_rows[0] += table.num_rows
                    if pending_rows[0] >= FLUSH_ROWS:
                        yield from flush()
                if digest:
                    ledger[relative] = {"sha256": digest, "load_id": load_id, "rows": result.rows_read}
                if cursor:
                    cursors[relative] = cursor
            yield from flush()
            progress(spec.system, len(locations), len(locations))
        report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        yield dlt.mark.with_table_name(_report_table(report), f"{spec.system}__loads")
        errors = report.errors
        if errors:
            yield dlt.mark.with_table_name(pa.table({
                "load_id": [load_id] * len(errors), "file": [f.file for f in errors],
                "error": [f.error for f in errors]}), f"{spec.system}__load_errors")

    pipeline = dlt.pipeline(
        pipeline_name=f"justice_{spec.system}",
        pipelines_dir=str(settings.home / ".dlt"),
        destination=filesystem(bucket_url=str((settings.home / "lake").resolve()),
                               layout="{table_name}/{load_id}.{file_id}.{ext}"),
        dataset_name="raw",
        progress=None,
    )
    resource = dlt.resource(rows, name=f"{spec.system}_rows", write_disposition="append",
                            file_format="parquet")
    pipeline.run(dlt.source(lambda: resource, name=spec.system)(), loader_file_format="parquet")
    return report


def _report_table(report: LoadReport) -> pa.Table:
    files = [f for f in report.files if not f.skipped]
    return pa.table({
        "load_id": [report.load_id], "system": [report.system], "started_at": [report.started_at],
        "finished_at": [report.finished_at], "files_read": [sum(1 for f in files if not f.error)],
        "files_skipped": [sum(1 for f in report.files if f.skipped)], "files_failed": [len(report.errors)],
        "rows_read": [report.rows_read], "rows_landed": [report.rows_landed],
        "rows_rejected": [report.rows_rejected],
        "new_columns": [json.dumps(sorted({c for f in files for c in f.new_columns}))],
    })
