{#- Probation supervision (nDelius offender events): one row per CRN and event number, as at the
    latest extract. A person registered twice holds the same order under two CRNs; the copy is kept
    (it is what the source says) and flagged `is_duplicate_registration`, so counts of orders
    should filter it out. -#}
with events as (
    select * from {{ ref('probation__offender_events__latest') }}
),

probation_links as (
    select record_id, person_id
    from {{ source('linkage', 'person_links') }}
    where system = 'probation'
),

linked as (
    select
        e.*,
        l.person_id,
        -- The first CRN (in CRN order) to hold a person's order of this type and start date is the
        -- original; later ones are duplicate registrations of the same person.
        row_number() over (
            partition by l.person_id, e.supervision_type, e.start_date order by e.crn, e.event_number
        ) as copy_number
    from events as e
    left join probation_links as l on l.record_id = e.crn
)

select
    'SV' || crn || '-' || lpad(cast(event_number as {{ dbt.type_string() }}), 3, '0') as supervision_id,
    person_id,
    crn,
    event_number,
    case supervision_type
        when 'CO' then 'community_order'
        when 'SSO' then 'suspended_sentence_order'
        when 'LIC' then 'licence'
    end as supervision_type,
    supervision_type as supervision_type_code,
    start_date,
    planned_end_date,
    termination_date,
    case termination_reason
        when 'CM' then 'completed'
        when 'CB' then 'completed_after_breach'
        when 'LE' then 'licence_expired'
    end as termination_reason,
    termination_reason as termination_reason_code,
    breach_date,
    region_code,
    pdu_code,
    order_length_months,
    upw_hours_ordered,
    ogrs_score,
    termination_date is null as is_open,
    copy_number > 1 as is_duplicate_registration,
    last_updated_date,
    extract_date
from linked
