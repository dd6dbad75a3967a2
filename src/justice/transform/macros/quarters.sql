{# Calendar quarters as Criminal Court Statistics and Safety in Custody label them. #}
{% macro quarter_label(date_expr) -%}
    (cast(year({{ date_expr }}) as varchar) || 'Q' || cast(quarter({{ date_expr }}) as varchar))
{%- endmacro %}

{% macro quarter_start(date_expr) -%}
    cast(date_trunc('quarter', {{ date_expr }}) as date)
{%- endmacro %}

{% macro quarter_end(date_expr) -%}
    cast(date_trunc('quarter', {{ date_expr }}) + interval 3 month - interval 1 day as date)
{%- endmacro %}
