-- Timeliness of criminal cases (Criminal Court Statistics, tables T1 to T3): per defendant in a
-- case completed in the quarter, the days between
--   offence      the earliest offence date of the defendant's offences in the case,
--   charge       the earliest charge (or laying of information) date,
--   first listing the first listing at a magistrates' court, and
--   completion   the completion of the case,
-- as four stages (offence_to_charge, charge_to_first_listing, first_listing_to_completion,
-- offence_to_completion), each with its mean and median. A Crown Court case began in a
-- magistrates' court: its first listing is the first listing of the same person's magistrates'
-- case with the same charge date received on or before it (the sending), or its own receipt
-- date when that case is not found. A stage with a missing or negative interval (a data error)
-- leaves that defendant out of that stage and is counted in `excluded_defendants`.

with sendings as (
    -- The magistrates' first listing of each completed Crown Court defendant: an equi-join on
    -- person and charge date, so Spark plans a hash or sort-merge join (written as a correlated
    -- scalar subquery with `<=` on the receipt date, Spark joined each distinct receipt date to
    -- every magistrates' case received by then before grouping: 346 million rows at 100,000
    -- people).
    select c.defendant_case_id, min(m.first_listing_date) as first_listing_date
    from {{ ref('defendant_case') }} as c
    join {{ ref('defendant_case') }} as m
      on m.person_id = c.person_id
     and m.charge_date = c.charge_date
     and m.court_type = 'magistrates'
     and m.receipt_date <= c.receipt_date
    where c.court_type = 'crown' and c.completion_date is not null
    group by c.defendant_case_id
),

defendants as (
    select
        dc.defendant_case_id,
        dc.court_type,
        dc.case_type,
        dc.offence_date,
        dc.charge_date,
        coalesce(
            s.first_listing_date,
            case when dc.court_type = 'crown' then dc.receipt_date else dc.first_listing_date end
        ) as first_listing_date,
        dc.completion_date
    from {{ ref('defendant_case') }} as dc
    left join sendings as s using (defendant_case_id)
    where dc.completion_date is not null
),

{#- Each stage: its name, and the dates it runs from and to. -#}
{%- set stage_dates = [
    ('offence_to_charge', 'offence_date', 'charge_date'),
    ('charge_to_first_listing', 'charge_date', 'first_listing_date'),
    ('first_listing_to_completion', 'first_listing_date', 'completion_date'),
    ('offence_to_completion', 'offence_date', 'completion_date'),
] %}

stages as (
    {%- for stage, from_date, to_date in stage_dates %}
    select defendant_case_id, court_type, case_type, {{ quarter_start('completion_date') }} as quarter_start,
           '{{ stage }}' as stage,
           {{ days_between(from_date, to_date) }} as days
    from defendants
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    q.quarter,
    q.quarter_start,
    q.quarter_end,
    s.court_type,
    s.case_type,
    s.stage,
    count(*) as completed_defendants,
    count(*) filter (where s.days >= 0) as defendants,
    count(*) filter (where s.days is null or s.days < 0) as excluded_defendants,
    {{ round_figure('avg(s.days) filter (where s.days >= 0)', 1) }} as mean_days,
    median(s.days) filter (where s.days >= 0) as median_days
from stages as s
-- An equi-join on the completion's quarter (court_calendar's quarters are calendar quarters), not
-- `between` the quarter's bounds: a hash join on Spark, not a nested loop over every quarter.
join {{ ref('court_calendar') }} as q using (quarter_start)
group by all
order by q.quarter_start, s.court_type, s.case_type, s.stage
