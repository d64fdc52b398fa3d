{#
    Months between two premiums of a mode (DESIGN §6); null for a single premium, which is due
    once. Due dates of a policy are its issue date plus whole multiples of this.
#}
{% macro months_between_premiums(mode_column) -%}
    case {{ mode_column }}
        when 'monthly' then 1
        when 'quarterly' then 3
        when 'half_yearly' then 6
        when 'annual' then 12
    end
{%- endmacro %}

{#
    Grace period in days (DESIGN §6, IRDAI master circular on life products, 2024): 15 days for
    monthly premiums, 30 for the other modes, counted from the day after the due date. The last
    day of grace is `due_date + grace_days(mode)`.
#}
{% macro grace_days(mode_column) -%}
    case when {{ mode_column }} = 'monthly' then 15 else 30 end
{%- endmacro %}
