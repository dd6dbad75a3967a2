"""Land one legacy system in the lake: read every new file (or changed database row) with the
system's reader and hand the Arrow batches to dlt, which writes Parquet under HOME/lake/raw/. A
big file's rows (over SPOOL_ROWS) are spooled to disk as Parquet while it is read, and that file
is what lands: dlt imports it as it is (see _Spool and _import_file), so its rows are encoded
once, on a thread of their own, while the file is still being parsed.

Guarantees:
- Nothing is lost: each source row lands in its raw table or in `<system>__rejects` with a rule
  and reason, and the load's counts (`<system>__loads`) say rows read = rows landed + rejected.
- Loaded once: a ledger in dlt's resource state (committed with the data it describes) records
  each file's SHA-256; a re-run skips unchanged files and reloads a file that changed. Database
  sources keep a modify-timestamp cursor per table instead.
- A bad file does not half-load: a file is read completely (spooled to disk if large) before any
  of it is handed on; a file that fails is reported in `<system>__load_errors`, left out of the
  ledger (so it is tried again next time), its spooled Parquet is deleted, and every other file
  still loads.
- A killed run leaves no partial data visible: dlt finishes or discards the pending package on the
  next run, and the warehouse's raw views read only files of completed loads.

Speed: when a system's files come to PARALLEL_MIN_BYTES or more (an xlsx byte counting as
READ_COST["xlsx"]; or a SQLite database is that big), worker processes read them (a database:
its tables) while this process hands finished files' rows to dlt, in the same order and with the
same ledger as reading them one by one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib
import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from justice.errors import JusticeError, SourceError
from justice.settings import Settings
from justice.sources.reading import LINEAGE_COLUMNS, REJECT_SCHEMA, Batch, Lineage
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
WRITES_AHEAD = 2
"""Batches of a spooled file waiting for the thread that writes them to Parquet, at most."""
PARQUET_OPTIONS = {"version": "2.4", "compression": "snappy"}
"""How a spooled file's Parquet is written: as dlt writes the rows it is handed (its defaults),
except for dictionaries and statistics (see _parquet_options)."""
DICTIONARY_SAMPLE = 10_000
"""Rows of a spooled file's first batch whose distinct values decide which columns are written
with a dictionary: those with at most one distinct value in ten."""
# Processes reading a system's files (or a SQLite database's tables) at once come from
# Settings.ingest_workers (JUSTICE_INGEST_WORKERS): the files are independent and reading them is
# CPU-bound, and the landing process hands their rows to dlt in file order. Workers are spawned,
# so a script that lands must guard its entry point with `if __name__ == "__main__":`.
PARALLEL_MIN_BYTES = 32 << 20
"""Below this many bytes of files in all, starting worker processes costs more than it saves."""
READ_COST = {"xlsx": 50}
"""How many bytes of CSV a byte of each format costs to read, where that is far from one (for
PARALLEL_MIN_BYTES): an xlsx file is zipped XML that openpyxl parses in Python, measured at
about 0.7 MB a second against a CSV's 50 (a 1,000,000-person world's 39 intervention
workbooks, 2.6 MB, take 3.6 CPU seconds)."""
HASH_ALONGSIDE_BYTES = 8 << 20
"""A new file at least this big is hashed on a thread while it is read, not before."""
Progress = Callable[[str, int, int], None]
_SPOOL_IDS = itertools.count()


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


@dataclass(frozen=True)
class SpooledFile:
    """One table's rows of a file spooled to disk as a finished Parquet file: landed as it is
    (dlt imports the file), not read back and encoded again."""

    path: str
    rows: int
    schema: pa.Schema


class _Segment:
    """One Parquet file of a spool: rows of one table, with one schema."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path, self.schema, self.rows = path, schema, 0
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        table = _unify(self.schema, table).select(self.schema.names).cast(self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, **_parquet_options(table))
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _parquet_options(first: pa.Table) -> dict:
    """Parquet options for a spooled file whose first batch is `first`. A dictionary is tried
    only for columns that repeat values (in a sample of the first rows): for one that does not
    (names, locators) the writer hashes every value before giving up on it. Statistics (min and
    max) are kept for the lineage columns, which say what load and file a file holds; nothing
    reads the raw text columns' (staging reads every raw row), and computing them is about a
    fifth of the writing. Measured on a 1,000,000-row CSV: 0.73 CPU seconds to write against
    1.22 with dlt's options, the file 6% bigger."""
    import pyarrow.compute as pc

    sample = first.slice(0, DICTIONARY_SAMPLE)
    repeating = [c for c in sample.column_names
                 if pc.count_distinct(sample[c]).as_py() <= max(1, sample.num_rows // 10)]
    lineage = [c for c in LINEAGE_COLUMNS if c != "_locator" and c in first.column_names]
    return {**PARQUET_OPTIONS, "use_dictionary": repeating, "write_statistics": lineage}


class _Spool:
    """A file's batches, kept in memory while small and on disk once large, until it is done.

    On disk a table's rows are written as the Parquet file that lands (see SpooledFile), by a
    thread of its own, so that encoding a big file's Parquet runs while the file is still being
    read and parsed (pyarrow's writer lets other threads run). At most WRITES_AHEAD batches wait
    for that thread, so memory stays bounded. A table whose columns grow part-way (a new source
    column) starts a new file with the wider schema, so nothing is dropped.
    """

    def __init__(self, tmpdir: str, limit: int | None = None) -> None:
        self.tmpdir = tmpdir
        self.limit = SPOOL_ROWS if limit is None else limit
        self.tables: dict[str, list[pa.Table]] = {}
        self.segments: dict[str, list[_Segment]] = {}
        self.rows = 0
        self.n_files = 0
        # Unique across the worker processes that share the folder.
        self.prefix = f"{os.getpid()}-{next(_SPOOL_IDS)}"
        self._writer: ThreadPoolExecutor | None = None
        self._writes: deque[Future] = deque()

    def _segment(self, name: str, schema: pa.Schema) -> _Segment:
        seg = _Segment(os.path.join(self.tmpdir, f"{self.prefix}-{self.n_files}.parquet"), schema)
        self.n_files += 1
        self.segments.setdefault(name, []).append(seg)
        return seg

    def _write(self, name: str, table: pa.Table) -> None:
        seg = self.segments[name][-1]
        if not set(table.column_names) <= set(seg.schema.names):
            seg = self._segment(name, pa.unify_schemas([seg.schema, table.schema]))
        seg.rows += table.num_rows
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="justice-spool")
        while len(self._writes) >= WRITES_AHEAD:
            self._writes.popleft().result()
        self._writes.append(self._writer.submit(seg.write, table))

    def add(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if name in self.segments:
            self._write(name, table)
            return
        self.tables.setdefault(name, []).append(table)
        if self.rows > self.limit:
            for key, parts in list(self.tables.items()):
                self._segment(key, pa.unify_schemas([p.schema for p in parts]))
                for part in parts:
                    self._write(key, part)
            self.tables.clear()

    def _finish(self) -> BaseException | None:
        """Wait for the writing thread and close every file; the first error met, if any."""
        error = None
        while self._writes:
            try:
                self._writes.popleft().result()
            except BaseException as exc:  # noqa: BLE001 - kept, closed below, then raised
                error = error or exc
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        for segments in self.segments.values():
            for seg in segments:
                try:
                    seg.close()
                except BaseException as exc:  # noqa: BLE001
                    error = error or exc
        return error

    def detach(self) -> list[tuple[str, pa.Table | SpooledFile]]:
        """The spooled parts in the order they are to be handed on: each table's rows in memory,
        or a finished Parquet file of them. Picklable, so a worker process can hand a file's
        rows to the landing process."""
        error = self._finish()
        out: list[tuple[str, pa.Table | SpooledFile]] = []
        for name, parts in self.tables.items():
            out.extend((name, part) for part in parts)
        for name, segments in self.segments.items():
            out.extend((name, SpooledFile(seg.path, seg.rows, seg.schema)) for seg in segments)
        self.tables.clear()
        self.segments.clear()
        if error is not None:
            discard(out)
            raise error
        return out

    def discard(self) -> None:
        """Drop everything spooled (nothing of a failed file lands), files included."""
        self._finish()
        paths = [seg.path for segments in self.segments.values() for seg in segments]
        self.tables.clear()
        self.segments.clear()
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def discard(detached: list[tuple[str, pa.Table | SpooledFile]]) -> None:
    """Drop a detached spool's parts, removing its files."""
    for _, part in detached:
        if isinstance(part, SpooledFile):
            with contextlib.suppress(FileNotFoundError):
                os.remove(part.path)


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


@dataclass
class _FileRead:
    """One file (or database) read whole: what happened, and its rows ready to hand on."""

    result: FileResult
    digest: str | None = None
    cursor: str | None = None
    parts: list[tuple[str, pa.Table | SpooledFile]] = field(default_factory=list)


def _read_whole(spec: SourceSpec, location: str, relative: str, lineage: Lineage,
                landed_digest: str | None, cursor: str | None, tmpdir: str,
                spool_rows: int) -> _FileRead:
    """Hash and read one file completely (in this process or a worker); nothing of a file that
    fails, or that is unchanged since it was landed (`landed_digest`), is kept."""
    read = reader_for(spec)
    done = _FileRead(FileResult(file=relative))
    with ThreadPoolExecutor(1) as hasher:
        hashing = None
        if spec.format != "database":
            if landed_digest is None and os.path.getsize(location) >= HASH_ALONGSIDE_BYTES:
                # Never landed under this name, so read whatever its digest: hash it meanwhile
                # (hashlib and file reads let other threads run).
                hashing = hasher.submit(sha256_of, Path(location))
            else:
                done.digest = sha256_of(Path(location))
                if landed_digest == done.digest:
                    done.result.skipped = True
                    return done
        spool = _Spool(tmpdir, spool_rows)
        try:
            done.cursor = _read_file(spec, read, location, relative, lineage, done.result, spool,
                                     cursor)
        except JusticeError as exc:
            done.result.error = str(exc)
            done.result.rows_landed = done.result.rows_rejected = 0
            spool.discard()  # nothing of a failed file lands
            return done
        except BaseException:
            spool.discard()
            raise
        if hashing is not None:
            done.digest = hashing.result()
    done.parts = spool.detach()
    return done


def _database_bytes(url: str) -> int:
    """The size of a SQLite database file; 0 for any other database (read by one process)."""
    try:
        parsed = _sa_url(url)
    except ValueError:
        return 0
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return 0
    path = Path(parsed.database)
    return path.stat().st_size if path.is_file() else 0


def _sa_url(url: str):
    """A SQLAlchemy URL object (ValueError if `url` is not one)."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValueError(str(exc)) from None


def _can_spawn() -> bool:
    """Whether spawned workers can start: they re-run the main script, so it must be a file
    (not a program piped to `python -`)."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return getattr(main, "__spec__", None) is not None or path is None or os.path.isfile(path)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the landing process runs dlt's and DuckDB's threads, and a forked child
    # of a threaded process can inherit a lock held by a thread that does not exist in it.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


class Workers:
    """Worker processes kept for several `land_system` calls (one `justice ingest` of every
    system), so each system does not start (spawn and import) its own: a spawned worker costs
    about half a CPU second before it reads anything. Use as a context manager; the processes
    are started when first needed and stopped on exit. A pool broken by a worker that died is
    replaced the next time one is needed."""

    def __init__(self) -> None:
        self._pools: dict[int, ProcessPoolExecutor] = {}

    def pool(self, workers: int) -> ProcessPoolExecutor:
        pool = self._pools.get(workers)
        if pool is not None and getattr(pool, "_broken", False):
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        if pool is None:
            pool = self._pools[workers] = _new_pool(workers)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _pool(workers: int, shared: Workers | None) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` processes: the shared one's if given (left running), else one of
    its own, stopped when done."""
    if shared is not None:
        yield shared.pool(workers)
        return
    with _new_pool(workers) as pool:
        yield pool


def _in_order(pool: ProcessPoolExecutor, calls: list[tuple], ahead_max: int) -> Iterator:
    """The results of `calls` (function and arguments) run by `pool`, in order, with at most
    `ahead_max` of them started before the caller has taken the earlier ones."""
    ahead: deque[Future] = deque()
    try:
        for fn, *args in calls:
            ahead.append(pool.submit(fn, *args))
            if len(ahead) > ahead_max:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:
        for future in ahead:
            future.cancel()


def _read_database_by_table(spec: SourceSpec, url: str, relative: str, lineage: Lineage,
                            cursor: str | None, tmpdir: str, workers: int,
                            shared: Workers | None = None) -> _FileRead:
    """A database read whole with its tables shared among worker processes: the same rows and
    cursor state as one read of every table. If any table fails, the database is read again in
    one process so that the error is exactly the one a single read gives (and nothing lands)."""
    # Every worker's rows go to disk (spool limit 0), so that all tables can be read at once
    # and the landing process holds only the batch it is handing on.
    calls = [(_read_whole, dataclasses.replace(spec, tables=(table,)), url, relative, lineage,
              None, cursor, tmpdir, 0) for table in spec.tables]
    done = _FileRead(FileResult(file=relative))
    state: dict = json.loads(cursor) if cursor else {}
    with _pool(workers, shared) as pool:
        reads = list(_in_order(pool, calls, len(calls)))
    if any(r.result.error for r in reads):
        for r in reads:
            discard(r.parts)
        return _read_whole(spec, url, relative, lineage, None, cursor, tmpdir, SPOOL_ROWS)
    for table, r in zip(spec.tables, reads, strict=True):
        done.result.rows_landed += r.result.rows_landed
        done.result.rows_rejected += r.result.rows_rejected
        done.result.new_columns = sorted(set(done.result.new_columns) | set(r.result.new_columns))
        table_state = json.loads(r.cursor) if r.cursor else {}
        if table.name in table_state:
            state[table.name] = table_state[table.name]
        done.parts += r.parts
    done.cursor = json.dumps(state, sort_keys=True) if state else None
    return done


def _read_all(spec: SourceSpec, locations: list[tuple[str, str]], lineage: Lineage,
              ledger: dict, cursors: dict, tmpdir: str, most_workers: int,
              shared: Workers | None = None) -> Iterator[_FileRead]:
    """Every location read whole, in order; by several processes when the files (or a SQLite
    database's tables) are many and big enough, at most a few files ahead of the caller, so
    memory stays bounded."""
    jobs = [(location, relative, ledger.get(relative, {}).get("sha256"), cursors.get(relative))
            for location, relative in locations]
    if spec.format == "database":
        for location, relative, _, cursor in jobs:
            workers = min(most_workers, len(spec.tables)) if _can_spawn() else 1
            if workers > 1 and _database_bytes(location) >= PARALLEL_MIN_BYTES:
                yield _read_database_by_table(spec, location, relative, lineage, cursor, tmpdir,
                                              workers, shared)
            else:
                yield _read_whole(spec, location, relative, lineage, None, cursor, tmpdir,
                                  SPOOL_ROWS)
        return
    workers = min(most_workers, len(jobs)) if _can_spawn() else 1
    cost = READ_COST.get(spec.format, 1) * sum(os.path.getsize(location) for location, *_ in jobs)
    if workers < 2 or cost < PARALLEL_MIN_BYTES:
        for location, relative, digest, cursor in jobs:
            yield _read_whole(spec, location, relative, lineage, digest, cursor, tmpdir,
                              SPOOL_ROWS)
        return
    with _pool(workers, shared) as pool:
        yield from _in_order(pool, [(_read_whole, spec, location, relative, lineage, digest,
                                     cursor, tmpdir, SPOOL_ROWS)
                                    for location, relative, digest, cursor in jobs], workers)


def land_system(spec: SourceSpec, settings: Settings, *, progress: Progress = lambda *_: None,
                workers: Workers | None = None) -> LoadReport:
    """Land every new or changed file (or database change) of one system; return the report.
    `workers`: processes shared with other systems' landings (else the system starts its own
    when it has enough to read)."""
    import dlt
    from dlt.destinations import filesystem

    reader_for(spec)  # an unknown format fails here, before dlt starts
    now = dt.datetime.now(dt.UTC)
    load_id = f"{spec.system}-{now:%Y%m%dT%H%M%S%f}"
    report = LoadReport(system=spec.system, load_id=load_id, started_at=now.isoformat(timespec="seconds"))
    lineage = Lineage(load_id=load_id, extracted_at=report.started_at)
    folder = settings.legacy_dir / spec.system
    pipelines_dir = settings.home / ".dlt"

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

    # Each table's rows go to hints of their own (a table variant, made with its first item), so
    # that a spooled file's import (which names its table in the resource's own hints) leaves
    # the other tables' items where they belong.
    variants: set[str] = set()

    def to_table(item: pa.Table, name: str):
        if name in variants:
            return dlt.mark.with_table_name(item, name)
        variants.add(name)
        return dlt.mark.with_hints(item, dlt.mark.make_hints(table_name=name),
                                   create_table_variant=True)

    def flush() -> Iterator:
        for name, parts in pending.items():
            yield to_table(pa.concat_tables(parts, promote_options="default"), name)
        pending.clear()
        pending_rows[0] = 0

    def rows() -> Iterator:
        state = dlt.current.resource_state()
        ledger = state.setdefault("files", {})
        cursors = state.setdefault("cursors", {})
        # Beside dlt's own files, so that dlt takes a spooled Parquet file by a hard link (and
        # not in /tmp, which may be memory); a folder left by a killed run is removed first.
        pipelines_dir.mkdir(parents=True, exist_ok=True)
        for stale in pipelines_dir.glob(f"spool-{spec.system}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"spool-{spec.system}-", dir=pipelines_dir) as tmpdir:
            reads = _read_all(spec, locations, lineage, ledger, cursors, tmpdir,
                              settings.ingest_workers, workers)
            for i, done in enumerate(reads):
                progress(spec.system, i, len(locations))
                result, relative = done.result, done.result.file
                report.files.append(result)
                if result.skipped or result.error:
                    continue
                # The file was read whole without error: its rows may now go on, in batches.
                for name, part in done.parts:
                    if isinstance(part, SpooledFile):
                        yield _import_file(name, part)
                        continue
                    pending.setdefault(name, []).append(part)
                    pending_rows[0] += part.num_rows
                    if pending_rows[0] >= FLUSH_ROWS:
                        yield from flush()
                if done.digest:
                    ledger[relative] = {"sha256": done.digest, "load_id": load_id,
                                        "rows": result.rows_read}
                if done.cursor:
                    cursors[relative] = done.cursor
            yield from flush()
            progress(spec.system, len(locations), len(locations))
        report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        yield to_table(_report_table(report), f"{spec.system}__loads")
        errors = report.errors
        if errors:
            yield to_table(pa.table({
                "load_id": [load_id] * len(errors), "file": [f.file for f in errors],
                "error": [f.error for f in errors]}), f"{spec.system}__load_errors")

    pipeline = dlt.pipeline(
        pipeline_name=f"justice_{spec.system}",
        pipelines_dir=str(pipelines_dir),
        destination=filesystem(bucket_url=str((settings.home / "lake").resolve()),
                               layout="{table_name}/{load_id}.{file_id}.{ext}"),
        dataset_name="raw",
        progress=None,
    )
    resource = dlt.resource(rows, name=f"{spec.system}_rows", write_disposition="append",
                            file_format="parquet")
    pipeline.run(dlt.source(lambda: resource, name=spec.system)(), loader_file_format="parquet")
    return report


def _import_file(name: str, part: SpooledFile):
    """The item that has dlt take a spooled Parquet file into table `name` as it is: the table's
    columns come from the file's Arrow schema (an empty table of it), its name from the hints.
    (`dlt.mark.with_file_import` takes either hints or a schema table, not both; the hints set
    the resource's table name, which every other item overrides with its own.)"""
    import dlt
    from dlt.common.metrics import DataWriterMetrics
    from dlt.extract.extractors import ImportFileMeta
    from dlt.extract.items import DataItemWithMeta

    meta = ImportFileMeta(part.path, DataWriterMetrics(part.path, part.rows, 0, 0, 0), "parquet",
                          dlt.mark.make_hints(table_name=name), False)
    return DataItemWithMeta(meta, part.schema.empty_table())


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
