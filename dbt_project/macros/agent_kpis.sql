-- Ratio KPIs of the agent marts, one definition each: the daily, monthly and financial-year
-- marts compute them from their own sums with these macros, so a rate is never the average of
-- rates.

-- Renewal premium collected by grace end over renewal premium due.
{% macro renewal_collection_rate(collected, due) -%}
    cast({{ collected }} / nullif({{ due }}, 0) as double precision)
{%- endmacro %}

-- Policies lapsed over regular-premium policies in force at the period's start.
{% macro lapse_ratio(lapses, in_force_at_start) -%}
    cast({{ lapses }} as double precision) / nullif({{ in_force_at_start }}, 0)
{%- endmacro %}
