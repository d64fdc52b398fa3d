-- One row per WhatsApp message, webhook or chat export, the first copy received; keyed by the
-- keyed token of its wamid, with no message text, phone token or Meta id (those stay in raw).
-- Reads the receipt days from `received_since()` on: all of them, unless an incremental model's
-- transaction asks for fewer (macros/partition_window.sql).
with first_copies as (
    {{ first_copies_received('whatsapp', 'whatsapp_messages', ['wamid_token']) }}
)

select
    wamid_token as message_key,
    received_day,
    received_at,
    sent_at,
    cast(sent_at at time zone 'Asia/Kolkata' as date) as sent_on,
    source as message_source,
    phone_number_id,
    direction,
    customer_user_id,
    message_type,
    coalesce(edited, false) as is_marked_edited,
    context_wamid_token as context_message_key
from first_copies
