{#- NOMIS alerts (OFFENDER_ALERTS), one row per alert. An alert is raised on the booking the person
    was in; the person comes through that booking's custody spell. -#}
with alerts as (
    select * from {{ ref('prison__offender_alerts__latest') }}
),

spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
)

select
    'AL' || lpad(cast(a.offender_book_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(a.alert_seq as {{ dbt.type_string() }}), 3, '0') as alert_id,
    s.person_id,
    s.custody_spell_id,
    a.offender_book_id,
    a.alert_seq,
    a.alert_type,
    a.alert_code,
    ac.description as alert_description,
    a.alert_date as start_date,
    a.expiry_date as end_date,
    a.alert_status,
    a.alert_status = 'ACTIVE' as is_active
from alerts as a
left join spells as s on s.offender_book_id = a.offender_book_id
left join {{ ref('alert_codes') }} as ac
    on ac.alert_code = a.alert_code and a.alert_date >= ac.effective_from
   and (ac.effective_to is null or a.alert_date <= ac.effective_to)
