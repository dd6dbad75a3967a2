{#- The Ministry of Justice proven reoffending cohort, one row per person per quarterly cohort,
    with each member's proven reoffences in the year after their index date.

    Index events: a non-custodial sentence at court (discharge, fine, community order, suspended
    sentence, other), dated by the sentence; or an immediate custodial sentence, dated by the
    release that ends the custody spell it was served in. A release from a spell the prison
    received as sentenced that no court sentence in the extracts explains (sentenced before the
    court extracts begin, or its court record lost) is a release from custody too, as the prison
    data records it: its offence group and sentence length are unknown. A person's cases sentenced on one day
    are one occasion, with its most severe sentence, and it must have sentenced a recordable
    offence (seed offence_codes). Cautions are index events in the published statistics
    but are in none of the legacy extracts (police data is not a source), so the cohort lacks the
    cautioned and a caution never proves a reoffence.

    A proven reoffence is a recordable offence that is not a breach (seed is_breach), committed in
    the 365 days after the index date and convicted within 365 + 183 days of it (12 months'
    follow-up and a 6 months' waiting period, in days as the simulator's reference measure counts
    them). A quarter is published only when the court extracts cover it (marts.court_calendar)
    and all of it has had that long: its last day + 548 days
    is on or before the data's end, the latest outcome, sentence, reception or release in core (dbt
    var `reoffending_data_end` overrides it). -#}

