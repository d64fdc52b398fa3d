{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['session_id'],
        on_schema_change='fail',
        pre_hook="{{ set_received_since(var('late_arrival_days')) }}",
    )
}}

-- One row per app session. A run writes the sessions whose latest event reached the platform
-- in its window (`last_received_day`), each computed from all of its events received so far:
-- events queued offline that arrive days later rewrite their session in the run of their
-- arrival day, and a day-by-day build equals a full build. Analysts read it by `session_day`.
with sessions as (
    select * from {{ ref('int_app_sessions') }}
)

select
    session_id,
    user_id,
    user_role,
    policyholder_id,
    agent_id,
    provider_id,
    session_day,
    started_at,
    ended_at,
    duration_seconds,
    event_count,
    screen_view_count,
    distinct_screen_count,
    app_version,
    os_name,
    first_received_day,
    last_received_day
from sessions
where {{ in_window('last_received_day') }}
