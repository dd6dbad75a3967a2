{#- Incidents in custody (INCIDENT_CASES): self-harm and assaults on prisoners or staff. The people
    involved are in `incident_party`. -#}
select
    'IN' || lpad(cast(incident_case_id as {{ dbt.type_string() }}), 9, '0') as incident_id,
    incident_case_id,
    incident_type,
    incident_date,
    incident_time,
    agy_loc_id as establishment_code,
    incident_status
from {{ ref('prison__incident_cases__latest') }}
