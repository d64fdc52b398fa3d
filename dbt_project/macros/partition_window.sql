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
