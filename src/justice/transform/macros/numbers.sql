{# A published figure (a mean, a rate, a share) rounded to `digits` decimal places, half away
   from zero, as DuckDB rounds a double: its binary value, so 46.05 (46.0499...) gives 46.0. #}
{% macro round_figure(value, digits) -%}
    {{ return(adapter.dispatch('round_figure', 'justice')(value, digits)) }}
{%- endmacro %}

{% macro default__round_figure(value, digits) -%}
    round({{ value }}, {{ digits }})
{%- endmacro %}

{# Spark's round reads a double as its shortest decimal (46.05, so 46.1): scale it, round to a
   whole number and scale back, which is what DuckDB does. #}
{% macro spark__round_figure(value, digits) -%}
    (round(cast({{ value }} as double) * power(10, {{ digits }})) / power(10, {{ digits }}))
{%- endmacro %}
