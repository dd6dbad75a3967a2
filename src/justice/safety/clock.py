"""The service's "today" (the date of the prison data's as-at time) and the data's version.

The prison system's clock, not the web server's: the demo's live prison runs on simulated time,
so "in today" and "incidents in the last 30 days" are counted back from the data's own present.
Before the first sync there is no as-at time, and the server's UTC date stands in.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from justice.serving import mirror


def service_today(conn: sa.Connection) -> dt.date:
    """The date of the synced data's as-at time (the server's UTC date before any sync)."""
    as_at, _ = mirror.data_as_at(conn)
    return as_at.date() if as_at is not None else dt.datetime.now(dt.UTC).date()


def data_version(conn: sa.Connection) -> int | None:
    """The last successful sync run: the store's data changes only when it changes (None
    before any sync, when nothing may be cached)."""
    return conn.execute(
        sa.select(sa.func.max(mirror.sync_runs.c.run_id)).where(mirror.sync_runs.c.error.is_(None))
    ).scalar()
