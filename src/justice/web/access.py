"""Who may see whom: officers and safety leads see the people held now in their own prisons.

A person is in scope while their active booking (``active_flag = 'Y'``, ``in_out_status = 'IN'``)
is at one of the user's prisons, in the synced mirror; a release or transfer drops them out at
the next sync. Analysts, providers and admins see no prisoner in this service.

Routes with ``{prison_number}`` take `scoped_prisoner(action)`; routes with ``{prison_id}`` take
`scoped_prison(action)`. Out of scope and unknown get the same 403 page, so a URL cannot be used
to learn whether a prison number exists, and both append a ``denied`` audit row; a person in
scope gets an ``allowed`` row naming the action and the person before the route runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import Request

from justice.web import audit
from justice.web.auth import CurrentUser, Forbidden, User
from justice.web.context import committed

# The user's prisons are checked in Python, not in the WHERE: with them there, SQLite (whose
# store has no ANALYZE statistics) reads every booking held in the prison through the
# (agy_loc_id, active_flag, in_out_status) index and joins each to OFFENDERS, instead of finding
# the prison number first: 3 ms of CPU a check at 975 held, against 0.06 ms this way.
_BOOKINGS_HELD = sa.text("""
    SELECT b.offender_book_id, b.offender_id, b.agy_loc_id
    FROM nomis_offender_bookings b
    JOIN nomis_offenders o ON o.offender_id = b.offender_id
    WHERE o.offender_id_display = :prison_number
      AND o.alias_offender_id IS NULL
      AND b.active_flag = 'Y' AND b.in_out_status = 'IN'
    ORDER BY b.offender_book_id DESC
""")

_PERSON_OF_OFFENDER = sa.text(
    "SELECT person_id FROM person_resolution WHERE offender_id = :offender_id")


@dataclass(frozen=True)
class ScopedPrisoner:
    """A person the user may see: their prison number, active booking, prison and person id."""

    prison_number: str
    offender_book_id: int
    offender_id: int
    prison_id: str
    person_id: str | None


def _booking_in_scope(conn: sa.Connection, user: User, prison_number: str):
    if not user.sees_prisoners or not user.prisons or not prison_number:
        return None
    rows = conn.execute(_BOOKINGS_HELD, {"prison_number": prison_number})
    return next((row for row in rows if row.agy_loc_id in user.prisons), None)


def person_in_scope(conn: sa.Connection, user: User, prison_number: str) -> int | None:
    """The active booking id of `prison_number` if `user` may see that person now, else None."""
    row = _booking_in_scope(conn, user, prison_number)
    return row.offender_book_id if row is not None else None


def _person_id(conn: sa.Connection, offender_id: int) -> str | None:
    # No row until the sync has resolved the record: the person is then unknown (None).
    return conn.execute(_PERSON_OF_OFFENDER, {"offender_id": offender_id}).scalar()


def scoped_prisoner(action: str):
    """Dependency factory for routes with a ``{prison_number}`` path parameter: the
    `ScopedPrisoner` (after an ``allowed`` audit row for `action`), or the 403 page after a
    ``denied`` row."""

    def dependency(request: Request, prison_number: str, user: CurrentUser) -> ScopedPrisoner:
        with committed(request) as conn:
            row = _booking_in_scope(conn, user, prison_number)
            if row is None:
                audit.record(conn, request, user, action, prison_number=prison_number[:20],
                             outcome="denied", detail="not in the user's prisons")
            else:
                person = ScopedPrisoner(prison_number, row.offender_book_id, row.offender_id,
                                        row.agy_loc_id, _person_id(conn, row.offender_id))
                audit.record(conn, request, user, action, prison_number=prison_number,
                             prison_id=person.prison_id, person_id=person.person_id,
                             outcome="allowed")
        if row is None:
            raise Forbidden("person")
        return person

    dependency.scoped_action = action  # lets the route-walking test find the guard
    return dependency


def prison_in_scope(user: User, prison_id: str) -> bool:
    """Whether `user` may see the prison `prison_id` (one of their own)."""
    return user.sees_prisoners and prison_id in user.prisons


def scoped_prison(action: str, *, audit_allowed: bool = False):
    """Dependency factory for routes with a ``{prison_id}`` path parameter: the prison id when it
    is one of the user's, else the 403 page after a ``denied`` audit row. Pages about people
    (the roll) set `audit_allowed` to record the view too."""

    def dependency(request: Request, prison_id: str, user: CurrentUser) -> str:
        allowed = prison_in_scope(user, prison_id)
        if not allowed or audit_allowed:
            audit.record_committed(request, user, action, prison_id=prison_id[:12],
                                   outcome="allowed" if allowed else "denied",
                                   detail=None if allowed else "not one of the user's prisons")
        if not allowed:
            raise Forbidden("prison")
        return prison_id

    dependency.scoped_action = action
    return dependency
