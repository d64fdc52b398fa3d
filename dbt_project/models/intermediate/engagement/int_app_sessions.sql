-- One row per app session (the app's session_id): who it was, when it started and ended, what
-- happened in it. The session's day is the IST day of its first event, whatever day its events
-- were received on; `last_received_day` is the day its latest event reached the platform.
with events as (
    select * from {{ ref('stg_app__events') }}
),

-- Materialised once: right after a load the warehouse's tables may have no planner
-- statistics, and a nested loop over a materialised lookup stays cheap.
people as materialized (
    select * from {{ ref('int_app_users') }}
),

sessions as (
    select
        session_id,
        -- A session belongs to one user; the first event that names one decides.
        (
            array_agg(user_id order by event_timestamp, message_id)
            filter (where user_id is not null)
        )[1] as user_id,
        min(event_timestamp) as started_at,
        max(event_timestamp) as ended_at,
        min(event_day) as session_day,
        count(*) as event_count,
        count(*) filter (where event_type = 'screen') as screen_view_count,
        count(distinct event_name) filter (where event_type = 'screen') as distinct_screen_count,
        min(received_day) as first_received_day,
        max(received_day) as last_received_day,
        (array_agg(app_version order by event_timestamp, message_id))[1] as app_version,
        (array_agg(os_name order by event_timestamp, message_id))[1] as os_name
    from events
    where session_id is not null
    group by session_id
)

select
    sessions.session_id,
    sessions.user_id,
    coalesce(people.user_role, 'unknown') as user_role,
    people.policyholder_id,
    people.agent_id,
    people.provider_id,
    sessions.session_day,
    sessions.started_at,
    sessions.ended_at,
    cast(
        extract(epoch from sessions.ended_at - sessions.started_at) as numeric(12, 3)
    ) as duration_seconds,
    sessions.event_count,
    sessions.screen_view_count,
    sessions.distinct_screen_count,
    sessions.app_version,
    sessions.os_name,
    sessions.first_received_day,
    sessions.last_received_day
from sessions
left join people on sessions.user_id = people.user_id
