"""Relational database reader: one raw table per database table, streamed in chunks.

A spec with ``format: database`` names the database by SQLAlchemy URL (the caller replaces
``{legacy}`` and passes the final URL as `location`) and lists one table per database table
(or view): ``source`` is the table's name, each field's ``source`` a column name. Names are
matched without regard to case, because unquoted names are upper case in SQLite and Oracle and
lower case in PostgreSQL. An optional ``options.schema`` names the database schema, and
``options.chunk_rows`` (default 100,000) the rows per batch.

Each table is read with one SQLAlchemy Core ``SELECT``, ordered by the cursor column then the
record key, streamed with a server-side cursor where the driver has one (PostgreSQL) and by
fetching in chunks elsewhere (SQLite's cursor steps through the result without buffering it),
so memory stays bounded by the chunk size. The columns are selected untyped, so every value is
what the driver returns, written as text:

* text as stored (no trimming); NULL as null (an empty string stays ``""``);
* integers in decimal; floats as Python's ``repr``; decimals as ``str(Decimal)``;
* timestamps ``YYYY-MM-DD HH:MM:SS`` (ISO 8601 with a space, which is also how SQLite stores
  them as text; a fraction of a second is kept as ``.ffffff`` and a time zone as ``+HH:MM``),
  dates ``YYYY-MM-DD``, times ``HH:MM:SS``; booleans ``true`` / ``false``; binary values as
  ``\\xNN`` escapes.

Rows: every declared field under our name, then any column the spec does not declare as
``x_<column>`` (listed in Batch.new_columns), then the lineage columns. ``_file`` is the
caller's `relative_name` or else the URL without its password; ``_locator`` is
``<TABLE> pk=<key values joined by ','>`` (e.g. ``OFFENDER_IDENTIFIERS pk=17,2``), or
``<TABLE> row=<n>`` (1-based, in read order) for a table spec without a record key; <TABLE> is
spelled as in the spec's ``source``, whatever case the database folds names to.

Row-level problems go to Batch.rejects with the row as JSON in ``raw``: ``undecodable_text``
(SQLite text that is not UTF-8; the bytes are kept as ``\\xNN`` escapes) and ``field_too_long``
(a value over 1,000,000 characters). Whole-source problems raise before any batch is yielded:
SchemaDriftError for a missing table or a missing required (or key, or cursor) column, naming
them all; SourceError for a database that cannot be reached or read (the password is never
shown).

Incremental reads (spec ``cursor: modified_timestamp``): `cursor` is the state of the previous
load, a JSON object mapping our table name (or the database table's name) to the highest
cursor value landed for it, e.g. ``{"offenders": "2025-12-30 18:02:11"}``; a plain string
applies to every table. A table with a value gets only rows ``WHERE <cursor column> > value``.
Batch.cursor is the highest cursor value read so far for that batch's table (the previous value
when nothing new was read, so every table yields at least one, possibly empty, batch);
`next_cursor` folds the batches of a load into the JSON state for the next one. Rows modified
later but stamped with a time not after the previous high-water mark are, as with any timestamp
cursor, not seen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.types import NullType

from justice.errors import SchemaDriftError, SourceError
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage, extra_column, lineage_arrays
from justice.sources.spec import SourceSpec, TableSpec

CHUNK_ROWS = 100_000
MAX_FIELD_CHARS = 1_000_000
_NOT_WORD = re.compile(r"[^0-9a-zA-Z]+")


@dataclass(frozen=True)
class _Column:
    """One selected column: its real name in the database and our name in the raw table."""

    db_name: str
    name: str


@dataclass(frozen=True)
class _Plan:
    """How one table spec is read: the real table name and the columns to select."""

    table: TableSpec
    db_table: str
    columns: tuple[_Column, ...]
    """Declared fields present in the database, then undeclared columns (x_ names). A declared,
    not required field the table lacks is not selected and lands as nulls."""
    new_columns: tuple[str, ...]
    cursor_column: str | None
    key_columns: tuple[str, ...]


def read(spec: SourceSpec, location: str, lineage: Lineage, *, cursor: str | None = None,
         relative_name: str | None = None) -> Iterator[Batch]:
    """Yield the batches of every table of the database at URL `location` (see module doc)."""
    shown = _shown(location)
    file = relative_name or shown
    chunk = _chunk_rows(spec)
    previous = table_cursors(spec, cursor)
    engine = _engine(spec, location, shown)
    try:
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(f"{spec.system}: cannot connect to {shown} ({_why(exc, location)}); "
                              "check the spec's url, that the server is running and the "
                              "credentials") from None
        with conn:
            try:
                plans = _plans(spec, conn, shown)
            except sa.exc.SQLAlchemyError as exc:
                raise SourceError(f"{spec.system}: cannot list the tables of {shown} "
                                  f"({_why(exc, location)}); check it is a database the spec's "
                                  "url can read") from None
            for plan in plans:
                since = previous.get(plan.table.name)
                try:
                    yield from _read_table(spec, conn, plan, since, file, lineage, chunk)
                except sa.exc.SQLAlchemyError as exc:
                    if isinstance(exc, sa.exc.DataError) and since is not None:
                        raise SourceError(f"{spec.system}: table {plan.db_table} in {shown}: the "
                                          f"database rejected the cursor value {since!r} "
                                          f"({_why(exc, location)}); pass the value of "
                                          f"{plan.cursor_column} last landed") from None
                    raise SourceError(f"{spec.system}: reading table {plan.db_table} from {shown} "
                                      f"failed ({_why(exc, location)}); check the database is "
                                      "reachable and readable, then load again") from None
    finally:
        engine.dispose()


def table_cursors(spec: SourceSpec, cursor: str | None) -> dict[str, str]:
    """The previous load's cursor value per table (our names) from the `cursor` argument."""
    if cursor is None or not cursor.strip() or spec.cursor != "modified_timestamp":
        return {}
    text = cursor.strip()
    if not text.startswith("{"):
        return {t.name: text for t in spec.tables if t.cursor_field}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{spec.system}: the cursor {text[:200]!r} is not valid JSON "
                          f"({exc.msg} at character {exc.pos}); pass a JSON object mapping "
                          "table name to the last value landed, or a single value") from None
    by_name = {t.name: t.name for t in spec.tables}
    by_name.update({(t.source or t.name).lower(): t.name for t in spec.tables})
    out: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise SourceError(f"{spec.system}: the cursor value for {key!r} is {value!r}; cursor "
                              "values must be strings as landed (e.g. '2025-12-30 18:02:11')")
        name = by_name.get(key) or by_name.get(key.lower())
        if name is not None:  # a table no longer in the spec is simply not read
            out[name] = value
    return out


