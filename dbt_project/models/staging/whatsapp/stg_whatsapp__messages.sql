-- One row per WhatsApp message (wamid), webhook or chat export, the first copy received; no
-- message text or phone token (those stay in raw). Reads the receipt days from
-- `received_since()` on: all of them, unless an incremental model's transaction asks for fewer
-- (macros/partition_window.sql).
with source as (
    select * from {{ source('whatsapp', 'whatsapp_messages') }}
    where received_day >= {{ received_since() }}
),

ranked as (
    select
        *,
        row_number() over (partition by wamid order by received_at, received_day) as copy_number
    from source
)

select
    wamid,
    received_day,
    received_at,
    sent_at,
    cast(sent_at at time zone 'Asia/Kolkata' as date) as sent_on,
    source as message_source,
    phone_number_id,
    direction,
    customer_user_id,
    message_type,
    context_wamid
from ranked
where copy_number = 1
