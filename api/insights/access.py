"""Who may see which agent's (or policyholder's) insights, checked against the warehouse.

The warehouse has no row-level security (it is written by ingestion and read by analysts with
their own role), so every insights answer is scoped here, explicitly: an agent sees only itself,
a provider admin the agents of its tenants, a super admin everyone; a policyholder only its own
recommendations. Something outside the caller's reach is a 404, like a row of another tenant in
the operational API, so ids reveal nothing.

Split in two so the lookup can be cached (it depends only on the marts) while the decision,
which depends on the caller, is made on every request: `agent_row` / `policyholder_row` read
the facts, `authorise_agent` / `authorise_policyholder` decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import Engine, text

from api.security.tokens import Principal
from warehouse.operational.enums import UserRole

_AGENT = text(
    "SELECT agent_id, provider_id, territory FROM marts.dim_agent WHERE agent_id = :agent_id"
)
_POLICYHOLDER = text(
    "SELECT policyholder_id, agent_id, provider_id FROM marts.dim_policyholder"
    " WHERE policyholder_id = :holder"
)


@dataclass(frozen=True)
class AgentScope:
    """The agent an insights request is about, once the caller may see it."""

    agent_id: uuid.UUID
    provider_id: uuid.UUID
    territory: str | None


def may_see_agent(principal: Principal, agent_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
    if principal.role is UserRole.SUPER_ADMIN:
        return True
    if principal.role is UserRole.AGENT:
        return principal.agent_id == agent_id
    if principal.role is UserRole.PROVIDER_ADMIN:
        return provider_id in principal.tenant_ids
    return False


def agent_row(warehouse: Engine, agent_id: uuid.UUID) -> dict[str, Any] | None:
    """The agent's tenant and territory as JSON-ready values, or None when unknown."""
    with warehouse.connect() as conn:
        row = conn.execute(_AGENT, {"agent_id": agent_id}).first()
    if row is None:
        return None
    return {
        "agent_id": str(row.agent_id),
        "provider_id": str(row.provider_id),
        "territory": row.territory,
    }


def scope_of(row: dict[str, Any]) -> AgentScope:
    """The scope an `agent_row` describes (no decision: see `authorise_agent`)."""
    return AgentScope(
        agent_id=uuid.UUID(row["agent_id"]),
        provider_id=uuid.UUID(row["provider_id"]),
        territory=row["territory"],
    )


def authorise_agent(principal: Principal, row: dict[str, Any] | None) -> AgentScope:
    """The scope of an `agent_row`, or 403 (not an insights role) / 404 (unknown or not
    the caller's)."""
    return authorise_scope(principal, None if row is None else scope_of(row))


def authorise_scope(principal: Principal, scope: AgentScope | None) -> AgentScope:
    """`authorise_agent` on facts already read as a scope (None: unknown agent)."""
    if principal.role not in (UserRole.AGENT, UserRole.PROVIDER_ADMIN, UserRole.SUPER_ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "insights are for agents and admins")
    if scope is None or not may_see_agent(principal, scope.agent_id, scope.provider_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agent")
    return scope


def agent_scope(warehouse: Engine, principal: Principal, agent_id: uuid.UUID) -> AgentScope:
    """Lookup and decision at once (for answers that are not cached)."""
    return authorise_agent(principal, agent_row(warehouse, agent_id))


def policyholder_row(warehouse: Engine, holder: uuid.UUID) -> dict[str, Any] | None:
    with warehouse.connect() as conn:
        row = conn.execute(_POLICYHOLDER, {"holder": holder}).first()
    if row is None:
        return None
    return {"agent_id": str(row.agent_id), "provider_id": str(row.provider_id)}


def authorise_policyholder(
    principal: Principal, holder: uuid.UUID, row: dict[str, Any] | None
) -> None:
    """404 unless the caller may see the policyholder: itself, its agent, its tenant's admin,
    a super admin."""
    allowed = row is not None and (
        (principal.role is UserRole.POLICYHOLDER and holder in principal.policyholder_ids)
        or may_see_agent(principal, uuid.UUID(row["agent_id"]), uuid.UUID(row["provider_id"]))
    )
    if not allowed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such policyholder")
