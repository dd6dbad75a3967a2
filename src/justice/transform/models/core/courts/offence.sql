-- One row per offence per defendant case, from both court systems, in one shape. The other
-- court models (defendant_case, court_case, disposal) are built from this one.

with magistrates_resulted as (
    -- Libra re-sends a case's rows on each day it changes, and only the completion day's rows
    -- carry a verdict: the first file holding a verdict for an offence dates its outcome (a later
    -- late-correction file repeats the row and must not move the date).
    select defendant_id, offence_seq,
           min({{ date_from_digits("regexp_extract(_file, 'libra_([0-9]{8})', 1)") }}) as outcome_date
    from {{ ref('magistrates__defendant_offences') }}
    where verdict is not null
    group by defendant_id, offence_seq
),

magistrates as (
    select
        'magistrates' as court_type,
        o.defendant_id,
        o.court_code,
        o.case_number,
        o.offence_seq,
        o.offence_code,
        o.offence_date,
        o.charge_date,
        case o.plea when 'G' then 'guilty' when 'NG' then 'not_guilty' end as plea,
        o.verdict,
        coalesce(o.verdict in ('GUILTY', 'COMMITTED FOR SENTENCE'), false) as convicted,
        r.outcome_date,
        o.disposal as source_disposal,
        case o.custody_unit
            when 'D' then o.custody_length
            when 'M' then cast(round(o.custody_length * 30.4375) as bigint)
        end as custody_days,
        o.fine_amount
    from {{ ref('magistrates__defendant_offences__latest') }} as o
    left join magistrates_resulted as r using (defendant_id, offence_seq)
),

crown as (
    select
        'crown' as court_type,
        o.defendant_id,
        d.court_code,
        d.case_number,
        o.offence_seq,
        o.offence_code,
        o.offence_start_date as offence_date,
        o.charge_date,
        case o.plea when 'GUILTY' then 'guilty' when 'NOT GUILTY' then 'not_guilty' end as plea,
        r.verdict,
        -- CONVICTED BELOW (a committal for sentence) is the magistrates' conviction, counted there.
        coalesce(r.verdict in ('GUILTY', 'GUILTY PLEA'), false) as convicted,
        r.outcome_date,
        r.disposal as source_disposal,
        case when coalesce(r.sentence_years, r.sentence_months, r.sentence_days) is not null then
            cast(round((coalesce(r.sentence_years, 0) * 12 + coalesce(r.sentence_months, 0)) * 30.4375
                       + coalesce(r.sentence_days, 0)) as bigint)
        end as custody_days,
        cast(null as decimal(18, 4)) as fine_amount
    from {{ ref('crown__offences__latest') }} as o
    join {{ ref('crown__defendants__latest') }} as d using (defendant_id)
    left join {{ ref('crown__outcomes__latest') }} as r using (defendant_id, offence_seq)
),

{%- set offence_columns = [
    'court_type', 'defendant_id', 'court_code', 'case_number', 'offence_seq', 'offence_code',
    'offence_date', 'charge_date', 'plea', 'verdict', 'convicted', 'outcome_date', 'source_disposal',
    'custody_days', 'fine_amount'] %}

offences as (
    select {{ offence_columns | join(', ') }} from magistrates
    union all
    select {{ offence_columns | join(', ') }} from crown
)

select
    o.court_type || ':' || o.defendant_id || ':' || o.offence_seq as offence_id,
    o.court_type || ':' || o.defendant_id as defendant_case_id,
    o.court_type || ':' || o.court_code || ':' || o.case_number as court_case_id,
    l.person_id,
    o.court_type,
    o.court_code,
    o.case_number,
    o.defendant_id,
    o.offence_seq,
    o.offence_code,
    c.offence_description,
    c.offence_group,
    c.mode_of_trial,
    c.max_penalty_months,
    o.offence_date,
    o.charge_date,
    o.plea,
    o.verdict,
    o.convicted,
    o.outcome_date,
    o.source_disposal,
    d.disposal_type,
    -- No disposal (not convicted here, or not sentenced yet) ranks below every disposal.
    coalesce(d.severity_rank, -1) as disposal_severity,
    case when d.disposal_type in ('immediate_custody', 'suspended_sentence') then o.custody_days end as custody_days,
    case when d.disposal_type = 'fine' then o.fine_amount end as fine_amount
from offences as o
left join {{ source('linkage', 'person_links') }} as l
    on l.system = o.court_type and l.record_id = o.defendant_id
left join {{ ref('offence_codes') }} as c
    on c.offence_code = o.offence_code
    -- the classification in force on the offence date (the current one when no date is known)
    and coalesce(o.offence_date, o.charge_date, date '9999-12-31')
        between c.effective_from and coalesce(c.effective_to, date '9999-12-31')
left join {{ ref('disposal_codes') }} as d on d.source_disposal = o.source_disposal
