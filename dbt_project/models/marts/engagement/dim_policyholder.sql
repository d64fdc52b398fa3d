-- One row per policyholder, described without personal data: age band instead of date of
-- birth, income band instead of income, and no name, phone number or token.
with policyholders as (
    select * from {{ ref('stg_operational__policyholders') }}
),

app_users as (
    select
        policyholder_id,
        min(session_day) as first_app_session_day
    from {{ ref('int_app_sessions') }}
    where user_role = 'policyholder'
    group by policyholder_id
),

aged as (
    select
        *,
        extract(year from age(current_date, date_of_birth)) as age_years
    from policyholders
)

select
    aged.policyholder_id,
    aged.provider_id,
    aged.agent_id,
    aged.customer_code,
    case
        when aged.age_years is null then null
        when aged.age_years < 25 then 'under 25'
        when aged.age_years < 35 then '25-34'
        when aged.age_years < 45 then '35-44'
        when aged.age_years < 55 then '45-54'
        when aged.age_years < 65 then '55-64'
        else '65 and over'
    end as age_band,
    aged.gender,
    aged.occupation,
    aged.city,
    aged.state,
    aged.preferred_language,
    case
        when aged.annual_income is null then null
        when aged.annual_income < 250000 then 'under 2.5 lakh'
        when aged.annual_income < 500000 then '2.5-5 lakh'
        when aged.annual_income < 1000000 then '5-10 lakh'
        when aged.annual_income < 2500000 then '10-25 lakh'
        else '25 lakh and over'
    end as income_band,
    coalesce(aged.whatsapp_opt_in, false) as whatsapp_opt_in,
    aged.user_id is not null as has_app_account,
    app_users.policyholder_id is not null as is_app_user,
    app_users.first_app_session_day
from aged
left join app_users on aged.policyholder_id = app_users.policyholder_id
