{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['message_key'],
        on_schema_change='fail'
    )
}}

-- One row per WhatsApp message, in and out: sent from the app, received by the webhook or read
-- from an uploaded chat export. A run writes the messages about which something reached the
-- platform in its window (`last_update_day`: the message itself, a delivery status, or the
-- agent's first response to an inbound message), so statuses and chat exports arriving days
-- later rewrite their message; read it by `message_day`.
with messages as (
    select * from {{ ref('int_whatsapp_messages') }}
),

first_responses as (
    select * from {{ ref('int_whatsapp_first_responses') }}
),

joined as (
    select
        messages.message_key,
        messages.message_source,
        messages.direction,
        messages.agent_id,
        messages.provider_id,
        messages.policyholder_id,
        messages.sent_at,
        messages.message_day,
        messages.message_type,
        messages.template_id,
        messages.context_message_key,
        messages.delivery_state,
        messages.has_failed,
        messages.error_code,
        messages.is_delivered,
        messages.is_read,
        messages.is_edited,
        messages.is_deleted,
        messages.deleted_at,
        first_responses.is_run_start,
        first_responses.run_start_message_key,
        first_responses.first_response_message_key,
        first_responses.first_response_at,
        first_responses.first_response_seconds,
        messages.received_day,
        greatest(messages.last_update_day, first_responses.first_response_received_day)
            as last_update_day
    from messages
    left join first_responses on messages.message_key = first_responses.message_key
)

select * from joined
where {{ in_window('last_update_day') }}
