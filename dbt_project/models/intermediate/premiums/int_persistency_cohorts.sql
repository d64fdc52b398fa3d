-- One row per regular-premium policy and persistency month k (13, 25, 37, 49, 61): whether the
-- policy counts for its issue cohort at month k and whether it persisted, i.e. paid its month-k
-- premium (the anniversary due, issue date + k - 1 months) by the end of that due's grace period
-- (DESIGN §6, doc block `persistency`). Single-premium policies have no month-k premium and are
-- not here; proposals and free-look cancellations were never in force and are not here either.
with policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('int_premium_dues_matched') }}
),

persistency_months as (
    select persistency_month
    from (values (13), (25), (37), (49), (61)) as months (persistency_month)
),

issued as (
    select
        policy_id,
        provider_id,
        agent_id,
        issue_date,
        cast(date_trunc('month', issue_date) as date) as cohort_month,
        premium_mode,
        premium_paying_term_years,
        maturity_date,
        policy_status,
        {{ ist_date('status_changed_at') }} as status_changed_on,
        cast(
            {{ annualised_premium_equivalent('premium_amount', 'premium_mode') }}
            as numeric(16, 2)
        ) as annualised_premium
    from policies
    where
        premium_mode <> 'single'
        and issue_date is not null
        and policy_status not in ('proposed', 'cancelled')
),

policy_months as (
    select
        issued.*,
        persistency_months.persistency_month,
        cast(
            issued.issue_date + make_interval(months => persistency_months.persistency_month - 1)
            as date
        ) as anniversary_due_date,
        (persistency_months.persistency_month - 1)
        / {{ months_between_premiums('issued.premium_mode') }} + 1 as anniversary_installment,
        -- The cohort is reported at month k once every policy in it is past the grace of its
        -- month-k due: the cohort month k - 1 months on, to its last day, plus the longest grace
        -- (30 days), plus one day.
        cast(
            issued.cohort_month + make_interval(months => persistency_months.persistency_month)
            + interval '30 days' as date
        ) as reported_from
    from issued
    cross join persistency_months
),

anniversary_dues as (
    select
        policy_id,
        installment_number,
        grace_end_date,
        paid_on
    from dues
),

flagged as (
    select
        policy_months.*,
        anniversary_dues.grace_end_date as anniversary_grace_end_date,
        anniversary_dues.paid_on as anniversary_paid_on,
        -- The premium-paying term ended before month k: no premium is due then.
        policy_months.persistency_month - 1
        >= 12 * policy_months.premium_paying_term_years as is_premium_term_ended,
        -- Left by death or maturity before the anniversary due.
        coalesce(
            policy_months.policy_status in ('death_claim', 'matured')
            and policy_months.status_changed_on < policy_months.anniversary_due_date,
            false
        )
        or coalesce(
            policy_months.maturity_date < policy_months.anniversary_due_date, false
        ) as is_exited,
        coalesce(
            anniversary_dues.paid_on <= anniversary_dues.grace_end_date, false
        ) as is_anniversary_paid_in_grace
    from policy_months
    left join anniversary_dues
        on
            policy_months.policy_id = anniversary_dues.policy_id
            and policy_months.anniversary_installment = anniversary_dues.installment_number
)

select
    policy_id,
    persistency_month,
    provider_id,
    agent_id,
    cohort_month,
    issue_date,
    premium_mode,
    annualised_premium,
    anniversary_due_date,
    anniversary_installment,
    anniversary_grace_end_date,
    anniversary_paid_on,
    reported_from,
    is_premium_term_ended,
    is_exited,
    not is_premium_term_ended and not is_exited as is_eligible,
    not is_premium_term_ended and not is_exited and is_anniversary_paid_in_grace
        as is_persisting
from flagged
