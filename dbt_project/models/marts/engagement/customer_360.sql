-- One row per policyholder: their policies and premiums, and how they engage through the app,
-- WhatsApp and videos, as of the last day of data in the warehouse (`as_of_date`: the latest
-- of the last app session day, the last WhatsApp message day and the premium data's as-of
-- day), so that "the last 30 days" means the same thing on a replayed or simulated history as
-- in production.
--
-- Premiums come from fct_premium_dues (grace periods and payments as of the premium data's
-- day, one definition with the premium marts); the next scheduled due, which no instalment row
-- holds yet, from the policies' schedules.
with policyholders as (
    select * from {{ ref('stg_operational__policyholders') }}
),

policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('fct_premium_dues') }}
),

sessions as (
    select * from {{ ref('fct_app_sessions') }}
    where user_role = 'policyholder'
),

messages as (
    select * from {{ ref('fct_whatsapp_messages') }}
    where policyholder_id is not null
),

content_views as (
    select * from {{ ref('fct_content_views') }}
),

as_of as (
    select
        greatest(
            (select max(session_day) from sessions),
            (select max(message_day) from {{ ref('fct_whatsapp_messages') }}),
            (select max(as_of_date) from dues)
        ) as as_of_date
),

policy_counts as (
    select
        policyholder_id,
        count(*) as policies_held,
        count(*) filter (where is_in_force) as policies_in_force,
        sum({{ annualised_premium_equivalent('premium_amount', 'premium_mode') }})
        filter (where is_in_force) as annualised_premium_in_force
    from policies
    group by policyholder_id
),

instalments_of_holders as (
    select
        dues.*,
        policies.is_in_force,
        as_of.as_of_date as customer_as_of_date
    from dues
    inner join policies on dues.policy_id = policies.policy_id
    cross join as_of
),

payment_history as (
    select
        policyholder_id,
        max(paid_on) as last_payment_on,
        count(*) filter (
            where
            due_date >= customer_as_of_date - interval '12 months'
            and due_date < customer_as_of_date
            and (paid_on is null or paid_on > due_date)
        ) as late_instalments_12m,
        count(*) filter (
            where
            premium_mode != 'single'
            and due_date >= customer_as_of_date - interval '12 months'
            and is_unpaid_at_grace_end
        ) as lapsed_instalments_12m
    from instalments_of_holders
    group by policyholder_id
),

last_payments as (
    select
        instalments_of_holders.policyholder_id,
        sum(instalments_of_holders.amount_paid) as last_payment_amount
    from instalments_of_holders
    inner join payment_history
        on
            instalments_of_holders.policyholder_id = payment_history.policyholder_id
            and instalments_of_holders.paid_on = payment_history.last_payment_on
    group by instalments_of_holders.policyholder_id
),

