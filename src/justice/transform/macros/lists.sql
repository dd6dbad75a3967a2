{# The distinct values of `column` in the group, as a list in ascending order. #}
{% macro sorted_distinct_list(column) -%}
    {{ return(adapter.dispatch('sorted_distinct_list', 'justice')(column)) }}
{%- endmacro %}

{# DuckDB's list aggregate takes DISTINCT and ORDER BY. #}
{% macro default__sorted_distinct_list(column) -%}
    list(distinct {{ column }} order by {{ column }})
{%- endmacro %}

{# Spark's collect_set takes no ORDER BY: sort the array it gives. #}
{% macro spark__sorted_distinct_list(column) -%}
    array_sort(collect_set({{ column }}))
{%- endmacro %}

{# A slug ('new-leaf-trust') back to a name: each word's first letter upper-cased, words joined
   by spaces ('New Leaf Trust'); the rest of each word is kept as written. #}
{% macro title_case_slug(slug) -%}
    {{ return(adapter.dispatch('title_case_slug', 'justice')(slug)) }}
{%- endmacro %}

{# DuckDB: list functions with a lambda, lists indexed from 1. #}
{% macro default__title_case_slug(slug) -%}
    list_aggregate(list_transform(string_split({{ slug }}, '-'), lambda w: upper(w[1]) || w[2:]), 'string_agg', ' ')
{%- endmacro %}

{# Spark: transform with an arrow lambda (initcap would lower-case the rest of each word). #}
{% macro spark__title_case_slug(slug) -%}
    array_join(transform(split({{ slug }}, '-'), w -> concat(upper(substr(w, 1, 1)), substr(w, 2))), ' ')
{%- endmacro %}
