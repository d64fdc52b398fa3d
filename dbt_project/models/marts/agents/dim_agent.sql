-- One row per agent: who they are in the insurer's organisation (code, territory, team leader,
-- licence) and their book, with its status rebuilt from premium payments.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

providers as (
    select * from {{ ref('stg_operational__providers') }}
),

policies as (
    select * from {{ ref('dim_policy') }}
),

book as (
    select
        agent_id,
        count(*) as policies_total,
        count(*) filter (where is_in_force) as policies_in_force,
        count(*) filter (where policy_status = 'lapsed') as policies_lapsed,
        coalesce(
            sum(annualised_premium_equivalent) filter (where is_in_force), 0
        ) as annualised_premium_in_force,
        min(issue_date) as first_policy_issued_on,
        max(issue_date) as last_policy_issued_on
    from policies
    group by agent_id
)

select
    agents.agent_id,
    agents.provider_id,
    providers.provider_code,
    providers.provider_name,
    agents.agent_code,
    agents.parent_agent_id,
    agents.territory,
    agents.state,
    agents.city,
    agents.agent_status,
    agents.joined_on,
    agents.irdai_license_expires_on,
    coalesce(book.policies_total, 0) as policies_total,
    coalesce(book.policies_in_force, 0) as policies_in_force,
    coalesce(book.policies_lapsed, 0) as policies_lapsed,
    cast(
        coalesce(book.annualised_premium_in_force, 0) as numeric(16, 2)
    ) as annualised_premium_in_force,
    book.first_policy_issued_on,
    book.last_policy_issued_on
from agents
left join providers on agents.provider_id = providers.provider_id
left join book on agents.agent_id = book.agent_id
