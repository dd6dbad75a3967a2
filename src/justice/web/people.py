"""Who each prison record is: person resolution and the history other systems hold.

Person resolution (``person_resolution``, one row per mirrored OFFENDERS row)
    * ``index``: the record is in the person index (``linkage.person_links``, system ``prison``,
      record_id = str(OFFENDER_ID)); confidence is the probability of its strongest link
      (``best_match_weight`` as a match probability; 1.0 for a record alone or joined only by the
      system's own alias link).
    * ``scored``: a record the index has never seen (received after the last ``justice link``),
      scored on arrival with ``justice.link.explain.Scorer`` on its raw fields (names, birth
      date, sex, prison number, PNC and CRO from OFFENDER_IDENTIFIERS) and joined to the best
      candidate's person at or above the model's threshold; confidence is that match's
      probability.
    * ``unresolved``: no candidate at the threshold; the record is its own person,
      ``prison:<offender_id>``, confidence 1.0.
    An alias row (ALIAS_OFFENDER_ID set) that the index has not seen takes its root row's person.

Linked history (``linked_history``)
    For every person with a prison record in the mirror, copied from the warehouse's core model
    (``justice build``): court convictions (core.offence, convicted; ``is_violence`` for the
    groups in VIOLENT_GROUPS) and probation risk (core.supervision: the OGRS score and its band
    per order, and breaches), each with its source system, record key and that record's link
    confidence. Earlier prison numbers are not copied: they are other mirrored OFFENDERS rows
    with the same person_id.

The warehouse is DuckDB, opened read-only and only while a sync needs it. If it is missing, not
yet linked or locked by a writer (``justice link`` or ``build``), resolution waits: the records
keep no ``person_resolution`` row (pages show them as their own person) and a later sync resolves
them; the sync's ``note`` says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from justice.errors import JusticeError
from justice.link.explain import Scorer
from justice.link.store import open_warehouse, require_links
from justice.serving.mirror import linked_history, mirror_table, person_resolution, upsert
from justice.settings import Settings

# Convictions an officer must see as violence: violence against the person, and the groups that
# are violence or the threat of it by definition (the MoJ counts violent and sexual offending
# together for risk; robbery is theft with force or the threat of force).
VIOLENT_GROUPS = ("01 Violence against the person", "02 Sexual offences", "03 Robbery")

# OGRS3 bands of the two-year proven reoffending probability, in per cent.
OGRS_BANDS = ((90, "very high"), (75, "high"), (50, "medium"), (0, "low"))

SUPERVISION_LABELS = {"community_order": "Community order",
                      "suspended_sentence_order": "Suspended sentence order", "licence": "Licence"}

UNRESOLVED_PREFIX = "prison:"
CHUNK = 10_000


class WarehouseUnavailable(JusticeError):
    """The warehouse cannot be read now (missing, not linked, or locked by a writer)."""


def warehouse_signature(settings: Settings) -> str | None:
    """A token that changes whenever the warehouse file is rewritten (None: no warehouse)."""
    path = settings.warehouse_path
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def link_confidence(weight: float | None) -> float:
    """A link's match weight (log2 odds) as a probability; 1.0 when there is no scored link."""
    if weight is None:
        return 1.0
    if weight > 60:
        return 1.0
    odds = 2.0 ** weight
    return odds / (1.0 + odds)


@dataclass
class Resolution:
    """What one resolution pass did."""

    resolved: int = 0
    scored: int = 0
    persons_changed: set[str] = field(default_factory=set)


