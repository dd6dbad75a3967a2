-- Hearings: every Crown Court hearing XHIBIT lists, and the magistrates' listings that Libra's
-- result rows reveal (Libra sends no hearing list: only a case's first hearing date, the next
-- listing as known on each day the case's rows are sent, and the day the case was completed).

with crown as (
    select
        'crown:' || court_code || ':' || case_number as court_case_id,
        hearing_date,
        case hearing_type
            when 'PTPH' then 'plea_and_trial_preparation'
            else replace(lower(hearing_type), ' ', '_')
        end as hearing_type,
        replace(lower(hearing_result), ' ', '_') as hearing_result
    from {{ ref('crown__hearings__latest') }}
),

magistrates_rows as (
    select
        'magistrates:' || court_code || ':' || case_number as court_case_id,
        first_hearing_date,
        -- once a case is completed, Libra's "next hearing" is the Crown Court date it was sent to
        case when verdict is null then next_hearing_date end as next_listing_date
    from {{ ref('magistrates__defendant_offences') }}
),

magistrates_dates as (
    select court_case_id, first_hearing_date as hearing_date from magistrates_rows
    union
    select court_case_id, next_listing_date from magistrates_rows where next_listing_date is not null
    union
    select court_case_id, completion_date from {{ ref('court_case') }}
    where court_type = 'magistrates' and completion_date is not null
),

magistrates as (
    select
        d.court_case_id,
        d.hearing_date,
        case when d.hearing_date = c.receipt_date then 'first_hearing' else 'further_hearing' end as hearing_type,
        case when d.hearing_date = c.completion_date then 'case_completed' end as hearing_result
    from magistrates_dates as d
    join {{ ref('court_case') }} as c using (court_case_id)
    where d.hearing_date is not null
)

select
    h.court_case_id || ':' || {{ iso_date_text('h.hearing_date') }} || ':' || h.hearing_type as hearing_id,
    h.court_case_id,
    c.court_type,
    h.hearing_date,
    h.hearing_type,
    h.hearing_result
from (select * from crown union all select * from magistrates) as h
join {{ ref('court_case') }} as c using (court_case_id)
