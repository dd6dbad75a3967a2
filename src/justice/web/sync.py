"""The sync: an incremental copy of the prison database into the serving store.

    result = sync_once(settings)                   # one run; result.ok, result.read, result.error
    syncer = Syncer(settings, engine).start()      # every settings.sync_interval seconds
    syncer.run_now(); syncer.stop()

How a run works
    * One transaction on the store: pages see the previous sync or this one, never half. A run
      that fails (source unreachable, a table missing) is rolled back whole and leaves a
      ``sync_runs`` row with its error. On PostgreSQL the run first takes a transaction-level
      advisory lock, so two syncers (say, one per web worker, or ``justice sync`` beside them)
      never write at once: the second skips its turn. SQLite allows one writer at a time anyway.
    * One read transaction on the prison database (REPEATABLE READ on PostgreSQL), so every
      table is read from the same snapshot and the counts below agree with the rows read.
    * Per table, a cursor (``sync_state``): the greatest MODIFY_DATETIME read and that row's key.
      A run reads only rows with MODIFY_DATETIME at or after the cursor less ``look_back``
      (default two minutes of the prison clock), ordered by (MODIFY_DATETIME, key) and fetched in
      pages of ``page_size`` from one streamed query, so a first load of a large database is
      never held in memory. The look-back is there because a source transaction can commit a row
      stamped earlier than rows already read; re-reading the rows inside it is harmless (upserts,
      ``INSERT ... ON CONFLICT DO UPDATE``). With ``look_back=0`` the read is strictly after
      (cursor, key), so ties at one MODIFY_DATETIME are still never lost.
    * Deletes: after the upserts the mirror holds every source row it has ever read, so the
      mirror has more rows than the source (same snapshot) exactly when rows were deleted. Only
      then are the table's keys reconciled: the source's keys (keys only, streamed) into a
      temporary table in the store, mirror rows without a source key deleted, and any source key
      the mirror lacks (a row committed later than the look-back) read and upserted. Counting is
      one COUNT(*) per table on each side; a table without deletes costs nothing more.
    * Then people (``justice.web.people``): OFFENDERS rows that are new or changed (or whose
      identifiers changed, or that an earlier run could not resolve) are resolved against the
      person index, and their persons' linked history copied; when the warehouse file changed
      (a new ``justice link`` or ``build``) every row is resolved again and the history copied
      whole. A warehouse that is missing or locked delays this to a later run (``note``), and
      the mirror is synced all the same.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import duckdb
import sqlalchemy as sa

from justice.errors import ConfigError, JusticeError
from justice.serving.mirror import (
    MIRROR,
    SourceTable,
    add_missing_columns,
    person_resolution,
    sync_runs,
    sync_state,
    upsert,
)
from justice.serving.store import create_store_engine, metadata, open_store
from justice.settings import Settings
from justice.web import people

log = logging.getLogger("justice.sync")

PAGE_SIZE = 5_000
KEY_PAGE_SIZE = 50_000
BUCKET_ROWS = 100  # rows per key range compared by count before keys are compared
MAX_RANGES = 200  # more differing ranges than this: compare the whole table's keys
LOOK_BACK = dt.timedelta(minutes=2)
WAREHOUSE = "warehouse"  # sync_state row holding the warehouse's signature
ADVISORY_LOCK = 0x6A75737469636531  # "justice1": one syncer per PostgreSQL store
KEEP_RUNS = dt.timedelta(days=30)  # sync_runs rows older than this are dropped

Progress = Callable[[str, int], None]


@dataclass
class SyncResult:
    """What one run did."""

    run_id: int | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    read: dict[str, int] = field(default_factory=dict)
    """Rows read from the prison database, per NOMIS table (key reconciliation included)."""
    upserted: int = 0
    deleted: int = 0
    reconciled: list[str] = field(default_factory=list)
    """Tables whose keys were reconciled because the source's and the mirror's counts differed."""
    keys_compared: int = 0
    """Source keys read to reconcile them (only the key ranges whose counts differed)."""
    resolved: int = 0
    scored: int = 0
    history_rows: int = 0
    as_at: dt.datetime | None = None
    error: str | None = None
    note: str | None = None
    skipped: bool = False
    """True when another syncer held the store's lock, so this run did nothing."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent on the mirror (read, upsert, deletes), on people, and on committing."""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped

    @property
    def rows_read(self) -> int:
        return sum(self.read.values())

    @property
    def seconds(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _shown(url: str | sa.URL) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _real_sqlite_transactions(engine: sa.Engine) -> None:
    """pysqlite begins no transaction for SELECTs; make BEGIN explicit so a run reads one
    snapshot (SQLAlchemy's documented recipe)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")


def open_prison(settings: Settings) -> sa.Engine:
    """A read-only engine on the prison database (Settings.prison_db_url)."""
    url = sa.engine.make_url(settings.prison_db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or not path.is_file():
            raise ConfigError(f"no prison database at {path} (JUSTICE_PRISON_DB or --prison-db; "
                              "`justice simulate` writes one)")
        # Read-only: the sync must never create or change the source. The URI is made here, not
        # by SQLAlchemy's URL, so a path with spaces or '#' is quoted as SQLite expects.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        engine = sa.create_engine(
            "sqlite://", poolclass=sa.pool.QueuePool,
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
        _real_sqlite_transactions(engine)
        return engine
    try:
        engine = sa.create_engine(url, isolation_level="REPEATABLE READ", pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"prison database URL {_shown(url)} is not usable: {exc} "
                          "(JUSTICE_PRISON_DB or --prison-db)") from None
    if engine.dialect.name == "postgresql":
        return engine.execution_options(postgresql_readonly=True)
    return engine


_prepared: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines prepare_store has seen


def prepare_store(engine: sa.Engine) -> None:
    """Create the sync's tables if missing and add mirror columns the DDL gained since (once
    per engine)."""
    if engine in _prepared:
        return
    ours = [t for t in metadata.sorted_tables
            if t.name.startswith("nomis_") or t.name in ("person_resolution", "linked_history",
                                                         "sync_state", "sync_runs")]
    metadata.create_all(engine, tables=ours)
    changed = add_missing_columns(engine)
    if changed:
        log.info("mirror columns added to %s; those tables are read again", ", ".join(changed))
    _prepared.add(engine)


# ---------------------------------------------------------------------------------------------
# One table


@dataclass
class _TableRun:
    read: int = 0
    upserted: int = 0
    deleted: int = 0
    reconciled: bool = False
    keys_compared: int = 0
    rows: int = 0
    cursor_modify: dt.datetime | None = None
    cursor_key: str | None = None
    keys: list[tuple] = field(default_factory=list)  # keys upserted (collected for OFFENDERS only)


def _to_date(v):
    if v is None or isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.datetime):
        return v.date()
    return dt.date.fromisoformat(str(v)[:10])


def _to_datetime(v):
    if v is None or isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    return dt.datetime.fromisoformat(str(v))


def _converter(column: sa.Column) -> Callable:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return _to_datetime
    if isinstance(kind, sa.Date):
        return _to_date
    if isinstance(kind, sa.Integer):
        return lambda v: None if v is None else int(v)
    return lambda v: None if v is None else str(v)


def _source_time(src: sa.Connection, value: dt.datetime):
    """A timestamp as the source compares it: SQLite holds ISO text, PostgreSQL TIMESTAMP."""
    if src.dialect.name == "sqlite":
        fmt = "%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S"
        return value.strftime(fmt)
    return value


def _after(columns: list[str], i: int = 0) -> str:
    """(c0, c1, ...) > (:c0, :c1, ...) spelled out, which every SQL database accepts."""
    c = columns[i]
    if i == len(columns) - 1:
        return f"{c} > :c{i}"
    return f"({c} > :c{i} OR ({c} = :c{i} AND {_after(columns, i + 1)}))"


def _source_columns(src: sa.Connection, name: str) -> set[str]:
    inspector = sa.inspect(src)
    for candidate in (name.lower(), name):
        try:
            cols = inspector.get_columns(candidate)
        except sa.exc.NoSuchTableError:
            continue
        if cols:
            return {c["name"].upper() for c in cols}
    raise ConfigError(f"the prison database has no table {name} (expected the NOMIS tables of "
                      "nomis_ddl.sql)")


def _sync_table(conn: sa.Connection, src: sa.Connection, source: SourceTable, table: sa.Table,
                state: sa.Row | None, *, page_size: int, look_back: dt.timedelta,
                collect_keys: bool, progress: Progress | None) -> _TableRun:
    present = _source_columns(src, source.name)
    needed = {*source.primary_key, "MODIFY_DATETIME"}
    if not needed <= present:
        raise ConfigError(f"prison table {source.name} lacks "
                          f"{', '.join(sorted(needed - present))}, which the sync needs")
    cols = [c for c in source.columns if c in present]
    absent = {c.lower(): None for c in source.columns if c not in present}
    mirror_cols = [table.c[c.lower()] for c in cols]
    convert = [_converter(c) for c in mirror_cols]
    names = [c.name for c in mirror_cols]
    pk = list(source.primary_key)
    pk_pos = [cols.index(k) for k in pk]
    modify_pos = cols.index("MODIFY_DATETIME")

    run = _TableRun(cursor_modify=state.cursor_modify if state else None,
                    cursor_key=state.cursor_key if state else None)
    seen_up_to = run.cursor_modify
    where, params = "", {}
    if state is not None and state.cursor_modify is not None:
        if look_back > dt.timedelta(0) or not state.cursor_key:
            where = "WHERE MODIFY_DATETIME >= :since"
            params["since"] = _source_time(src, state.cursor_modify - look_back)
        else:
            key = json.loads(state.cursor_key)
            ordered = ["MODIFY_DATETIME", *pk]
            where = f"WHERE {_after(ordered)}"
            values = [_source_time(src, state.cursor_modify), *key]
            params.update({f"c{i}": v for i, v in enumerate(values)})
    sql = (f"SELECT {', '.join(cols)} FROM {source.name} {where} "
           f"ORDER BY MODIFY_DATETIME, {', '.join(pk)}")

    def upsert_rows(rows) -> dt.datetime | None:
        records = [{**absent, **{n: f(v) for n, f, v in zip(names, convert, row)}} for row in rows]
        upsert(conn, table, records)
        run.upserted += len(records)
        if collect_keys:
            # Rows re-read inside the look-back were seen before (or, if never resolved, are
            # found as pending): only rows past the previous cursor count as changed.
            run.keys.extend(tuple(row[i] for i in pk_pos) for row, r in zip(rows, records)
                            if seen_up_to is None or r["modify_datetime"] > seen_up_to)
        return max((r["modify_datetime"] for r in records), default=None)

    streamed = src.execution_options(stream_results=True, max_row_buffer=page_size)
    result = streamed.execute(sa.text(sql), params)
    last = None
    while page := result.fetchmany(page_size):
        upsert_rows(page)
        run.read += len(page)
        last = page[-1]
        if progress:
            progress(source.name, run.read)
    result.close()
    if last is not None:
        newest = _to_datetime(last[modify_pos])
        if run.cursor_modify is None or newest >= run.cursor_modify:
            run.cursor_modify = newest
            run.cursor_key = json.dumps([last[i] for i in pk_pos])

    source_rows = src.execute(sa.text(f"SELECT COUNT(*) FROM {source.name}")).scalar()
    run.rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    if run.rows != source_rows:
        run.reconciled = True
        deleted, missing, run.keys_compared = _reconcile(conn, src, source, table)
        run.deleted = deleted
        run.read += sum(len(keys) for keys in missing)
        for keys in missing:
            cond = " OR ".join(
                "(" + " AND ".join(f"{k} = :k{j}_{i}" for i, k in enumerate(pk)) + ")"
                for j in range(len(keys)))
            binds = {f"k{j}_{i}": v for j, key in enumerate(keys) for i, v in enumerate(key)}
            rows = src.execute(sa.text(f"SELECT {', '.join(cols)} FROM {source.name} WHERE {cond}"),
                               binds).fetchall()
            newest = upsert_rows(rows)
            if newest is not None and (run.cursor_modify is None or newest > run.cursor_modify):
                run.cursor_modify = newest
        run.rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    return run


def _differing_ranges(conn: sa.Connection, src: sa.Connection, source: SourceTable,
                      table: sa.Table) -> list[tuple[int, int]] | None:
    """Key ranges [start, end) of the leading key column where the source's and the mirror's row
    counts differ, in buckets of about BUCKET_ROWS rows; None: reconcile the whole table (its
    leading key is not an integer, or too many buckets differ)."""
    first = source.primary_key[0]
    column = table.c[first.lower()]
    if not isinstance(column.type, sa.Integer):
        return None
    lo, hi, rows = conn.execute(sa.select(sa.func.min(column), sa.func.max(column),
                                          sa.func.count())).one()
    src_lo, src_hi = src.execute(
        sa.text(f"SELECT MIN({first}), MAX({first}) FROM {source.name}")).one()
    bounds = [int(v) for v in (lo, hi, src_lo, src_hi) if v is not None]
    if not bounds:
        return []
    lo, hi = min(bounds), max(bounds)
    width = max(1, (hi - lo + 1) * BUCKET_ROWS // max(rows, 1))
    # Literal integers only (from the databases above); keys - lo >= 0, so / is floor division
    # on SQLite and PostgreSQL alike.
    bucket = f"({{}} - {lo}) / {width}"
    src_counts = dict(src.execute(sa.text(
        f"SELECT {bucket.format(first)}, COUNT(*) FROM {source.name} "
        f"GROUP BY {bucket.format(first)}")).all())
    dst_counts = dict(conn.execute(sa.text(
        f"SELECT {bucket.format(column.name)}, COUNT(*) FROM {table.name} "
        f"GROUP BY {bucket.format(column.name)}")).all())
    differ = sorted(b for b in set(src_counts) | set(dst_counts)
                    if src_counts.get(b) != dst_counts.get(b))
    ranges: list[tuple[int, int]] = []
    for b in differ:
        start, end = lo + int(b) * width, lo + (int(b) + 1) * width
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return None if len(ranges) > MAX_RANGES else ranges


def _reconcile(conn: sa.Connection, src: sa.Connection, source: SourceTable,
               table: sa.Table) -> tuple[int, list[list[tuple]], int]:
    """Delete mirror rows whose key the source no longer has; return (deleted, the source keys
    the mirror lacks, in chunks, and how many source keys were read). Only the key ranges whose
    counts differ are compared."""
    ranges = _differing_ranges(conn, src, source, table)
    keys = [table.c[k.lower()] for k in source.primary_key]
    first = source.primary_key[0]
    if ranges is None:
        reads = [(f"SELECT {', '.join(source.primary_key)} FROM {source.name}", {})]
        in_ranges = sa.true()
    else:
        within = (f"SELECT {', '.join(source.primary_key)} FROM {source.name} "
                  f"WHERE {first} >= :start AND {first} < :end")
        reads = [(within, {"start": a, "end": b}) for a, b in ranges]
        in_ranges = sa.or_(sa.false(), *(sa.and_(keys[0] >= a, keys[0] < b) for a, b in ranges))
    scratch = sa.Table(f"sync_keys_{table.name}", sa.MetaData(),
                       *(sa.Column(k.name, k.type, primary_key=True, autoincrement=False)
                         for k in keys),
                       prefixes=["TEMPORARY"])
    scratch.create(conn)
    try:
        convert = [_converter(k) for k in keys]
        compared = 0
        for sql, params in reads:
            streamed = src.execution_options(stream_results=True, max_row_buffer=KEY_PAGE_SIZE)
            result = streamed.execute(sa.text(sql), params)
            while page := result.fetchmany(KEY_PAGE_SIZE):
                compared += len(page)
                conn.execute(scratch.insert(), [
                    {k.name: f(v) for k, f, v in zip(keys, convert, row)} for row in page])
            result.close()
        same = sa.and_(*(scratch.c[k.name] == k for k in keys))
        deleted = conn.execute(table.delete().where(in_ranges, ~sa.exists().where(same))).rowcount
        in_mirror = sa.and_(*(table.c[k.name] == scratch.c[k.name] for k in keys))
        lacking = conn.execute(sa.select(*scratch.c).where(~sa.exists().where(in_mirror))).all()
    finally:
        scratch.drop(conn)
    chunks = [[tuple(r) for r in lacking[i:i + 500]] for i in range(0, len(lacking), 500)]
    return deleted, chunks, compared


# ---------------------------------------------------------------------------------------------
# One run


def _take_lock(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK))).scalar())


def _resolve_people(conn: sa.Connection, settings: Settings, result: SyncResult,
                    changed_offenders: set[int], offenders_deleted: bool,
                    warehouse_state: sa.Row | None, now: dt.datetime) -> None:
    if offenders_deleted:
        offenders = MIRROR["OFFENDERS"][1]
        conn.execute(person_resolution.delete().where(~sa.exists().where(
            offenders.c.offender_id == person_resolution.c.offender_id)))
    signature = people.warehouse_signature(settings)
    whole = signature is None or warehouse_state is None or warehouse_state.cursor_key != signature
    offenders = MIRROR["OFFENDERS"][1]
    pending = set(conn.execute(sa.select(offenders.c.offender_id).where(~sa.exists().where(
        person_resolution.c.offender_id == offenders.c.offender_id))).scalars())
    wanted = changed_offenders | pending
    if not whole and not wanted:
        return
    try:
        with conn.begin_nested(), people.Warehouse(settings) as wh:
            if whole:
                done = people.resolve(conn, wh, None, now)
                result.history_rows = people.refresh_history(conn, wh, None)
                state = {"table_name": WAREHOUSE, "cursor_key": signature, "synced_at": now}
                upsert(conn, sync_state, [{"cursor_modify": None, "rows": None, **state}])
            else:
                done = people.resolve(conn, wh, sorted(wanted), now)
                result.history_rows = people.refresh_history(conn, wh, done.persons_changed)
            result.resolved, result.scored = done.resolved, done.scored
    except (people.WarehouseUnavailable, duckdb.Error) as exc:
        result.note = (f"person resolution waits for a later sync ({len(pending)} record(s) "
                       f"unresolved): {str(exc).strip().splitlines()[0]}")
        log.warning("%s", result.note)


def sync_once(settings: Settings, engine: sa.Engine | None = None, *,
              source: sa.Engine | None = None, page_size: int = PAGE_SIZE,
              look_back: dt.timedelta = LOOK_BACK, progress: Progress | None = None) -> SyncResult:
    """Run one incremental sync of the prison database into the serving store.

    Never raises for a failed run: the result (and a ``sync_runs`` row) carries the error."""
    own_store, own_source = engine is None, source is None
    result = SyncResult(started_at=_utcnow())
    try:
        engine = engine or open_store(settings)
        prepare_store(engine)
    except (JusticeError, sa.exc.SQLAlchemyError) as exc:
        result.error = f"serving store unusable: {str(exc).strip().splitlines()[0]}"
        result.finished_at = _utcnow()
        return result
    try:
        try:
            source = source or open_prison(settings)
            _run(engine, source, settings, result, page_size=page_size, look_back=look_back,
                 progress=progress)
        except Exception as exc:  # any failure is recorded; the store is untouched
            message = str(exc).strip()
            result.error = f"{exc.__class__.__name__}: {message.splitlines()[0] if message else ''}"
            result.finished_at = _utcnow()
            log.exception("sync failed: %s", result.error)
            with engine.begin() as conn:
                result.run_id = conn.execute(sync_runs.insert().values(
                    started_at=result.started_at, finished_at=result.finished_at,
                    error=result.error).returning(sync_runs.c.run_id)).scalar()
        return result
    finally:
        if own_source and source is not None:
            source.dispose()
        if own_store:
            engine.dispose()


def _run(engine: sa.Engine, source: sa.Engine, settings: Settings, result: SyncResult, *,
         page_size: int, look_back: dt.timedelta, progress: Progress | None) -> None:
    with engine.connect() as conn, conn.begin():
        if not _take_lock(conn):
            result.skipped = True
            result.note = "another syncer holds the store's lock; this turn is skipped"
            result.finished_at = _utcnow()
            return
        # A row first, so the run holds the store's write transaction from here on (and, on
        # SQLite, savepoints work inside it).
        result.run_id = conn.execute(sync_runs.insert().values(started_at=result.started_at)
                                     .returning(sync_runs.c.run_id)).scalar()
        states = {r.table_name: r for r in conn.execute(sa.select(sync_state))}
        now = _utcnow()
        clock = time.perf_counter()
        changed_offenders: set[int] = set()
        offenders_deleted = False
        with source.connect() as src, src.begin():
            for name, (spec, table) in MIRROR.items():
                run = _sync_table(conn, src, spec, table, states.get(name), page_size=page_size,
                                  look_back=look_back,
                                  collect_keys=name in ("OFFENDERS", "OFFENDER_IDENTIFIERS"),
                                  progress=progress)
                result.read[name] = run.read
                result.upserted += run.upserted
                result.deleted += run.deleted
                if run.reconciled:
                    result.reconciled.append(name)
                    result.keys_compared += run.keys_compared
                if name in ("OFFENDERS", "OFFENDER_IDENTIFIERS"):
                    changed_offenders.update(int(k[0]) for k in run.keys)
                    offenders_deleted |= name == "OFFENDERS" and run.deleted > 0
                upsert(conn, sync_state, [{"table_name": name, "cursor_modify": run.cursor_modify,
                                           "cursor_key": run.cursor_key, "rows": run.rows,
                                           "synced_at": now}])
        result.timings["mirror"] = time.perf_counter() - clock
        clock = time.perf_counter()
        _resolve_people(conn, settings, result, changed_offenders, offenders_deleted,
                        states.get(WAREHOUSE), now)
        result.timings["people"] = time.perf_counter() - clock
        clock = time.perf_counter()
        cursors = conn.execute(sa.select(sync_state.c.cursor_modify)
                               .where(sync_state.c.table_name != WAREHOUSE)).scalars()
        result.as_at = max((c for c in cursors if c is not None), default=None)
        result.finished_at = _utcnow()
        # A run a minute is 1,440 rows a day: keep a month.
        conn.execute(sync_runs.delete().where(sync_runs.c.finished_at < now - KEEP_RUNS))
        conn.execute(sync_runs.update().where(sync_runs.c.run_id == result.run_id).values(
            finished_at=result.finished_at, read=result.rows_read, upserted=result.upserted,
            deleted=result.deleted, scored=result.scored, as_at=result.as_at, note=result.note))
    result.timings["commit"] = time.perf_counter() - clock


# ---------------------------------------------------------------------------------------------
# In the background


class Syncer:
    """Runs `sync_once` every `interval` seconds on a background thread (the web app's)."""

    def __init__(self, settings: Settings, engine: sa.Engine | None = None,
                 interval: float | None = None, *, look_back: dt.timedelta = LOOK_BACK,
                 after_sync: Callable[[SyncResult], object] | None = None) -> None:
        self.settings = settings
        self.after_sync = after_sync
        """Called with the result after each successful run (the web app warms its caches)."""
        self.engine = engine or create_store_engine(settings.serving_db_url)
        self.interval = float(interval if interval is not None else settings.sync_interval)
        self.look_back = look_back
        self.last_result: SyncResult | None = None
        self._source: sa.Engine | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Syncer:
        """Sync now and then every interval, until stop()."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="justice-sync", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        """Stop after the run in progress, if any."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._source is not None:
            self._source.dispose()
            self._source = None

    def run_now(self) -> SyncResult:
        """Run one sync in the calling thread (after the background run in progress, if any)."""
        with self._lock:
            if self._source is None:
                try:
                    self._source = open_prison(self.settings)
                except JusticeError:
                    pass  # sync_once opens it itself and records why it cannot
            self.last_result = sync_once(self.settings, self.engine, source=self._source,
                                         look_back=self.look_back)
            if self.last_result.ok and self.after_sync is not None:
                try:
                    self.after_sync(self.last_result)
                except Exception:  # a failed warm-up must not fail the sync that was kept
                    log.exception("after-sync hook failed")
            return self.last_result

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.run_now()
            except Exception:  # the thread must survive anything
                log.exception("sync crashed")
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - began)))
            self._wake.clear()
