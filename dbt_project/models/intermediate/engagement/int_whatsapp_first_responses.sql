{{ config(materialized='table') }}
-- One row per inbound WhatsApp message of a known customer (agent and policyholder resolved),
-- with the agent's first response to it: the first outbound message from the same agent to the
-- same policyholder sent strictly after it.
--
-- A run of inbound messages with no outbound message between them is answered once: the run
-- starts at its first message, and only that message carries the response time (from the run's
-- first message to the response). The later messages of the run point to the same response
-- with `is_run_start` false. An outbound message sent in the same second as an inbound one is
-- taken to be before it (it cannot answer it). A run with no later outbound message is
-- unanswered (null response). Messages of unresolved customers (chat exports, phone-only
-- customers) cannot be paired and are left out.
--
-- A table built from all history: an agent may answer weeks after the run began, so the
-- incremental models look responses up here rather than reading the whole conversation.
with messages as (
    select * from {{ ref('int_whatsapp_messages') }}
    where
        agent_id is not null
        and policyholder_id is not null
        and direction in ('inbound', 'outbound')
),

ordered as (
    select
        message_key,
        agent_id,
        policyholder_id,
        provider_id,
        direction,
        sent_at,
        message_day,
        received_day,
        -- Outbound messages so far in the conversation: inbound messages sharing the count
        -- form one run, answered by the next outbound message.
        count(*) filter (where direction = 'outbound') over (
            partition by agent_id, policyholder_id
            order by sent_at, direction = 'inbound', message_key
            rows between unbounded preceding and current row
        ) as outbound_so_far
    from messages
),

inbound as (
    select
        *,
        row_number() over (
            partition by agent_id, policyholder_id, outbound_so_far
            order by sent_at, message_key
        ) as position_in_run,
        first_value(message_key) over (
            partition by agent_id, policyholder_id, outbound_so_far
            order by sent_at, message_key
        ) as run_start_message_key,
        min(sent_at) over (
            partition by agent_id, policyholder_id, outbound_so_far
        ) as run_started_at
    from ordered
    where direction = 'inbound'
),

responses as (
    select
        message_key as response_message_key,
        agent_id,
        policyholder_id,
        sent_at as response_sent_at,
        message_day as response_day,
        received_day as response_received_day,
        -- The run this outbound message answers is the one before it.
        outbound_so_far - 1 as answers_run
    from ordered
    where direction = 'outbound'
)

select
    inbound.message_key,
    inbound.agent_id,
    inbound.policyholder_id,
    inbound.provider_id,
    inbound.sent_at,
    inbound.message_day,
    inbound.run_start_message_key,
    inbound.position_in_run = 1 as is_run_start,
    responses.response_message_key as first_response_message_key,
    responses.response_sent_at as first_response_at,
    responses.response_day as first_response_day,
    responses.response_received_day as first_response_received_day,
    case
        when inbound.position_in_run = 1
            then
                cast(
                    extract(epoch from responses.response_sent_at - inbound.run_started_at)
                    as numeric(12, 0)
                )
    end as first_response_seconds
from inbound
left join responses
    on
        inbound.agent_id = responses.agent_id
        and inbound.policyholder_id = responses.policyholder_id
        and inbound.outbound_so_far = responses.answers_run
