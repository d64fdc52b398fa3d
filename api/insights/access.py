"""Who may see which agent's insights, checked against the warehouse's `marts.dim_agent`.

The warehouse has no row-level security (it is written by ingestion and read by analysts with
their own role), so every insights query is scoped here, explicitly: an agent sees only itself,
a provider admin the agents of its tenants, a super admin everyone; anyone else is refused.
An agent outside the caller's reach is a 404, like a row of another tenant in the operational
API, so ids reveal nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import HTTPException, status
from sqlalchemy import Engine, text

from api.security.tokens import Principal
from warehouse.operational.enums import UserRole

_AGENT = text(
    "SELECT agent_id, provider_id, territory FROM marts.dim_agent WHERE agent_id = :agent_id"
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


def agent_scope(warehouse: Engine, principal: Principal, agent_id: uuid.UUID) -> AgentScope:
    """The agent's scope, or 404 problem when it does not exist or is outside the caller's."""
    if principal.role not in (UserRole.AGENT, UserRole.PROVIDER_ADMIN, UserRole.SUPER_ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "insights are for agents and admins")
    with warehouse.connect() as conn:
        row = conn.execute(_AGENT, {"agent_id": agent_id}).first()
    if row is None or not may_see_agent(principal, row.agent_id, row.provider_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agent")
    return AgentScope(agent_id=row.agent_id, provider_id=row.provider_id, territory=row.territory)


_POLICYHOLDER = text(
    "SELECT policyholder_id, agent_id, provider_id FROM marts.dim_policyholder"
    " WHERE policyholder_id = :holder"
)


def policyholder_visible(warehouse: Engine, principal: Principal, holder: uuid.UUID) -> None:
    """404 unless the caller may see the policyholder: itself, its agent, its tenant's admin,
    a super admin."""
    with warehouse.connect() as conn:
        row = conn.execute(_POLICYHOLDER, {"holder": holder}).first()
    allowed = row is not None and (
        (principal.role is UserRole.POLICYHOLDER and holder in principal.policyholder_ids)
        or may_see_agent(principal, row.agent_id, row.provider_id)
    )
    if not allowed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such policyholder")
