{# A published figure (a mean, a rate, a share) rounded to `digits` decimal places, half away
   from zero, as DuckDB rounds a double: by its exact binary value, so 46.05 (46.0499...) gives
   46.0 while 0.125 gives 0.13. #}
{% macro round_figure(value, digits) -%}
    {{ return(adapter.dispatch('round_figure', 'justice')(value, digits)) }}
{%- endmacro %}

{% macro default__round_figure(value, digits) -%}
    round({{ value }}, {{ digits }})
{%- endmacro %}

{#- Spark's round reads a double as its shortest decimal (46.05, so 46.1). Scaled by 10^digits the
    double lands on a half (460.5) only through rounding or exactly; the rounding error of that
    product (Dekker's two-product, from a Veltkamp split of the value) says which side the exact
    value lies, and an exact half goes away from zero, as on DuckDB. -#}
{% macro spark__round_figure(value, digits) -%}
    {%- set x %}cast({{ value }} as double){% endset -%}
    {%- set scale %}cast({{ 10 ** digits }} as double){% endset -%}
    {%- set scaled %}({{ x }} * {{ scale }}){% endset -%}
    {%- set split %}(cast(134217729 as double) * {{ x }}){% endset -%}
    {%- set high %}({{ split }} - ({{ split }} - {{ x }})){% endset -%}
    {%- set low %}({{ x }} - {{ high }}){% endset -%}
    {%- set error %}((({{ high }} * {{ scale }}) - {{ scaled }}) + {{ low }} * {{ scale }}){% endset -%}
    (case
        when {{ scaled }} - floor({{ scaled }}) = 0.5 then
            case when {{ error }} > 0 or ({{ error }} = 0 and {{ scaled }} > 0)
                 then ceil({{ scaled }}) else floor({{ scaled }}) end
        else round({{ scaled }})
    end / {{ scale }})
{%- endmacro %}
