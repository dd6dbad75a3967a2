-- Prison population by establishment and quarter, the denominator of the Safety in Custody rates:
-- prisoner-days (a person counts on each day from the day they are received or transferred in up
-- to, not including, the day they leave) over the quarter's days. Where people were comes from the
-- establishment periods of core.prison_location_history, cut by admissions, transfers and
-- releases; core.custody_spell knows only the reception and the last establishment, so it would put
-- a transferred prisoner's days in the wrong prison. An open period counts up to the data's end
-- date: the latest incident or movement on record (the extract's as-at date), or the dbt var
-- `data_end`. The calendar runs from the extracts' coverage start (the first quarter of
-- marts.court_calendar, or the first date on record if later); a quarter the data
-- covers only in part (the first, and the last if the data ends mid-quarter) averages over the
-- days it covers and is flagged.

with periods as (
    select establishment_code, establishment_name, from_date, to_date
    from {{ ref('prison_location_history') }}
    where location_level = 'establishment'
),

incidents as (
    select incident_date from {{ ref('incident') }}
),

bounds as (
    select
        -- The extracts' coverage start, shared with the court statistics (marts.court_calendar;
        -- dbt var `data_start`): before it the prison data holds only the people still held or
        -- returning later, so populations and rates would be partial.
        greatest(
            least((select min(from_date) from periods), (select min(incident_date) from incidents)),
            (select min(quarter_start) from {{ ref('court_calendar') }})
        ) as data_start,
        {% if var('data_end', none) is not none -%}
        cast('{{ var("data_end") }}' as date)
        {%- else -%}
        greatest(
            (select max(from_date) from periods),
            (select max(to_date) from periods),
            (select max(incident_date) from incidents)
        )
        {%- endif %} as data_end
),

quarters as (
    select
        cast(q as date) as quarter_start,
        {{ quarter_end('q') }} as quarter_end,
        greatest(cast(q as date), b.data_start) as covered_from,
        least({{ quarter_end('q') }}, b.data_end) as covered_to
    from bounds as b, {{ quarter_starts(quarter_start('b.data_start'), 'b.data_end') }}
),

establishments as (
    select establishment_code, max(establishment_name) as establishment_name
    from periods
    group by establishment_code
),

prisoner_days as (
    -- Each period's days inside the part of the quarter the data covers; an open period runs to
    -- the data's end (inclusive), a closed one to the day before it ended.
    select
        p.establishment_code,
        q.quarter_start,
        cast(sum({{ days_between('greatest(p.from_date, q.covered_from)',
                                 'least(coalesce(p.to_date, b.data_end + 1), q.covered_to + 1)') }})
            as bigint) as prisoner_days
    from periods as p
    cross join bounds as b
    join quarters as q
        on p.from_date <= q.covered_to and coalesce(p.to_date, b.data_end + 1) > q.covered_from
    group by all
)

select
    {{ quarter_label('q.quarter_start') }} as quarter,
    q.quarter_start,
    q.quarter_end,
    e.establishment_code,
    e.establishment_name,
    {{ days_between('q.covered_from', 'q.covered_to') }} + 1 as days_covered,
    q.covered_from = q.quarter_start and q.covered_to = q.quarter_end as is_complete_quarter,
    coalesce(d.prisoner_days, 0) as prisoner_days,
    {{ round_figure('coalesce(d.prisoner_days, 0) / (' ~ days_between('q.covered_from', 'q.covered_to') ~ ' + 1)', 2) }}
        as average_population,
    b.data_end
from quarters as q
cross join bounds as b
cross join establishments as e
left join prisoner_days as d using (establishment_code, quarter_start)
order by q.quarter_start, e.establishment_code
