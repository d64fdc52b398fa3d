{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['content_view_id'],
        on_schema_change='fail',
        pre_hook="{{ set_received_since(var('late_arrival_days')) }}",
    )
}}

-- One row per view of a video by a policyholder (a start and the progress that followed it in
-- one app session). A run writes the views whose latest event reached the platform in its
-- window (`last_received_day`), so late events rewrite their view; read it by `view_day`.
with content_views as (
    select * from {{ ref('int_content_views') }}
)

select
    content_view_id,
    session_id,
    policyholder_id,
    agent_id,
    provider_id,
    video_id,
    language,
    view_day,
    started_at,
    is_started,
    max_progress_percent,
    is_completed,
    watch_seconds,
    last_received_day
from content_views
where {{ in_window('last_received_day') }}