class Warehouse:
    """The warehouse opened read-only for one sync, and the scorer opened on first need."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.con = open_warehouse(settings, read_only=True)
            require_links(self.con)
        except (JusticeError, duckdb.Error) as exc:
            if getattr(self, "con", None) is not None:
                self.con.close()
            raise WarehouseUnavailable(f"person index unavailable: {_first_line(exc)}") from None
        self._scorer: Scorer | None = None

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            try:
                self._scorer = Scorer(self.settings)
            except (JusticeError, duckdb.Error) as exc:
                raise WarehouseUnavailable(f"scorer unavailable: {_first_line(exc)}") from None
        return self._scorer

    def prison_links(self, offender_ids: list[int] | None) -> dict[int, tuple[str, float]]:
        """offender_id -> (person_id, confidence) for the records in the index."""
        sql = ("select record_id, person_id, best_match_weight from linkage.person_links "
               "where system = 'prison'")
        if offender_ids is None:
            rows = self.con.execute(sql).fetchall()
        else:
            wanted = pa.array([str(i) for i in offender_ids], pa.string())
            self.con.register("_wanted", pa.table({"record_id": wanted}))
            try:
                rows = self.con.execute(
                    sql + " and record_id in (select record_id from _wanted)").fetchall()
            finally:
                self.con.unregister("_wanted")
        return {int(r): (p, link_confidence(w)) for r, p, w in rows if r.isdigit()}

    def has_core(self) -> bool:
        return self.con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'wh' "
            "and table_schema = 'core' and table_name in ('offence', 'supervision', 'court')"
        ).fetchall()[0][0] == 3

    def history(self, person_ids: list[str]) -> Iterable[list[dict]]:
        """linked_history rows of `person_ids`, in chunks."""
        self.con.register("_persons", pa.table({"person_id": pa.array(person_ids, pa.string())}))
        violent = ", ".join("'" + g.replace("'", "''") + "'" for g in VIOLENT_GROUPS)
        band = " ".join(f"when s.ogrs_score >= {lo} then '{name}'" for lo, name in OGRS_BANDS)
        labels = " ".join(f"when '{k}' then '{v}'" for k, v in SUPERVISION_LABELS.items())
        confidence = ("case when l.best_match_weight is null or l.best_match_weight > 60 then 1.0 "
                      "else pow(2, l.best_match_weight) / (1 + pow(2, l.best_match_weight)) end")
        sql = f"""
            select o.person_id, o.court_type as source_system, o.defendant_id as source_record,
                   'court_conviction' as kind,
                   coalesce(o.outcome_date, o.offence_date) as event_date,
                   coalesce(o.offence_description, o.offence_code, 'Unknown offence')
                       as description,
                   o.offence_group as detail, c.court_name as location,
                   coalesce(o.offence_group in ({violent}), false) as is_violence,
                   {confidence} as confidence
            from core.offence o
            join _persons using (person_id)
            left join core.court c on c.court_type = o.court_type and c.court_code = o.court_code
            left join linkage.person_links l
                   on l.system = o.court_type and l.record_id = o.defendant_id
            where o.convicted
            union all
            select s.person_id, 'probation', s.crn, 'probation_risk', s.start_date,
                   (case s.supervision_type {labels} else s.supervision_type end)
                       || ': OGRS ' || cast(round(s.ogrs_score, 1) as varchar),
                   case {band} end, s.pdu_code, false, {confidence}
            from core.supervision s
            join _persons using (person_id)
            left join linkage.person_links l on l.system = 'probation' and l.record_id = s.crn
            where not s.is_duplicate_registration and s.ogrs_score is not null
            union all
            select s.person_id, 'probation', s.crn, 'probation_breach', s.breach_date,
                   'Breach of '
                       || lower(case s.supervision_type {labels} else s.supervision_type end),
                   null, s.pdu_code, false, {confidence}
            from core.supervision s
            join _persons using (person_id)
            left join linkage.person_links l on l.system = 'probation' and l.record_id = s.crn
            where not s.is_duplicate_registration and s.breach_date is not null
            order by 1, 5, 4, 3
        """
        try:
            cur = self.con.execute(sql)
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(CHUNK):
                yield [{**dict(zip(names, r)), "confidence": float(r[-1])} for r in rows]
        finally:
            self.con.unregister("_persons")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def _chunks(values: list, size: int = 500) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _probe(row: sa.Row, ids: dict[str, str]) -> dict:
    """An OFFENDERS row as the scorer's raw record (the fields of link/sources.yaml's prison)."""
    forenames = " ".join(p for p in (row.first_name, row.middle_name) if p)
    return {"forenames": forenames or None, "surname": row.last_name,
            "dob": row.birth_date.isoformat() if row.birth_date else None, "sex": row.sex_code,
            "prison_number": row.offender_id_display, "pnc": ids.get("PNC"), "cro": ids.get("CRO")}


def resolve(conn: sa.Connection, wh: Warehouse, offender_ids: list[int] | None,
            now: dt.datetime) -> Resolution:
    """Resolve `offender_ids` (None: every mirrored OFFENDERS row) and the aliases of those rows,
    upserting person_resolution. Raises WarehouseUnavailable if scoring is needed and cannot run."""
    offenders = mirror_table("OFFENDERS")
    identifiers = mirror_table("OFFENDER_IDENTIFIERS")
    cols = [offenders.c[c] for c in ("offender_id", "offender_id_display", "first_name",
                                     "middle_name", "last_name", "birth_date", "sex_code",
                                     "alias_offender_id")]
    rows: dict[int, sa.Row] = {}
    if offender_ids is None:
        for row in conn.execute(sa.select(*cols)):
            rows[row.offender_id] = row
    else:
        for chunk in _chunks(sorted(set(offender_ids))):
            for row in conn.execute(sa.select(*cols).where(
                    sa.or_(offenders.c.offender_id.in_(chunk),
                           offenders.c.alias_offender_id.in_(chunk)))):
                rows[row.offender_id] = row
    if not rows:
        return Resolution()
    wanted = None if offender_ids is None else sorted(rows)
    linked = wh.prison_links(wanted)
    previous = {}
    for chunk in _chunks(sorted(rows)) if offender_ids is not None else [None]:
        q = sa.select(person_resolution.c.offender_id, person_resolution.c.person_id)
        if chunk is not None:
            q = q.where(person_resolution.c.offender_id.in_(chunk))
        previous.update((r[0], r[1]) for r in conn.execute(q))

    out: dict[int, tuple[str, str, float]] = {}
    to_score = [i for i, r in rows.items() if i not in linked and r.alias_offender_id is None]
    ids_of: dict[int, dict[str, str]] = {}
    for chunk in _chunks(to_score):
        for oid, kind, value in conn.execute(
                sa.select(identifiers.c.offender_id, identifiers.c.identifier_type,
                          identifiers.c.identifier)
                .where(identifiers.c.offender_id.in_(chunk))
                .order_by(identifiers.c.offender_id, identifiers.c.offender_id_seq)):
            ids_of.setdefault(oid, {})[kind] = value  # the latest of a type wins
    scored = 0
    for oid in to_score:
        result = wh.scorer.score(_probe(rows[oid], ids_of.get(oid, {})), top=1)
        scored += 1
        if result.person_id is not None:
            out[oid] = (result.person_id, "scored", float(result.best.match_probability))
        else:
            out[oid] = (f"{UNRESOLVED_PREFIX}{oid}", "unresolved", 1.0)
    for oid, (person_id, confidence) in linked.items():
        if oid in rows:
            out[oid] = (person_id, "index", confidence)
    # Aliases the index never saw take their root's person: resolved now, or earlier.
    roots = {r.alias_offender_id for i, r in rows.items()
             if i not in out and r.alias_offender_id is not None}
    known = {}
    for chunk in _chunks(sorted(roots - set(out))):
        pr = person_resolution
        for row in conn.execute(sa.select(pr.c.offender_id, pr.c.person_id, pr.c.method,
                                          pr.c.confidence)
                                .where(person_resolution.c.offender_id.in_(chunk))):
            known[row.offender_id] = (row.person_id, row.method, row.confidence)
    for oid, row in rows.items():
        if oid not in out and row.alias_offender_id is not None:
            root = out.get(row.alias_offender_id) or known.get(row.alias_offender_id)
            out[oid] = root if root else (f"{UNRESOLVED_PREFIX}{oid}", "unresolved", 1.0)

    records = [{"offender_id": oid, "person_id": p, "method": m, "confidence": c,
                "resolved_at": now} for oid, (p, m, c) in out.items()]
    upsert(conn, person_resolution, records)
    changed = {p for oid, (p, _, _) in out.items() if previous.get(oid) != p}
    return Resolution(len(records), scored,
                      {p for p in changed if not p.startswith(UNRESOLVED_PREFIX)})


def refresh_history(conn: sa.Connection, wh: Warehouse, person_ids: set[str] | None) -> int:
    """Replace linked_history for `person_ids` (None: everyone with a mirrored prison record)
    from the warehouse's core model; returns rows written (0 when the warehouse has no core yet)."""
    if person_ids is None:
        conn.execute(linked_history.delete())
        person_ids = set(conn.execute(
            sa.select(person_resolution.c.person_id).distinct()
            .where(~person_resolution.c.person_id.startswith(UNRESOLVED_PREFIX))).scalars())
    else:
        for chunk in _chunks(sorted(person_ids)):
            conn.execute(linked_history.delete().where(linked_history.c.person_id.in_(chunk)))
    if not person_ids or not wh.has_core():
        return 0
    written = 0
    for rows in wh.history(sorted(person_ids)):
        conn.execute(linked_history.insert(), rows)
        written += len(rows)
    return written
