{#
    Every row satisfies `expression` (a SQL boolean over the model's columns; a null result
    passes, as for a check constraint): the rows that do not are returned.
#}
{% test engagement_expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
