"""What the warehouse knew on the origin day: the people in custody then and the recent flows.

Everything is read as at the origin: a spell that ended after it is still open, a sentence passed
after it is unknown, so a backtest from a past origin sees what a projection made that day saw.
Custody comes from core.custody_spell (one row a NOMIS booking) and core.prison_location_history
(where each person was on the day). The sentence a spell serves is the prison's own record of it
(core.custody_sentence: its type, date and custodial term, the minimum term for life and IPP)
where NOMIS holds one; otherwise, and always for the offence group the rules' exclusions go by,
the court's (core.disposal and core.offence), matched to the spell by person and date, taken as a
standard determinate sentence. The simulator's truth/ is never read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np

from justice import warehouse
from justice.settings import Settings
from justice.sim.reference import day_number

from .scenario import ScenarioError

LOOKBACK_YEARS = 3
"""Remands of the last three years teach how a remand ends (a sentence or release)."""

LICENCE_YEARS = 12
"""Spells released up to twelve years before the origin are read for the licences still
running (a licence runs to the end of the sentence)."""

FLOW_DAYS = 365
"""Receptions of the last year set the monthly volumes (recent flows, as a stock-flow model)."""

REASONS = ("remand", "sentenced", "recall")

_SPELLS_SQL = """
with spells as (
    select s.custody_spell_id, s.person_id, s.reception_reason as reason, s.start_date,
           -- An end after the origin was not known on the origin day.
           case when s.end_date <= $origin then s.end_date end as end_date,
           coalesce(p.sex, 'M') as sex,
           coalesce(s.reception_establishment_code, 'UNKNOWN') as reception_establishment
    from core.custody_spell as s
    left join core.person as p using (person_id)
    where s.start_date <= $origin
      and (s.start_date >= $lookback or s.end_date is null or s.end_date >= $licences)
),
sentences as (
    -- One custodial sentence a person a day: the longest term, and the offence group of the
    -- case's principal offence (the rules' exclusions go by it; the other offences of a case
    -- carry the same term, so the term alone would pick one at random).
    select d.person_id, d.disposal_date,
           max(d.custody_days) as length_days,
           arg_max(coalesce(o.offence_group, ''),
                   d.custody_days * 2 + coalesce(d.is_principal, false)::int) as offence_group
    from core.disposal as d
    left join core.offence as o using (offence_id)
    where d.disposal_type = 'immediate_custody' and d.disposal_date <= $origin
      and d.custody_days > 0
    group by all
),
matched as (
    -- The sentence a spell serves: the first custodial sentence passed from its reception (a
    -- sentenced reception is dated the day of sentence; allow a few days' slack) to its end.
    select s.custody_spell_id, x.disposal_date, x.length_days, x.offence_group
    from spells as s
    join sentences as x
      on x.person_id = s.person_id
     and x.disposal_date between s.start_date - 3 and coalesce(s.end_date, $origin)
    where s.reason in ('remand', 'sentenced')
    qualify row_number() over (partition by s.custody_spell_id order by x.disposal_date) = 1
),
recorded as (
    -- The prison's record of the sentence, if passed by the origin: its type and term in days
    -- (core.custody_sentence counts it as the release rules count a month).
    select custody_spell_id, sentence_date, sentence_type, term_length_days as length_days
    from core.custody_sentence
    where sentence_seq = 1 and sentence_date <= $origin
),
located as (
    select custody_spell_id, establishment_code
    from core.prison_location_history
    where location_level = 'establishment' and from_date <= $origin
      and (to_date is null or to_date > $origin)
    qualify row_number() over (partition by custody_spell_id order by from_date desc) = 1
)
select s.person_id, s.reason, s.start_date, s.end_date, s.sex,
       coalesce(l.establishment_code, s.reception_establishment) as establishment,
       s.reception_establishment,
       case when s.reason <> 'recall' then coalesce(k.sentence_date, m.disposal_date) end as sentence_date,
       case when s.reason <> 'recall' then coalesce(k.length_days, m.length_days) end as length_days,
       case when s.reason = 'recall' then null
            when k.sentence_type is not null then k.sentence_type
            when m.disposal_date is not null then 'standard_determinate' end as sentence_type,
       m.offence_group
from spells as s
left join matched as m using (custody_spell_id)
left join recorded as k using (custody_spell_id)
left join located as l using (custody_spell_id)
order by s.custody_spell_id
"""


@dataclass(frozen=True)
class Spells:
    """Custody spells known on the origin day, as parallel arrays (day numbers; -1 for none)."""

    reason: np.ndarray          # remand, sentenced or recall (object)
    start: np.ndarray           # reception day
    end: np.ndarray             # release day if on or before the origin, else -1
    sex: np.ndarray             # M or F (object)
    establishment: np.ndarray   # where the person was on the origin day (open) or received into
    sentence_day: np.ndarray    # day of the custodial sentence the spell serves, or -1
    length_days: np.ndarray     # its term in days (life and IPP: the minimum term), or 0
    sentence_type: np.ndarray   # its type (justice.policy SENTENCE_TYPES; object), or ''
    offence_group: np.ndarray   # its offence group (object), or ''
    person: np.ndarray          # the person (a number for each person_id; -1 if none)

    def __len__(self) -> int:
        return len(self.start)

    def subset(self, mask: np.ndarray) -> Spells:
        """The spells where `mask` is true."""
        return Spells(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class OriginData:
    """The warehouse as at the origin: spells, establishments and their capacity."""

    origin: dt.date
    data_start: dt.date
    data_end: dt.date
    spells: Spells
    establishments: tuple[str, ...]
    establishment_names: dict[str, str]
    capacity: dict[str, int]
    capacity_source: str

    @property
    def origin_day(self) -> int:
        """The origin as a day number."""
        return day_number(self.origin)

    def in_custody(self) -> np.ndarray:
        """Mask of the spells open on the origin day (the stock)."""
        return (self.spells.start <= self.origin_day) & (self.spells.end < 0)


def data_bounds(con: duckdb.DuckDBPyConnection) -> tuple[dt.date, dt.date]:
    """(coverage start, as-at date) of the built warehouse's custody data."""
    start = _scalar(con, "select min(quarter_start) from marts.court_calendar")
    end = _scalar(con, "select max(data_end) from marts.prison_population")
    first, last = con.execute(
        "select min(start_date), greatest(max(start_date), max(end_date)) from core.custody_spell"
    ).fetchone()
    if first is None:
        raise ScenarioError("the warehouse holds no custody spells: run `justice build` on a home "
                            "with prison data first")
    return max(start or first, first), end or last


def _scalar(con: duckdb.DuckDBPyConnection, sql: str):
    try:
        return con.execute(sql).fetchone()[0]
    except duckdb.CatalogException:
        return None


def check_origin(origin: dt.date, data_start: dt.date, data_end: dt.date) -> None:
    """Refuse an origin the data cannot project from: a year of flows is needed before it, and
    the stock is only known up to the data's as-at date."""
    earliest = data_start + dt.timedelta(days=FLOW_DAYS)
    latest = data_end + dt.timedelta(days=1)
    if not earliest <= origin <= latest:
        raise ScenarioError(f"--from {origin}: the origin must lie between {earliest} (a year of "
                            f"receptions after the data start {data_start}) and {latest} (the day "
                            f"after the data end {data_end})")


def load_origin(settings: Settings, origin: dt.date | None = None) -> OriginData:
    """Spells and capacity from HOME/warehouse.duckdb as known on `origin` (default: the day
    after the data's as-at date)."""
    path = settings.home / "warehouse.duckdb"
    if not path.exists():
        raise ScenarioError(f"{path}: no warehouse; run `justice ingest`, `justice link` and "
                            "`justice build` first")
    con = duckdb.connect(str(path), read_only=True)
    con.execute("set enable_progress_bar = false")  # the CLI shows its own
    try:
        try:
            data_start, data_end = data_bounds(con)
        except duckdb.CatalogException as exc:
            raise ScenarioError(f"{path}: the warehouse is not built ({exc}); run `justice build`") from None
        origin = origin or data_end + dt.timedelta(days=1)
        check_origin(origin, data_start, data_end)
        lookback = origin - dt.timedelta(days=365 * LOOKBACK_YEARS)
        window = origin - dt.timedelta(days=FLOW_DAYS)
        licences = origin - dt.timedelta(days=365 * LICENCE_YEARS)
        try:
            cols = con.execute(_SPELLS_SQL, {"origin": origin, "lookback": lookback,
                                             "licences": min(licences, window)}).fetchnumpy()
        except (duckdb.CatalogException, duckdb.BinderException) as exc:
            raise ScenarioError(f"{path}: the warehouse lacks a table or column the projection reads "
                                f"({str(exc).splitlines()[0]}); run `justice build` to rebuild it") from None
        names, capacity, source = _capacity(con)
    finally:
        con.close()
    spells = Spells(
        reason=np.asarray(cols["reason"], dtype=object),
        start=_days(cols["start_date"]),
        end=_days(cols["end_date"]),
        sex=np.asarray(cols["sex"], dtype=object),
        establishment=np.asarray(cols["establishment"], dtype=object),
        sentence_day=_days(cols["sentence_date"]),
        length_days=np.nan_to_num(np.asarray(cols["length_days"], dtype=float)).astype(np.int64),
        sentence_type=np.asarray([t or "" for t in _objects(cols["sentence_type"])], dtype=object),
        offence_group=np.asarray([g or "" for g in _objects(cols["offence_group"])], dtype=object),
        person=_person_numbers(_objects(cols["person_id"])),
    )
    ests = tuple(sorted(set(spells.establishment.tolist()) | set(capacity)))
    return OriginData(origin, data_start, data_end, spells, ests, names, capacity, source)


def _person_numbers(ids: list) -> np.ndarray:
    """A number for each distinct person id (in sorted order), -1 where there is none."""
    known = np.array([i if i is not None else "" for i in ids], dtype=object).astype(str)
    distinct, number = np.unique(known, return_inverse=True)
    number = number.astype(np.int64)
    if len(distinct) and distinct[0] == "":
        number = number - 1  # the empty id sorts first: it becomes -1, the rest 0..n-1
    return number


def _objects(values) -> list:
    if isinstance(values, np.ma.MaskedArray):
        return [None if m else v for v, m in zip(values.data, np.ma.getmaskarray(values))]
    return list(values)


def _days(values) -> np.ndarray:
    """Day numbers of a date column; -1 where null."""
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ma.MaskedArray) else None
    data = values.data if isinstance(values, np.ma.MaskedArray) else np.asarray(values)
    days = np.asarray(data).astype("datetime64[D]").astype(np.int64)
    if mask is not None:
        days = np.where(mask, -1, days)
    return days


