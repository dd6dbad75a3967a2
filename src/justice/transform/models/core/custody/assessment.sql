{#- Cell Sharing Risk Assessments (OFFENDER_ASSESSMENTS): one at every reception and a review after
    an assault. A HIGH level means the person must be located alone in a cell. -#}
with assessments as (
    select * from {{ ref('prison__offender_assessments__latest') }}
),

spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
)

select
    'AS' || lpad(cast(a.offender_book_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(a.assessment_seq as {{ dbt.type_string() }}), 3, '0')
        as assessment_id,
    s.person_id,
    s.custody_spell_id,
    a.offender_book_id,
    a.assessment_seq,
    a.assessment_type,
    a.assessment_date,
    a.assessment_reason,
    a.review_sup_level_type as level,
    a.review_sup_level_type = 'HIGH' as requires_single_cell,
    a.agy_loc_id as establishment_code
from assessments as a
left join spells as s on s.offender_book_id = a.offender_book_id
