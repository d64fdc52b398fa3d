-- One row per view of a video by a policyholder: a `video_started` and the progress and
-- completion events of the same video that follow it in the same app session, up to the next
-- start of that video there. Agents' previews are not views. Progress events seen before any
-- start (the start lost) make a view of their own that was not seen starting.
{% set uuid_pattern = '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' %}

with video_events as (
    select
        message_id,
        session_id,
        user_id,
        event_name,
        event_timestamp,
        event_day,
        received_day,
        cast(properties as jsonb) as props
    from {{ ref('stg_app__events') }}
    where event_name in ('video_started', 'video_progress', 'video_completed')
),

-- Lookups materialised once: right after a load the warehouse's tables may have no planner
-- statistics, and a nested loop over a materialised lookup stays cheap.
policyholders as materialized (
    select * from {{ ref('int_app_users') }}
    where user_role = 'policyholder'
),

videos as materialized (
    select * from {{ ref('stg_operational__videos') }}
),

numbered as (
    select
        *,
        props ->> 'video_id' as video_id,
        -- Starts of this video so far in the session: the view each event belongs to.
        count(*) filter (where event_name = 'video_started') over (
            partition by session_id, props ->> 'video_id'
            order by event_timestamp, event_name != 'video_started', message_id
            rows between unbounded preceding and current row
        ) as view_number
    from video_events
    where props ->> 'video_id' ~* '{{ uuid_pattern }}'
),

views as (
    select
        session_id,
        video_id,
        view_number,
        (array_agg(message_id order by event_timestamp, message_id))[1] as content_view_id,
        (array_agg(user_id order by event_timestamp, message_id))[1] as user_id,
        min(event_timestamp) as started_at,
        min(event_day) as view_day,
        bool_or(event_name = 'video_started') as is_started,
        bool_or(event_name = 'video_completed') as is_completed,
        max(
            case
                when event_name = 'video_completed' then 100
                when
                    event_name = 'video_progress' and props ->> 'percent' ~ '^[0-9]{1,3}$'
                    then cast(props ->> 'percent' as int)
                else 0
            end
        ) as max_progress_percent,
        max(cast(props ->> 'watch_seconds' as numeric)) filter (
            where
            event_name = 'video_completed'
            and props ->> 'watch_seconds' ~ '^[0-9]{1,9}(\.[0-9]+)?$'
        ) as watch_seconds,
        max(received_day) as last_received_day
    from numbered
    group by session_id, video_id, view_number
)

select
    views.content_view_id,
    views.session_id,
    policyholders.policyholder_id,
    policyholders.agent_id,
    policyholders.provider_id,
    cast(views.video_id as uuid) as video_id,
    videos.language,
    views.view_day,
    views.started_at,
    views.is_started,
    views.max_progress_percent,
    views.is_completed,
    cast(views.watch_seconds as int) as watch_seconds,
    views.last_received_day
from views
inner join policyholders on views.user_id = policyholders.user_id
left join videos on cast(views.video_id as uuid) = videos.video_id
