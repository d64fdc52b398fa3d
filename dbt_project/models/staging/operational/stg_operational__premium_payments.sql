-- One row per premium instalment due; the paid day is the Indian calendar day of payment.
with source as (
    select * from {{ source('operational', 'premium_payments') }}
)

select
    id as premium_payment_id,
    provider_id,
    policy_id,
    installment_number,
    due_date,
    premium_mode,
    cast(amount as numeric(12, 2)) as amount_due,
    status as payment_status,
    paid_at,
    cast(paid_at at time zone 'Asia/Kolkata' as date) as paid_on,
    cast(paid_amount as numeric(12, 2)) as amount_paid,
    payment_channel,
    created_at,
    updated_at
from source
where _deleted_at is null
