{#
    No two rows share the same values of `columns` (a composite key): fails with each
    duplicated combination and how often it occurs.
#}
{% test premiums_unique_combination(model, columns) %}
    select
        {{ columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