def next_cursor(previous: str | None, batches: Iterable[Batch]) -> str:
    """The cursor state after a load: `previous` (as `read` takes it) updated by the batches."""
    state: dict[str, str] = {}
    if previous and previous.strip().startswith("{"):
        state = {k: v for k, v in json.loads(previous).items() if isinstance(v, str)}
    for batch in batches:
        if batch.cursor is not None:
            state[batch.table] = batch.cursor
    return json.dumps(state, sort_keys=True)


# --------------------------------------------------------------------------------------------
# Connecting and checking the schema
# --------------------------------------------------------------------------------------------


def _shown(url: str) -> str:
    """The URL as it may appear in messages and lineage: without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _why(exc: BaseException, url: str) -> str:
    """A one-line description of a driver error, with any password blanked out."""
    orig = getattr(exc, "orig", None) or exc
    text = f"{orig.__class__.__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
    try:
        password = sa.engine.make_url(url).password
    except sa.exc.ArgumentError:
        password = None
    return text.replace(str(password), "***") if password else text


def _chunk_rows(spec: SourceSpec) -> int:
    value = spec.options.get("chunk_rows", CHUNK_ROWS)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SourceError(f"{spec.path}: options.chunk_rows is {value!r}; give a positive whole "
                          "number of rows per batch")
    return value


def _engine(spec: SourceSpec, location: str, shown: str) -> sa.Engine:
    try:
        url = sa.engine.make_url(location)
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise SourceError(f"{spec.system}: {shown} is not a usable SQLAlchemy URL "
                          f"({exc.__class__.__name__}); expected e.g. sqlite:///path/nomis.sqlite "
                          "or postgresql+psycopg://user@host/db") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        # SQLite would silently create an empty database where the file is missing.
        if database not in ("", ":memory:") and not database.startswith("file:") \
                and not Path(database).is_file():
            engine.dispose()
            raise SourceError(f"{spec.system}: the database file {database} does not exist; "
                              "check the spec's url and that the extract has been written")
    return engine


# SQLite raises on TEXT that is not UTF-8, which would stop the whole table. Decoding with
# surrogateescape keeps the bytes (such rows become `undecodable_text` rejects) but costs a
# Python call per value, so it is switched on only after the first such error.
_sqlite_text = functools.partial(str, encoding="utf-8", errors="surrogateescape")


def _tolerate_undecodable(conn: sa.Connection, exc: sa.exc.OperationalError) -> bool:
    """Switch a SQLite connection to tolerant decoding if `exc` was a UTF-8 decoding error."""
    if conn.dialect.name != "sqlite" or "decode" not in str(exc.orig).lower():
        return False
    raw = conn.connection.driver_connection
    if raw.text_factory is _sqlite_text:
        return False
    raw.text_factory = _sqlite_text
    return True


def _plans(spec: SourceSpec, conn: sa.Connection, shown: str) -> list[_Plan]:
    """Match every table spec to the database; raise one SchemaDriftError listing all drift."""
    schema = spec.options.get("schema")
    inspector = sa.inspect(conn)
    names = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    tables = {n.lower(): n for n in names} | {n: n for n in names}
    problems: list[str] = []
    plans: list[_Plan] = []
    for table in spec.tables:
        wanted = table.source or table.name
        db_table = tables.get(wanted) or tables.get(wanted.lower())
        if db_table is None:
            problems.append(f"table {wanted} (spec table {table.name}) does not exist")
            continue
        real = [c["name"] for c in inspector.get_columns(db_table, schema=schema)]
        lookup = {c.lower(): c for c in real} | {c: c for c in real}
        needed = {*table.record_key, *(f.name for f in table.fields if f.required)}
        if spec.cursor == "modified_timestamp" and table.cursor_field:
            needed.add(table.cursor_field)
        columns, used = [], set()
        for f in table.fields:
            db_name = lookup.get(f.source) or lookup.get(f.source.lower())
            if db_name is None:
                if f.name in needed:
                    problems.append(f"table {db_table} has no column {f.source} (field {f.name}, "
                                    "required)")
                continue
            used.add(db_name)
            columns.append(_Column(db_name, f.name))
        taken = {f.name for f in table.fields}
        new = []
        for db_name in real:
            if db_name in used:
                continue
            name = extra_column(db_name, taken, "column")
            new.append(name)
            columns.append(_Column(db_name, name))
        by_name = {c.name: c.db_name for c in columns}
        plans.append(_Plan(
            table=table, db_table=db_table, columns=tuple(columns), new_columns=tuple(new),
            cursor_column=by_name.get(table.cursor_field) if spec.cursor == "modified_timestamp"
            else None,
            key_columns=tuple(by_name[k] for k in table.record_key if k in by_name)))
    if problems:
        raise SchemaDriftError(f"{spec.system}: the database {shown} does not match the spec "
                               f"{spec.path}: {'; '.join(problems)}. Update the spec or the source")
    return plans


# --------------------------------------------------------------------------------------------
# Reading one table
# --------------------------------------------------------------------------------------------


def _read_table(spec: SourceSpec, conn: sa.Connection, plan: _Plan, since: str | None, file: str,
                lineage: Lineage, chunk: int) -> Iterator[Batch]:
    """The batches of one table (at least one, empty when nothing is new since the cursor)."""
    table = sa.table(plan.db_table, *(sa.column(c.db_name) for c in plan.columns),
                     schema=spec.options.get("schema"))
    query = sa.select(*(table.c[c.db_name] for c in plan.columns))
    order = [table.c[c] for c in ((plan.cursor_column,) if plan.cursor_column else ())
             + plan.key_columns]
    if order:
        query = query.order_by(*order)
    if since is not None and plan.cursor_column:
        # Untyped, so the value is sent as it is and the database compares it with the column.
        query = query.where(table.c[plan.cursor_column] > sa.bindparam("since", since, NullType()))
    # A server-side cursor where the driver has one; elsewhere (SQLite) the plain DBAPI cursor
    # already steps through the result, and SQLAlchemy's emulation would only add overhead.
    streaming = {"stream_results": True} if conn.dialect.supports_server_side_cursors else {}
    high = since
    start = 0
    while True:
        # Restarts (once) after a SQLite decoding error, past the rows already yielded: the
        # order by cursor and key makes the OFFSET land on the same row.
        rows_query = query.offset(start) if start else query
        try:
            result = conn.execution_options(**streaming).execute(rows_query)
            while True:
                with _collector_paused():
                    rows = result.fetchmany(chunk)
                    if not rows:
                        break
                    # zip transposes in C; each column a list (pyarrow is slow on tuples).
                    columns = [list(c) for c in zip(*rows)]
                    batch, last = _batch(spec, plan, columns, start, file, lineage)
                start += len(rows)
                high = last if last is not None else high
                batch.cursor = high
                yield batch
            break
        except sa.exc.OperationalError as exc:
            if not _tolerate_undecodable(conn, exc):
                raise
    if start == 0:
        batch, _ = _batch(spec, plan, [() for _ in plan.columns], 0, file, lineage)
        batch.cursor = high
        yield batch


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chunk's row tuples are made and dropped.

    Hundreds of thousands of new tuples trigger it over and over, for nothing: rows hold no
    reference cycles. Pausing it cuts the time to fetch and convert a chunk by over a third. It
    is never left paused across a `yield`, so the caller's code runs with it as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _batch(spec: SourceSpec, plan: _Plan, columns: Sequence[Sequence], start: int, file: str,
           lineage: Lineage) -> tuple[Batch, str | None]:
    """One Batch from a chunk of rows given column by column, and the chunk's last cursor value
    (the highest: the query is ordered by it), rejected rows included."""
    n = len(columns[0]) if columns else 0
    texts: dict[str, pa.Array] = {}
    bad_text = pa.array([False] * n, pa.bool_())
    for column, values in zip(plan.columns, columns):
        array, undecodable = _text_array(values)
        texts[column.name] = array
        if undecodable is not None:
            bad_text = pc.or_(bad_text, undecodable)
    too_long = pa.array([False] * n, pa.bool_())
    for array in texts.values():
        over = pc.fill_null(pc.greater(pc.utf8_length(array), MAX_FIELD_CHARS), False)
        if n and pc.any(over).as_py():
            too_long = pc.or_(too_long, over)
    locators = _locators(plan, texts, start, n)
    last_cursor = None
    if plan.cursor_column and n:
        by_db = {c.db_name: c.name for c in plan.columns}
        present = texts[by_db[plan.cursor_column]].drop_null()
        if len(present):
            last_cursor = present[-1].as_py()

    rejected = pc.or_(bad_text, too_long)
    rejects = REJECT_SCHEMA.empty_table()
    if n and pc.any(rejected).as_py():
        rejects = _rejects(spec, plan, columns, texts, rejected, bad_text, locators, file, lineage)
        keep = pc.invert(rejected)
        texts = {k: v.filter(keep) for k, v in texts.items()}
        locators = locators.filter(keep)
    m = len(locators)
    data: dict[str, pa.Array] = {}
    for f in plan.table.fields:
        data[f.name] = texts[f.name] if f.name in texts else pa.nulls(m, pa.string())
    for name in plan.new_columns:
        data[name] = texts[name]
    data.update(lineage_arrays(spec, plan.table.name, file, locators, lineage))
    batch = Batch(table=plan.table.name, rows=pa.table(data), rejects=rejects,
                  new_columns=plan.new_columns)
    return batch, last_cursor


def _locators(plan: _Plan, texts: dict[str, pa.Array], start: int, n: int) -> pa.Array:
    # The spec's spelling of the table, so locators agree whatever case the database folds to.
    table = plan.table.source or plan.db_table
    if not plan.key_columns:
        return pa.array([f"{table} row={start + i + 1}" for i in range(n)], pa.string())
    by_db = {c.db_name: c.name for c in plan.columns}
    keys = [pc.fill_null(texts[by_db[k]], "") for k in plan.key_columns]
    joined = keys[0] if len(keys) == 1 else pc.binary_join_element_wise(*keys, ",")
    return pc.binary_join_element_wise(pa.scalar(f"{table} pk="), joined, "")


def _rejects(spec: SourceSpec, plan: _Plan, columns: Sequence[Sequence],
             texts: dict[str, pa.Array], rejected: pa.Array, bad_text: pa.Array,
             locators: pa.Array, file: str, lineage: Lineage) -> pa.Table:
    """Reject rows: the rule, a reason naming the columns, and the whole row as JSON."""
    rules, reasons, raws = [], [], []
    bad_text_py = bad_text.to_pylist()
    for i in pc.indices_nonzero(rejected).to_pylist():
        row = {c.db_name: _escaped(values[i]) for c, values in zip(plan.columns, columns)}
        if bad_text_py[i]:
            cols = [c.db_name for c, values in zip(plan.columns, columns)
                    if isinstance(values[i], str) and _has_surrogates(values[i])]
            rules.append("undecodable_text")
            reasons.append(f"column {', '.join(cols)} of table {plan.db_table} holds bytes that "
                           "are not UTF-8 text (kept as \\xNN escapes in raw); correct the text "
                           "in the source")
        else:
            cols = [c.db_name for c in plan.columns
                    if len(texts[c.name][i].as_py() or "") > MAX_FIELD_CHARS]
            rules.append("field_too_long")
            reasons.append(f"column {', '.join(cols)} of table {plan.db_table} holds more than "
                           f"{MAX_FIELD_CHARS:,} characters; check the source for a runaway value")
        raws.append(json.dumps(row, ensure_ascii=False))
    idx = pc.indices_nonzero(rejected)
    lin = lineage_arrays(spec, plan.table.name, file, locators.take(idx), lineage)
    return pa.table({**lin, "rule": pa.array(rules, pa.string()),
                     "reason": pa.array(reasons, pa.string()), "raw": pa.array(raws, pa.string())},
                    schema=REJECT_SCHEMA)


# --------------------------------------------------------------------------------------------
# Values as text
# --------------------------------------------------------------------------------------------


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escaped(value: object) -> str | None:
    """A value as text, with undecodable bytes as \\xNN escapes (for raw reject text)."""
    if isinstance(value, str) and _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _text(value)


def _text(value: object) -> str | None:
    """One database value as text (see the module docstring for the forms)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "".join(f"\\x{b:02x}" for b in bytes(value))
    return str(value)


def _text_array(values: Sequence) -> tuple[pa.Array, pa.Array | None]:
    """A column of database values as a string array, and a mask of undecodable text (or None).

    Common columns (all text, integers, dates, whole-second timestamps) convert in Arrow;
    anything else goes value by value through `_text`.
    """
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        array = None
    if array is not None:
        kind = array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return array.cast(pa.string()), None
        if pa.types.is_null(kind):
            return pa.nulls(len(array), pa.string()), None
        if pa.types.is_integer(kind) or pa.types.is_date32(kind):
            return array.cast(pa.string()), None
        if pa.types.is_timestamp(kind) and kind.tz is None:
            try:
                return array.cast(pa.timestamp("s")).cast(pa.string()), None
            except pa.ArrowInvalid:  # fractions of a second: keep them, as isoformat does
                pass
    undecodable = [isinstance(v, str) and _has_surrogates(v) for v in values]
    if any(undecodable):
        text = [_escaped(v) for v in values]
        return pa.array(text, pa.string()), pa.array(undecodable, pa.bool_())
    return pa.array([_text(v) for v in values], pa.string()), None
