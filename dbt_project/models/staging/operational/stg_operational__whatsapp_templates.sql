-- One row per WhatsApp message template an insurer registered with Meta.
with source as (
    select * from {{ source('operational', 'whatsapp_templates') }}
)

select
    id as template_id,
    provider_id,
    name as template_name,
    language,
    category as template_category,
    approval_status,
    created_at,
    updated_at
from source
where _deleted_at is null
