"""The serving store's copy of the prison database, and the sync's own bookkeeping.

Mirror tables
    Every NOMIS table of ``justice/sim/legacy/nomis_ddl.sql`` is mirrored as
    ``nomis_<table lower case>``: the same columns lower-cased, the same primary key, typed
    (DATE as ``sa.Date``, TIMESTAMP as ``sa.DateTime``, INTEGER as a big integer, VARCHAR(n) as
    ``sa.String(n)``). The tables are generated from the DDL, so a column added there is mirrored
    without another edit; only the primary key is NOT NULL, so a source that lacks a column still
    syncs (the mirror column is then null). Indexes are the lookups the safety pages make.

Derived tables
    ``person_resolution`` (each OFFENDERS row's person, see ``justice.web.people``),
    ``linked_history`` (what the courts and probation hold on a prisoner's person),
    ``sync_state`` (one cursor per mirrored table, plus the warehouse's signature) and
    ``sync_runs`` (one row per sync, with its counts or its error).

Times
    ``modify_datetime`` and ``as_at`` are the prison system's clock (naive, as NOMIS stores
    them); ``synced_at``, ``started_at``, ``finished_at`` and ``resolved_at`` are UTC (naive).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa

from justice.errors import ConfigError
from justice.serving.store import metadata
from justice.sim.legacy.prison import ddl_statements

PREFIX = "nomis_"


@dataclass(frozen=True)
class SourceTable:
    """One NOMIS table as the DDL declares it (upper-case names, as in the source)."""

    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]

    @property
    def mirror_name(self) -> str:
        return PREFIX + self.name.lower()


_COLUMN = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)\s+([A-Z]+)(?:\((\d+)\))?", re.MULTILINE)
_PRIMARY_KEY = re.compile(r"PRIMARY KEY\s*\(([^)]*)\)")
_TYPES = {"INTEGER", "VARCHAR", "DATE", "TIMESTAMP"}


def _column_type(kind: str, length: str | None) -> sa.types.TypeEngine:
    if kind == "INTEGER":
        # BIGINT on PostgreSQL; plain INTEGER on SQLite, where every integer is 64-bit anyway.
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if kind == "VARCHAR":
        return sa.String(int(length)) if length else sa.String()
    if kind == "DATE":
        return sa.Date()
    return sa.DateTime()


def _parse(statement: str) -> tuple[SourceTable, list[sa.Column]]:
    name = re.match(r"CREATE TABLE (\w+)", statement).group(1)
    pk = tuple(c.strip() for c in _PRIMARY_KEY.search(statement).group(1).split(","))
    columns, names = [], []
    for col, kind, length in _COLUMN.findall(statement):
        if col in ("CREATE", "PRIMARY", "FOREIGN") or kind not in _TYPES:
            continue
        names.append(col)
        columns.append(sa.Column(col.lower(), _column_type(kind, length), primary_key=col in pk,
                                 autoincrement=False))
    missing = set(pk) - set(names)
    if missing:
        raise ValueError(f"nomis_ddl.sql: {name}'s primary key names unknown column(s) "
                         f"{sorted(missing)}")
    return SourceTable(name, tuple(names), pk), columns


def _declare_mirror() -> dict[str, tuple[SourceTable, sa.Table]]:
    tables = {}
    for statement in ddl_statements():
        source, columns = _parse(statement)
        tables[source.name] = (source, sa.Table(source.mirror_name, metadata, *columns))
    return tables


MIRROR: dict[str, tuple[SourceTable, sa.Table]] = _declare_mirror()
"""NOMIS table name (upper case) -> (its DDL, its mirror table), parents first."""


def mirror_table(name: str) -> sa.Table:
    """The mirror of NOMIS table `name` (e.g. ``"OFFENDER_BOOKINGS"``)."""
    return MIRROR[name.upper()][1]


def _index(table: str, *columns: str, name: str | None = None,
           open_only: str | None = None) -> sa.Index:
    t = mirror_table(table)
    where = {}
    if open_only:
        clause = t.c[open_only].is_(None)
        where = {"sqlite_where": clause, "postgresql_where": clause}
    name = name or f"ix_{t.name}_{'_'.join(columns)}"
    if len(name) > 63:  # PostgreSQL's limit; a digest keeps shortened names apart
        name = f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return sa.Index(name, *(t.c[c] for c in columns), **where)


# The lookups the pages make. A table whose primary key starts with offender_book_id (alerts,
# assessments, movements, bed assignments) is already indexed by booking through its key.
MIRROR_INDEXES = (
    _index("AGENCY_INTERNAL_LOCATIONS", "parent_internal_location_id"),
    _index("AGENCY_INTERNAL_LOCATIONS", "agy_loc_id", "internal_location_type"),
    _index("OFFENDERS", "offender_id_display"),
    _index("OFFENDERS", "alias_offender_id"),
    _index("OFFENDER_BOOKINGS", "agy_loc_id", "active_flag", "in_out_status"),
    _index("OFFENDER_BOOKINGS", "offender_id"),
    _index("OFFENDER_BOOKINGS", "living_unit_id"),
    _index("OFFENDER_EXTERNAL_MOVEMENTS", "movement_date"),
    _index("BED_ASSIGNMENT_HISTORIES", "living_unit_id"),
    _index("BED_ASSIGNMENT_HISTORIES", "living_unit_id",
           name="ix_nomis_bed_assignment_histories_open", open_only="assignment_end_date"),
    _index("OFFENDER_ALERTS", "root_offender_id"),
    _index("OFFENDER_NON_ASSOCIATIONS", "ns_offender_id"),
    _index("OFFENDER_NON_ASSOCIATIONS", "offender_book_id"),
    _index("OFFENDER_NON_ASSOCIATIONS", "ns_offender_book_id"),
    _index("INCIDENT_CASES", "agy_loc_id", "incident_date"),
    _index("INCIDENT_CASE_PARTIES", "offender_book_id"),
    _index("OIC_HEARINGS", "offender_book_id"),
)

person_resolution = sa.Table(
    "person_resolution", metadata,
    sa.Column("offender_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=False, comment="OFFENDERS.OFFENDER_ID"),
    sa.Column("person_id", sa.String(64), nullable=False,
              comment="The person index's id, or prison:<offender_id> when unresolved."),
    sa.Column("method", sa.String(12), nullable=False, comment="index, scored or unresolved"),
    sa.Column("confidence", sa.Float, nullable=False, comment="Match probability in [0, 1]."),
    sa.Column("resolved_at", sa.DateTime, nullable=False, comment="UTC"),
    sa.Index("ix_person_resolution_person_id", "person_id"),
)

linked_history = sa.Table(
    "linked_history", metadata,
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("source_system", sa.String(20), nullable=False,
              comment="magistrates, crown or probation (the person index's system names)"),
    sa.Column("source_record", sa.String(64), nullable=False,
              comment="The record's key in that system (defendant id, CRN)."),
    sa.Column("kind", sa.String(20), nullable=False,
              comment="court_conviction, probation_risk or probation_breach"),
    sa.Column("event_date", sa.Date),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("detail", sa.String(100), comment="Offence group, or OGRS band."),
    sa.Column("location", sa.String(100), comment="Court name, or probation delivery unit."),
    sa.Column("is_violence", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="A conviction for violence against the person, a sexual offence or robbery."),
    sa.Column("confidence", sa.Float, nullable=False,
              comment="Probability that the source record is this person (its link's)."),
    sa.Index("ix_linked_history_person_id", "person_id"),
)

sync_state = sa.Table(
    "sync_state", metadata,
    sa.Column("table_name", sa.String(64), primary_key=True,
              comment="A NOMIS table name, or 'warehouse' (cursor_key: its signature)."),
    sa.Column("cursor_modify", sa.DateTime,
              comment="Greatest MODIFY_DATETIME read (prison clock)."),
    sa.Column("cursor_key", sa.String(200), comment="That row's key (JSON), for ties."),
    sa.Column("rows", sa.BigInteger, comment="Rows in the mirror table after the sync."),
    sa.Column("synced_at", sa.DateTime, comment="UTC"),
)

sync_runs = sa.Table(
    "sync_runs", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime, nullable=False, comment="UTC"),
    sa.Column("finished_at", sa.DateTime, comment="UTC"),
    sa.Column("read", sa.BigInteger, comment="Rows read from the prison database."),
    sa.Column("upserted", sa.BigInteger),
    sa.Column("deleted", sa.BigInteger),
    sa.Column("scored", sa.Integer, comment="New records scored against the person index."),
    sa.Column("as_at", sa.DateTime, comment="Greatest MODIFY_DATETIME synced (prison clock)."),
    sa.Column("error", sa.Text,
              comment="Why the run failed (nothing of it was kept); null if it did not."),
    sa.Column("note", sa.Text,
              comment="What a successful run left for later (e.g. warehouse locked)."),
    sa.Index("ix_sync_runs_finished_at", "finished_at"),
)


def data_as_at(conn: sa.Connection) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(as_at, synced_at): the greatest MODIFY_DATETIME synced (prison clock) and when the last
    successful sync finished (UTC); (None, None) before the first sync."""
    as_at = conn.execute(sa.select(sa.func.max(sync_state.c.cursor_modify))
                         .where(sync_state.c.table_name != "warehouse")).scalar()
    synced_at = conn.execute(sa.select(sa.func.max(sync_runs.c.finished_at))
                             .where(sync_runs.c.error.is_(None))).scalar()
    return as_at, synced_at


def add_missing_columns(engine: sa.Engine) -> list[str]:
    """Add mirror columns that a store made by an earlier version lacks; forget those tables'
    cursors so the next sync reads them whole. Returns the tables changed."""
    changed = []
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        present_tables = set(inspector.get_table_names())
        for _, table in MIRROR.values():
            if table.name not in present_tables:
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=conn.dialect)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                    changed.append(table.name)
        if changed and "sync_state" in present_tables:
            names = [n for n, (_, t) in MIRROR.items() if t.name in changed]
            conn.execute(sync_state.delete().where(sync_state.c.table_name.in_(names)))
    return sorted(set(changed))


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, in the store's dialect."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the store is documented as SQLite or PostgreSQL
        raise ConfigError(f"serving store dialect {conn.dialect.name!r} is not supported "
                           "(use SQLite or PostgreSQL)")
    stmt = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
    conn.execute(stmt, rows)
