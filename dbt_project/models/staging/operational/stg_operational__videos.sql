-- One row per educational video in the content library.
with source as (
    select * from {{ source('operational', 'video_content') }}
)

select
    id as video_id,
    provider_id,
    uploaded_by_agent_id,
    title,
    category,
    language,
    duration_seconds,
    policy_types,
    status as video_status,
    published_at,
    created_at,
    updated_at
from source
where _deleted_at is null
