-- Persistency of each agent's issue cohorts at months 13, 25, 37, 49 and 61, by count and by
-- annualised premium (DESIGN §6): one row per agent, cohort month and persistency month, for
-- every cohort month from the agent's first regular-premium policy to the latest cohort reported
-- as of the data's last day (months without a policy issued hold zeros). Each row also rolls the
-- agent's 12 cohort months ending with it into one window, the way insurers disclose it.
with cohorts as (
    select * from {{ ref('int_persistency_cohorts') }}
),

agents as (
    select * from {{ ref('stg_operational__agents') }}
),

-- One row, its value computed once (a scalar subquery), however often it is joined.
as_of as (
    select (select max(as_of_date) from {{ ref('int_premium_dues_matched') }}) as as_of_date
),

-- The latest cohort month reported at month k: its month-k grace ended before the as-of day.
latest_reported as (
    select
        months.persistency_month,
        cast(
            date_trunc('month', as_of.as_of_date - 30)
            - make_interval(months => months.persistency_month) as date
        ) as last_cohort_month
    from as_of
    cross join (values (13), (25), (37), (49), (61)) as months (persistency_month)
),

agent_spans as (
    select
        cohorts.agent_id,
        cohorts.persistency_month,
        min(cohorts.cohort_month) as first_cohort_month,
        latest_reported.last_cohort_month
    from cohorts
    inner join latest_reported
        on cohorts.persistency_month = latest_reported.persistency_month
    group by cohorts.agent_id, cohorts.persistency_month, latest_reported.last_cohort_month
),

grid as (
    select
        agent_spans.agent_id,
        agent_spans.persistency_month,
        cast(cohort_month as date) as cohort_month
    from agent_spans
    cross join lateral generate_series(
        agent_spans.first_cohort_month, agent_spans.last_cohort_month, interval '1 month'
    ) as cohort_month
),

per_cohort as (
    select
        agent_id,
        persistency_month,
        cohort_month,
        count(*) as policies_issued,
        count(*) filter (where is_exited and not is_premium_term_ended) as policies_exited,
        count(*) filter (where is_premium_term_ended) as policies_premium_term_ended,
        count(*) filter (where is_eligible) as policies_eligible,
        count(*) filter (where is_persisting) as policies_persisting,
        sum(annualised_premium) as annualised_premium_issued,
        coalesce(sum(annualised_premium) filter (where is_eligible), 0)
            as annualised_premium_eligible,
        coalesce(sum(annualised_premium) filter (where is_persisting), 0)
            as annualised_premium_persisting
    from cohorts
    group by agent_id, persistency_month, cohort_month
),

dense as (
    select
        grid.agent_id,
        grid.persistency_month,
        grid.cohort_month,
        coalesce(per_cohort.policies_issued, 0) as policies_issued,
        coalesce(per_cohort.policies_exited, 0) as policies_exited,
        coalesce(per_cohort.policies_premium_term_ended, 0) as policies_premium_term_ended,
        coalesce(per_cohort.policies_eligible, 0) as policies_eligible,
        coalesce(per_cohort.policies_persisting, 0) as policies_persisting,
        coalesce(per_cohort.annualised_premium_issued, 0) as annualised_premium_issued,
        coalesce(per_cohort.annualised_premium_eligible, 0) as annualised_premium_eligible,
        coalesce(per_cohort.annualised_premium_persisting, 0) as annualised_premium_persisting
    from grid
    left join per_cohort
        on
            grid.agent_id = per_cohort.agent_id
            and grid.persistency_month = per_cohort.persistency_month
            and grid.cohort_month = per_cohort.cohort_month
),

windowed as (
    select
        *,
        sum(policies_eligible) over trailing_12 as window_policies_eligible,
        sum(policies_persisting) over trailing_12 as window_policies_persisting,
        sum(annualised_premium_eligible) over trailing_12 as window_annualised_premium_eligible,
        sum(annualised_premium_persisting) over trailing_12
            as window_annualised_premium_persisting
    from dense
    window trailing_12 as (
        partition by agent_id, persistency_month
        order by cohort_month
        range between interval '11 months' preceding and current row
    )
)

select
    windowed.agent_id,
    windowed.persistency_month,
    windowed.cohort_month,
    agents.provider_id,
    agents.territory,
    cast(
        windowed.cohort_month + make_interval(months => windowed.persistency_month)
        + interval '30 days' as date
    ) as reported_from,
    windowed.policies_issued,
    windowed.policies_exited,
    windowed.policies_premium_term_ended,
    windowed.policies_eligible,
    windowed.policies_persisting,
    cast(windowed.annualised_premium_issued as numeric(16, 2)) as annualised_premium_issued,
    cast(windowed.annualised_premium_eligible as numeric(16, 2)) as annualised_premium_eligible,
    cast(
        windowed.annualised_premium_persisting as numeric(16, 2)
    ) as annualised_premium_persisting,
    cast(
        cast(windowed.policies_persisting as numeric)
        / nullif(windowed.policies_eligible, 0) as double precision
    ) as persistency_by_count,
    cast(
        cast(windowed.annualised_premium_persisting as numeric)
        / nullif(windowed.annualised_premium_eligible, 0) as double precision
    ) as persistency_by_premium,
    cast(
        windowed.cohort_month - interval '11 months' as date
    ) as window_first_cohort_month,
    cast(windowed.window_policies_eligible as bigint) as window_policies_eligible,
    cast(windowed.window_policies_persisting as bigint) as window_policies_persisting,
    cast(
        windowed.window_annualised_premium_eligible as numeric(16, 2)
    ) as window_annualised_premium_eligible,
    cast(
        windowed.window_annualised_premium_persisting as numeric(16, 2)
    ) as window_annualised_premium_persisting,
    cast(
        cast(windowed.window_policies_persisting as numeric)
        / nullif(windowed.window_policies_eligible, 0) as double precision
    ) as window_persistency_by_count,
    cast(
        cast(windowed.window_annualised_premium_persisting as numeric)
        / nullif(windowed.window_annualised_premium_eligible, 0) as double precision
    ) as window_persistency_by_premium
from windowed
inner join agents on windowed.agent_id = agents.agent_id
