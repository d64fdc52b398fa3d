"""Transactions of the API on the operational database, under row-level security.

Why a role switch per transaction: the API's tables are owned by the migration role, and an owner
(or a superuser) bypasses row-level security. Each transaction therefore starts with
`set_config('role', 'mitra_api', true)` (the same as `SET LOCAL ROLE`), a role that owns nothing
and holds only the grants it needs, plus the caller's tenants and user id as transaction-local
settings that the policies read (`warehouse.operational.rls`). One statement, one round trip.
Transaction-local settings end with the transaction, so a pooled connection never carries one
caller's tenant into the next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from api.security.tokens import Principal
from warehouse.operational.rls import API_ROLE

_SCOPE = text(
    "SELECT set_config('role', :role, true), set_config('mitra.tenant_ids', :tenants, true),"
    " set_config('mitra.all_tenants', :all_tenants, true), set_config('mitra.user_id', :user, true)"
)


def _scope_values(principal: Principal | None) -> dict[str, str]:
    return {
        "role": API_ROLE,
        "tenants": ",".join(str(t) for t in principal.tenant_ids) if principal else "",
        "all_tenants": "on" if principal and principal.all_tenants else "off",
        "user": str(principal.user_id) if principal else "",
    }


@contextmanager
def scoped_session(engine: Engine, principal: Principal | None) -> Iterator[Session]:
    """A session in one transaction as the API role, scoped to `principal`'s tenants (none when
    `principal` is None: sign-in, which touches only untenanted tables). Commits on success."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.execute(_SCOPE, _scope_values(principal))
        yield session


@contextmanager
def scoped_connection(engine: Engine, principal: Principal | None) -> Iterator[Connection]:
    """The same scope on a plain connection, for reads on the hot path: Core statements without
    the ORM's unit of work cost about half as much CPU per request here (bench/api_operational)."""
    with engine.begin() as conn:
        conn.execute(_SCOPE, _scope_values(principal))
        yield conn
