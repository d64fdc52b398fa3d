-- One row per agent: renamed and typed, no personal data (names and phone numbers stay in users).
with source as (
    select * from {{ source('operational', 'agents') }}
)

select
    id as agent_id,
    provider_id,
    user_id,
    parent_agent_id,
    agent_code,
    territory,
    state,
    city,
    status as agent_status,
    joined_on,
    irdai_license_expires_on,
    whatsapp_phone_number_id,
    created_at,
    updated_at
from source
where _deleted_at is null
