{#- Non-associations (OFFENDER_NON_ASSOCIATIONS): two prisoners who must be kept apart in a cell,
    on a landing or on a wing. One row per NOMIS row, which names the pair once; each party's
    person comes through the booking it was recorded against. -#}
with non_associations as (
    select * from {{ ref('prison__offender_non_associations__latest') }}
),

spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
)

select
    'NA' || lpad(cast(n.offender_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(n.ns_offender_id as {{ dbt.type_string() }}), 9, '0')
        || '-' || lpad(cast(n.type_seq as {{ dbt.type_string() }}), 3, '0') as non_association_id,
    s.person_id,
    o.person_id as other_person_id,
    s.custody_spell_id,
    o.custody_spell_id as other_custody_spell_id,
    n.offender_id,
    n.ns_offender_id as other_offender_id,
    n.type_seq,
    n.ns_reason_code as reason_code,
    n.offender_role as role,
    n.ns_offender_role as other_role,
    n.ns_type as restriction,
    n.effective_date,
    n.expiry_date
from non_associations as n
left join spells as s on s.offender_book_id = n.offender_book_id
left join spells as o on o.offender_book_id = n.ns_offender_book_id
