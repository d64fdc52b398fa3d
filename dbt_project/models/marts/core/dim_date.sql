-- One row per calendar day with the Indian financial year (April to March) and its quarter.
with bounds as (
    select
        least(
            (select min(issue_date) from {{ ref('stg_operational__policies') }}),
            (select min(due_date) from {{ ref('stg_operational__premium_payments') }})
        ) as first_day,
        greatest(
            (select max(due_date) from {{ ref('stg_operational__premium_payments') }}),
            current_date
        ) + 400 as last_day
),

days as (
    select cast(series_day as date) as date_day
    from bounds
    cross join lateral generate_series(
        date_trunc('year', first_day), last_day, interval '1 day'
    ) as series_day
),

with_financial_year as (
    select
        date_day,
        case
            when extract(month from date_day) >= 4 then cast(extract(year from date_day) as int)
            else cast(extract(year from date_day) as int) - 1
        end as financial_year_start
    from days
)

select
    date_day,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(extract(year from date_day) as int) as calendar_year,
    cast(extract(month from date_day) as int) as calendar_month,
    cast(extract(isodow from date_day) as int) as iso_day_of_week,
    financial_year_start,
    'FY' || financial_year_start || '-'
    || lpad(cast(((financial_year_start + 1) % 100) as text), 2, '0') as financial_year,
    ((cast(extract(month from date_day) as int) + 8) % 12) / 3 + 1 as financial_quarter,
    ((cast(extract(month from date_day) as int) + 8) % 12) + 1 as financial_month
from with_financial_year
