-- One row per app user (users.user_id, as the text the app's events carry) with the person
-- behind it: an agent, or a policyholder and their agent.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

policyholders as (
    select * from {{ ref('stg_operational__policyholders') }}
)

select
    cast(user_id as text) as user_id,
    'agent' as user_role,
    cast(null as uuid) as policyholder_id,
    agent_id,
    provider_id
from agents
where user_id is not null

union all

select
    cast(user_id as text) as user_id,
    'policyholder' as user_role,
    policyholder_id,
    agent_id,
    provider_id
from policyholders
where user_id is not null
