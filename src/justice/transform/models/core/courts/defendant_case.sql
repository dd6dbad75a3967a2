-- One row per defendant record per case, with its principal offence by the MoJ rule: the offence
-- with the most severe disposal (seed disposal_codes), then the highest maximum penalty (seed
-- offence_codes), then the lowest offence sequence.

with ranked as (
    select *,
        row_number() over (partition by defendant_case_id
                           order by disposal_severity desc, max_penalty_months desc nulls last, offence_seq)
            as principal_rank
    from {{ ref('offence') }}
),

per_defendant as (
    select
        defendant_case_id,
        count(*) as offence_count,
        count(*) filter (where convicted) as convicted_offence_count,
        min(offence_date) as offence_date,
        min(charge_date) as charge_date,
        case when count(outcome_date) = count(*) then max(outcome_date) end as last_outcome_date
    from ranked
    group by defendant_case_id
)

select
    p.defendant_case_id,
    p.person_id,
    p.court_case_id,
    p.court_type,
    p.defendant_id,
    c.case_type,
    p.offence_id as principal_offence_id,
    p.offence_seq as principal_offence_seq,
    p.offence_code as principal_offence_code,
    p.offence_group as principal_offence_group,
    p.mode_of_trial as principal_mode_of_trial,
    p.disposal_type as principal_disposal_type,
    p.custody_days as principal_custody_days,
    d.offence_count,
    d.convicted_offence_count,
    d.offence_date,
    d.charge_date,
    c.receipt_date,
    c.first_listing_date,
    -- Libra dates each offence's outcome, XHIBIT only the case's result (see court_case).
    case when p.court_type = 'magistrates' then d.last_outcome_date else c.completion_date end as completion_date
from ranked as p
join per_defendant as d using (defendant_case_id)
left join {{ ref('court_case') }} as c using (court_case_id)
where p.principal_rank = 1
