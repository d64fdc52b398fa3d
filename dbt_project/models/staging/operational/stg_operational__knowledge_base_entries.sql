-- One row per chatbot knowledge-base entry.
with source as (
    select * from {{ source('operational', 'chatbot_knowledge_base') }}
)

select
    id as entry_id,
    provider_id,
    category,
    question,
    language,
    is_active,
    usage_count,
    created_at,
    updated_at
from source
where _deleted_at is null
