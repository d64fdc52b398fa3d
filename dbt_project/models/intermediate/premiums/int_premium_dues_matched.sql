{#-
    A table, not a view: every premium mart reads it, and its lapse and revival matching is the
    costliest step; analysed after the build so the marts' plans see its real size.
-#}
{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- One row per premium instalment, matched to its policy, with its grace period, its place in the
-- policy's life and its outcome as of the data's last day (DESIGN §6; doc blocks in
-- models/marts/premiums/_premiums__docs.md). Lapses and revivals are rebuilt from the dates of
-- dues and payments, not read from the app's statuses.
with payments as (
    select * from {{ ref('stg_operational__premium_payments') }}
),

policies as (
    select * from {{ ref('stg_operational__policies') }}
),

-- The day the premium data reaches: the IST day of its latest change (a payment, a new due),
-- never later than today. `--vars '{as_of_date: ...}'` pins it (unit tests, restatements).
as_of as (
    select
        {% if var('as_of_date', none) %}
            cast('{{ var("as_of_date") }}' as date) as as_of_date
        {% else %}
            least(
                coalesce(
                    (select max({{ ist_date('updated_at') }}) from payments),
                    {{ ist_date('current_timestamp') }}
                ),
                {{ ist_date('current_timestamp') }}
            ) as as_of_date
        {% endif %}
),

dues as (
    select
        payments.premium_payment_id,
        payments.policy_id,
        payments.provider_id,
        policies.agent_id,
        policies.policyholder_id,
        payments.installment_number,
        coalesce(payments.premium_mode, policies.premium_mode) as premium_mode,
        policies.issue_date,
        payments.due_date,
        payments.amount_due,
        payments.payment_status,
        as_of.as_of_date,
        -- A payment recorded after the as-of day has not happened yet.
        case when payments.paid_on <= as_of.as_of_date then payments.paid_at end as paid_at,
        case when payments.paid_on <= as_of.as_of_date then payments.paid_on end as paid_on,
        case
            when payments.paid_on <= as_of.as_of_date then payments.amount_paid
        end as amount_paid,
        case
            when payments.paid_on <= as_of.as_of_date then payments.payment_channel
        end as payment_channel,
        -- The day the policy left the book (death claim, maturity, surrender, free-look
        -- cancellation), as the app records it.
        case
            when
                policies.policy_status in ('matured', 'death_claim', 'surrendered', 'cancelled')
                then {{ ist_date('policies.status_changed_at') }}
        end as policy_exited_on
    from payments
    inner join policies on payments.policy_id = policies.policy_id
    cross join as_of
),

with_grace as (
    select
        *,
        {{ grace_days('premium_mode') }} as grace_days,
        due_date + {{ grace_days('premium_mode') }} as grace_end_date,
        coalesce(
            (installment_number - 1) * {{ months_between_premiums('premium_mode') }}, 0
        ) as months_since_issue
    from dues
),

flagged as (
    select
        *,
        months_since_issue + 1 as policy_month,
        months_since_issue / 12 + 1 as policy_year,
        paid_on is not null and paid_on <= grace_end_date as is_paid_by_grace_end,
        -- Grace is over when its last day is before the as-of day; unpaid then, the policy
        -- lapses the day after grace end (DESIGN §6).
        grace_end_date < as_of_date
        and (paid_on is null or paid_on > grace_end_date) as is_unpaid_at_grace_end,
        grace_end_date < as_of_date
        and (paid_on is null or paid_on > grace_end_date)
        and premium_mode <> 'single'
        and coalesce(payment_status, '') <> 'waived'
        and (policy_exited_on is null or policy_exited_on > grace_end_date) as is_missed
    from with_grace
),

-- Revival: the first payment of the policy on or after the day it lapsed. Payment days and
-- lapse days in one ordered list per policy; a lapse day sorts before payments of the same day.
policy_events as (
    select
        policy_id,
        premium_payment_id,
        grace_end_date + 1 as event_on,
        0 as event_order,
        policy_exited_on
    from flagged
    where is_missed

    union all

    select
        policy_id,
        premium_payment_id,
        paid_on as event_on,
        1 as event_order,
        policy_exited_on
    from flagged
    where paid_on is not null
),

next_payments as (
    select
        policy_id,
        premium_payment_id,
        event_on as missed_lapse_on,
        event_order,
        policy_exited_on,
        min(case when event_order = 1 then event_on end) over (
            partition by policy_id
            order by event_on, event_order
            rows between current row and unbounded following
        ) as next_payment_on
    from policy_events
),

missed as (
    select
        policy_id,
        premium_payment_id,
        missed_lapse_on,
        -- A payment after the policy left the book revives nothing.
        case
            when policy_exited_on is null or next_payment_on < policy_exited_on
                then next_payment_on
        end as revived_on
    from next_payments
    where event_order = 0
),

-- Missed dues with the same revival day (or none yet) fall in one lapse spell: the policy
-- lapsed on the earliest of their lapse days and stayed lapsed until the revival.
lapse_spells as (
    select
        policy_id,
        revived_on,
        min(missed_lapse_on) as lapsed_on
    from missed
    group by policy_id, revived_on
),

with_spells as (
    select
        flagged.*,
        lapse_spells.lapsed_on as spell_lapsed_on,
        lapse_spells.revived_on as spell_revived_on,
        missed.missed_lapse_on,
        missed.revived_on as missed_revived_on
    from flagged
    left join missed on flagged.premium_payment_id = missed.premium_payment_id
    -- The spell the policy was in on this due's last day of grace, if it was lapsed then.
    left join lapse_spells
        on
            flagged.policy_id = lapse_spells.policy_id
            and flagged.grace_end_date >= lapse_spells.lapsed_on
            and (
                lapse_spells.revived_on is null
                or flagged.grace_end_date < lapse_spells.revived_on
            )
),

classified as (
    select
        *,
        spell_lapsed_on is not null as is_arrears,
        is_missed and spell_lapsed_on is null as is_lapse_trigger,
        -- Renewal collection counts a regular renewal premium the policy owed when its grace
        -- ended: not waived, not fallen while the policy was already lapsed (arrears), not
        -- after the policy left the book.
        policy_year >= 2
        and premium_mode <> 'single'
        and coalesce(payment_status, '') <> 'waived'
        and spell_lapsed_on is null
        and (policy_exited_on is null or policy_exited_on > grace_end_date) as is_renewal_due
    from with_spells
)

select
    premium_payment_id,
    policy_id,
    provider_id,
    agent_id,
    policyholder_id,
    installment_number,
    premium_mode,
    issue_date,
    due_date,
    grace_days,
    grace_end_date,
    policy_month,
    policy_year,
    policy_year = 1 as is_first_year,
    policy_year >= 2 as is_renewal,
    amount_due,
    amount_paid,
    paid_at,
    paid_on,
    paid_on - due_date as days_paid_after_due,
    payment_channel,
    payment_status,
    policy_exited_on,
    is_paid_by_grace_end,
    is_unpaid_at_grace_end,
    is_missed,
    is_lapse_trigger,
    is_arrears,
    is_renewal_due,
    case
        when is_lapse_trigger then missed_lapse_on
        when is_arrears then spell_lapsed_on
    end as lapsed_on,
    case
        when is_lapse_trigger then missed_revived_on
        when is_arrears then spell_revived_on
    end as revived_on,
    case
        when paid_on <= due_date then 'paid_on_time'
        when paid_on <= grace_end_date then 'paid_in_grace'
        when payment_status = 'waived' then 'waived'
        when due_date > as_of_date then 'upcoming'
        when grace_end_date >= as_of_date then 'open'
        when policy_exited_on <= grace_end_date then 'exited'
        when premium_mode = 'single' then 'unpaid'
        when coalesce(missed_revived_on, spell_revived_on) is not null then 'revived'
        else 'lapsed'
    end as outcome,
    as_of_date
from classified
