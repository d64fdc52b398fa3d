-- One row per WhatsApp call event (connect, status, terminate) between a customer and an
-- agent's business number, the first copy received; calls are keyed by the token of Meta's
-- call id, which like a message id embeds the caller's phone number.
-- Reads the receipt days from `received_since()` on (macros/partition_window.sql).
with first_copies as (
    {{ first_copies_received('whatsapp', 'whatsapp_calls', ['call_id_token', 'event', 'status']) }}
)

select
    call_id_token as call_key,
    event as call_event,
    status as call_status,
    direction as call_direction,
    event_at,
    started_at,
    ended_at,
    duration_s as duration_seconds,
    phone_number_id,
    customer_user_id,
    error_code,
    received_day
from first_copies
