-- The prison population on the last day of each quarter by custody type, as the Offender
-- Management Statistics count it: remand, sentenced by sentence length band (determinate bands on
-- the custodial term, then indeterminate), and recall. A person counts on a day when a custody
-- spell has begun by it and not ended (a spell ends on its release day). A spell that began on
-- remand counts as remand until its sentence date and as sentenced from it; a recall spell counts
-- as recall. A sentenced spell with no sentence on record (the live feed's invented receptions)
-- counts as `sentenced_length_unknown` rather than being dropped. Snapshots are the quarter ends
-- inside the data (marts.prison_population's quarters, up to its data end date).
with snapshots as (
    select distinct quarter, quarter_end as snapshot_date
    from {{ ref('prison_population') }}
    where quarter_end <= data_end
),

categories as (
    select 1 as category_order, 'remand' as custody_type, cast(null as {{ dbt.type_string() }}) as sentence_length_band
    union all select 2, 'sentenced', 'up_to_6_months'
    union all select 3, 'sentenced', 'over_6_to_under_12_months'
    union all select 4, 'sentenced', '12_months_to_under_4_years'
    union all select 5, 'sentenced', '4_years_or_more'
    union all select 6, 'sentenced', 'indeterminate'
    union all select 7, 'sentenced', 'length_unknown'
    union all select 8, 'recall', cast(null as {{ dbt.type_string() }})
),

spells as (
    select
        c.custody_spell_id, c.start_date, c.end_date, c.reception_reason,
        s.sentence_date, s.sentence_length_band
    from {{ ref('custody_spell') }} as c
    left join {{ ref('custody_sentence') }} as s
        on s.custody_spell_id = c.custody_spell_id and s.sentence_seq = 1
),

held as (
    select
        n.quarter,
        case
            when p.reception_reason = 'recall' then 'recall'
            when p.reception_reason = 'remand' and (p.sentence_date is null or p.sentence_date > n.snapshot_date)
                then 'remand'
            else 'sentenced'
        end as custody_type,
        case
            when p.reception_reason = 'recall' then null
            when p.reception_reason = 'remand' and (p.sentence_date is null or p.sentence_date > n.snapshot_date)
                then null
            else coalesce(p.sentence_length_band, 'length_unknown')
        end as sentence_length_band
    from spells as p
    join snapshots as n
        on p.start_date <= n.snapshot_date and (p.end_date is null or p.end_date > n.snapshot_date)
),

counts as (
    select quarter, custody_type, sentence_length_band, count(*) as population
    from held
    group by quarter, custody_type, sentence_length_band
)

select
    n.quarter,
    n.snapshot_date,
    k.custody_type,
    k.sentence_length_band,
    k.category_order,
    coalesce(c.population, 0) as population,
    {{ round_figure('coalesce(c.population, 0) / nullif(sum(coalesce(c.population, 0)) over (partition by n.quarter), 0)', 4) }}
        as share_of_population
from snapshots as n
cross join categories as k
left join counts as c
    on c.quarter = n.quarter and c.custody_type = k.custody_type
    and c.sentence_length_band is not distinct from k.sentence_length_band
order by n.snapshot_date, k.category_order
