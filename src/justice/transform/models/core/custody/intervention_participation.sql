{#- Programme participations from the providers' participant lists: one row per sheet row. The
    provider and programme are only in the file name, `<provider-slug>__<programme-slug>__<years>.xlsx`
    (docs/legacy-systems.md); slugs are turned back into names by title-casing their words. Providers
    sometimes enter a participation twice: the second and later rows for the same person, programme
    and start date are flagged `is_duplicate_entry` and should be left out of counts. -#}
with participants as (
    select
        *,
        _file || ':' || regexp_extract(_locator, 'row ([0-9]+)', 1) as record_id,
        cast(regexp_extract(_locator, 'row ([0-9]+)', 1) as integer) as sheet_row,
        regexp_replace(_file, '[.]xlsx$', '') as file_stem
    from {{ ref('interventions__participants') }}
),

intervention_links as (
    select record_id, person_id
    from {{ source('linkage', 'person_links') }}
    where system = 'interventions'
),

named as (
    select
        p.*,
        l.person_id,
        {{ dbt.split_part('file_stem', "'__'", 1) }} as provider_slug,
        {{ dbt.split_part('file_stem', "'__'", 2) }} as programme_slug,
        {{ dbt.split_part('file_stem', "'__'", 3) }} as file_years
    from participants as p
    left join intervention_links as l on l.record_id = p.record_id
),

titled as (
    select
        *,
        {{ title_case_slug('provider_slug') }} as provider,
        {{ title_case_slug('programme_slug') }} as programme
    from named
)

select
    'IV' || substr(md5(record_id), 1, 12) as intervention_participation_id,
    record_id,
    person_id,
    provider,
    programme,
    provider_slug,
    programme_slug,
    _file as source_file,
    sheet_row,
    programme_start_date as start_date,
    row_number() over (
        partition by person_id, programme_slug, programme_start_date order by sheet_row
    ) > 1 as is_duplicate_entry
from titled
