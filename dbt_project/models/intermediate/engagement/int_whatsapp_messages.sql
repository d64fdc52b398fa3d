-- One row per WhatsApp message between an agent and a customer, whichever way it reached us:
-- sent from the app (`app`, outbound, with agent and policyholder), received by the webhook
-- (`webhook`, inbound from the customer) or read from a chat export an agent uploaded
-- (`chat_export`, both directions).
--
-- Who is who:
-- - app messages name their agent and policyholder;
-- - a webhook message reached the agent whose WhatsApp number (`phone_number_id`) received it;
--   its policyholder is the one of the agent's app message it quotes (`context_message_key`), else
--   the customer of that agent whose business-scoped user id (BSUID) the agent's app messages
--   were delivered to (status webhooks carry the recipient's BSUID); customers known only by
--   phone number who write unprompted stay unresolved, as staging keeps no phone token;
-- - a chat export names neither the agent nor the customer in staging: both stay null.
--
-- Edits and revokes ("delete for everyone") change their message, never add one: `is_edited`,
-- `is_deleted` (a revoke, or a chat export's "This message was deleted" line) and `deleted_at`.
--
-- `last_update_day` is the latest day anything about the row reached the platform: the message,
-- a status of it, or an edit or revoke of it.
--
-- Only the messages of the receipt days from `received_since()` on (all of them unless an
-- incremental model asks for fewer, macros/partition_window.sql); the lookups (app messages
-- quoted, customers' BSUIDs, delivery states) cover all history.
--
-- Lookups are materialised once: right after a load the warehouse's tables may have no planner
-- statistics, and a nested loop over a materialised lookup stays cheap.
with app_messages as materialized (
    select * from {{ ref('stg_operational__whatsapp_outbound_messages') }}
),

received_messages as (
    select * from {{ ref('stg_whatsapp__messages') }}
),

states as materialized (
    select * from {{ ref('stg_whatsapp__message_states') }}
),

statuses as (
    select * from {{ ref('stg_whatsapp__statuses') }}
),

agents as materialized (
    select * from {{ ref('stg_operational__agents') }}
),

bsuid_policyholders as materialized (
    select * from {{ ref('int_whatsapp_customer_ids') }}
),

edits as materialized (
    select
        message_key,
        bool_or(edit_action = 'edit') as is_edited,
        bool_or(edit_action = 'revoke') as is_revoked,
        min(edited_at) filter (where edit_action = 'revoke') as revoked_at,
        max(received_day) as last_edit_received_day
    from {{ ref('stg_whatsapp__message_edits') }}
    group by message_key
),

status_arrivals as materialized (
    select
        message_key,
        max(received_day) as last_status_received_day
    from statuses
    group by message_key
),

from_app as (
    select
        app_messages.message_key,
        'app' as message_source,
        'outbound' as direction,
        app_messages.agent_id,
        app_messages.policyholder_id,
        app_messages.sent_at,
        app_messages.sent_on as message_day,
        case when app_messages.template_id is null then 'text' else 'template' end
            as message_type,
        app_messages.template_id,
        false as is_marked_edited,
        cast(null as text) as context_message_key,
        -- The app's row reaches the warehouse with the day's extract.
        app_messages.sent_on as received_day
    from app_messages
    -- As the webhook and export messages are read from received_since() on (staging).
    where app_messages.sent_on >= {{ received_since() }}
),

from_webhooks_and_exports as (
    select
        received_messages.message_key,
        received_messages.message_source,
        received_messages.direction,
        agents.agent_id,
        coalesce(quoted.policyholder_id, bsuid_policyholders.policyholder_id)
            as policyholder_id,
        received_messages.sent_at,
        received_messages.sent_on as message_day,
        received_messages.message_type,
        cast(null as uuid) as template_id,
        received_messages.is_marked_edited,
        received_messages.context_message_key,
        received_messages.received_day
    from received_messages
    left join agents
        on received_messages.phone_number_id = agents.whatsapp_phone_number_id
    left join app_messages as quoted
        on
            received_messages.context_message_key = quoted.message_key
            and agents.agent_id = quoted.agent_id
    left join bsuid_policyholders
        on
            agents.agent_id = bsuid_policyholders.agent_id
            and received_messages.customer_user_id = bsuid_policyholders.recipient_user_id
),

unioned as (
    select * from from_app
    union all
    select * from from_webhooks_and_exports
)

select
    unioned.message_key,
    unioned.message_source,
    unioned.direction,
    unioned.agent_id,
    agents.provider_id,
    unioned.policyholder_id,
    unioned.sent_at,
    unioned.message_day,
    unioned.message_type,
    unioned.template_id,
    unioned.context_message_key,
    case
        when states.has_failed then 'failed'
        else states.delivery_state
    end as delivery_state,
    states.has_failed,
    states.error_code,
    states.message_key is not null as has_known_state,
    -- A voice note's `played` ranks above `read`: it was delivered and read too.
    coalesce(states.delivery_state in ('delivered', 'read', 'played'), false) as is_delivered,
    coalesce(states.delivery_state in ('read', 'played'), false) as is_read,
    coalesce(edits.is_edited, false) or unioned.is_marked_edited as is_edited,
    coalesce(edits.is_revoked or unioned.message_type = 'deleted', false) as is_deleted,
    edits.revoked_at as deleted_at,
    unioned.received_day,
    greatest(
        unioned.received_day,
        status_arrivals.last_status_received_day,
        edits.last_edit_received_day
    ) as last_update_day
from unioned
left join agents on unioned.agent_id = agents.agent_id
left join states on unioned.message_key = states.message_key
left join status_arrivals on unioned.message_key = status_arrivals.message_key
left join edits on unioned.message_key = edits.message_key
