{#- Where a person was during a custody spell, at two levels: `establishment` periods cut by the
    external movements (admission, transfers, release) and `cell` periods from the bed assignment
    history, with the cell placed in its wing and landing through the internal-location hierarchy.
    A period ends on the day the next one starts (the day of the move); an open period has no end. -#}
with spells as (
    select custody_spell_id, person_id, offender_book_id from {{ ref('custody_spell') }}
),

movements as (
    select
        *,
        lead(movement_date) over (partition by offender_book_id order by movement_date nulls last, movement_seq) as next_movement_date
    from {{ ref('prison__offender_external_movements__latest') }}
),

establishments as (
    select agy_loc_id, description from {{ ref('prison__agency_locations__latest') }}
),

internal_locations as (
    select * from {{ ref('prison__agency_internal_locations__latest') }}
),

cells as (
    select
        cell.internal_location_id,
        cell.agy_loc_id,
        cell.description as location_code,
        wing.internal_location_code as wing,
        cast(landing.internal_location_code as integer) as landing,
        cast(cell.internal_location_code as integer) as cell
    from internal_locations as cell
    left join internal_locations as landing
        on landing.internal_location_id = cell.parent_internal_location_id and landing.internal_location_type = 'LAND'
    left join internal_locations as wing
        on wing.internal_location_id = landing.parent_internal_location_id and wing.internal_location_type = 'WING'
    where cell.internal_location_type = 'CELL'
),

establishment_periods as (
    select
        'PE' || lpad(cast(m.offender_book_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(m.movement_seq as {{ dbt.type_string() }}), 3, '0')
            as prison_location_id,
        m.offender_book_id,
        'establishment' as location_level,
        m.to_agy_loc_id as establishment_code,
        cast(null as {{ dbt.type_string() }}) as wing,
        cast(null as integer) as landing,
        cast(null as integer) as cell,
        cast(null as bigint) as internal_location_id,
        m.to_agy_loc_id as location_code,
        m.movement_date as from_date,
        m.next_movement_date as to_date,
        case m.movement_type when 'ADM' then 'reception' when 'TRN' then 'transfer' end as movement,
        m.movement_reason_code as movement_reason_code
    from movements as m
    where m.movement_type in ('ADM', 'TRN')
),

cell_periods as (
    select
        'PC' || lpad(cast(b.offender_book_id as {{ dbt.type_string() }}), 9, '0') || '-' || lpad(cast(b.bed_assign_seq as {{ dbt.type_string() }}), 3, '0')
            as prison_location_id,
        b.offender_book_id,
        'cell' as location_level,
        c.agy_loc_id as establishment_code,
        c.wing,
        c.landing,
        c.cell,
        b.living_unit_id as internal_location_id,
        c.location_code,
        b.assignment_date as from_date,
        b.assignment_end_date as to_date,
        case b.assignment_reason when 'ADM' then 'reception' when 'TRN' then 'transfer' when 'MOVE' then 'cell_move' end
            as movement,
        b.assignment_reason as movement_reason_code
    from {{ ref('prison__bed_assignment_histories__latest') }} as b
    left join cells as c on c.internal_location_id = b.living_unit_id
),

periods as (
    select * from establishment_periods
    union all
    select * from cell_periods
)

select
    p.prison_location_id,
    s.person_id,
    s.custody_spell_id,
    p.offender_book_id,
    p.location_level,
    p.establishment_code,
    e.description as establishment_name,
    p.wing,
    p.landing,
    p.cell,
    p.internal_location_id,
    p.location_code,
    p.from_date,
    p.to_date,
    p.movement,
    p.movement_reason_code
from periods as p
left join spells as s on s.offender_book_id = p.offender_book_id
left join establishments as e on e.agy_loc_id = p.establishment_code
