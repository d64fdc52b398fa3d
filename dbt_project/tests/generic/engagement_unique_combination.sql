{#
    No two rows share the same values of `combination_of_columns` (a compound key): the rows
    that do are returned, one per duplicated key with how many times it occurs.
#}
{% test engagement_unique_combination(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
