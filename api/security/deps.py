"""Authorisation dependencies: who is asking (`CurrentPrincipal`) and whether they may (`roles`).

Every route that touches tenant data depends on one of these; the database then enforces the
tenant a second time through row-level security (see `api.db`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from api.security.tokens import InvalidToken, Principal, verified_principal
from warehouse.operational.enums import UserRole

SCHEME_NAME = "HTTPBearer"  # one security scheme in the OpenAPI document for every check
SCHEME_DESCRIPTION = "An access token from /v1/auth/otp/verify"


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


class Caller(HTTPBearer):
    """The caller of a verified access token (401 problem+json otherwise), admitted by `admits`
    (403 otherwise).

    One dependency does the bearer scheme, the token and the role check, because each level of
    FastAPI dependencies costs CPU on every request: the chain it replaces (bearer, settings,
    principal, role) was a sixth of a policy read (bench/api_operational.py). Being an
    `HTTPBearer`, it still puts the bearer scheme in the OpenAPI document.
    """

    def __init__(
        self, admits: Callable[[Principal], bool], refusal: Callable[[Principal], str]
    ) -> None:
        super().__init__(scheme_name=SCHEME_NAME, description=SCHEME_DESCRIPTION, auto_error=False)
        self.admits = admits
        self.refusal = refusal

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return self.admitted(identify(request))

    def admitted(self, found: Principal | HTTPException) -> Principal:
        """`found` (from `identify`) if it is a caller this check admits; raises the 401 or
        403 otherwise."""
        if isinstance(found, HTTPException):
            raise found
        if not self.admits(found):
            raise HTTPException(status.HTTP_403_FORBIDDEN, self.refusal(found))
        return found


def identify(request: Request) -> Principal | HTTPException:
    """The caller of the request's access token, or the 401 that refuses it (returned, not
    raised: a rate limit counts the request first, against the address when this is a 401).
    Cheap to call twice: the process remembers verified tokens (`verified_principal`)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if not token or scheme.lower() != "bearer":
        return unauthorized("an access token is required (Authorization: Bearer ...)")
    try:
        return verified_principal(request.app.state.settings, token)
    except InvalidToken:
        return unauthorized("the access token is not valid or has expired")


CurrentPrincipal = Annotated[Principal, Depends(Caller(lambda _: True, str))]


def roles(*allowed: UserRole) -> Caller:
    """A dependency that admits only `allowed` roles (super admins always), else 403."""
    names = ", ".join(sorted({r.value for r in allowed} | {UserRole.SUPER_ADMIN.value}))
    return Caller(
        lambda p: p.role in allowed or p.role is UserRole.SUPER_ADMIN,
        lambda p: f"role {p.role.value} may not do this; allowed: {names}",
    )


def role_or_permission(permission: str, *allowed: UserRole) -> Caller:
    """Admit `allowed` roles, or any caller holding `permission` in `user_permissions`."""
    return Caller(
        lambda p: p.role in allowed or p.has_permission(permission),
        lambda _: (
            f"this needs role {', '.join(r.value for r in allowed)} or permission {permission}"
        ),
    )
