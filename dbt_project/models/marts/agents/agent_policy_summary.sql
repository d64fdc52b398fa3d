-- Policies and premium per agent: the first agent-facing mart.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

policies as (
    select * from {{ ref('stg_operational__policies') }}
),

per_agent as (
    select
        agent_id,
        count(*) as policies_total,
        count(*) filter (where is_in_force) as policies_in_force,
        coalesce(sum(sum_assured) filter (where is_in_force), 0) as sum_assured_in_force,
        coalesce(
            sum({{ annualised_premium_equivalent('premium_amount', 'premium_mode') }})
            filter (where is_in_force),
            0
        ) as annualised_premium_in_force,
        min(issue_date) as first_policy_issued_on,
        max(issue_date) as last_policy_issued_on
    from policies
    group by agent_id
)

select
    agents.agent_id,
    agents.provider_id,
    agents.agent_code,
    agents.territory,
    agents.state,
    agents.agent_status,
    coalesce(per_agent.policies_total, 0) as policies_total,
    coalesce(per_agent.policies_in_force, 0) as policies_in_force,
    cast(coalesce(per_agent.sum_assured_in_force, 0) as numeric(16, 2)) as sum_assured_in_force,
    cast(
        coalesce(per_agent.annualised_premium_in_force, 0) as numeric(16, 2)
    ) as annualised_premium_in_force,
    per_agent.first_policy_issued_on,
    per_agent.last_policy_issued_on
from agents
left join per_agent on agents.agent_id = per_agent.agent_id
