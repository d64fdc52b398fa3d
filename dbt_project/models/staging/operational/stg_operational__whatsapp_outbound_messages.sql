-- One row per message the app sent through WhatsApp: who sent it to whom, with which template.
with source as (
    select * from {{ source('operational', 'whatsapp_outbound') }}
)

select
    wamid_token as message_key,
    provider_id,
    agent_id,
    policyholder_id,
    template_id,
    sent_at,
    cast(sent_at at time zone 'Asia/Kolkata' as date) as sent_on
from source
where _deleted_at is null
