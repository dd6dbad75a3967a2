-- One row per person of the master person index, with the best-evidence identity over all their
-- records in every system. The only core table with names: marts carry person_id alone.

with records as (
    select l.person_id, l.system, r.*
    from {{ source('linkage', 'person_links') }} as l
    join {{ source('linkage', 'records') }} as r using (unique_id)
),

-- The most frequent value of each identity field, ties broken by the value itself so that the
-- choice does not depend on row order.
forenames as (
    select person_id, forename, middle_names from (
        select person_id, forename, middle_names,
               row_number() over (partition by person_id order by count(*) desc, forename, middle_names) as n
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
        list(distinct system order by system) as systems,
        count(*) as record_count
    from records
    group by person_id
),

-- Ethnicity is recorded by the prison only (OFFENDERS.RACE_CODE, on every row of a person: a root,
-- a later spell's new root, an alias). The most recently recorded stated code counts: a person
-- may decline at one reception and state it at the next, or be recorded differently over time.
-- A code missing from the reference list counts as not stated.
ethnicities as (
    select l.person_id, e.ethnicity_group
    from {{ ref('prison__offenders__latest') }} as o
    join {{ source('linkage', 'person_links') }} as l
      on l.system = 'prison' and l.record_id = o.offender_id::varchar
    join {{ ref('ethnicity_codes') }} as e on e.ethnicity_code = upper(o.race_code)
    where e.ethnicity_group <> 'Unknown'
    qualify row_number() over (
        partition by l.person_id order by o.create_datetime desc, o.offender_id desc) = 1
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
