-- Safety in Custody by establishment and quarter (HMPPS Safety in Custody statistics): self-harm
-- incidents and the people self-harming, assaults (on prisoners and on staff), and rates per 1,000
-- prisoners. An incident counts in the quarter of its date at the establishment where it happened
-- (core.incident); a self-harming individual is a distinct person (the linked person_id) recorded as
-- SELF_HARMER on a self-harm incident in that establishment and quarter. The rates divide by the
-- average population of prison_population (prisoner-days from the establishment periods of
-- core.prison_location_history over the days of the quarter the data covers). An incident at an
-- establishment nobody is recorded as held in still gets a row, with no population and null rates.
-- Incidents after the data's end date (possible only when the dbt var `data_end` sets it) are left out.

with incidents as (
    select
        incident_id,
        incident_type,
        establishment_code,
        {{ quarter_label('incident_date') }} as quarter
    from {{ ref('incident') }}
    where incident_date <= (select max(data_end) from {{ ref('prison_population') }})
),

self_harmers as (
    select i.establishment_code, i.quarter, p.person_id
    from incidents as i
    join {{ ref('incident_party') }} as p using (incident_id)
    where i.incident_type = 'SELF_HARM' and p.role = 'SELF_HARMER'
),

incident_counts as (
    select
        establishment_code,
        quarter,
        count(*) filter (where incident_type = 'SELF_HARM') as self_harm_incidents,
        count(*) filter (where incident_type in ('ASSAULT_ON_PRISONER', 'ASSAULT_ON_STAFF')) as assault_incidents,
        count(*) filter (where incident_type = 'ASSAULT_ON_PRISONER') as assaults_on_prisoners,
        count(*) filter (where incident_type = 'ASSAULT_ON_STAFF') as assaults_on_staff
    from incidents
    group by all
),

individuals as (
    select establishment_code, quarter, count(distinct person_id) as self_harm_individuals
    from self_harmers
    group by all
),

population as (
    select * from {{ ref('prison_population') }}
),

calendar as (
    select distinct quarter, quarter_start, quarter_end, is_complete_quarter from population
),

establishment_quarters as (
    -- Every establishment-quarter of the population table, plus any where incidents were recorded
    -- at an establishment with no one held there (so no incident is lost from the counts).
    select quarter, establishment_code from population
    union
    select quarter, establishment_code from incident_counts
),

counted as (
    select
        k.quarter,
        c.quarter_start,
        c.quarter_end,
        c.is_complete_quarter,
        k.establishment_code,
        p.establishment_name,
        coalesce(n.self_harm_incidents, 0) as self_harm_incidents,
        coalesce(i.self_harm_individuals, 0) as self_harm_individuals,
        coalesce(n.assault_incidents, 0) as assault_incidents,
        coalesce(n.assaults_on_prisoners, 0) as assaults_on_prisoners,
        coalesce(n.assaults_on_staff, 0) as assaults_on_staff,
        coalesce(p.prisoner_days, 0) as prisoner_days,
        coalesce(p.average_population, 0) as average_population,
        p.prisoner_days / p.days_covered as exact_population
    from establishment_quarters as k
    join calendar as c using (quarter)
    left join population as p using (quarter, establishment_code)
    left join incident_counts as n using (quarter, establishment_code)
    left join individuals as i using (quarter, establishment_code)
)

select
    quarter,
    quarter_start,
    quarter_end,
    is_complete_quarter,
    establishment_code,
    establishment_name,
    self_harm_incidents,
    self_harm_individuals,
    assault_incidents,
    assaults_on_prisoners,
    assaults_on_staff,
    prisoner_days,
    average_population,
    -- Rates from the unrounded population; null when nobody was held there in the quarter.
    {{ round_figure('1000.0 * self_harm_incidents / nullif(exact_population, 0)', 2) }} as self_harm_per_1000,
    {{ round_figure('1000.0 * assault_incidents / nullif(exact_population, 0)', 2) }} as assaults_per_1000,
    {{ round_figure('1000.0 * assaults_on_staff / nullif(exact_population, 0)', 2) }} as assaults_on_staff_per_1000
from counted
order by quarter_start, establishment_code
