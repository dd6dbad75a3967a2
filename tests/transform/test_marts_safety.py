"""`justice build`'s Safety in Custody marts (`marts.prison_population`, `marts.safety_in_custody`,
`marts.safety_in_custody_national`), checked against truth.

The world is the session's 3,000-person one (seed 11). Incidents are compared by establishment,
quarter and type; population by establishment and quarter as prisoner-days; the national
12-months-to rates with the simulator's own calibration measures. Every gap is measured and printed
(`pytest -s`) with what explains it: quarantined rows, incidents at an establishment no one is held
in, and, for the people self-harming, the person index (a linked person_id is not a true person).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from justice.sim import calibration
from justice.sim import reference as ref
from justice.sim.courts import NONE

MODELS = Path(__file__).parents[2] / "src" / "justice" / "transform" / "models" / "marts" / "safety"
TYPES = ("SELF_HARM", "ASSAULT_ON_PRISONER", "ASSAULT_ON_STAFF")


@pytest.fixture(scope="module")
def warehouse(built_home):
    """A read-only connection to the built world, with truth readable by file name."""
    con = duckdb.connect(str(built_home.home / "warehouse.duckdb"), read_only=True)
    con.execute(f"set file_search_path = '{built_home.truth_dir}'")
    yield con
    con.close()


@pytest.fixture(scope="module")
def window(built_home) -> tuple[dt.date, dt.date]:
    """The simulated window (start, end) from truth/params.json."""
    params = json.loads((built_home.truth_dir / "params.json").read_text())
    return dt.date.fromisoformat(params["start"]), dt.date.fromisoformat(params["end"])


def _one(con, sql: str, params=None):
    return con.execute(sql, params or []).fetchall()[0]


def test_every_column_of_every_model_is_documented(warehouse):
    for yml in sorted(MODELS.glob("*.yml")):
        for model in yaml.safe_load(yml.read_text())["models"]:
            assert all(c.get("description") for c in model["columns"]), model["name"]
            built = [r[0] for r in warehouse.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = ? order by ordinal_position", [model["name"]]).fetchall()]
            assert built == [c["name"] for c in model["columns"]], model["name"]


def test_data_end_is_derived_from_the_data(warehouse, window):
    # The last incident or movement on record, not a constant: in this world an incident falls on
    # the window's last day, so the two agree.
    (data_end,) = _one(warehouse, "select distinct data_end from marts.prison_population")
    (last_incident,) = _one(warehouse, "select max(incident_date) from core.incident")
    print(f"\ndata end {data_end}, window end {window[1]}, last incident {last_incident}")
    assert data_end >= last_incident
    assert window[1] - dt.timedelta(days=7) <= data_end <= window[1]


def test_incident_counts_by_establishment_quarter_and_type_match_truth(warehouse):
    # A quarantined incident case is the only way to lose one between source and mart, so the
    # total absolute difference over every establishment, quarter and type is at most their number.
    # Both sides from the coverage start (the mart's first quarter; see prison_population).
    rows = warehouse.execute("""
        with mart as (
            select quarter, establishment_code, t.incident_type, t.n
            from marts.safety_in_custody,
                 unnest([{'incident_type': 'SELF_HARM', 'n': self_harm_incidents},
                         {'incident_type': 'ASSAULT_ON_PRISONER', 'n': assaults_on_prisoners},
                         {'incident_type': 'ASSAULT_ON_STAFF', 'n': assaults_on_staff}]) as u(t)
        ),
        truth as (
            select year(incident_date) || 'Q' || quarter(incident_date) as quarter, establishment_code,
                   incident_type, count(*) as n
            from read_parquet('incidents.parquet')
            where incident_date >= (select min(quarter_start) from marts.prison_population)
            group by all
        )
        select incident_type, coalesce(sum(abs(coalesce(m.n, 0) - coalesce(t.n, 0))), 0),
               coalesce(sum(m.n), 0), coalesce(sum(t.n), 0),
               count(*) filter (where coalesce(m.n, 0) != coalesce(t.n, 0))
        from mart as m full join truth as t using (quarter, establishment_code, incident_type)
        group by incident_type order by incident_type""").fetchall()
    quarantined, unmatched, outside = _one(warehouse, """
        select (select count(*) from quarantine.prison__incident_cases),
               (select count(*) from core.incident i where not exists (
                    select 1 from marts.prison_population p where p.establishment_code = i.establishment_code)),
               (select count(*) from core.incident where incident_date >= (select min(quarter_start) from marts.prison_population))
                 - (select sum(self_harm_incidents + assault_incidents)
                                                      from marts.safety_in_custody)""")
    print(f"\nquarantined incident cases {quarantined}; incidents at an establishment with no one held "
          f"{unmatched}; core incidents missing from the mart {outside}")
    gap = 0
    for incident_type, diff, mart, truth, cells in rows:
        print(f"{incident_type}: mart {mart}, truth {truth}, |difference| {diff} over {cells} "
              f"establishment-quarters")
        gap += diff
    assert {r[0] for r in rows} == set(TYPES)
    assert outside == 0  # every incident in core is counted once
    assert gap <= quarantined, (gap, quarantined)
    # Assaults are the sum of their two kinds on every row.
    (bad,) = _one(warehouse, "select count(*) from marts.safety_in_custody "
                             "where assault_incidents != assaults_on_prisoners + assaults_on_staff")
    assert bad == 0


def test_self_harm_individuals_match_truth(warehouse):
    # Counted over true persons (the booking's OFFENDER_ID through truth/records), the mart's rule
    # gives truth exactly; over linked person_ids it differs only where the person index split or
    # merged someone, which must stay under 2% of the people counted.
    mart, by_true_person, truth, cells = _one(warehouse, """
        with harm as (
            select i.establishment_code, year(i.incident_date) || 'Q' || quarter(i.incident_date) as quarter,
                   p.person_id, r.person_id as true_person_id
            from core.incident i
            join core.incident_party p using (incident_id)
            join core.custody_spell s using (custody_spell_id)
            left join read_parquet('records.parquet') r on r.system = 'prison' and r.record_id = s.offender_id::varchar
            where i.incident_type = 'SELF_HARM' and p.role = 'SELF_HARMER'
        ),
        by_true_person as (
            select establishment_code, quarter, count(distinct true_person_id) as n from harm group by all
        ),
        truth as (
            select i.establishment_code, year(i.incident_date) || 'Q' || quarter(i.incident_date) as quarter,
                   count(distinct p.person_id) as n
            from read_parquet('incidents.parquet') i join read_parquet('incident_parties.parquet') p using (incident_id)
            where i.incident_type = 'SELF_HARM' and p.role = 'SELF_HARMER' and i.incident_date >= (select min(quarter_start) from marts.prison_population)
            group by all
        )
        select sum(abs(m.self_harm_individuals - coalesce(t.n, 0))),
               sum(abs(coalesce(b.n, 0) - coalesce(t.n, 0))), sum(t.n),
               count(*) filter (where m.self_harm_individuals != coalesce(t.n, 0))
        from marts.safety_in_custody m
        left join truth t using (establishment_code, quarter)
        left join by_true_person b using (establishment_code, quarter)""")
    print(f"\nself-harm individuals (summed over establishment-quarters): truth {truth}; |mart - truth| "
          f"{mart} over {cells} establishment-quarters; counted by true person {by_true_person} off")
    assert by_true_person == 0
    assert mart <= 0.02 * truth, (mart, truth)


def test_average_population_by_establishment_and_quarter_matches_truth(warehouse):
    # Truth's prisoner-days from truth/prison_locations, each person-day counted once, where the
    # person stayed: truth gives a reception followed the same day by a cell move or transfer a
    # one-day stay in the reception cell that overlaps the next row (the printed overlap), so a day
    # on two rows goes to the later-starting, longer one (for a same-day transfer, the prison moved
    # to, as the pipeline's establishment periods and the calibration measure count it). Open
    # periods run to the mart's data end (checked above against the window end). With no movement
    # or booking quarantined, prisoner-days agree exactly and the average population to its
    # rounding (0.005).
    quarantined = _one(warehouse, """
        select (select count(*) from quarantine.prison__offender_external_movements)
             + (select count(*) from quarantine.prison__offender_bookings)""")[0]
    rows = warehouse.execute("""
        with days as (
            select l.spell_id, l.establishment_code, cast(d.day as date) as day
            from read_parquet('prison_locations.parquet') l,
                 (select distinct data_end from marts.prison_population) b,
                 unnest(range(l.start_date, coalesce(l.end_date, b.data_end + 1), interval 1 day)) as d(day)
            qualify row_number() over (partition by l.spell_id, d.day
                                       order by l.start_date desc, l.end_date desc nulls first) = 1
        ),
        truth as (
            select establishment_code, year(day) || 'Q' || quarter(day) as quarter, count(*) as prisoner_days
            from days where day >= (select min(quarter_start) from marts.prison_population) group by all
        )
        select p.quarter, p.establishment_code, p.prisoner_days, coalesce(t.prisoner_days, 0),
               p.average_population, coalesce(t.prisoner_days, 0) / p.days_covered
        from marts.prison_population p full join truth t using (quarter, establishment_code)""").fetchall()
    raw, deduplicated = _one(warehouse, """
        select sum(least(coalesce(end_date, date '9999-12-31'), b.data_end + 1) - start_date),
               (select sum(least(coalesce(release_date, date '9999-12-31'), b.data_end + 1) - reception_date)
                from read_parquet('custody_spells.parquet'))
        from read_parquet('prison_locations.parquet'), (select distinct data_end from marts.prison_population) b
        group by b.data_end""")
    off = [r for r in rows if r[2] != r[3]]
    worst = max(abs(r[4] - r[5]) for r in rows if r[4] is not None)
    print(f"\n{len(rows)} establishment-quarters; prisoner-days differing from truth in {len(off)}; worst "
          f"average population difference {worst:.4f}; quarantined movements and bookings {quarantined}; "
          f"truth prison_locations raw person-days {raw} vs custody_spells {deduplicated} "
          f"({raw - deduplicated} overlapping days)")
    assert quarantined == 0
    assert not off, off[:5]
    assert worst <= 0.005 + 1e-9


def test_population_by_custody_type_on_quarter_ends_matches_truth(warehouse):
    # Truth's count of people held on each quarter end by custody type, from truth/custody_spells:
    # held when received by the day and not released by it; a remand spell is sentenced from its
    # sentence date; a recall spell is recall; the sentenced by the band of the true sentence
    # months (life is the only indeterminate type in this world). NOMIS writes the term as
    # years, months and days rounded to a day, so a term within a day of a band's edge may fall
    # either side: those are counted apart and must be the only difference.
    rows = warehouse.execute("""
        with snap as (select distinct quarter, snapshot_date from marts.prison_population_by_custody_type),
        held as (
            select n.quarter, t.*,
                   case when t.reason = 'recall' then 'recall'
                        when t.reason = 'remand' and (t.sentence_date is null or t.sentence_date > n.snapshot_date)
                            then 'remand' else 'sentenced' end as custody_type
            from read_parquet('custody_spells.parquet') t join snap n
              on t.reception_date <= n.snapshot_date
             and (t.release_date is null or t.release_date > n.snapshot_date)
        ),
        banded as (
            select quarter, custody_type,
                   case when custody_type <> 'sentenced' then null
                        when sentence_type in ('life', 'ipp') then 'indeterminate'
                        when sentence_months <= 6 then 'up_to_6_months'
                        when sentence_months < 12 then 'over_6_to_under_12_months'
                        when sentence_months < 48 then '12_months_to_under_4_years'
                        else '4_years_or_more' end as band,
                   custody_type = 'sentenced' and sentence_type not in ('life', 'ipp')
                       and list_min([abs(sentence_months - e) for e in [6, 12, 48]]) < 1 / 30.4375 as near_edge
            from held
        ),
        truth as (
            select quarter, custody_type, band, count(*) as people, count(*) filter (where near_edge) as edge
            from banded group by all
        )
        select m.quarter, m.custody_type, m.sentence_length_band, m.population,
               coalesce(t.people, 0), coalesce(t.edge, 0)
        from marts.prison_population_by_custody_type m
        left join truth t on t.quarter = m.quarter and t.custody_type = m.custody_type
             and t.band is not distinct from m.sentence_length_band""").fetchall()
    assert len({r[0] for r in rows}) >= 40  # a decade of quarter ends
    held = sum(r[3] for r in rows)
    truth = sum(r[4] for r in rows)
    assert held == truth > 1000, (held, truth)
    # Every category matches exactly but for terms within a day of a band edge.
    off = [r for r in rows if abs(r[3] - r[4]) > r[5]]
    assert not off, off[:5]
    assert all(r[3] == 0 for r in rows if r[2] == "length_unknown")
    # Shares add up to one in every quarter anybody is held.
    sums = warehouse.execute("""select quarter, sum(share_of_population) from marts.prison_population_by_custody_type
                                group by quarter having sum(population) > 0""").fetchall()
    assert all(abs(s - 1) <= 0.0008 for _, s in sums), sums[:3]


def _truth_tables(con) -> dict[str, dict[str, np.ndarray]]:
    """The truth tables the calibration measures read, as the simulator holds them (day numbers,
    NONE for no date)."""
    def day(col: str) -> str:
        return f"coalesce(datediff('day', date '1970-01-01', {col}), {NONE})"

    def table(sql: str) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in con.execute(sql).fetchnumpy().items()}

    return {
        "custody_spells": table(f"select {day('reception_date')} as reception_date, "
                                f"{day('release_date')} as release_date from read_parquet('custody_spells.parquet')"),
        "incidents": table(f"select incident_type, {day('incident_date')} as incident_date "
                           f"from read_parquet('incidents.parquet')"),
    }


def test_national_rates_for_the_last_year_match_the_simulator_measures(warehouse, window):
    # The simulator measures the 365 days to a given end from truth; the mart's latest 12 months
    # of complete quarters (to the window's end when an incident or movement falls on its last
    # day, else to the quarter before) are the same days (no 29 February in them), so counts and
    # prisoner-days agree exactly and the rates to their rounding (two decimals).
    start, window_end = window
    (end,) = _one(warehouse, "select max(quarter_end) from marts.safety_in_custody_national "
                  "where quarter_end <= ? and days = 365", [window_end])
    assert end is not None and end >= window_end - dt.timedelta(days=92), end
    world = calibration.World(_truth_tables(warehouse), ref.day_number(start), ref.day_number(end))
    measured = {name: calibration.MEASURES[name](world) for name in (
        "self_harm_per_1000_prisoners", "assaults_per_1000_prisoners", "assaults_on_staff_per_1000_prisoners")}
    rows = warehouse.execute("""
        select days, self_harm_per_1000, assaults_per_1000, assaults_on_staff_per_1000, average_population,
               prisoner_days, self_harm_incidents, assault_incidents, self_harm_individuals
        from marts.safety_in_custody_national where quarter_end = ?""", [end]).fetchall()
    assert len(rows) == 1, f"no national row for the 12 months to {end}"
    days, self_harm, assaults, on_staff, population, prisoner_days, n_self_harm, n_assaults, individuals = rows[0]
    truth_days = calibration.prisoner_days_last_year(world.t, world.end)
    truth_individuals = _one(warehouse, """
        select count(distinct p.person_id)
        from read_parquet('incidents.parquet') i join read_parquet('incident_parties.parquet') p using (incident_id)
        where i.incident_type = 'SELF_HARM' and p.role = 'SELF_HARMER' and i.incident_date between ? and ?""",
        [end - dt.timedelta(days=364), end])[0]
    print(f"\n12 months to {end}: average population mart {population} vs truth {truth_days / 365:.2f}; "
          f"self-harm per 1,000 mart {self_harm} vs simulator {measured['self_harm_per_1000_prisoners']:.4f}; "
          f"assaults per 1,000 mart {assaults} vs {measured['assaults_per_1000_prisoners']:.4f}; "
          f"assaults on staff per 1,000 mart {on_staff} vs {measured['assaults_on_staff_per_1000_prisoners']:.4f}; "
          f"individuals self-harming mart {individuals} vs truth {truth_individuals}")
    assert days == 365
    assert prisoner_days == truth_days
    assert abs(self_harm - measured["self_harm_per_1000_prisoners"]) <= 0.005 + 1e-9
    assert abs(assaults - measured["assaults_per_1000_prisoners"]) <= 0.005 + 1e-9
    assert abs(on_staff - measured["assaults_on_staff_per_1000_prisoners"]) <= 0.005 + 1e-9
    assert n_self_harm * 1000 / (truth_days / 365) == pytest.approx(measured["self_harm_per_1000_prisoners"])
    assert n_assaults * 1000 / (truth_days / 365) == pytest.approx(measured["assaults_per_1000_prisoners"])
    # People self-harming are counted by linked person_id: a person split in two by the linkage
    # counts twice, so within 2% (or one person, in a small world) of truth.
    assert abs(individuals - truth_individuals) <= max(1, 0.02 * truth_individuals)


def test_national_figures_cover_only_full_years_and_add_up(warehouse):
    # Each row's 12 months are four complete quarters of the population table, and its counts and
    # prisoner-days are those of the establishment rows of those quarters summed.
    rows = warehouse.execute("""
        select n.quarter, n.period_start, n.days, n.prisoner_days, n.self_harm_incidents, n.assault_incidents,
               n.assaults_on_staff, count(distinct s.quarter) filter (where s.is_complete_quarter),
               count(distinct s.quarter), sum(s.prisoner_days), sum(s.self_harm_incidents),
               sum(s.assault_incidents), sum(s.assaults_on_staff)
        from marts.safety_in_custody_national n
        join marts.safety_in_custody s on s.quarter_start between n.period_start and n.quarter_end
        group by all order by n.period_start""").fetchall()
    (complete_quarters,) = _one(warehouse, "select count(distinct quarter) filter (where is_complete_quarter) "
                                           "from marts.prison_population")
    print(f"\n{len(rows)} national 12-months-to rows, {rows[0][0]} to {rows[-1][0]}; "
          f"{complete_quarters} complete quarters")
    assert len(rows) == complete_quarters - 3  # consecutive complete quarters, four to a row
    for quarter, period_start, days, prisoner_days, self_harm, assaults, on_staff, complete, quarters, *sums in rows:
        assert quarters == complete == 4 and period_start.day == 1 and days in (365, 366), quarter
        assert [prisoner_days, self_harm, assaults, on_staff] == sums, quarter
