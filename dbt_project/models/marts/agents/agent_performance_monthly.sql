{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['agent_id', 'month_start'],
        on_schema_change='fail',
        pre_hook="{{ set_received_since(var('late_arrival_days'), from_month_start=true) }}",
    )
}}
-- One row per agent and calendar month (IST days), dense, from the start of the premium history
-- (or the month the agent joined, if later) to the month the premium data reaches: new
-- business, premium collection, lapses, lapse ratio and revivals, persistency over the trailing
-- 12 cohort months, the agent's rank in territory and in provider, and customer engagement.
-- A month's figures use what is known at its last day (at the as-of day for the current month).
-- A run rewrites every month its window touches, whole: the daily partition of 15 October
-- rebuilds October from all of October's data so far.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('int_premium_dues_matched') }}
),

history as (
    select * from {{ ref('int_policy_status_history') }}
),

persistency as (
    select * from {{ ref('agent_persistency') }}
),

engagement as (
    select * from {{ ref('int_agent_engagement_monthly') }}
),

bounds as (
    select
        (select max(as_of_date) from dues) as last_day,
        (select min(issue_date) from policies) as first_day
),

months as (
    select
        agents.agent_id,
        agents.provider_id,
        agents.territory,
        cast(calendar_month as date) as month_start,
        cast(calendar_month + interval '1 month' as date) as next_month_start,
        -- The day the month's figures are as of.
        least(
            cast(calendar_month + interval '1 month' - interval '1 day' as date),
            bounds.last_day
        ) as month_as_of_date
    from agents
    cross join bounds
    cross join
        lateral generate_series(
            date_trunc('month', greatest(agents.joined_on, bounds.first_day)),
            date_trunc('month', bounds.last_day),
            interval '1 month'
        ) as calendar_month
    -- Every month the window touches.
    where
        calendar_month < {{ window_end() }}
        and calendar_month + interval '1 month' > {{ window_start() }}
),

new_business as (
    select
        agent_id,
        cast(date_trunc('month', issue_date) as date) as month_start,
        count(*) as new_policies,
        sum({{ annualised_premium_equivalent('premium_amount', 'premium_mode') }})
            as new_business_ape
    from policies
    group by agent_id, cast(date_trunc('month', issue_date) as date)
),

first_year_collections as (
    select
        agent_id,
        cast(date_trunc('month', paid_on) as date) as month_start,
        sum(amount_paid) as first_year_premium
    from dues
    where is_first_year and paid_on is not null
    group by agent_id, cast(date_trunc('month', paid_on) as date)
),

-- Dues whose grace ended in the month, up to the as-of day.
renewals as (
    select
        agent_id,
        cast(date_trunc('month', grace_end_date) as date) as month_start,
        sum(amount_due) as renewal_premium_due,
        coalesce(sum(amount_paid) filter (where is_paid_by_grace_end), 0)
            as renewal_premium_collected
    from dues
    where is_renewal_due and grace_end_date <= as_of_date
    group by agent_id, cast(date_trunc('month', grace_end_date) as date)
),

lapses as (
    select
        agent_id,
        cast(date_trunc('month', lapsed_on) as date) as month_start,
        count(distinct policy_id) as lapses
    from dues
    where is_lapse_trigger
    group by agent_id, cast(date_trunc('month', lapsed_on) as date)
),

revivals as (
    select
        agent_id,
        cast(date_trunc('month', revived_on) as date) as month_start,
        count(distinct policy_id) as revivals
    from dues
    where is_lapse_trigger and revived_on is not null
    group by agent_id, cast(date_trunc('month', revived_on) as date)
),

-- Lapse-ratio denominator: regular-premium policies in force at the end of the day before the
-- month starts whose premium-paying term has not ended by then.
in_force_at_start as (
    select
        months.agent_id,
        months.month_start,
        count(distinct history.policy_id) as policies_in_force_at_start
    from months
    inner join history
        on
            months.agent_id = history.agent_id
            and history.is_in_force
            and months.month_start > history.valid_from
            and (history.valid_to is null or months.month_start <= history.valid_to)
    inner join policies
        on
            history.policy_id = policies.policy_id
            and policies.premium_mode <> 'single'
            and policies.issue_date
            + make_interval(years => policies.premium_paying_term_years)
            > months.month_start
    group by months.agent_id, months.month_start
),

-- Trailing persistency of a month: the 12 latest cohort months reported at month k by its
-- as-of day, as rolled up in agent_persistency.
trailing_persistency as (
    select
        months.agent_id,
        months.month_start,
    {% for k in [13, 25, 37, 49, 61] %}
        max(persistency.window_persistency_by_count) filter (
            where persistency.persistency_month = {{ k }}
        ) as persistency_{{ k }}m_by_count,
        max(persistency.window_persistency_by_premium) filter (
            where persistency.persistency_month = {{ k }}
        ) as persistency_{{ k }}m_by_premium{{ "," if not loop.last }}
    {% endfor %}
    from months
    inner join persistency
        on
            months.agent_id = persistency.agent_id
            and persistency.cohort_month = cast(
                date_trunc('month', months.month_as_of_date - 30)
                - make_interval(months => persistency.persistency_month) as date
            )
    group by months.agent_id, months.month_start
),

