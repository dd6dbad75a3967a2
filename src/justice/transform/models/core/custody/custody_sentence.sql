{#- One row per NOMIS sentence (OFFENDER_SENTENCES, which the extract flattens with its terms): the
    sentence a custody spell serves. Its type comes from the sentence_calc_types seed, so a NOMIS
    code is classified by editing that file; its length is the custodial term (for life and IPP the
    minimum term), banded as the Offender Management Statistics band the sentenced population. -#}
with sentences as (
    select * from {{ ref('prison__offender_sentences__latest') }}
),

terms as (
    select
        s.*,
        -- The term in months: years and months as written, days at the average month (365.25 / 12).
        coalesce(s.term_years, 0) * 12 + coalesce(s.term_months, 0) + coalesce(s.term_days, 0) / 30.4375
            as term_months_total,
        -- The term in days, as the release rules and core.offence count it: years and months at
        -- round(months x 30.4375) days (justice.sim.reference's month), plus the days.
        cast(round((coalesce(s.term_years, 0) * 12 + coalesce(s.term_months, 0)) * 30.4375)
             as {{ dbt.type_bigint() }}) + coalesce(s.term_days, 0) as term_length_days
    from sentences as s
)

select
    'SE' || lpad(cast(t.offender_book_id as {{ dbt.type_string() }}), 9, '0')
        || '-' || cast(t.sentence_seq as {{ dbt.type_string() }}) as custody_sentence_id,
    c.custody_spell_id,
    c.person_id,
    t.offender_book_id,
    t.sentence_seq,
    t.sentence_calc_type,
    coalesce(k.sentence_type, 'unknown') as sentence_type,
    coalesce(k.is_indeterminate, t.life_sentence_flag = 'Y') as is_indeterminate,
    t.sentence_category as sentence_act,
    t.start_date as sentence_date,
    t.term_years,
    t.term_months,
    t.term_days,
    {{ round_figure('t.term_months_total', 2) }} as term_months_total,
    t.term_length_days,
    case
        when coalesce(k.is_indeterminate, t.life_sentence_flag = 'Y') then 'indeterminate'
        when t.term_months_total <= 6 then 'up_to_6_months'
        when t.term_months_total < 12 then 'over_6_to_under_12_months'
        when t.term_months_total < 48 then '12_months_to_under_4_years'
        else '4_years_or_more'
    end as sentence_length_band,
    t.sentence_status = 'A' as is_active
from terms as t
join {{ ref('custody_spell') }} as c on c.offender_book_id = t.offender_book_id
left join {{ ref('sentence_calc_types') }} as k on k.sentence_calc_type = t.sentence_calc_type
