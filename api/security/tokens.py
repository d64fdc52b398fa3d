"""Access tokens (JWT, HS256, 15 minutes) and opaque refresh tokens (30 days, stored hashed).

Why the access token carries the principal (role, tenants, agent id, permissions): every request
is then authorised without a database read, which keeps reads cheap. The price is that a change
of role or grant takes effect at the next refresh, at most 15 minutes later; logout and refresh
reuse revoke the session, so a stolen access token lives at most that long too.

Refresh tokens are random (256 bits), never JWTs: they are only ever compared with the stored
SHA-256 of themselves, so nothing about the user can be read from one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import jwt

from warehouse.operational.enums import UserRole
from warehouse.settings import Settings

ACCESS_TOKEN_TTL = timedelta(minutes=15)
REFRESH_TOKEN_TTL = timedelta(days=30)
ALGORITHM = "HS256"
ISSUER = "agent-mitra"
AUDIENCE = "agent-mitra-app"


@dataclass(frozen=True)
class Principal:
    """Who is asking: decoded from a verified access token.

    `tenant_ids` are the insurers whose rows the caller may see (one for an agent or a provider
    admin, those the person holds policies with for a policyholder, none for a super admin, who
    sees every tenant through `all_tenants`).
    """

    user_id: uuid.UUID
    role: UserRole
    session_id: uuid.UUID
    tenant_ids: tuple[uuid.UUID, ...] = ()
    agent_id: uuid.UUID | None = None
    policyholder_ids: tuple[uuid.UUID, ...] = ()
    permissions: frozenset[str] = frozenset()

    @property
    def all_tenants(self) -> bool:
        return self.role is UserRole.SUPER_ADMIN

    def can_see_tenant(self, tenant_id: uuid.UUID | None) -> bool:
        return self.all_tenants or (tenant_id is not None and tenant_id in self.tenant_ids)

    def has_permission(self, permission: str) -> bool:
        return self.role is UserRole.SUPER_ADMIN or permission in self.permissions

    @cached_property
    def rate_key(self) -> str:
        """Whom the caller's requests count against in rate limits (`api.ratelimit`), formatted
        once per token rather than on every request."""
        return f"user:{self.user_id}"


def issue_access_token(
    settings: Settings, principal: Principal, *, now: datetime | None = None
) -> str:
    """A signed access token for `principal`, valid ACCESS_TOKEN_TTL from `now`."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(principal.user_id),
        "sid": str(principal.session_id),
        "role": principal.role.value,
        "tid": [str(t) for t in principal.tenant_ids],
        "aid": str(principal.agent_id) if principal.agent_id else None,
        "pid": [str(p) for p in principal.policyholder_ids],
        "perm": sorted(principal.permissions),
        "iat": int(issued.timestamp()),
        "exp": int((issued + ACCESS_TOKEN_TTL).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not signed by us."""


def decode_access_token(settings: Settings, token: str) -> Principal:
    """The principal of a valid access token; raises InvalidToken otherwise."""
    return _decode(settings, token)[0]


def _decode(settings: Settings, token: str) -> tuple[Principal, int]:
    """The principal of a valid access token and its expiry (epoch seconds)."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "role"]},
        )
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        principal = Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=UserRole(claims["role"]),
            session_id=uuid.UUID(claims["sid"]),
            tenant_ids=tuple(uuid.UUID(t) for t in claims.get("tid") or ()),
            agent_id=uuid.UUID(claims["aid"]) if claims.get("aid") else None,
            policyholder_ids=tuple(uuid.UUID(p) for p in claims.get("pid") or ()),
            permissions=frozenset(claims.get("perm") or ()),
        )
        return principal, int(claims["exp"])
    except InvalidToken:
        raise
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def new_refresh_token() -> str:
    """A fresh opaque refresh token (URL-safe, 256 bits of randomness)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token: what `user_sessions.refresh_token_hash` stores. A fast hash is
    right here: the token has 256 bits of entropy, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


VERIFIED_TOKENS_MAX = 10_000  # tokens remembered per process (each ~1 KB); then start afresh

# Tokens this process has verified, by (secret, token), until they expire. A token's signature
# and claims never change, so checking it again proves nothing new; the check cost 50-60 µs,
# a sixteenth of a policy read and a tenth of a cached insight (bench/). The secret is part of the
# key so an app with another secret (a rotated one, or a test's) never takes another's word.
_verified: dict[tuple[str, str], tuple[Principal, int]] = {}


def verified_principal(settings: Settings, token: str) -> Principal:
    """`decode_access_token`, remembered per process until the token expires."""
    key = (settings.jwt_secret.get_secret_value(), token)
    known = _verified.get(key)
    if known is not None and time.time() < known[1]:
        return known[0]
    principal, expires = _decode(settings, token)
    if len(_verified) >= VERIFIED_TOKENS_MAX:
        _verified.clear()  # crude but O(1): live callers are re-verified once each
    _verified[key] = (principal, expires)
    return principal
