-- Engagement of each agent's customers, and the agent's own WhatsApp and sharing, per calendar
-- month of IST days: one row per agent and month that has any of it. Counts are the sums of the
-- daily ones; app-active customers are the distinct customers with a session in the month; the
-- read rate and the median first-response time are recomputed over the month's messages.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

daily as (
    select * from {{ ref('int_agent_engagement_daily') }}
),

sessions as (
    select * from {{ ref('int_app_sessions') }}
    where user_role = 'policyholder' and agent_id is not null
),

first_responses as (
    select * from {{ ref('int_whatsapp_first_responses') }}
    where is_run_start and first_response_at is not null
),

counts as (
    select
        agent_id,
        cast(date_trunc('month', activity_date) as date) as month_start,
        sum(app_sessions) as app_sessions,
        sum(agent_app_sessions) as agent_app_sessions,
        sum(whatsapp_inbound) as whatsapp_inbound,
        sum(whatsapp_outbound) as whatsapp_outbound,
        sum(whatsapp_outbound_with_state) as whatsapp_outbound_with_state,
        sum(whatsapp_outbound_delivered) as whatsapp_outbound_delivered,
        sum(whatsapp_outbound_read) as whatsapp_outbound_read,
        sum(first_responses) as first_responses,
        sum(videos_shared) as videos_shared,
        sum(videos_completed) as videos_completed,
        0 as app_active_customers,
        cast(null as double precision) as median_first_response_seconds
    from daily
    group by agent_id, cast(date_trunc('month', activity_date) as date)
),

app_active as (
    select
        agent_id,
        cast(date_trunc('month', session_day) as date) as month_start,
        count(distinct policyholder_id) as app_active_customers
    from sessions
    group by agent_id, cast(date_trunc('month', session_day) as date)
),

responses as (
    select
        agent_id,
        cast(date_trunc('month', first_response_day) as date) as month_start,
        percentile_cont(0.5) within group (order by first_response_seconds)
            as median_first_response_seconds
    from first_responses
    group by agent_id, cast(date_trunc('month', first_response_day) as date)
),

stacked as (
    select
        agent_id,
        month_start,
        app_sessions,
        agent_app_sessions,
        whatsapp_inbound,
        whatsapp_outbound,
        whatsapp_outbound_with_state,
        whatsapp_outbound_delivered,
        whatsapp_outbound_read,
        first_responses,
        videos_shared,
        videos_completed,
        app_active_customers,
        median_first_response_seconds
    from counts

    union all

    select
        agent_id,
        month_start,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        0 as videos_shared,
        0 as videos_completed,
        app_active_customers,
        cast(null as double precision) as median_first_response_seconds
    from app_active

    union all

    select
        agent_id,
        month_start,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        0 as videos_shared,
        0 as videos_completed,
        0 as app_active_customers,
        median_first_response_seconds
    from responses
),

monthly as (
    select
        agent_id,
        month_start,
        cast(sum(app_active_customers) as int) as app_active_customers,
        cast(sum(app_sessions) as int) as app_sessions,
        cast(sum(agent_app_sessions) as int) as agent_app_sessions,
        cast(sum(whatsapp_inbound) as int) as whatsapp_inbound,
        cast(sum(whatsapp_outbound) as int) as whatsapp_outbound,
        cast(sum(whatsapp_outbound_with_state) as int) as whatsapp_outbound_with_state,
        cast(sum(whatsapp_outbound_delivered) as int) as whatsapp_outbound_delivered,
        cast(sum(whatsapp_outbound_read) as int) as whatsapp_outbound_read,
        cast(sum(first_responses) as int) as first_responses,
        max(median_first_response_seconds) as median_first_response_seconds,
        cast(sum(videos_shared) as int) as videos_shared,
        cast(sum(videos_completed) as int) as videos_completed
    from stacked
    group by agent_id, month_start
)

select
    monthly.agent_id,
    monthly.month_start,
    agents.provider_id,
    monthly.app_active_customers,
    monthly.app_sessions,
    monthly.agent_app_sessions,
    monthly.whatsapp_inbound,
    monthly.whatsapp_outbound,
    monthly.whatsapp_outbound_with_state,
    monthly.whatsapp_outbound_delivered,
    monthly.whatsapp_outbound_read,
    cast(
        monthly.whatsapp_outbound_read * 1.0
        / nullif(monthly.whatsapp_outbound_with_state, 0) as numeric(6, 4)
    ) as read_rate,
    monthly.first_responses,
    cast(monthly.median_first_response_seconds as numeric(12, 1))
        as median_first_response_seconds,
    monthly.videos_shared,
    monthly.videos_completed
from monthly
inner join agents on monthly.agent_id = agents.agent_id
