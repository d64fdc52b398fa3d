-- One row per app user; contact tokens are left in raw (no personal data past staging).
with source as (
    select * from {{ source('operational', 'users') }}
)

select
    id as user_id,
    role as user_role,
    status as user_status,
    language_preference,
    last_login_at,
    created_at,
    updated_at
from source
where _deleted_at is null and deleted_at is null
