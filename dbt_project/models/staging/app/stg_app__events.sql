-- One row per app event: the first copy received of each messageId, across receipt days (a
-- retried batch can reach the platform on a later day than the original). Reads the receipt
-- days from `received_since()` on: all of them, unless an incremental model's transaction asks
-- for fewer (macros/partition_window.sql).
with first_copies as (
    {{ first_copies_received('app', 'app_events', ['message_id']) }}
)

select
    message_id,
    received_day,
    type as event_type,
    event_name,
    user_id,
    anonymous_id,
    session_id,
    event_timestamp,
    event_day,
    received_at,
    properties,
    app_version,
    os_name,
    device_model,
    locale
from first_copies
