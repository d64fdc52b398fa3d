"""Chatbot usage counts: `count_knowledge_base_use(entry uuid)`, the one write the chatbot makes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Why a function, and why SECURITY DEFINER: the chatbot (`POST /v1/chat`) counts every answer on
the entry it came from (`chatbot_knowledge_base.usage_count`), and most answers come from shared
entries (`provider_id IS NULL`). The API role's UPDATE policy (revision 0002) admits only rows of
the caller's tenants, rightly: shared entries are written by super admins alone, and row-level
security cannot limit an UPDATE to one column. So the API role gets no new table privilege;
it gets EXECUTE on this function, which runs as its owner (who bypasses row-level security) and
can do exactly one thing: add 1 to `usage_count` of one active entry the caller may read. It
checks that visibility itself, with the same expression as the read policy of revision 0002
(shared, or one of the transaction's `mitra.tenant_ids`, or `mitra.all_tenants`), so no one
counts uses on another tenant's entries, and it returns the new count (NULL when the entry is
not visible or not active).

Hardening as PostgreSQL's documentation advises for SECURITY DEFINER functions: a pinned
`search_path` (pg_catalog, then pg_temp last) with every object schema-qualified, so a caller
cannot shadow the table or an operator; EXECUTE revoked from PUBLIC and granted to the API role.
The text is frozen here, as a migration's must be.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "mitra_api"
FUNCTION = "count_knowledge_base_use"

CREATE_FUNCTION = """
CREATE FUNCTION public.count_knowledge_base_use(entry uuid) RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.chatbot_knowledge_base
    SET usage_count = usage_count + 1
    WHERE id = entry
      AND is_active
      AND (
        provider_id IS NULL
        OR current_setting('mitra.all_tenants', true) = 'on'
        OR provider_id = ANY (
            string_to_array(nullif(current_setting('mitra.tenant_ids', true), ''), ',')::uuid[]
        )
      )
    RETURNING usage_count
$$
"""


def upgrade() -> None:
    op.execute(CREATE_FUNCTION)
    op.execute(
        f"COMMENT ON FUNCTION public.{FUNCTION}(uuid) IS 'Adds 1 to usage_count of an active "
        "knowledge-base entry visible to the caller (shared or of mitra.tenant_ids); returns the "
        "new count, NULL when none. The chatbot''s only write (revision 0003).'"
    )
    op.execute(f"REVOKE ALL ON FUNCTION public.{FUNCTION}(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION public.{FUNCTION}(uuid) TO {API_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS public.{FUNCTION}(uuid)")
