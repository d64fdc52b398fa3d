{{ config(materialized='table') }}
-- Each agent's customers by their WhatsApp business-scoped user id (BSUID): the recipient id
-- the status webhooks of the agent's app messages carried, kept only where it names one
-- policyholder of that agent. A table built from all history, so that an incremental model
-- reading only recent messages still resolves a customer first seen long ago.
with app_messages as (
    select * from {{ ref('stg_operational__whatsapp_outbound_messages') }}
),

statuses as (
    select * from {{ ref('stg_whatsapp__statuses') }}
)

select
    app_messages.agent_id,
    statuses.recipient_user_id,
    cast(min(cast(app_messages.policyholder_id as text)) as uuid) as policyholder_id
from statuses
inner join app_messages on statuses.message_key = app_messages.message_key
where statuses.recipient_user_id is not null
group by app_messages.agent_id, statuses.recipient_user_id
having count(distinct app_messages.policyholder_id) = 1
