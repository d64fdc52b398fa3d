{#
    The partition window Dagster passes as --vars (min_date inclusive, max_date exclusive). An
    unpartitioned run gets the wide defaults of dbt_project.yml and so builds everything.
    Incremental models keep the rows of this window (half-open), reading their inputs from
    `lookback_days` earlier when a row needs history (trailing 30-day counts, say).
#}
{% macro window_start() -%}
    cast('{{ var("min_date") }}' as date)
{%- endmacro %}

{% macro window_end() -%}
    cast('{{ var("max_date") }}' as date)
{%- endmacro %}

{% macro in_window(column) -%}
    ({{ column }} >= {{ window_start() }} and {{ column }} < {{ window_end() }})
{%- endmacro %}

{% macro in_lookback_window(column, lookback_days) -%}
    (
        {{ column }} >= {{ window_start() }} - {{ lookback_days }}
        and {{ column }} < {{ window_end() }}
    )
{%- endmacro %}

{#
    The Indian calendar day of a timestamptz: days, months and financial years are IST.
#}
{% macro ist_date(column) -%}
    cast({{ column }} at time zone 'Asia/Kolkata' as date)
{%- endmacro %}

{#
    Reading only the recent raw partitions of the deduplicated sources.

    The staging views of app events and WhatsApp messages and statuses keep the first copy of
    each key across receipt days, so a filter on the receipt day written after them cannot be
    pushed down to the raw partitions (it could change which copy is the first): an incremental
    model reading them would read, rank and aggregate all of history to keep one day. Instead
    these views filter their source on `received_since()`: the day in the transaction-local
    setting `mitra.received_since`, or no bound at all when it is unset (analysts, tests, full
    builds, every non-incremental model). An incremental model sets it for its own transaction
    with the pre-hook `set_received_since(lookback_days)`: the window's first day (or its
    month's first day) less the days of history its rows need. PostgreSQL prunes the raw partitions before that day when
    the statement starts (the setting is stable within it), so the model's cost follows the
    look-back, not the history.

    The look-backs rely on `late_arrival_days` (dbt_project.yml): every copy of an event and
    every event of a session, and every copy of a WhatsApp message and of its statuses, reaches
    the platform within that many days of the event or message itself (the app queues offline
    for at most 5 days; Meta retries for at most 7).
#}
{% macro received_since() -%}
    coalesce(
        cast(nullif(current_setting('mitra.received_since', true), '') as date),
        cast('-infinity' as date)
    )
{%- endmacro %}

{% macro set_received_since(lookback_days, from_month_start=false) -%}
    {%- set first_day = "cast(date_trunc('month', " ~ window_start() ~ ") as date)"
        if from_month_start else window_start() -%}
    select set_config(
        'mitra.received_since',
        cast({{ first_day }} - {{ lookback_days }} as text),
        true
    )
{%- endmacro %}

{#
    The first copy received of each `key` in a deduplicated landing source, read from
    `received_since()` on: Meta and the app deliver at least once, and a retry can reach the
    platform on a later receipt day than the original. Yields the source's columns.
#}
{% macro first_copies_received(source_name, table_name, key_columns) -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by received_at, received_day
            ) as copy_number
        from {{ source(source_name, table_name) }}
        where received_day >= {{ received_since() }}
    ) as ranked
    where copy_number = 1
{%- endmacro %}
