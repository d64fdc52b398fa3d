{#
    Every row satisfies the boolean SQL `expression` (a null result counts as true, so a ratio
    that is null passes a range check): fails with the rows where it is false. Used on a model
    or on a column (`column_name` is then available to the expression but not required).
#}
{% test premiums_expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
