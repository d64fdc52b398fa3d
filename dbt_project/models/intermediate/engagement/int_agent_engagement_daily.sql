-- Engagement of each agent's customers, and the agent's own WhatsApp and sharing, per IST day:
-- one row per agent and day that has any of it, up to the last day of engagement data (an
-- agent with nothing on a day has no row: read it as zeros). A day's figures use activity on or
-- before that day only (the delivery states of the day's outbound messages are as loaded), so
-- a consumer's partitioned build gives the rows of its full build.
--
-- Each source contributes rows of (agent, day, its metrics) stacked and summed, with no join
-- between the sources.
with agents as (
    select * from {{ ref('stg_operational__agents') }}
),

sessions as (
    select * from {{ ref('int_app_sessions') }}
    where agent_id is not null
),

messages as (
    select
        *,
        coalesce(direction = 'outbound', false) as is_outbound
    from {{ ref('int_whatsapp_messages') }}
    where agent_id is not null
),

first_responses as (
    select * from {{ ref('int_whatsapp_first_responses') }}
    where is_run_start and first_response_at is not null
),

shares as (
    select * from {{ ref('int_video_shares') }}
    where sharer_role = 'agent'
),

content_views as (
    select * from {{ ref('int_content_views') }}
    where agent_id is not null and is_completed
),

customer_session_days as (
    select distinct
        agent_id,
        policyholder_id,
        session_day
    from sessions
    where user_role = 'policyholder'
),

last_day as (
    select
        greatest(
            (select max(session_day) from sessions),
            (select max(message_day) from messages),
            (select max(share_day) from shares)
        ) as activity_date
),

-- A customer with a session on day d is app-active on d and the 29 days after it (up to the
-- last day of data).
app_active as (
    select
        customer_session_days.agent_id,
        cast(active_day as date) as activity_date,
        count(distinct customer_session_days.policyholder_id) as app_active_customers
    from customer_session_days
    cross join last_day
    cross join
        lateral generate_series(
            customer_session_days.session_day,
            least(customer_session_days.session_day + 29, last_day.activity_date),
            interval '1 day'
        ) as active_day
    group by customer_session_days.agent_id, cast(active_day as date)
),

responses as (
    select
        agent_id,
        first_response_day as activity_date,
        count(*) as first_responses,
        percentile_cont(0.5) within group (order by first_response_seconds)
            as median_first_response_seconds
    from first_responses
    group by agent_id, first_response_day
),

stacked as (
    select
        agent_id,
        activity_date,
        app_active_customers,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        cast(null as double precision) as median_first_response_seconds,
        0 as videos_shared,
        0 as videos_completed
    from app_active

    union all

    select
        agent_id,
        session_day as activity_date,
        0 as app_active_customers,
        cast(user_role = 'policyholder' as int) as app_sessions,
        cast(user_role = 'agent' as int) as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        cast(null as double precision) as median_first_response_seconds,
        0 as videos_shared,
        0 as videos_completed
    from sessions

    union all

    select
        agent_id,
        message_day as activity_date,
        0 as app_active_customers,
        0 as app_sessions,
        0 as agent_app_sessions,
        cast(direction = 'inbound' as int) as whatsapp_inbound,
        cast(is_outbound as int) as whatsapp_outbound,
        cast(is_outbound and has_known_state as int) as whatsapp_outbound_with_state,
        cast(is_outbound and is_delivered as int) as whatsapp_outbound_delivered,
        cast(is_outbound and is_read as int) as whatsapp_outbound_read,
        0 as first_responses,
        cast(null as double precision) as median_first_response_seconds,
        0 as videos_shared,
        0 as videos_completed
    from messages

    union all

    select
        agent_id,
        activity_date,
        0 as app_active_customers,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        first_responses,
        median_first_response_seconds,
        0 as videos_shared,
        0 as videos_completed
    from responses

    union all

    select
        agent_id,
        share_day as activity_date,
        0 as app_active_customers,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        cast(null as double precision) as median_first_response_seconds,
        1 as videos_shared,
        0 as videos_completed
    from shares

    union all

    select
        agent_id,
        view_day as activity_date,
        0 as app_active_customers,
        0 as app_sessions,
        0 as agent_app_sessions,
        0 as whatsapp_inbound,
        0 as whatsapp_outbound,
        0 as whatsapp_outbound_with_state,
        0 as whatsapp_outbound_delivered,
        0 as whatsapp_outbound_read,
        0 as first_responses,
        cast(null as double precision) as median_first_response_seconds,
        0 as videos_shared,
        1 as videos_completed
    from content_views
),

daily as (
    select
        agent_id,
        activity_date,
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
    group by agent_id, activity_date
)

select
    daily.agent_id,
    daily.activity_date,
    agents.provider_id,
    daily.app_active_customers,
    daily.app_sessions,
    daily.agent_app_sessions,
    daily.whatsapp_inbound,
    daily.whatsapp_outbound,
    daily.whatsapp_outbound_with_state,
    daily.whatsapp_outbound_delivered,
    daily.whatsapp_outbound_read,
    cast(
        daily.whatsapp_outbound_read * 1.0
        / nullif(daily.whatsapp_outbound_with_state, 0) as numeric(6, 4)
    ) as read_rate,
    daily.first_responses,
    cast(daily.median_first_response_seconds as numeric(12, 1))
        as median_first_response_seconds,
    daily.videos_shared,
    daily.videos_completed
from daily
inner join agents on daily.agent_id = agents.agent_id
