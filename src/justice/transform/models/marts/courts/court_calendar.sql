-- The quarters the court statistics cover. The case systems' extracts hold only the cases that
-- changed while they were taken, so a quarter is covered from the extracts' start: the earliest
-- completion date seen (a case completed earlier never appears), less a week's grace, or the dbt
-- var `data_start`. Cases received earlier but still open then are in the data and in the
-- caseload; their receipt quarters are not reported. The last quarter is the last that had ended
-- by the data's end date: the latest receipt, listing or completion (the extracts' as-at date),
-- or the dbt var `data_end`.

with bounds as (
    select
        {% if var('data_start', none) is not none -%}
        cast('{{ var("data_start") }}' as date)
        {%- else -%}
        cast(min(completion_date) - interval 7 day as date)
        {%- endif %} as first_date,
        {% if var('data_end', none) is not none -%}
        cast('{{ var("data_end") }}' as date)
        {%- else -%}
        greatest(max(receipt_date), max(first_listing_date), max(completion_date))
        {%- endif %} as data_end
    from {{ ref('court_case') }}
),

quarters as (
    select cast(q as date) as quarter_start
    from bounds, {{ quarter_starts(quarter_start('first_date - 1') ~ ' + interval 3 month', 'data_end') }}
)

select
    {{ quarter_label('quarter_start') }} as quarter,
    quarter_start,
    {{ quarter_end('quarter_start') }} as quarter_end,
    b.data_end
from quarters, bounds as b
where {{ quarter_end('quarter_start') }} <= b.data_end
order by quarter_start