{%- set follow_up_days = 365 -%}
{%- set waiting_days = 183 -%}
{#- A sentenced reception starts on the day of sentence. Measured: 441 of 443 immediate custodial
    sentences fall inside a spell of the same person (a remand spell, or one starting that day),
    none has a spell starting in the days after, and the other 2 have no spell under that
    person_id at all. A day's grace allows for a reception booked the morning after. -#}
{%- set reception_grace_days = var('reoffending_reception_grace_days', 1) -%}

with offence_codes as (
    select * from {{ ref('offence_codes') }}
),

data_end as (
    {%- if var('reoffending_data_end', none) %}
    select date '{{ var("reoffending_data_end") }}' as data_end
    {%- else %}
    select greatest(
        (select max(outcome_date) from {{ ref('offence') }}),
        (select max(disposal_date) from {{ ref('disposal') }}),
        (select max(greatest(start_date, coalesce(end_date, start_date))) from {{ ref('custody_spell') }})
    ) as data_end
    {%- endif %}
),

-- Offences with the recordable and breach flags in force on the offence date.
classified_offence as (
    select o.*, c.recordable, c.is_breach
    from {{ ref('offence') }} as o
    left join offence_codes as c
        on c.offence_code = o.offence_code
        and coalesce(o.offence_date, o.charge_date, date '9999-12-31')
            between c.effective_from and coalesce(c.effective_to, date '9999-12-31')
),

-- Each defendant case's sentence: its principal offence's disposal, date and length, and
-- whether it sentenced any recordable offence.
sentenced_case as (
    select
        d.defendant_case_id,
        d.person_id,
        d.disposal_type,
        d.disposal_severity,
        d.disposal_date,
        d.custody_days,
        dc.principal_offence_group as offence_group,
        exists (
            select 1 from classified_offence as o
            where o.defendant_case_id = d.defendant_case_id and o.disposal_type is not null and o.recordable
        ) as sentenced_recordable
    from {{ ref('disposal') }} as d
    join {{ ref('defendant_case') }} as dc using (defendant_case_id)
    where d.is_principal and d.disposal_date is not null
),

-- A sentencing occasion is a person's cases sentenced on one day: a case given no separate
-- penalty beside a prison sentence in another case is part of that custodial sentence, so the
-- occasion takes its most severe case's sentence. It is an index candidate when any of its cases
-- sentenced a recordable offence.
{%- set occasion_columns = [
    'defendant_case_id', 'person_id', 'disposal_type', 'disposal_severity', 'disposal_date',
    'custody_days', 'offence_group'] %}
sentencing_occasion as (
    select {{ occasion_columns | join(', ') }}
    from (
        select *,
            bool_or(sentenced_recordable) over (partition by person_id, disposal_date) as any_recordable,
            row_number() over (
                partition by person_id, disposal_date
                order by disposal_severity desc, custody_days desc nulls last, defendant_case_id
            ) as severity_order
        from sentenced_case
    ) as occasions
    where any_recordable and severity_order = 1
),

-- The custody spell an immediate custodial sentence was served in: the person's spell that
-- contains the sentence date (a remand spell that ended in sentence) or starts within the grace
-- days after it; the earliest such spell if several qualify.
served_spell as (
    select defendant_case_id, custody_spell_id, end_date from (
        select
            c.defendant_case_id,
            s.custody_spell_id,
            s.end_date,
            row_number() over (partition by c.defendant_case_id order by s.start_date nulls last, s.custody_spell_id)
                as spell_order
        from sentencing_occasion as c
        join {{ ref('custody_spell') }} as s
            on s.person_id = c.person_id
            and s.start_date <= c.disposal_date + {{ reception_grace_days }}
            and coalesce(s.end_date, date '9999-12-31') >= c.disposal_date
        where c.disposal_type = 'immediate_custody'
    ) as spells
    where spell_order = 1
),

-- Releases from sentenced receptions that no immediate custodial sentence in the court extracts
-- falls in (any sentence, recordable or not, claims its spell): the prison data alone shows a
-- release from custody. Recalls are not index events (the release ends the recall, not a sentence).
prison_only_release as (
    select
        cast(null as {{ dbt.type_string() }}) as defendant_case_id,
        s.person_id,
        'immediate_custody' as disposal_type,
        (select max(severity_rank) from {{ ref('disposal_codes') }} where disposal_type = 'immediate_custody')
            as disposal_severity,
        s.start_date as disposal_date,
        cast(null as bigint) as custody_days,
        cast(null as {{ dbt.type_string() }}) as offence_group,
        s.custody_spell_id,
        'release from custody' as index_event,
        s.end_date as index_date
    from {{ ref('custody_spell') }} as s
    where s.reception_reason = 'sentenced'
      and s.end_date is not null
      and not exists (
          select 1 from {{ ref('disposal') }} as d
          where d.person_id = s.person_id and d.disposal_type = 'immediate_custody'
            and s.start_date <= d.disposal_date + {{ reception_grace_days }}
            and coalesce(s.end_date, date '9999-12-31') >= d.disposal_date)
),

index_event as (
    select
        c.*,
        s.custody_spell_id,
        case when c.disposal_type = 'immediate_custody' then 'release from custody'
             else 'non-custodial sentence' end as index_event,
        -- A spell still open (or a sentence with no spell found) gives no release yet.
        case when c.disposal_type = 'immediate_custody' then s.end_date else c.disposal_date end as index_date
    from sentencing_occasion as c
    left join served_spell as s using (defendant_case_id)
    union all
    select {{ occasion_columns | join(', ') }}, custody_spell_id, index_event, index_date
    from prison_only_release
),

-- First index event of each person in each quarter; on one day, the most severe sentence.
cohort as (
    select {{ occasion_columns | join(', ') }}, custody_spell_id, index_event, index_date,
           cohort_quarter, cohort_quarter_start
    from (
        select
            *,
            {{ quarter_label('index_date') }} as cohort_quarter,
            {{ quarter_start('index_date') }} as cohort_quarter_start,
            row_number() over (
                partition by person_id, date_trunc('quarter', index_date)
                order by index_date, disposal_severity desc, defendant_case_id nulls last
            ) as event_order
        from index_event
        where index_date is not null
    ) as events
    where event_order = 1
),

-- Quarters before the court extracts' coverage (marts.court_calendar) would hold releases only,
-- with none of that quarter's non-custodial sentences: they are left out.
published as (
    select c.*
    from cohort as c, data_end as e
    where {{ quarter_end('c.cohort_quarter_start') }} + {{ follow_up_days + waiting_days }} <= e.data_end
      and c.cohort_quarter_start >= (select min(quarter_start) from {{ ref('court_calendar') }})
),

reoffence as (
    select
        c.person_id,
        c.cohort_quarter,
        count(o.offence_id) as reoffences,
        min(o.offence_date) as first_reoffence_date
    from published as c
    join classified_offence as o
        on o.person_id = c.person_id
        and o.convicted
        and o.recordable
        and not o.is_breach
        and o.offence_date > c.index_date
        and o.offence_date <= c.index_date + {{ follow_up_days }}
        and o.outcome_date <= c.index_date + {{ follow_up_days + waiting_days }}
    group by all
),

member as (
    select
        c.*,
        {{ age_in_years('p.date_of_birth', 'c.index_date') }} as age_at_index,
        p.sex
    from published as c
    left join {{ ref('person') }} as p using (person_id)
)

select
    m.person_id,
    m.cohort_quarter,
    m.cohort_quarter_start,
    m.index_date,
    m.index_event,
    m.defendant_case_id as index_defendant_case_id,
    m.custody_spell_id as index_custody_spell_id,
    m.disposal_type,
    m.offence_group,
    m.age_at_index,
    case when m.age_at_index is null then null
         when m.age_at_index < 18 then 'juvenile' else 'adult' end as adult_juvenile,
    case when m.age_at_index is null then null
         when m.age_at_index < 10 then 'under 10'
         when m.age_at_index < 15 then '10-14'
         when m.age_at_index < 18 then '15-17'
         when m.age_at_index < 21 then '18-20'
         when m.age_at_index < 25 then '21-24'
         when m.age_at_index < 50 then
             -- five-year bands: the age less its remainder on division by 5 starts the band
             cast(m.age_at_index - m.age_at_index % 5 as {{ dbt.type_string() }}) || '-'
                 || cast(m.age_at_index - m.age_at_index % 5 + 4 as {{ dbt.type_string() }})
         else '50+' end as age_band,
    m.sex,
    case when m.disposal_type = 'immediate_custody' then m.custody_days end as custody_days,
    -- The published bands of the sentence passed. core writes a length in months as
    -- round(months * 30.4375) days, so 6 months is 183 days, 12 months 365 and 4 years 1461.
    case when m.disposal_type <> 'immediate_custody' or m.custody_days is null then null
         when m.custody_days <= round(6 * 30.4375) then '6 months or less'
         when m.custody_days < round(12 * 30.4375) then 'more than 6 months to less than 12 months'
         when m.custody_days < round(48 * 30.4375) then '12 months to less than 4 years'
         else '4 years or more' end as sentence_length_band,
    coalesce(r.reoffences, 0) as reoffences,
    coalesce(r.reoffences, 0) > 0 as reoffended,
    r.first_reoffence_date
from member as m
left join reoffence as r using (person_id, cohort_quarter)
