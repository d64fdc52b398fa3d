{#
    The column's values lie between `min_value` and `max_value`, both included; nulls pass.
#}
{% test engagement_between(model, column_name, min_value, max_value) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}

{% endtest %}
