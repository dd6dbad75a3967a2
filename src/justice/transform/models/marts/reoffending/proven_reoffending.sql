{#- The proven reoffending rate per quarterly cohort, overall and by each published breakdown, in
    long format: one row per cohort quarter, breakdown and breakdown value. Built from
    marts.proven_reoffending_cohort, which holds the definition. A member with no value for a
    breakdown (no date of birth or sex known, or a sentence length unrecorded) counts under
    `unknown`; the sentence length breakdown covers releases from custody only. -#}

with cohort as (
    select * from {{ ref('proven_reoffending_cohort') }}
),

{#- Each breakdown and the cohort column (an expression) that gives its value. -#}
{%- set breakdowns = {
    'all': "'all'",
    'adult_juvenile': 'adult_juvenile',
    'age_band': 'age_band',
    'sex': 'sex',
    'disposal': 'disposal_type',
    'offence_group': 'offence_group',
    'sentence_length_band': 'sentence_length_band',
} %}

-- Every member once per breakdown, with their value for it.
by_breakdown as (
    {%- for name, expression in breakdowns.items() %}
    select cohort_quarter, cohort_quarter_start, reoffended, reoffences, '{{ name }}' as breakdown,
           coalesce({{ expression }}, 'unknown') as breakdown_value
    from cohort
    {%- if name == 'sentence_length_band' %}
    where index_event = 'release from custody'
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    cohort_quarter,
    cohort_quarter_start,
    breakdown,
    breakdown_value,
    count(*) as offenders,
    count(*) filter (where reoffended) as reoffenders,
    cast(sum(reoffences) as bigint) as reoffences,
    count(*) filter (where reoffended) / count(*) as rate,
    case when count(*) filter (where reoffended) > 0
         then sum(reoffences) / count(*) filter (where reoffended) end as reoffences_per_reoffender
from by_breakdown
group by cohort_quarter, cohort_quarter_start, breakdown, breakdown_value
