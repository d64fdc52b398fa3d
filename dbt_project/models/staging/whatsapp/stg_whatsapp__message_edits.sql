-- One row per edit or revoke ("delete for everyone") of a WhatsApp message, by the customer
-- (webhook) or by the agent in the WhatsApp Business app (echo), the first copy received; keyed
-- by the event's own token, pointing at the message it changes. No new text (raw only).
-- Reads the receipt days from `received_since()` on (macros/partition_window.sql).
with first_copies as (
    {{ first_copies_received('whatsapp', 'whatsapp_message_edits', ['wamid_token']) }}
)

select
    wamid_token as edit_key,
    original_wamid_token as message_key,
    action as edit_action,
    new_message_type,
    edited_at,
    source as edit_source,
    phone_number_id,
    received_day
from first_copies
