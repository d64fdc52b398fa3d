"""The operational resources: who may read and write each, what a caller owns, and what a
create fills in from the token. Everything else comes from `crud`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import ColumnElement, any_, select, true
from sqlalchemy.orm import Session

from api.resources.crud import Resource
from api.resources.scoping import caller_agent, caller_policyholders, scope_params
from api.schemas import resources as s
from api.security.tokens import Principal
from warehouse.operational.enums import (
    AgentStatus,
    PolicyStatus,
    PolicyType,
    PremiumMode,
    UserRole,
    VideoStatus,
    WhatsAppTemplateCategory,
    WhatsAppTemplateStatus,
)
from warehouse.operational.models import (
    Agent,
    ChatbotKnowledgeBase,
    InsurancePolicy,
    Policyholder,
    User,
    VideoContent,
    WhatsAppTemplate,
)

AGENT, ADMIN, HOLDER = UserRole.AGENT, UserRole.PROVIDER_ADMIN, UserRole.POLICYHOLDER
STAFF = (AGENT, ADMIN)
EVERYONE = (AGENT, ADMIN, HOLDER)


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def tenant_for(
    principal: Principal, requested: uuid.UUID | None, *, shared_ok: bool = False
) -> uuid.UUID | None:
    """The tenant a new row belongs to: the caller's own; a super admin names it (or, where
    `shared_ok`, leaves it empty for a row shared by every tenant)."""
    if principal.all_tenants:
        if requested is None and not shared_ok:
            raise _unprocessable("provider_id is required for a super admin")
        return requested
    if len(principal.tenant_ids) != 1:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your account belongs to no single tenant")
    tenant = principal.tenant_ids[0]
    if requested is not None and requested != tenant:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "provider_id must be your own tenant")
    return tenant


def _no_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    return []


# --------------------------------------------------------------------------- agents


def _agent_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    if role is AGENT:
        return [model.id == caller_agent()]
    return []


# Whether a phone is a customer's, another insurer's agent or this insurer's must not show:
# every clash of a new agent (phone, code, WhatsApp number) gets this one answer.
AGENT_CONFLICT = "this agent cannot be created: its phone or code is already in use"


def _prepare_agent(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    tenant = tenant_for(principal, values.pop("provider_id"))
    phone, full_name = values.pop("phone"), values.pop("full_name")
    user = session.scalars(
        select(User).where(User.phone == phone, User.deleted_at.is_(None))
    ).first()
    if user is None:
        user = User(phone=phone, full_name=full_name, role=UserRole.AGENT)
        session.add(user)
        session.flush()
    elif user.role is not UserRole.AGENT:
        raise HTTPException(status.HTTP_409_CONFLICT, AGENT_CONFLICT)
    return {**values, "provider_id": tenant, "user_id": user.id}


AGENTS = Resource(
    path="agents",
    entity="agent",
    model=Agent,
    create=s.AgentCreate,
    update=s.AgentUpdate,
    read=s.AgentRead,
    readers=STAFF,
    writers=(ADMIN,),
    filters={"status": AgentStatus, "territory": str, "agent_code": str},
    live=lambda m: m.status != AgentStatus.TERMINATED,
    deleted=lambda: {"status": AgentStatus.TERMINATED},
    scope=_agent_scope,
    prepare=_prepare_agent,
    conflict=AGENT_CONFLICT,
)


# --------------------------------------------------------------------------- policyholders


def _holder_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    if role is AGENT:
        return [model.agent_id == caller_agent()]
    if role is HOLDER:
        return [model.id == any_(caller_policyholders())]
    return []


def _serving_agent(session: Session, principal: Principal, agent_id: uuid.UUID | None) -> uuid.UUID:
    if principal.role is AGENT:
        if agent_id not in (None, principal.agent_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "agents create their own customers")
        assert principal.agent_id is not None
        return principal.agent_id
    if agent_id is None:
        raise _unprocessable("agent_id is required")
    # Under row-level security: an agent of another tenant is simply not found.
    if session.get(Agent, agent_id) is None:
        raise _unprocessable("agent_id names no agent of your tenant")
    return agent_id


def _prepare_holder(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    tenant = tenant_for(principal, values.pop("provider_id"))
    agent_id = _serving_agent(session, principal, values.pop("agent_id"))
    if values.get("whatsapp_opt_in"):
        values["whatsapp_opt_in_at"] = datetime.now(UTC)
    return {**values, "provider_id": tenant, "agent_id": agent_id}


def _soft_delete() -> dict[str, Any]:
    return {"deleted_at": datetime.now(UTC)}


POLICYHOLDERS = Resource(
    path="policyholders",
    entity="policyholder",
    model=Policyholder,
    create=s.PolicyholderCreate,
    update=s.PolicyholderUpdate,
    read=s.PolicyholderRead,
    readers=EVERYONE,
    writers=STAFF,
    filters={"agent_id": uuid.UUID, "customer_code": str, "city": str},
    live=lambda m: m.deleted_at.is_(None),
    deleted=_soft_delete,
    scope=_holder_scope,
    prepare=_prepare_holder,
)


# --------------------------------------------------------------------------- policies


def _policy_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    if role is AGENT:
        return [model.agent_id == caller_agent()]
    if role is HOLDER:
        return [model.policyholder_id == any_(caller_policyholders())]
    return []


def _prepare_policy(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    holder = session.scalars(
        select(Policyholder).where(
            Policyholder.id == values["policyholder_id"],
            Policyholder.deleted_at.is_(None),
            *_holder_scope(Policyholder, principal.role, True),
        ),
        scope_params(principal),
    ).first()
    if holder is None:
        raise _unprocessable("policyholder_id names no customer of yours")
    return {**values, "provider_id": holder.provider_id, "agent_id": holder.agent_id}


POLICIES = Resource(
    path="policies",
    entity="insurance_policy",
    model=InsurancePolicy,
    create=s.PolicyCreate,
    update=s.PolicyUpdate,
    read=s.PolicyRead,
    readers=EVERYONE,
    writers=STAFF,
    filters={
        "status": PolicyStatus,
        "policy_type": PolicyType,
        "premium_mode": PremiumMode,
        "policyholder_id": uuid.UUID,
        "agent_id": uuid.UUID,
        "policy_number": str,
    },
    live=lambda m: m.deleted_at.is_(None),
    deleted=_soft_delete,
    scope=_policy_scope,
    prepare=_prepare_policy,
)


# --------------------------------------------------------------------------- content


def _video_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    if role is HOLDER:
        return [model.status == VideoStatus.PUBLISHED]
    if for_write and role is AGENT:
        return [model.uploaded_by_agent_id == caller_agent()]
    return []


def _prepare_video(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    tenant = tenant_for(principal, values.pop("provider_id"))
    if values.get("status") is VideoStatus.PUBLISHED:
        values["published_at"] = datetime.now(UTC)
    values["policy_types"] = [str(p) for p in values["policy_types"]]
    return {**values, "provider_id": tenant, "uploaded_by_agent_id": principal.agent_id}


VIDEOS = Resource(
    path="videos",
    entity="video_content",
    model=VideoContent,
    create=s.VideoCreate,
    update=s.VideoUpdate,
    read=s.VideoRead,
    readers=EVERYONE,
    writers=STAFF,
    filters={"language": str, "category": str, "status": VideoStatus},
    live=lambda m: m.status != VideoStatus.ARCHIVED,
    deleted=lambda: {"status": VideoStatus.ARCHIVED},
    scope=_video_scope,
    prepare=_prepare_video,
)


def _knowledge_scope(model: Any, role: UserRole, for_write: bool) -> list[ColumnElement[bool]]:
    # Shared answers (no tenant) are read by all and written only by super admins.
    if for_write and role is not UserRole.SUPER_ADMIN:
        return [model.provider_id.is_not(None)]
    return []


def _prepare_knowledge(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    tenant = tenant_for(principal, values.pop("provider_id"), shared_ok=True)
    return {**values, "provider_id": tenant}


KNOWLEDGE = Resource(
    path="knowledge-base",
    entity="chatbot_knowledge_base",
    model=ChatbotKnowledgeBase,
    create=s.KnowledgeCreate,
    update=s.KnowledgeUpdate,
    read=s.KnowledgeRead,
    readers=EVERYONE,
    writers=(ADMIN,),
    filters={"language": str, "category": str},
    live=lambda m: m.is_active.is_(true()),
    deleted=lambda: {"is_active": False},
    scope=_knowledge_scope,
    prepare=_prepare_knowledge,
)


def _prepare_template(
    session: Session, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    return {**values, "provider_id": tenant_for(principal, values.pop("provider_id"))}


TEMPLATES = Resource(
    path="whatsapp-templates",
    entity="whatsapp_template",
    model=WhatsAppTemplate,
    create=s.TemplateCreate,
    update=s.TemplateUpdate,
    read=s.TemplateRead,
    readers=STAFF,
    writers=(ADMIN,),
    filters={
        "language": str,
        "category": WhatsAppTemplateCategory,
        "approval_status": WhatsAppTemplateStatus,
    },
    live=lambda m: m.approval_status != WhatsAppTemplateStatus.DISABLED,
    deleted=lambda: {"approval_status": WhatsAppTemplateStatus.DISABLED},
    scope=_no_scope,
    prepare=_prepare_template,
)

RESOURCES: tuple[Resource, ...] = (AGENTS, POLICYHOLDERS, POLICIES, VIDEOS, KNOWLEDGE, TEMPLATES)
