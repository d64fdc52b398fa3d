-- The status spells of every issued policy, rebuilt from its premium dues and payments: active
-- from issue, lapsed from the day after an unpaid grace end, revived from the first payment after
-- a lapse, and a final spell when it leaves the book (the app's death claim, surrender or
-- cancellation, or maturity). Spells are half-open [valid_from, valid_to); the current one has
-- no valid_to. Events after the as-of day are not known yet.
with policies as (
    select * from {{ ref('stg_operational__policies') }}
),

dues as (
    select * from {{ ref('int_premium_dues_matched') }}
),

-- One row, its value computed once (a scalar subquery), however often it is joined.
as_of as (
    select (select max(as_of_date) from dues) as as_of_date
),

lapse_spells as (
    select
        policy_id,
        lapsed_on,
        revived_on
    from dues
    where is_lapse_trigger
),

issued as (
    select
        policies.policy_id,
        policies.provider_id,
        policies.agent_id,
        policies.issue_date,
        policies.maturity_date,
        case
            when
                policies.policy_status in ('death_claim', 'surrendered', 'cancelled', 'matured')
                and {{ ist_date('policies.status_changed_at') }} <= as_of.as_of_date
                then policies.policy_status
        end as exit_status,
        case
            when
                policies.policy_status in ('death_claim', 'surrendered', 'cancelled', 'matured')
                then {{ ist_date('policies.status_changed_at') }}
        end as exited_on,
        as_of.as_of_date
    from policies
    cross join as_of
    where
        policies.issue_date <= as_of.as_of_date
        and coalesce(policies.policy_status, '') <> 'proposed'
),

-- Where the app records no exit, a policy matures on its maturity date unless it is lapsed then.
exits as (
    select
        policy_id,
        exit_status as policy_status,
        exited_on as event_on
    from issued
    where exit_status is not null

    union all

    select
        issued.policy_id,
        'matured' as policy_status,
        issued.maturity_date as event_on
    from issued
    where
        issued.exit_status is null
        and issued.maturity_date <= issued.as_of_date
        and not exists (
            select 1
            from lapse_spells
            where
                lapse_spells.policy_id = issued.policy_id
                and lapse_spells.lapsed_on <= issued.maturity_date
                and (
                    lapse_spells.revived_on is null
                    or lapse_spells.revived_on > issued.maturity_date
                )
        )
),

events as (
    select
        policy_id,
        'active' as policy_status,
        issue_date as event_on,
        1 as event_order
    from issued

    union all

    select
        policy_id,
        'lapsed' as policy_status,
        lapsed_on as event_on,
        2 as event_order
    from lapse_spells

    union all

    select
        policy_id,
        'revived' as policy_status,
        revived_on as event_on,
        3 as event_order
    from lapse_spells
    where revived_on is not null

    union all

    select
        policy_id,
        policy_status,
        event_on,
        4 as event_order
    from exits
),

-- Nothing happens to a policy after it has left the book.
before_exit as (
    select events.*
    from events
    left join exits on events.policy_id = exits.policy_id
    where exits.event_on is null or events.event_on <= exits.event_on
),

spells as (
    select
        policy_id,
        policy_status,
        event_on as valid_from,
        lead(event_on) over (
            partition by policy_id order by event_on, event_order
        ) as valid_to,
        row_number() over (
            partition by policy_id order by event_on, event_order
        ) as spell_number
    from before_exit
)

select
    issued.policy_id,
    spells.spell_number,
    issued.provider_id,
    issued.agent_id,
    spells.policy_status,
    spells.policy_status in ('active', 'revived') as is_in_force,
    spells.valid_from,
    spells.valid_to,
    spells.valid_to is null as is_current
from spells
inner join issued on spells.policy_id = issued.policy_id
