-- One row per premium instalment due, with its grace period and its outcome as of the data's
-- last day. A table rebuilt whole, not an incremental fact: an old due's outcome still changes
-- when its policy is revived, up to years later.
with dues as (
    select * from {{ ref('int_premium_dues_matched') }}
)

select
    premium_payment_id,
    policy_id,
    policyholder_id,
    agent_id,
    provider_id,
    installment_number,
    premium_mode,
    issue_date,
    due_date,
    grace_days,
    grace_end_date,
    policy_month,
    policy_year,
    is_first_year,
    is_renewal,
    amount_due,
    amount_paid,
    paid_at,
    paid_on,
    days_paid_after_due,
    payment_channel,
    outcome,
    payment_status as app_payment_status,
    is_paid_by_grace_end,
    is_unpaid_at_grace_end,
    is_lapse_trigger,
    is_arrears,
    is_renewal_due,
    lapsed_on,
    revived_on,
    as_of_date
from dues
