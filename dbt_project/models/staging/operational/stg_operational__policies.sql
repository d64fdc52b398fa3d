-- One row per policy that has not been deleted in the app.
with source as (
    select * from {{ source('operational', 'insurance_policies') }}
)

select
    id as policy_id,
    provider_id,
    policyholder_id,
    agent_id,
    policy_number,
    policy_type,
    plan_name,
    cast(sum_assured as numeric(14, 2)) as sum_assured,
    cast(premium_amount as numeric(12, 2)) as premium_amount,
    premium_mode,
    policy_term_years,
    premium_paying_term_years,
    issue_date,
    maturity_date,
    status as policy_status,
    status_changed_at,
    status in ('active', 'grace', 'revived') as is_in_force,
    created_at,
    updated_at
from source
where _deleted_at is null and deleted_at is null
