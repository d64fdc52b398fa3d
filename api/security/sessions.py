"""Sign-in sessions: who a user is to the API, and refresh tokens that rotate.

A session row is one refresh token (stored as its SHA-256). Refreshing revokes the row and
creates the next one in the same family; presenting a revoked token of a family again means it
was copied (the real client already holds the newer one), so the whole family is revoked and
both holders must sign in again (OAuth 2.0 Security BCP, refresh token rotation).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from api.security.tokens import (
    REFRESH_TOKEN_TTL,
    Principal,
    new_refresh_token,
    token_hash,
)
from warehouse.operational.enums import UserRole, UserStatus
from warehouse.operational.models import (
    Agent,
    Policyholder,
    User,
    UserPermission,
    UserSession,
)
from warehouse.operational.rls import USER_ID_SETTING

TENANT_ADMIN_PERMISSION = "tenant:admin"  # resource_type insurance_provider, resource_id tenant
REASON_ROTATED = "rotated"
REASON_REUSED = "reuse_detected"
REASON_LOGOUT = "logout"


class SessionRefused(Exception):
    """The refresh token is unknown, expired, revoked, or its user may no longer sign in."""


@dataclass(frozen=True)
class Issued:
    principal: Principal
    refresh_token: str
    session: UserSession


def principal_for(session: Session, user: User, session_id: uuid.UUID) -> Principal:
    """What the access token will say about `user`: tenants, agent record, grants.

    Runs under row-level security with only `mitra.user_id` set: the policies let a person read
    their own agent and policyholder rows, whatever the tenant.
    """
    now = datetime.now(UTC)
    session.execute(
        select(func.set_config(USER_ID_SETTING, str(user.id), True))
    )  # the policies' "own rows" clause reads it
    grants = session.execute(
        select(UserPermission.permission, UserPermission.resource_type, UserPermission.resource_id)
        .where(UserPermission.user_id == user.id)
        .where(or_(UserPermission.expires_at.is_(None), UserPermission.expires_at > now))
    ).all()
    permissions = frozenset(g.permission for g in grants if g.resource_id is None)
    tenants: list[uuid.UUID] = []
    agent_id = None
    policyholder_ids: tuple[uuid.UUID, ...] = ()
    if user.role is UserRole.AGENT:
        agent = session.scalars(select(Agent).where(Agent.user_id == user.id)).first()
        if agent is not None:
            agent_id, tenants = agent.id, [agent.provider_id]
    elif user.role is UserRole.PROVIDER_ADMIN:
        tenants = [
            g.resource_id
            for g in grants
            if g.permission == TENANT_ADMIN_PERMISSION
            and g.resource_type == "insurance_provider"
            and g.resource_id is not None
        ]
    elif user.role is UserRole.POLICYHOLDER:
        rows = session.execute(
            select(Policyholder.id, Policyholder.provider_id).where(
                Policyholder.user_id == user.id, Policyholder.deleted_at.is_(None)
            )
        ).all()
        policyholder_ids = tuple(r.id for r in rows)
        tenants = sorted({r.provider_id for r in rows})
    return Principal(
        user_id=user.id,
        role=user.role,
        session_id=session_id,
        tenant_ids=tuple(tenants),
        agent_id=agent_id,
        policyholder_ids=policyholder_ids,
        permissions=permissions,
    )


def find_or_create_user(session: Session, phone: str) -> User:
    """The live user of `phone`; a new policyholder account when there is none (first sign-in)."""
    user = session.scalars(
        select(User).where(User.phone == phone, User.deleted_at.is_(None))
    ).first()
    if user is None:
        user = User(phone=phone, role=UserRole.POLICYHOLDER, status=UserStatus.ACTIVE)
        session.add(user)
        session.flush()
    return user


def may_sign_in(user: User) -> bool:
    return user.status in (UserStatus.ACTIVE, UserStatus.PENDING_VERIFICATION)


def start_session(
    session: Session,
    user: User,
    *,
    family_id: uuid.UUID | None = None,
    ip: str | None,
    user_agent: str | None,
) -> Issued:
    """A new refresh token (a new family on sign-in, the same family on rotation)."""
    now = datetime.now(UTC)
    token = new_refresh_token()
    row = UserSession(
        id=uuid.uuid4(),
        user_id=user.id,
        refresh_token_hash=token_hash(token),
        token_family_id=family_id or uuid.uuid4(),
        expires_at=now + REFRESH_TOKEN_TTL,
        ip_address=ip,
        user_agent=user_agent,
        last_used_at=now,
    )
    session.add(row)
    session.flush()
    return Issued(principal=principal_for(session, user, row.id), refresh_token=token, session=row)


def revoke_family(session: Session, family_id: uuid.UUID, reason: str) -> int:
    """Revoke every live session of a family; returns how many were live."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.token_family_id == family_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )
    return result.rowcount or 0


def rotate(
    session: Session, refresh_token: str, *, ip: str | None, user_agent: str | None
) -> Issued:
    """Exchange a live refresh token for a new pair; detect reuse of a rotated one.

    The row is locked, so two simultaneous refreshes with one token cannot both succeed: the
    second sees it rotated and is treated as reuse.
    """
    row = session.scalars(
        select(UserSession)
        .where(UserSession.refresh_token_hash == token_hash(refresh_token))
        .with_for_update()
    ).first()
    if row is None:
        raise SessionRefused("unknown refresh token")
    if row.revoked_at is not None:
        if row.revoked_reason == REASON_ROTATED:
            revoke_family(session, row.token_family_id, REASON_REUSED)
            raise SessionRefused("refresh token reused: every session of this sign-in is revoked")
        raise SessionRefused("the session has ended; sign in again")
    if row.expires_at <= datetime.now(UTC):
        raise SessionRefused("the refresh token has expired; sign in again")
    user = session.get(User, row.user_id)
    if user is None or user.deleted_at is not None or not may_sign_in(user):
        revoke_family(session, row.token_family_id, "user_disabled")
        raise SessionRefused("this account may not sign in")
    row.revoked_at = datetime.now(UTC)
    row.revoked_reason = REASON_ROTATED
    return start_session(session, user, family_id=row.token_family_id, ip=ip, user_agent=user_agent)
