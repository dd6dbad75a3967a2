-- The open (outstanding) caseload on the last day of each quarter (Criminal Court Statistics,
-- tables C3 and M3): a snapshot of the cases received on or before that day with at least one
-- offence not yet completed on it. It is counted from the cases themselves, never as receipts
-- minus disposals, so a case that is corrected or re-opened is counted as it stood. A
-- magistrates' case is complete when its last offence has its outcome (core.court_case), a Crown
-- Court case when XHIBIT closes it. Age is days from receipt to the snapshot day.

with open_cases as (
    select
        q.quarter,
        q.quarter_end,
        c.court_type,
        c.case_type,
        {{ days_between('c.receipt_date', 'q.quarter_end') }} as age_days
    from {{ ref('court_calendar') }} as q
    join {{ ref('court_case') }} as c
      on c.receipt_date <= q.quarter_end
     and (c.completion_date is null or c.completion_date > q.quarter_end)
),

case_types as (
    select court_type, case_type from {{ ref('case_types') }}
)

select
    q.quarter,
    q.quarter_end,
    t.court_type,
    t.case_type,
    count(o.age_days) as open_cases,
    median(o.age_days) as median_age_days,
    {{ round_figure('avg(o.age_days)', 1) }} as mean_age_days,
    count(*) filter (where o.age_days >= 365) as open_a_year_or_more,
    {{ round_figure('count(*) filter (where o.age_days >= 365) / nullif(count(o.age_days), 0)', 4) }}
        as share_open_a_year_or_more
from {{ ref('court_calendar') }} as q
cross join case_types as t
left join open_cases as o
  on o.quarter = q.quarter and o.court_type = t.court_type and o.case_type = t.case_type
group by q.quarter, q.quarter_end, t.court_type, t.case_type
order by q.quarter_end, t.court_type, t.case_type
