"""A request holds at most one serving-store connection at a time.

A page that took a second connection while holding the first (the route's, for "data as at")
deadlocks under load: with more concurrent requests than the pool has connections, each holds its
first and waits for a second until the pool's timeout (found by benchmarks/serve_load.py: at 20
clients no request was answered in time).
"""

from __future__ import annotations

import sqlalchemy as sa


def _max_checked_out(engine: sa.Engine):
    """Counts the engine's connections checked out at once; returns the running record."""
    seen = {"now": 0, "max": 0}

    def checkout(*_):
        seen["now"] += 1
        seen["max"] = max(seen["max"], seen["now"])

    def checkin(*_):
        seen["now"] -= 1

    sa.event.listen(engine, "checkout", checkout)
    sa.event.listen(engine, "checkin", checkin)
    return seen


def test_a_page_with_the_route_connection_takes_no_second(client_for, engine):
    client = client_for("admin")
    seen = _max_checked_out(engine)
    response = client.get("/admin/audit")
    assert response.status_code == 200
    assert seen["max"] == 1
    assert seen["now"] == 0
