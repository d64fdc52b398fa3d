-- One row per agent and Indian financial year (1 April to 31 March), from the monthly mart:
-- sums of its additive figures, rates recomputed from those sums (agent_kpis macros, never an
-- average of monthly rates), persistency as of the year's last month with data, and ranks in
-- territory and provider. A table rebuilt with every run: a few rows per agent.
with monthly as (
    select
        *,
        -- Financial year named by its first calendar year: April 2025 to March 2026 is 2025.
        cast(
            extract(year from month_start)
            - case when extract(month from month_start) < 4 then 1 else 0 end
            as integer
        ) as financial_year
    from {{ ref('agent_performance_monthly') }}
),

yearly as (
    select
        agent_id,
        financial_year,
        provider_id,
        territory,
        make_date(financial_year, 4, 1) as year_start,
        max(month_as_of_date) as year_as_of_date,
        count(*) as months_with_data,
        sum(new_policies) as new_policies,
        sum(new_business_ape) as new_business_ape,
        sum(first_year_premium) as first_year_premium,
        sum(renewal_premium_due) as renewal_premium_due,
        sum(renewal_premium_collected) as renewal_premium_collected,
        -- In force when the year (its first month with data) started.
        (array_agg(policies_in_force_at_start order by month_start))[1]
            as policies_in_force_at_start,
        sum(lapses) as lapses,
        sum(revivals) as revivals,
        (array_agg(persistency_13m_by_count order by month_start desc))[1]
            as persistency_13m_by_count,
        (array_agg(persistency_13m_by_premium order by month_start desc))[1]
            as persistency_13m_by_premium,
        sum(app_sessions) as app_sessions,
        sum(whatsapp_inbound) as whatsapp_inbound,
        sum(whatsapp_outbound) as whatsapp_outbound,
        sum(videos_shared) as videos_shared,
        sum(videos_completed) as videos_completed
    from monthly
    group by agent_id, financial_year, provider_id, territory
)

select
    agent_id,
    financial_year,
    provider_id,
    territory,
    year_start,
    year_as_of_date,
    months_with_data,
    cast(new_policies as integer) as new_policies,
    cast(new_business_ape as numeric(16, 2)) as new_business_ape,
    cast(first_year_premium as numeric(16, 2)) as first_year_premium,
    cast(renewal_premium_due as numeric(16, 2)) as renewal_premium_due,
    cast(renewal_premium_collected as numeric(16, 2)) as renewal_premium_collected,
    {{ renewal_collection_rate('renewal_premium_collected', 'renewal_premium_due') }}
        as renewal_collection_rate,
    policies_in_force_at_start,
    cast(lapses as integer) as lapses,
    {{ lapse_ratio('lapses', 'policies_in_force_at_start') }} as lapse_ratio,
    cast(revivals as integer) as revivals,
    persistency_13m_by_count,
    persistency_13m_by_premium,
    rank() over (
        partition by provider_id, territory, financial_year order by new_business_ape desc
    ) as territory_rank_new_business_ape,
    rank() over (
        partition by provider_id, financial_year order by new_business_ape desc
    ) as provider_rank_new_business_ape,
    cast(app_sessions as integer) as app_sessions,
    cast(whatsapp_inbound as integer) as whatsapp_inbound,
    cast(whatsapp_outbound as integer) as whatsapp_outbound,
    cast(videos_shared as integer) as videos_shared,
    cast(videos_completed as integer) as videos_completed
from yearly