def _capacity(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], dict[str, int], str]:
    """Each establishment's name and capacity: the cells' CAPACITY in the prison database
    (AGENCY_INTERNAL_LOCATIONS, as staged), summed by establishment."""
    try:
        names = dict(con.execute(
            "select agy_loc_id, any_value(description) from staging.prison__agency_locations__latest "
            "where agency_location_type = 'INST' group by all").fetchall())
    except duckdb.CatalogException:
        names = {}
    try:
        rows = con.execute(
            "select agy_loc_id, sum(capacity) from staging.prison__agency_internal_locations__latest "
            "where internal_location_type = 'CELL' and capacity > 0 group by all").fetchall()
    except duckdb.CatalogException:
        rows = []
    capacity = {code: int(cap) for code, cap in rows if code is not None and cap is not None}
    source = ("cell capacity in the prison database (AGENCY_INTERNAL_LOCATIONS.CAPACITY of each "
              "CELL, summed by establishment)")
    return names, capacity, source


_OBSERVED_SQL = """
with days as (select unnest($days::date[]) as day),
sentences as (
    select person_id, disposal_date
    from core.disposal
    where disposal_type = 'immediate_custody' and custody_days > 0
    group by all
),
held as (
    select d.day, s.custody_spell_id, s.reception_reason, s.person_id, s.start_date
    from days as d
    join core.custody_spell as s
      on s.start_date <= d.day and (s.end_date is null or s.end_date > d.day)
),
recorded as (
    select custody_spell_id, min(sentence_date) as sentence_date
    from core.custody_sentence
    group by custody_spell_id
),
status as (
    -- A remand spell counts as sentenced from the day its custodial sentence is passed: the
    -- prison's record of it where there is one (as the projection reads it), else a custodial
    -- sentence of the person's at court (which needs the court record linked to the person).
    select h.day, h.custody_spell_id,
           case when h.reception_reason = 'remand' and (r.sentence_date <= h.day or (r.sentence_date is null and exists (
                    select 1 from sentences as x
                    where x.person_id = h.person_id
                      and x.disposal_date between h.start_date and h.day)))
                then 'sentenced' else h.reception_reason end as case_type
    from held as h
    left join recorded as r using (custody_spell_id)
)
select day, case_type, count(*) as population from status group by all order by all
"""


def observed_population(settings: Settings, days: list[dt.date]) -> dict[dt.date, dict[str, int]]:
    """People in custody on each day as the built warehouse records it now (for backtests: what
    happened after a past origin), by case type: {day: {case type: count}}."""
    con = warehouse.connect(settings, read_only=True)
    try:
        rows = con.execute(_OBSERVED_SQL, {"days": list(days)}).fetchall()
    finally:
        con.close()
    out: dict[dt.date, dict[str, int]] = {d: dict.fromkeys(REASONS, 0) for d in days}
    for day, case_type, n in rows:
        out[day][case_type] = int(n)
    return out
