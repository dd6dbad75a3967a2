{# Fails for every system and load whose rows read at extraction differ from rows staged plus
   rows quarantined: a row was lost or counted twice somewhere between source and staging. #}
{% test reconciles(model) %}
select * from {{ model }} where rows_read != rows_staged + rows_quarantined
{% endtest %}
