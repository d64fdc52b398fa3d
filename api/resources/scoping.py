"""Ownership filters as constant SQL: the caller's ids travel as bound parameters.

A resource's scope (an agent reads its own customers, a policyholder its own policies) depends on
the caller's role and on the caller's ids. Scopes take only the role, and the ids travel as
parameters (`caller_agent()`, `caller_policyholders()`, filled by `scope_params`), so each
statement is the same for every caller of a role: compiled once, and kept prepared by PostgreSQL.
Compiling the policy read per request cost 0.29 ms of CPU, as much as running it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BindParameter, bindparam
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from api.security.tokens import Principal

SCOPE_AGENT_ID = "scope_agent_id"
SCOPE_HOLDER_IDS = "scope_holder_ids"
ROW_ID = "row_id"


def caller_agent() -> BindParameter[uuid.UUID]:
    """The calling agent's id (`Principal.agent_id`)."""
    return bindparam(SCOPE_AGENT_ID, type_=UUID(as_uuid=True))


def caller_policyholders() -> BindParameter[list[uuid.UUID]]:
    """The calling policyholder's customer ids, for `column == any_(caller_policyholders())`
    (an empty list matches nothing)."""
    return bindparam(SCOPE_HOLDER_IDS, type_=ARRAY(UUID(as_uuid=True)))


def row_id() -> BindParameter[uuid.UUID]:
    """The id in the URL."""
    return bindparam(ROW_ID, type_=UUID(as_uuid=True))


def scope_params(principal: Principal, **more: Any) -> dict[str, Any]:
    """The values of the caller's parameters (and `more`), for any scoped statement."""
    return {
        SCOPE_AGENT_ID: principal.agent_id,
        SCOPE_HOLDER_IDS: list(principal.policyholder_ids),
        **more,
    }
