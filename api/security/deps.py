"""Authorisation dependencies: who is asking (`CurrentPrincipal`) and whether they may (`roles`).

Every route that touches tenant data depends on one of these; the database then enforces the
tenant a second time through row-level security (see `api.db`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from api.security.tokens import InvalidToken, Principal, principal_of_request
from warehouse.operational.enums import UserRole

_bearer = HTTPBearer(auto_error=False, description="An access token from /v1/auth/otp/verify")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a verified access token; 401 problem+json otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("an access token is required (Authorization: Bearer ...)")
    try:
        return principal_of_request(settings, request.state, credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized("the access token is not valid or has expired") from exc


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def roles(*allowed: UserRole) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only `allowed` roles (super admins always), else 403."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role in allowed or principal.role is UserRole.SUPER_ADMIN:
            return principal
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {principal.role.value} may not do this; allowed: "
            + ", ".join(sorted({r.value for r in allowed} | {UserRole.SUPER_ADMIN.value})),
        )

    return check


def role_or_permission(
    permission: str, *allowed: UserRole
) -> Callable[[Principal], Awaitable[Principal]]:
    """Admit `allowed` roles, or any caller holding `permission` in `user_permissions`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role in allowed or principal.has_permission(permission):
            return principal
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this needs role {', '.join(r.value for r in allowed)} or permission {permission}",
        )

    return check
