{# Whole days from `start_date` to `end_date` (negative when end is earlier). #}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'justice')(start_date, end_date)) }}
{%- endmacro %}

{# DuckDB: subtracting dates gives days. #}
{% macro default__days_between(start_date, end_date) -%}
    ({{ end_date }} - {{ start_date }})
{%- endmacro %}

{# Spark: subtracting dates gives an interval, not a number; datediff counts days (as an int:
   cast to DuckDB's bigint so both engines' tables have one type). #}
{% macro spark__days_between(start_date, end_date) -%}
    cast(datediff({{ end_date }}, {{ start_date }}) as bigint)
{%- endmacro %}

{# Age in whole years on `on_date` of someone born on `birth_date`: the years between, less one
   if the birthday has not come yet that year (the same arithmetic on every engine; a bigint on
   both, where Spark's year() alone gives an int). #}
{% macro age_in_years(birth_date, on_date) -%}
    cast(year({{ on_date }}) - year({{ birth_date }})
        - case when month({{ on_date }}) * 100 + day({{ on_date }})
                    < month({{ birth_date }}) * 100 + day({{ birth_date }}) then 1 else 0 end as bigint)
{%- endmacro %}

{# A date as ISO text (YYYY-MM-DD): casting a date to text gives it on every engine. #}
{% macro iso_date_text(date_expr) -%}
    cast({{ date_expr }} as {{ dbt.type_string() }})
{%- endmacro %}

{# A date written as eight digits, YYYYMMDD (in a file name, say); null when it is not one. #}
{% macro date_from_digits(text_expr) -%}
    {{ return(adapter.dispatch('date_from_digits', 'justice')(text_expr)) }}
{%- endmacro %}

{# DuckDB parses with strftime-style formats. #}
{% macro default__date_from_digits(text_expr) -%}
    cast(strptime({{ text_expr }}, '%Y%m%d') as date)
{%- endmacro %}

{# Spark parses with Java datetime patterns. #}
{% macro spark__date_from_digits(text_expr) -%}
    to_date({{ text_expr }}, 'yyyyMMdd')
{%- endmacro %}
