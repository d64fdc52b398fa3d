{#
    Premium payments a year for a premium mode (DESIGN §6). The one definition used by APE and by
    every annualised-premium figure; a single premium is paid once and is not annualised.
#}
{% macro payments_per_year(mode_column) -%}
    case {{ mode_column }}
        when 'monthly' then 12
        when 'quarterly' then 4
        when 'half_yearly' then 2
        when 'annual' then 1
        when 'single' then 0
    end
{%- endmacro %}

{#
    Annualised premium equivalent (APE): regular premium x payments a year, plus 10% of a
    single premium (DESIGN §6).
#}
{% macro annualised_premium_equivalent(premium_column, mode_column) -%}
    case
        when {{ mode_column }} = 'single' then 0.1 * {{ premium_column }}
        else {{ premium_column }} * {{ payments_per_year(mode_column) }}
    end
{%- endmacro %}
