-- One row per case of either court system. Case types follow Criminal Court Statistics.

with ranked_offences as (
    -- The case's principal offence by the MoJ rule (see defendant_case): it sets a magistrates'
    -- case's type.
    select *,
        row_number() over (partition by court_case_id
                           order by disposal_severity desc, max_penalty_months desc nulls last,
                                    offence_seq, defendant_id) as principal_rank
    from {{ ref('offence') }}
),

case_offences as (
    select
        court_case_id,
        any_value(court_type) as court_type,
        any_value(court_code) as court_code,
        any_value(case_number) as case_number,
        count(*) as offence_count,
        count(distinct defendant_id) as defendant_count,
        bool_or(mode_of_trial = 'indictable_only') as any_indictable_only,
        any_value(mode_of_trial) filter (where principal_rank = 1) as principal_mode_of_trial,
        any_value(offence_group) filter (where principal_rank = 1) as principal_offence_group,
        -- a magistrates' case is complete when its last offence has its outcome
        case when count(outcome_date) = count(*) then max(outcome_date) end as last_outcome_date
    from ranked_offences
    group by court_case_id
),

magistrates as (
    select
        'magistrates:' || court_code || ':' || case_number as court_case_id,
        max(court_name) as court_name,
        -- Libra's first hearing date is the first listing, the case's receipt
        min(first_hearing_date) as receipt_date,
        min(first_hearing_date) as first_listing_date
    from {{ ref('magistrates__defendant_offences__latest') }}
    group by court_code, case_number
),

crown_closed as (
    -- XHIBIT dates no sentence itself (OutcomeDate is the verdict's date): the case was completed
    -- on the day of its first message with the case closed (the RESULTED message).
    select court_code, case_number, min(message_date) as completion_date
    from {{ ref('crown__case_messages') }}
    where case_status = 'CLOSED'
    group by court_code, case_number
),

crown_hearings as (
    select court_code, case_number, min(hearing_date) as first_listing_date
    from {{ ref('crown__hearings__latest') }}
    group by court_code, case_number
),

crown as (
    select
        'crown:' || m.court_code || ':' || m.case_number as court_case_id,
        m.court_name,
        left(m.case_number, 1) as case_class,
        m.receipt_date,
        h.first_listing_date,
        c.completion_date
    from {{ ref('crown__case_messages__latest') }} as m
    left join crown_closed as c using (court_code, case_number)
    left join crown_hearings as h using (court_code, case_number)
)

select
    o.court_case_id,
    o.court_type,
    o.court_code,
    coalesce(mc.court_name, cc.court_name) as court_name,
    o.case_number,
    case
        when o.court_type = 'crown' then case cc.case_class
            when 'T' then case when o.any_indictable_only then 'trial_indictable_only' else 'trial_either_way' end
            when 'S' then 'committed_for_sentence'
            when 'A' then 'appeal'
        end
        when o.principal_mode_of_trial = 'indictable_only' then 'indictable_only'
        when o.principal_mode_of_trial = 'either_way' then 'either_way'
        when o.principal_offence_group = '12 Summary motoring' then 'summary_motoring'
        when o.principal_mode_of_trial = 'summary' then 'summary_non_motoring'
    end as case_type,
    coalesce(mc.receipt_date, cc.receipt_date) as receipt_date,
    coalesce(mc.first_listing_date, cc.first_listing_date) as first_listing_date,
    case when o.court_type = 'magistrates' then o.last_outcome_date else cc.completion_date end as completion_date,
    case when (case when o.court_type = 'magistrates' then o.last_outcome_date else cc.completion_date end) is null
         then 'open' else 'completed' end as status,
    o.defendant_count,
    o.offence_count
from case_offences as o
left join magistrates as mc on mc.court_case_id = o.court_case_id
left join crown as cc on cc.court_case_id = o.court_case_id
