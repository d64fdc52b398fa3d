-- One row per policyholder; contact and PAN tokens stay in raw (no personal data past staging).
with source as (
    select * from {{ source('operational', 'policyholders') }}
)

select
    id as policyholder_id,
    provider_id,
    agent_id,
    user_id,
    customer_code,
    date_of_birth,
    gender,
    occupation,
    cast(annual_income as numeric(14, 2)) as annual_income,
    city,
    state,
    preferred_language,
    whatsapp_opt_in,
    created_at,
    updated_at
from source
where _deleted_at is null and deleted_at is null
