-- One row per sentenced offence outcome: an offence with a disposal, in the one vocabulary of
-- the seed disposal_codes.

select
    o.offence_id as disposal_id,
    o.offence_id,
    o.defendant_case_id,
    o.court_case_id,
    o.person_id,
    o.court_type,
    o.offence_code,
    o.source_disposal,
    o.disposal_type,
    o.disposal_severity,
    -- Libra dates the outcome of each offence; XHIBIT's OutcomeDate is the verdict, the sentence
    -- falls on the day the case is resulted.
    case when o.court_type = 'magistrates' then o.outcome_date else c.completion_date end as disposal_date,
    o.custody_days,
    o.fine_amount,
    o.offence_id = dc.principal_offence_id as is_principal
from {{ ref('offence') }} as o
left join {{ ref('court_case') }} as c using (court_case_id)
left join {{ ref('defendant_case') }} as dc using (defendant_case_id)
where o.disposal_type is not null
