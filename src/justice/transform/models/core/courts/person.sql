-- One row per person of the master person index, with the best-evidence identity over all their
-- records in every system. The only core table with names: marts carry person_id alone.

with records as (
    -- the identity fields only: both tables have a `system` column, which Spark will not pick from
    select l.person_id, l.system, r.forename, r.middle_names, r.surname, r.dob, r.sex, r.pnc, r.pnc_valid
    from {{ source('linkage', 'person_links') }} as l
    join {{ source('linkage', 'records') }} as r using (unique_id)
),

-- The most frequent value of each identity field, ties broken by the value itself so that the
-- choice does not depend on row order.
forenames as (
    select person_id, forename, middle_names from (
        select person_id, forename, middle_names,
               row_number() over (partition by person_id order by count(*) desc, forename, middle_names nulls last) as n
        from records where forename is not null group by person_id, forename, middle_names)
    where n = 1
),

surnames as (
    select person_id, surname from (
        select person_id, surname,
               row_number() over (partition by person_id order by count(*) desc, surname) as n
        from records where surname is not null group by person_id, surname)
    where n = 1
),

births as (
    select person_id, dob from (
        select person_id, dob, row_number() over (partition by person_id order by count(*) desc, dob) as n
        from records where dob is not null group by person_id, dob)
    where n = 1
),

sexes as (
    select person_id, sex from (
        select person_id, sex, row_number() over (partition by person_id order by count(*) desc, sex) as n
        from records where sex is not null group by person_id, sex)
    where n = 1
),

pncs as (
    select person_id, pnc from (
        select person_id, pnc, row_number() over (partition by person_id order by count(*) desc, pnc) as n
        from records where pnc is not null and pnc_valid group by person_id, pnc)
    where n = 1
),

people as (
    select
        person_id,
        {{ sorted_distinct_list('system') }} as systems,
        count(*) as record_count
    from records
    group by person_id
),

-- Ethnicity is recorded by the prison (OFFENDERS.RACE_CODE, on every row of a person: a root, a
-- later spell's new root, an alias) and by probation (ETHNIC-ORIGIN, on the CRN). The most
-- recently recorded stated code counts: a person may decline at one reception and state it at
-- the next, or be recorded differently over time. A prison row is recorded when it is created, a
-- CRN when its first supervision starts. A code missing from the reference list counts as not
-- stated.
recorded_ethnicity as (
    select l.person_id, o.race_code as ethnicity_code, o.create_datetime as recorded_at,
           'prison' as system, cast(o.offender_id as {{ dbt.type_string() }}) as record_id
    from {{ ref('prison__offenders__latest') }} as o
    join {{ source('linkage', 'person_links') }} as l
      on l.system = 'prison' and l.record_id = cast(o.offender_id as {{ dbt.type_string() }})
    union all
    -- The code of the CRN's latest record (one code per CRN, as nDelius holds it on the offender).
    select l.person_id, max_by(e.ethnic_origin, e.last_updated_date),
           cast(min(e.start_date) as timestamp), 'probation', e.crn
    from {{ ref('probation__offender_events__latest') }} as e
    join {{ source('linkage', 'person_links') }} as l
      on l.system = 'probation' and l.record_id = e.crn
    group by l.person_id, e.crn
),

ethnicities as (
    select person_id, ethnicity_group from (
        select r.person_id, c.ethnicity_group,
               row_number() over (
                   partition by r.person_id order by r.recorded_at desc nulls last, r.system, r.record_id desc
               ) as recency
        from recorded_ethnicity as r
        join {{ ref('ethnicity_codes') }} as c on c.ethnicity_code = upper(r.ethnicity_code)
        where c.ethnicity_group <> 'Unknown'
    ) as ranked
    where recency = 1
),

court_dates as (
    select person_id, min(receipt_date) as first_court_date, max(receipt_date) as last_court_date
    from {{ ref('defendant_case') }}
    group by person_id
)

select
    p.person_id,
    f.forename,
    f.middle_names,
    s.surname,
    b.dob as date_of_birth,
    x.sex,
    n.pnc as pnc_id,
    p.systems,
    p.record_count,
    coalesce(e.ethnicity_group, 'Unknown') as ethnicity_group,
    c.first_court_date,
    c.last_court_date
from people as p
left join forenames as f using (person_id)
left join surnames as s using (person_id)
left join births as b using (person_id)
left join sexes as x using (person_id)
left join pncs as n using (person_id)
left join ethnicities as e using (person_id)
left join court_dates as c using (person_id)
