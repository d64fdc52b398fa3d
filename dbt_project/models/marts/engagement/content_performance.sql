-- One row per video in the library: how policyholders watched it and how often agents shared
-- it. Share events do not name their recipient, so views cannot be credited to the share that
-- prompted them: there is no share-to-view conversion here.
with videos as (
    select * from {{ ref('dim_content') }}
),

content_views as (
    select * from {{ ref('fct_content_views') }}
),

shares as (
    select * from {{ ref('int_video_shares') }}
),

viewing as (
    select
        video_id,
        count(*) as total_views,
        count(distinct policyholder_id) as unique_viewers,
        count(*) filter (where is_completed) as completed_views,
        avg(max_progress_percent) as average_percent_watched,
        sum(watch_seconds) as completed_watch_seconds,
        min(view_day) as first_view_day,
        max(view_day) as last_view_day
    from content_views
    group by video_id
),

sharing as (
    select
        video_id,
        count(*) filter (where sharer_role = 'agent') as agent_shares,
        count(distinct agent_id) filter (where sharer_role = 'agent') as sharing_agents,
        count(*) filter (where sharer_role = 'policyholder') as policyholder_shares
    from shares
    group by video_id
)

select
    videos.video_id,
    videos.provider_id,
    videos.title,
    videos.category,
    videos.language,
    videos.duration_seconds,
    coalesce(viewing.total_views, 0) as total_views,
    coalesce(viewing.unique_viewers, 0) as unique_viewers,
    coalesce(viewing.completed_views, 0) as completed_views,
    cast(
        viewing.completed_views * 1.0 / nullif(viewing.total_views, 0) as numeric(6, 4)
    ) as completion_rate,
    cast(viewing.average_percent_watched as numeric(5, 1)) as average_percent_watched,
    coalesce(viewing.completed_watch_seconds, 0) as completed_watch_seconds,
    viewing.first_view_day,
    viewing.last_view_day,
    coalesce(sharing.agent_shares, 0) as agent_shares,
    coalesce(sharing.sharing_agents, 0) as sharing_agents,
    coalesce(sharing.policyholder_shares, 0) as policyholder_shares
from videos
left join viewing on videos.video_id = viewing.video_id
left join sharing on videos.video_id = sharing.video_id
