-- Receipts and disposals of criminal cases per quarter (Criminal Court Statistics, tables C1
-- and M1): a case is a receipt in the quarter it was received (magistrates': its first listing;
-- Crown Court: sent, committed or appealed) and a disposal in the quarter it was completed. A
-- case sent or committed to the Crown Court counts once in each court, as in the statistics.
-- Every court and each case type of its court type (seed case_types) has a row in every quarter, zeros included, so a series
-- never silently skips a quarter.

with cases as (
    select * from {{ ref('court_case') }}
),

case_types as (
    select court_type, case_type from {{ ref('case_types') }}
),

courts as (
    select court_type, court_code, region, court_name from {{ ref('court') }}
),

grid as (
    select q.quarter, q.quarter_start, q.quarter_end, c.court_type, t.case_type, c.region, c.court_code, c.court_name
    from {{ ref('court_calendar') }} as q
    cross join courts as c
    join case_types as t using (court_type)
),

receipts as (
    select {{ quarter_label('receipt_date') }} as quarter, court_type, court_code, case_type, count(*) as receipts
    from cases group by all
),

disposals as (
    select {{ quarter_label('completion_date') }} as quarter, court_type, court_code, case_type, count(*) as disposals
    from cases where completion_date is not null group by all
)

select
    g.quarter,
    g.quarter_start,
    g.quarter_end,
    g.court_type,
    g.case_type,
    g.region,
    g.court_code,
    g.court_name,
    coalesce(r.receipts, 0) as receipts,
    coalesce(d.disposals, 0) as disposals
from grid as g
left join receipts as r using (quarter, court_type, court_code, case_type)
left join disposals as d using (quarter, court_type, court_code, case_type)
order by g.quarter_start, g.court_type, g.court_code, g.case_type
