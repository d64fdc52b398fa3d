-- One row per policy: who sold it to whom, the product and its premium, and its status now,
-- rebuilt from its dues and payments beside the status the app shows.
with policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('int_premium_dues_matched') }}
),

history as (
    select * from {{ ref('int_policy_status_history') }}
),

-- One row, its value computed once (a scalar subquery), however often it is joined.
as_of as (
    select (select max(as_of_date) from dues) as as_of_date
),

current_spells as (
    select
        policy_id,
        policy_status,
        valid_from
    from history
    where is_current
),

per_policy as (
    select
        policy_id,
        count(*) as dues_count,
        count(*) filter (where is_paid_by_grace_end) as dues_paid_by_grace_end,
        count(*) filter (where is_lapse_trigger) as lapses,
        count(distinct revived_on) filter (where is_lapse_trigger) as revivals,
        max(lapsed_on) filter (where is_lapse_trigger) as last_lapsed_on,
        max(revived_on) filter (where is_lapse_trigger) as last_revived_on,
        coalesce(sum(amount_paid), 0) as premium_collected,
        max(paid_on) as last_paid_on,
        -- A premium past its due date, unpaid, still in grace.
        bool_or(outcome = 'open' and due_date <= as_of_date) as has_due_in_grace
    from dues
    group by policy_id
)

select
    policies.policy_id,
    policies.policy_number,
    policies.provider_id,
    policies.agent_id,
    policies.policyholder_id,
    policies.policy_type,
    policies.plan_name,
    policies.premium_mode,
    {{ payments_per_year('policies.premium_mode') }} as payments_per_year,
    policies.sum_assured,
    policies.premium_amount,
    cast(
        {{ annualised_premium_equivalent('policies.premium_amount', 'policies.premium_mode') }}
        as numeric(16, 2)
    ) as annualised_premium_equivalent,
    policies.policy_term_years,
    policies.premium_paying_term_years,
    policies.issue_date,
    cast(date_trunc('month', policies.issue_date) as date) as cohort_month,
    cast(
        policies.issue_date + make_interval(years => policies.premium_paying_term_years)
        as date
    ) as premium_term_ends_on,
    policies.maturity_date,
    case
        when
            current_spells.policy_status in ('active', 'revived')
            and per_policy.has_due_in_grace
            then 'grace'
        else current_spells.policy_status
    end as policy_status,
    current_spells.valid_from as policy_status_since,
    coalesce(
        current_spells.policy_status in ('active', 'revived'), false
    ) as is_in_force,
    policies.policy_status as app_policy_status,
    policies.status_changed_at as app_status_changed_at,
    coalesce(per_policy.dues_count, 0) as dues_count,
    coalesce(per_policy.dues_paid_by_grace_end, 0) as dues_paid_by_grace_end,
    coalesce(per_policy.lapses, 0) as lapses,
    coalesce(per_policy.revivals, 0) as revivals,
    per_policy.last_lapsed_on,
    per_policy.last_revived_on,
    cast(coalesce(per_policy.premium_collected, 0) as numeric(16, 2)) as premium_collected,
    per_policy.last_paid_on,
    as_of.as_of_date
from policies
cross join as_of
left join current_spells on policies.policy_id = current_spells.policy_id
left join per_policy on policies.policy_id = per_policy.policy_id
