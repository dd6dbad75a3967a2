{#- Adjudications (OIC_HEARINGS, flattened in the extract to one hearing per charge): the charge,
    the governor's finding and any punishment. -#}
with hearings as (
    select * from {{ ref('prison__oic_hearings__latest') }}
),

spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
)

select
    'AD' || lpad(cast(h.oic_hearing_id as {{ dbt.type_string() }}), 9, '0') as adjudication_id,
    s.person_id,
    s.custody_spell_id,
    h.offender_book_id,
    h.oic_hearing_id,
    h.oic_incident_id as adjudication_number,
    h.agy_loc_id as establishment_code,
    h.incident_date as charge_date,
    h.hearing_date,
    h.oic_hearing_type as hearing_type,
    h.charge_desc as charge,
    h.finding_code as finding,
    h.punishment_desc as punishment
from hearings as h
left join spells as s on s.offender_book_id = h.offender_book_id
