{#- One row per NOMIS booking: a booking is one custody spell (reception to release). The person is
    the one linked to the OFFENDERS row the booking hangs off (alias or new-root rows included: the
    person index resolves them), so a person received under two prison numbers keeps both spells. -#}
with bookings as (
    select * from {{ ref('prison__offender_bookings__latest') }}
),

movements as (
    select * from {{ ref('prison__offender_external_movements__latest') }}
),

reception as (
    -- The first admission says why the person came in: N remand, I sentenced, L recall. A remand
    -- spell that ends in a sentence stays a remand spell, as in the prison statistics.
    select offender_book_id, movement_reason_code, to_agy_loc_id, movement_date from (
        select *, row_number() over (partition by offender_book_id order by movement_date nulls last, movement_seq) as n
        from movements
        where movement_type = 'ADM'
    ) as admissions
    where n = 1
),

release as (
    select offender_book_id, movement_reason_code, from_agy_loc_id, movement_date from (
        select *, row_number() over (partition by offender_book_id order by movement_date desc, movement_seq desc) as n
        from movements
        where movement_type = 'REL'
    ) as releases
    where n = 1
),

prison_links as (
    select record_id, person_id
    from {{ source('linkage', 'person_links') }}
    where system = 'prison'
)

select
    'CS' || lpad(cast(b.offender_book_id as {{ dbt.type_string() }}), 9, '0') as custody_spell_id,
    l.person_id,
    b.offender_book_id,
    b.offender_id,
    b.booking_no,
    b.booking_begin_date as start_date,
    b.booking_end_date as end_date,
    case r.movement_reason_code
        when 'N' then 'remand'
        when 'I' then 'sentenced'
        when 'L' then 'recall'
    end as reception_reason,
    r.movement_reason_code as reception_reason_code,
    r.to_agy_loc_id as reception_establishment_code,
    case rel.movement_reason_code
        when 'BL' then 'remand_ended'
        when 'CR' then 'sentence_served'
    end as release_reason,
    rel.movement_reason_code as release_reason_code,
    case when b.booking_status = 'O' then b.agy_loc_id end as current_establishment_code,
    coalesce(rel.from_agy_loc_id, case when b.booking_status = 'O' then b.agy_loc_id end)
        as last_establishment_code,
    b.booking_status = 'O' as is_open
from bookings as b
left join prison_links as l on l.record_id = cast(b.offender_id as {{ dbt.type_string() }})
left join reception as r on r.offender_book_id = b.offender_book_id
left join release as rel on rel.offender_book_id = b.offender_book_id
