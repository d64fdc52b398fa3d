-- One row per educational video in the content library.
with videos as (
    select * from {{ ref('stg_operational__videos') }}
)

select
    video_id,
    provider_id,
    uploaded_by_agent_id,
    title,
    category,
    language,
    policy_types,
    duration_seconds,
    video_status,
    published_at
from videos
