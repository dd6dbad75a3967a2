"""The run ledger, `linkage.runs`: one row per `justice link` run (mode, model version, counts,
seconds, and the clerical decisions it honoured), which tells the next run whether anything the
index depends on has changed."""

from __future__ import annotations

import datetime as dt

from justice.link.store import table_exists

RUN_COLUMNS = ("run_id varchar, finished_at timestamp, mode varchar, model_version integer, records bigint, "
               "changed_records bigint, removed_records bigint, pairs_scored bigint, links bigint, persons bigint, "
               "review_pairs bigint, seconds double, decisions bigint, decisions_at timestamp")


def record_run(con, run_id, mode, model, n, changed, removed, pairs_scored, links, persons, review, seconds,
                decisions) -> None:
    """Append one run to `linkage.runs`, adding any column a home linked by an earlier version lacks."""
    con.execute(f"create table if not exists linkage.runs ({RUN_COLUMNS})")
    for column in RUN_COLUMNS.split(", "):  # a home linked by an earlier version lacks newer columns
        con.execute(f"alter table linkage.runs add column if not exists {column}")
    con.execute("insert into linkage.runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None), mode, model["justice"]["version"],
                 n, changed, removed, pairs_scored, links, persons, review, seconds, decisions[0], decisions[1]])


def last_run(con) -> dict | None:
    """The latest run that wrote the index (not an 'unchanged' one), or None."""
    if not table_exists(con, "linkage", "runs") or not table_exists(con, "linkage", "person_links"):
        return None
    cur = con.execute("select * from linkage.runs order by finished_at desc limit 1")
    rows = cur.fetchall()
    return dict(zip([d[0] for d in cur.description], rows[0])) if rows else None
