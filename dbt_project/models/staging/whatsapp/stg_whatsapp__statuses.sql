-- One row per delivery status of a message (its key and status), the first copy received. Reads
-- the receipt days from `received_since()` on: all of them, unless an incremental model's
-- transaction asks for fewer (macros/partition_window.sql).
with source as (
    select * from {{ source('whatsapp', 'whatsapp_statuses') }}
    where received_day >= {{ received_since() }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by wamid_token, status order by received_at, received_day
        ) as copy_number
    from source
)

select
    wamid_token as message_key,
    status as delivery_status,
    status_at,
    received_day,
    recipient_user_id,
    error_code,
    pricing_category
from ranked
where copy_number = 1