-- Per in-force policy, the premium to pay next: the earliest instalment still unpaid within
-- its grace period, else the next one the schedule (issue date plus whole multiples of the
-- mode's months) brings after the as-of date, within the premium-paying term.
outstanding as (
    select distinct on (policy_id)
        policy_id,
        due_date,
        amount_due
    from instalments_of_holders
    where
        is_in_force
        and due_date <= customer_as_of_date
        and grace_end_date >= customer_as_of_date
        and paid_on is null
    order by policy_id, due_date
),

schedules as (
    select
        policies.policy_id,
        policies.issue_date,
        policies.maturity_date,
        policies.premium_amount,
        policies.premium_paying_term_years * 12 as paying_term_months,
        {{ months_between_premiums('policies.premium_mode') }} as step_months,
        cast(
            (extract(year from as_of.as_of_date) - extract(year from policies.issue_date)) * 12
            + extract(month from as_of.as_of_date) - extract(month from policies.issue_date)
            as int
        ) as months_elapsed,
        as_of.as_of_date
    from policies
    cross join as_of
    where policies.is_in_force and policies.premium_mode != 'single'
),

-- The due dates of the as-of date's month's period and the next one: the first of them after
-- the as-of date is the next scheduled one.
schedule_candidates as (
    select
        schedules.policy_id,
        schedules.premium_amount,
        schedules.maturity_date,
        schedules.paying_term_months,
        schedules.as_of_date,
        period_number * schedules.step_months as months_after_issue,
        cast(
            schedules.issue_date + make_interval(months => period_number * schedules.step_months)
            as date
        ) as due_date
    from schedules
    cross join lateral generate_series(
        schedules.months_elapsed / schedules.step_months,
        schedules.months_elapsed / schedules.step_months + 1
    ) as period_number
),

scheduled as (
    select distinct on (policy_id)
        policy_id,
        due_date,
        premium_amount as amount_due
    from schedule_candidates
    where
        due_date > as_of_date
        and months_after_issue < paying_term_months
        and due_date < maturity_date
    order by policy_id, due_date
),

next_premiums as (
    select
        policies.policyholder_id,
        coalesce(outstanding.due_date, scheduled.due_date) as due_date,
        case
            when outstanding.policy_id is not null then outstanding.amount_due
            else scheduled.amount_due
        end as amount_due
    from policies
    left join outstanding on policies.policy_id = outstanding.policy_id
    left join scheduled on policies.policy_id = scheduled.policy_id
    where coalesce(outstanding.due_date, scheduled.due_date) is not null
),

next_due as (
    select distinct on (policyholder_id)
        policyholder_id,
        due_date as next_due_date,
        sum(amount_due) over (partition by policyholder_id, due_date) as next_due_amount
    from next_premiums
    order by policyholder_id, due_date
),

app_activity as (
    select
        sessions.policyholder_id,
        count(*) filter (
            where sessions.session_day > as_of.as_of_date - 30
        ) as app_sessions_30d,
        max(sessions.ended_at) as last_app_activity_at
    from sessions
    cross join as_of
    where sessions.session_day <= as_of.as_of_date
    group by sessions.policyholder_id
),

whatsapp_activity as (
    select
        messages.policyholder_id,
        count(*) filter (where messages.direction = 'inbound') as whatsapp_inbound_30d,
        count(*) filter (where messages.direction = 'outbound') as whatsapp_outbound_30d
    from messages
    cross join as_of
    where
        messages.message_day > as_of.as_of_date - 30
        and messages.message_day <= as_of.as_of_date
    group by messages.policyholder_id
),

video_activity as (
    select
        policyholder_id,
        count(distinct video_id) as videos_watched,
        count(distinct video_id) filter (where is_completed) as videos_completed
    from content_views
    group by policyholder_id
)

select
    policyholders.policyholder_id,
    policyholders.provider_id,
    policyholders.agent_id,
    as_of.as_of_date,
    coalesce(policy_counts.policies_held, 0) as policies_held,
    coalesce(policy_counts.policies_in_force, 0) as policies_in_force,
    cast(
        coalesce(policy_counts.annualised_premium_in_force, 0) as numeric(16, 2)
    ) as annualised_premium_in_force,
    next_due.next_due_date,
    cast(next_due.next_due_amount as numeric(14, 2)) as next_due_amount,
    payment_history.last_payment_on,
    cast(last_payments.last_payment_amount as numeric(14, 2)) as last_payment_amount,
    coalesce(payment_history.late_instalments_12m, 0) as late_instalments_12m,
    coalesce(payment_history.lapsed_instalments_12m, 0) as lapsed_instalments_12m,
    coalesce(app_activity.app_sessions_30d, 0) as app_sessions_30d,
    app_activity.last_app_activity_at,
    coalesce(whatsapp_activity.whatsapp_inbound_30d, 0) as whatsapp_inbound_30d,
    coalesce(whatsapp_activity.whatsapp_outbound_30d, 0) as whatsapp_outbound_30d,
    coalesce(video_activity.videos_watched, 0) as videos_watched,
    coalesce(video_activity.videos_completed, 0) as videos_completed
from policyholders
cross join as_of
left join policy_counts on policyholders.policyholder_id = policy_counts.policyholder_id
left join next_due on policyholders.policyholder_id = next_due.policyholder_id
left join payment_history on policyholders.policyholder_id = payment_history.policyholder_id
left join last_payments on policyholders.policyholder_id = last_payments.policyholder_id
left join app_activity on policyholders.policyholder_id = app_activity.policyholder_id
left join whatsapp_activity on policyholders.policyholder_id = whatsapp_activity.policyholder_id
left join video_activity on policyholders.policyholder_id = video_activity.policyholder_id
