-- The current delivery state of each message, by the one-way rank sent < delivered < read.
select
    wamid_token as message_key,
    state as delivery_state,
    state_at,
    failed as has_failed,
    failed_at,
    error_code,
    last_status_at
from {{ source('whatsapp', 'whatsapp_message_states') }}
