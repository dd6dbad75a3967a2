-- One row per court that the case systems name, with its HMCTS region from the court register.
-- The case systems write the court code; the register is keyed on it. A court a case system
-- names that the register lacks is kept, with a null region (and a failing warn-level test), so
-- its cases still count.

with named as (
    select court_type, court_code, max(court_name) as case_system_name, count(*) as cases
    from {{ ref('court_case') }}
    group by court_type, court_code
),

register as (
    select
        lower(trim(court_type)) as court_type,
        trim(court_code) as court_code,
        trim(court_name) as court_name,
        trim(region) as region,
        open_date,
        close_date
    from {{ ref('court_register__courts__latest') }}
)

select
    coalesce(n.court_type, r.court_type) as court_type,
    coalesce(n.court_code, r.court_code) as court_code,
    coalesce(r.court_name, n.case_system_name) as court_name,
    r.region,
    r.open_date,
    r.close_date,
    coalesce(n.cases, 0) as cases,
    r.court_code is not null as in_register
from named as n
full join register as r on r.court_type = n.court_type and r.court_code = n.court_code
