-- One row per video shared on WhatsApp from the app (`video_shared_whatsapp`), by an agent (most
-- of them) or by a policyholder. The event does not say to whom it was sent, so a share cannot
-- be matched to the recipient's later views.
{% set uuid_pattern = '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' %}

with shares as (
    select
        message_id,
        session_id,
        user_id,
        event_timestamp,
        event_day,
        received_day,
        cast(properties as jsonb) as props
    from {{ ref('stg_app__events') }}
    where event_name = 'video_shared_whatsapp'
),

-- Materialised once: right after a load the warehouse's tables may have no planner
-- statistics, and a nested loop over a materialised lookup stays cheap.
people as materialized (
    select * from {{ ref('int_app_users') }}
)

select
    shares.message_id as share_id,
    shares.session_id,
    people.user_role as sharer_role,
    people.agent_id,
    people.policyholder_id,
    people.provider_id,
    cast(shares.props ->> 'video_id' as uuid) as video_id,
    shares.props ->> 'share_target' as share_target,
    shares.event_timestamp as shared_at,
    shares.event_day as share_day,
    shares.received_day
from shares
inner join people on shares.user_id = people.user_id
where shares.props ->> 'video_id' ~* '{{ uuid_pattern }}'
