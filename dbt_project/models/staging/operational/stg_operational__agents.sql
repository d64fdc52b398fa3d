-- One row per agent: renamed and typed, no personal data (names and phone numbers stay in users).
with source as (
    select * from {{ source('operational', 'agents') }}
)

select
    id as agent_id,
    provider_id,
    parent_agent_id,
    agent_code,
    territory,
    state,
    city,
    status as agent_status,
    joined_on,
    irdai_license_expires_on,
    created_at,
    updated_at
from source
