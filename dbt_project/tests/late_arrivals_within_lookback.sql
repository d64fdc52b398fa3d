{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_app__events'}}}) }}
-- App events and webhook WhatsApp messages that reached the platform more than
-- `late_arrival_days` after they happened. The incremental models' look-back assumes there are
-- none (macros/partition_window.sql): any found here are loaded and in staging, but a mart row
-- built before they came is only corrected by a full refresh. A warning, not an error: the
-- data is right, the incremental marts may lag it.
select
    'app_event' as record_kind,
    message_id as record_id,
    event_day as happened_on,
    received_day
from {{ ref('stg_app__events') }}
where received_day > event_day + {{ var('late_arrival_days') }}

union all

select
    'whatsapp_message' as record_kind,
    message_key as record_id,
    sent_on as happened_on,
    received_day
from {{ ref('stg_whatsapp__messages') }}
where
    message_source = 'webhook'
    and received_day > sent_on + {{ var('late_arrival_days') }}