monthly as (
    select
        months.agent_id,
        months.month_start,
        months.provider_id,
        months.territory,
        months.month_as_of_date,
        coalesce(new_business.new_policies, 0) as new_policies,
        coalesce(new_business.new_business_ape, 0) as new_business_ape,
        coalesce(first_year_collections.first_year_premium, 0) as first_year_premium,
        coalesce(renewals.renewal_premium_due, 0) as renewal_premium_due,
        coalesce(renewals.renewal_premium_collected, 0) as renewal_premium_collected,
        coalesce(in_force_at_start.policies_in_force_at_start, 0)
            as policies_in_force_at_start,
        coalesce(lapses.lapses, 0) as lapses,
        coalesce(revivals.revivals, 0) as revivals,
    {% for k in [13, 25, 37, 49, 61] %}
        trailing_persistency.persistency_{{ k }}m_by_count,
        trailing_persistency.persistency_{{ k }}m_by_premium{{ "," if not loop.last }}
    {% endfor %}
    from months
    left join new_business
        on
            months.agent_id = new_business.agent_id
            and months.month_start = new_business.month_start
    left join first_year_collections
        on
            months.agent_id = first_year_collections.agent_id
            and months.month_start = first_year_collections.month_start
    left join renewals
        on
            months.agent_id = renewals.agent_id
            and months.month_start = renewals.month_start
    left join lapses
        on
            months.agent_id = lapses.agent_id
            and months.month_start = lapses.month_start
    left join revivals
        on
            months.agent_id = revivals.agent_id
            and months.month_start = revivals.month_start
    left join in_force_at_start
        on
            months.agent_id = in_force_at_start.agent_id
            and months.month_start = in_force_at_start.month_start
    left join trailing_persistency
        on
            months.agent_id = trailing_persistency.agent_id
            and months.month_start = trailing_persistency.month_start
),

ranked as (
    select
        *,
        rank() over (
            partition by provider_id, territory, month_start
            order by new_business_ape desc
        ) as territory_rank_new_business_ape,
        rank() over (
            partition by provider_id, month_start
            order by new_business_ape desc
        ) as provider_rank_new_business_ape,
        case
            when persistency_13m_by_count is not null
                then rank() over (
                    partition by provider_id, territory, month_start
                    order by persistency_13m_by_count desc nulls last
                )
        end as territory_rank_persistency_13m,
        case
            when persistency_13m_by_count is not null
                then rank() over (
                    partition by provider_id, month_start
                    order by persistency_13m_by_count desc nulls last
                )
        end as provider_rank_persistency_13m
    from monthly
)

select
    ranked.agent_id,
    ranked.month_start,
    ranked.provider_id,
    ranked.territory,
    ranked.month_as_of_date,
    ranked.new_policies,
    cast(ranked.new_business_ape as numeric(16, 2)) as new_business_ape,
    cast(ranked.first_year_premium as numeric(16, 2)) as first_year_premium,
    cast(ranked.renewal_premium_due as numeric(16, 2)) as renewal_premium_due,
    cast(ranked.renewal_premium_collected as numeric(16, 2)) as renewal_premium_collected,
    {{ renewal_collection_rate('ranked.renewal_premium_collected', 'ranked.renewal_premium_due') }}
        as renewal_collection_rate,
    ranked.policies_in_force_at_start,
    ranked.lapses,
    {{ lapse_ratio('ranked.lapses', 'ranked.policies_in_force_at_start') }} as lapse_ratio,
    ranked.revivals,
    {% for k in [13, 25, 37, 49, 61] %}
        ranked.persistency_{{ k }}m_by_count,
        ranked.persistency_{{ k }}m_by_premium,
    {% endfor %}
    ranked.territory_rank_new_business_ape,
    ranked.provider_rank_new_business_ape,
    ranked.territory_rank_persistency_13m,
    ranked.provider_rank_persistency_13m,
    cast(coalesce(engagement.app_active_customers, 0) as integer) as app_active_customers,
    cast(coalesce(engagement.app_sessions, 0) as integer) as app_sessions,
    cast(coalesce(engagement.agent_app_sessions, 0) as integer) as agent_app_sessions,
    cast(coalesce(engagement.whatsapp_inbound, 0) as integer) as whatsapp_inbound,
    cast(coalesce(engagement.whatsapp_outbound, 0) as integer) as whatsapp_outbound,
    cast(coalesce(engagement.whatsapp_outbound_read, 0) as integer) as whatsapp_outbound_read,
    cast(engagement.read_rate as numeric(6, 4)) as whatsapp_read_rate,
    cast(coalesce(engagement.first_responses, 0) as integer) as whatsapp_first_responses,
    cast(
        engagement.median_first_response_seconds as numeric(12, 1)
    ) as median_first_response_seconds,
    cast(coalesce(engagement.videos_shared, 0) as integer) as videos_shared,
    cast(coalesce(engagement.videos_completed, 0) as integer) as videos_completed
from ranked
left join engagement
    on
        ranked.agent_id = engagement.agent_id
        and ranked.month_start = engagement.month_start
