{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['agent_id', 'activity_date'],
        on_schema_change='fail',
        pre_hook="{{ set_received_since(30 + var('late_arrival_days')) }}",
    )
}}
-- One row per agent and IST day, dense (zeros where nothing happened), from the start of the
-- premium history (or the day the agent joined, if later) to the day the premium data reaches:
-- new business, premium collection, lapses and revivals, trailing persistency, the agent's rank
-- in territory and in provider, and customer engagement. A day's figures use only dues,
-- payments and events on or before that day.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('int_premium_dues_matched') }}
),

persistency as (
    select * from {{ ref('agent_persistency') }}
),

engagement as (
    select * from {{ ref('int_agent_engagement_daily') }}
    where {{ in_window('activity_date') }}
),

bounds as (
    select
        (select max(as_of_date) from dues) as last_day,
        (select min(issue_date) from policies) as first_day
),

-- Month-to-date figures need the window's month from its first day.
days as (
    select
        agents.agent_id,
        agents.provider_id,
        agents.territory,
        cast(calendar_day as date) as activity_date
    from agents
    cross join bounds
    cross join lateral generate_series(
        greatest(
            coalesce(greatest(agents.joined_on, bounds.first_day), bounds.first_day),
            cast(date_trunc('month', {{ window_start() }}) as date)
        ),
        least(bounds.last_day, {{ window_end() }} - 1),
        interval '1 day'
    ) as calendar_day
),

new_business as (
    select
        agent_id,
        issue_date as activity_date,
        count(*) as new_policies,
        sum({{ annualised_premium_equivalent('premium_amount', 'premium_mode') }})
            as new_business_ape
    from policies
    where
        issue_date >= cast(date_trunc('month', {{ window_start() }}) as date)
        and issue_date < {{ window_end() }}
    group by agent_id, issue_date
),

first_year_collections as (
    select
        agent_id,
        paid_on as activity_date,
        sum(amount_paid) as first_year_premium
    from dues
    where is_first_year and {{ in_window('paid_on') }}
    group by agent_id, paid_on
),

renewals as (
    select
        agent_id,
        grace_end_date as activity_date,
        sum(amount_due) as renewal_premium_due,
        coalesce(sum(amount_paid) filter (where is_paid_by_grace_end), 0)
            as renewal_premium_collected
    from dues
    where is_renewal_due and {{ in_window('grace_end_date') }}
    group by agent_id, grace_end_date
),

lapses as (
    select
        agent_id,
        lapsed_on as activity_date,
        count(distinct policy_id) as lapses
    from dues
    where is_lapse_trigger and {{ in_window('lapsed_on') }}
    group by agent_id, lapsed_on
),

revivals as (
    select
        agent_id,
        revived_on as activity_date,
        count(distinct policy_id) as revivals
    from dues
    where is_lapse_trigger and {{ in_window('revived_on') }}
    group by agent_id, revived_on
),

daily as (
    select
        days.agent_id,
        days.activity_date,
        days.provider_id,
        days.territory,
        coalesce(new_business.new_policies, 0) as new_policies,
        coalesce(new_business.new_business_ape, 0) as new_business_ape,
        sum(coalesce(new_business.new_business_ape, 0)) over (
            partition by days.agent_id, date_trunc('month', days.activity_date)
            order by days.activity_date
        ) as new_business_ape_month_to_date,
        coalesce(first_year_collections.first_year_premium, 0) as first_year_premium,
        coalesce(renewals.renewal_premium_due, 0) as renewal_premium_due,
        coalesce(renewals.renewal_premium_collected, 0) as renewal_premium_collected,
        coalesce(lapses.lapses, 0) as lapses,
        coalesce(revivals.revivals, 0) as revivals
    from days
    left join new_business
        on
            days.agent_id = new_business.agent_id
            and days.activity_date = new_business.activity_date
    left join first_year_collections
        on
            days.agent_id = first_year_collections.agent_id
            and days.activity_date = first_year_collections.activity_date
    left join renewals
        on
            days.agent_id = renewals.agent_id
            and days.activity_date = renewals.activity_date
    left join lapses
        on
            days.agent_id = lapses.agent_id
            and days.activity_date = lapses.activity_date
    left join revivals
        on
            days.agent_id = revivals.agent_id
            and days.activity_date = revivals.activity_date
),

window_days as (
    select * from daily
    where {{ in_window('activity_date') }}
),

-- Trailing persistency on a day: the 12 latest cohort months reported at month k by then (the
-- latest one's month-k grace ended before the day), as rolled up in agent_persistency.
trailing_persistency as (
    select
        window_days.agent_id,
        window_days.activity_date,
    {% for k in [13, 25, 37, 49, 61] %}
        max(persistency.window_persistency_by_count) filter (
            where persistency.persistency_month = {{ k }}
        ) as persistency_{{ k }}m_by_count,
        max(persistency.window_persistency_by_premium) filter (
            where persistency.persistency_month = {{ k }}
        ) as persistency_{{ k }}m_by_premium{{ "," if not loop.last }}
    {% endfor %}
    from window_days
    inner join persistency
        on
            window_days.agent_id = persistency.agent_id
            and persistency.cohort_month = cast(
                date_trunc('month', window_days.activity_date - 30)
                - make_interval(months => persistency.persistency_month) as date
            )
    group by window_days.agent_id, window_days.activity_date
),

with_persistency as (
    select
        window_days.*,
    {% for k in [13, 25, 37, 49, 61] %}
        trailing_persistency.persistency_{{ k }}m_by_count,
        trailing_persistency.persistency_{{ k }}m_by_premium{{ "," if not loop.last }}
    {% endfor %}
    from window_days
    left join trailing_persistency
        on
            window_days.agent_id = trailing_persistency.agent_id
            and window_days.activity_date = trailing_persistency.activity_date
),

ranked as (
    select
        *,
        rank() over (
            partition by provider_id, territory, activity_date
            order by new_business_ape_month_to_date desc
        ) as territory_rank_new_business_ape,
        rank() over (
            partition by provider_id, activity_date
            order by new_business_ape_month_to_date desc
        ) as provider_rank_new_business_ape,
        case
            when persistency_13m_by_count is not null
                then rank() over (
                    partition by provider_id, territory, activity_date
                    order by persistency_13m_by_count desc nulls last
                )
        end as territory_rank_persistency_13m,
        case
            when persistency_13m_by_count is not null
                then rank() over (
                    partition by provider_id, activity_date
                    order by persistency_13m_by_count desc nulls last
                )
        end as provider_rank_persistency_13m
    from with_persistency
)

select
    ranked.agent_id,
    ranked.activity_date,
    ranked.provider_id,
    ranked.territory,
    ranked.new_policies,
    cast(ranked.new_business_ape as numeric(16, 2)) as new_business_ape,
    cast(
        ranked.new_business_ape_month_to_date as numeric(16, 2)
    ) as new_business_ape_month_to_date,
    cast(ranked.first_year_premium as numeric(16, 2)) as first_year_premium,
    cast(ranked.renewal_premium_due as numeric(16, 2)) as renewal_premium_due,
    cast(ranked.renewal_premium_collected as numeric(16, 2)) as renewal_premium_collected,
    {{ renewal_collection_rate('ranked.renewal_premium_collected', 'ranked.renewal_premium_due') }}
        as renewal_collection_rate,
    ranked.lapses,
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
        and ranked.activity_date = engagement.activity_date
