{# Calendar quarters as Criminal Court Statistics and Safety in Custody label them. #}
{% macro quarter_label(date_expr) -%}
    (cast(year({{ date_expr }}) as {{ dbt.type_string() }}) || 'Q' || cast(quarter({{ date_expr }}) as {{ dbt.type_string() }}))
{%- endmacro %}

{% macro quarter_start(date_expr) -%}
    cast(date_trunc('quarter', {{ date_expr }}) as date)
{%- endmacro %}

{% macro quarter_end(date_expr) -%}
    cast(date_trunc('quarter', {{ date_expr }}) + interval 3 month - interval 1 day as date)
{%- endmacro %}

{#- A FROM-clause item, after a comma that follows the (one-row) relation holding the bounds: the
    quarter starts from `first_quarter_start` up to but not including `before`, as `alias(column)`
    (timestamps on DuckDB, dates on Spark; cast to date where used). -#}
{% macro quarter_starts(first_quarter_start, before, alias='spine', column='q') -%}
    {{ return(adapter.dispatch('quarter_starts', 'justice')(first_quarter_start, before, alias, column)) }}
{%- endmacro %}

{# DuckDB's range() table function takes an interval step and excludes its end. #}
{% macro default__quarter_starts(first_quarter_start, before, alias, column) -%}
    range(cast({{ first_quarter_start }} as timestamp), cast({{ before }} as timestamp), interval 3 month) as {{ alias }}({{ column }})
{%- endmacro %}

{# Spark has no range() over dates: explode a sequence, whose end is inclusive (and which refuses
   an end before its start), keeping only the starts before `before`. #}
{% macro spark__quarter_starts(first_quarter_start, before, alias, column) -%}
    lateral explode(filter(
        sequence(cast({{ first_quarter_start }} as date),
                 greatest(cast({{ first_quarter_start }} as date), cast({{ before }} as date)), interval 3 month),
        q -> q < cast({{ before }} as date))) as {{ alias }}({{ column }})
{%- endmacro %}
