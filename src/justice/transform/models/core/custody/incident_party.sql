{#- The prisoners involved in an incident (INCIDENT_CASE_PARTIES), each through the booking they were
    in on the day. -#}
with parties as (
    select * from {{ ref('prison__incident_case_parties__latest') }}
),

spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
)

select
    'IP' || lpad(cast(p.incident_case_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(p.party_seq as {{ dbt.type_string() }}), 3, '0')
        as incident_party_id,
    'IN' || lpad(cast(p.incident_case_id as {{ dbt.type_string() }}), 9, '0') as incident_id,
    s.person_id,
    s.custody_spell_id,
    p.offender_book_id,
    p.party_seq,
    p.participation_role as role
from parties as p
left join spells as s on s.offender_book_id = p.offender_book_id
