-- One row per delivery status of a message (its key and status), the first copy received. Reads
-- the receipt days from `received_since()` on: all of them, unless an incremental model's
-- transaction asks for fewer (macros/partition_window.sql).
with first_copies as (
    {{ first_copies_received('whatsapp', 'whatsapp_statuses', ['wamid_token', 'status']) }}
)

select
    wamid_token as message_key,
    status as delivery_status,
    status_at,
    received_day,
    recipient_user_id,
    error_code,
    pricing_category
from first_copies
