-- One row per insurer (tenant) that has not been deleted.
with source as (
    select * from {{ source('operational', 'insurance_providers') }}
)

select
    id as provider_id,
    code as provider_code,
    name as provider_name,
    provider_type,
    irdai_registration_number,
    status as provider_status,
    created_at,
    updated_at
from source
where _deleted_at is null
