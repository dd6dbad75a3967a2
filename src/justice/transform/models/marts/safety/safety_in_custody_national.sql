-- Safety in Custody for England and Wales in the 12 months to each quarter end, the headline
-- figures of the HMPPS statistics: incidents in the 12 months (summed over every establishment,
-- including any no one is recorded as held in), distinct people self-harming in them, the average
-- population over the 12 months (prisoner-days of all establishments / days in the 12 months) and
-- rates per 1,000 prisoners. Only quarter ends whose 12 months the data covers in full (four
-- complete quarters in prison_population) are published.

with calendar as (
    select distinct quarter, quarter_start, quarter_end, is_complete_quarter, days_covered
    from {{ ref('prison_population') }}
),

years as (
    -- The 12 months to each quarter end: that quarter and the three before it.
    select
        e.quarter,
        cast(e.quarter_end - interval 12 month + interval 1 day as date) as period_start,
        e.quarter_end,
        cast(sum(q.days_covered) as integer) as days
    from calendar as e
    join calendar as q
        on q.quarter_start > e.quarter_end - interval 12 month and q.quarter_end <= e.quarter_end
    group by all
    having count(*) filter (where q.is_complete_quarter) = 4
),

-- Incidents and prisoner-days are the establishment rows of the 12 months summed (every incident
-- counts in safety_in_custody, at an establishment with no one held too); only the people
-- self-harming must be counted afresh, as one person can self-harm in several establishments.
establishment_sums as (
    select
        y.quarter,
        sum(s.self_harm_incidents) as self_harm_incidents,
        sum(s.assault_incidents) as assault_incidents,
        sum(s.assaults_on_prisoners) as assaults_on_prisoners,
        sum(s.assaults_on_staff) as assaults_on_staff,
        sum(s.prisoner_days) as prisoner_days
    from years as y
    join {{ ref('safety_in_custody') }} as s on s.quarter_start between y.period_start and y.quarter_end
    group by all
),

individuals as (
    select y.quarter, count(distinct p.person_id) as self_harm_individuals
    from years as y
    join {{ ref('incident') }} as i on i.incident_date between y.period_start and y.quarter_end
    join {{ ref('incident_party') }} as p using (incident_id)
    where i.incident_type = 'SELF_HARM' and p.role = 'SELF_HARMER'
    group by all
),

figures as (
    select
        y.quarter,
        y.period_start,
        y.quarter_end,
        y.days,
        cast(coalesce(n.self_harm_incidents, 0) as bigint) as self_harm_incidents,
        coalesce(s.self_harm_individuals, 0) as self_harm_individuals,
        cast(coalesce(n.assault_incidents, 0) as bigint) as assault_incidents,
        cast(coalesce(n.assaults_on_prisoners, 0) as bigint) as assaults_on_prisoners,
        cast(coalesce(n.assaults_on_staff, 0) as bigint) as assaults_on_staff,
        cast(coalesce(n.prisoner_days, 0) as bigint) as prisoner_days,
        coalesce(n.prisoner_days, 0) / y.days as exact_population
    from years as y
    left join establishment_sums as n using (quarter)
    left join individuals as s using (quarter)
)

select
    quarter,
    period_start,
    quarter_end,
    days,
    self_harm_incidents,
    self_harm_individuals,
    assault_incidents,
    assaults_on_prisoners,
    assaults_on_staff,
    prisoner_days,
    {{ round_figure('exact_population', 2) }} as average_population,
    -- Rates from the unrounded population; null if no one was held in the 12 months.
    {{ round_figure('1000.0 * self_harm_incidents / nullif(exact_population, 0)', 2) }} as self_harm_per_1000,
    {{ round_figure('1000.0 * assault_incidents / nullif(exact_population, 0)', 2) }} as assaults_per_1000,
    {{ round_figure('1000.0 * assaults_on_staff / nullif(exact_population, 0)', 2) }} as assaults_on_staff_per_1000
from figures
order by quarter_end
