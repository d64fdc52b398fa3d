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

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import HTTPException, status
from psycopg import AsyncClientCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import ClauseElement, Connection, Engine
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.orm import Session

from api.security.tokens import Principal
from warehouse import urls
from warehouse.operational.rls import API_ROLE

# psycopg's own parameter style: run as is by both paths (SQLAlchemy's `exec_driver_sql`, and
# psycopg on the read pool), so the statement exists once.
SCOPE_SQL = (
    "SELECT set_config('role', %(role)s, true), set_config('mitra.tenant_ids', %(tenants)s, true),"
    " set_config('mitra.all_tenants', %(all_tenants)s, true),"
    " set_config('mitra.user_id', %(user)s, true)"
)
READ_POOL_WAIT_S = 5.0  # a read waits this long for a pooled connection, then 503


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
        session.connection().exec_driver_sql(SCOPE_SQL, _scope_values(principal))
        yield session


@contextmanager
def scoped_connection(engine: Engine, principal: Principal | None) -> Iterator[Connection]:
    """The same scope on a plain connection: Core statements without the ORM's unit of work
    cost about half as much CPU per request here (bench/api_operational.py)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(SCOPE_SQL, _scope_values(principal))
        yield conn


# --------------------------------------------------------------------------- the read pool


def open_read_pool(url: str, size: int) -> AsyncConnectionPool:
    """An asyncio pool of up to `size` psycopg connections for `read_together`, growing from two
    as reads wait (opened by the caller: `await pool.open(wait=False)`, so a database that is
    down at start-up fills it later). A read holds its connection for one round trip, so a few
    serve many concurrent requests. Autocommit: each read is its own (implicit) transaction."""
    return AsyncConnectionPool(
        urls.libpq_url(url),
        min_size=min(2, size),
        max_size=size,
        open=False,
        timeout=READ_POOL_WAIT_S,
        kwargs={"connect_timeout": 5, "application_name": "agent_mitra", "autocommit": True},
    )


def database_unavailable(exc: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the database is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


Statement = tuple[str, Mapping[str, Any]]  # SQL in psycopg's parameter style, and its values
_PSYCOPG = psycopg_dialect.dialect()


@dataclass(frozen=True)
class CompiledQuery:
    """A SQLAlchemy query compiled once for `read_together`: its SQL, and the values of the
    parameters its own text bound (literals such as `percentile_cont(0.5)`); the rest are named
    `bindparam`s, given per call."""

    sql: str
    constants: dict[str, Any]

    def statement(self, **values: Any) -> Statement:
        return self.sql, {**self.constants, **values}


def compile_query(query: ClauseElement) -> CompiledQuery:
    """Compile `query` for psycopg (compiling costs as much as running a small query, so callers
    compile each of theirs once)."""
    compiled = query.compile(dialect=_PSYCOPG)
    return CompiledQuery(str(compiled), {k: v for k, v in compiled.params.items() if v is not None})


async def read_together(
    pool: AsyncConnectionPool, statements: Sequence[Statement]
) -> list[list[dict[str, Any]]]:
    """The rows of each statement, all run in one transaction and one round trip.

    How: each statement is bound on the client (psycopg's `mogrify`: its adapters quote every
    value, through libpq for strings; no value is ever spliced into SQL by hand) and the
    statements go as one simple-protocol message, which PostgreSQL runs as one implicit
    transaction. A transaction-local setting made by one statement (the row-level-security
    scope, `SCOPE_SQL`) therefore holds for the statements after it, and ends with them, so a
    pooled connection never carries a caller's tenant into the next read.

    Why: on one core the API is CPU-bound in Python, and this costs 0.03 ms of client CPU for
    the scope and a read, where psycopg's pipeline mode with BEGIN and COMMIT cost 0.18 ms
    (measured here, 3,000 sequential reads each). The price is that PostgreSQL plans every
    statement each time instead of keeping it prepared, on the database's core.

    A read is retried once when its connection was lost (a restarted database leaves stale
    connections in the pool); a database still unreachable, or a pool with no free connection
    within READ_POOL_WAIT_S, is a 503. For reads only: a retry runs them again.
    """
    for attempt in (1, 2):
        conn: psycopg.AsyncConnection | None = None
        try:
            async with pool.connection() as conn:
                cursor = AsyncClientCursor(conn, row_factory=dict_row)
                await cursor.execute(
                    ";\n".join(cursor.mogrify(sql, params) for sql, params in statements)
                )
                results = [await cursor.fetchall()]
                while cursor.nextset():
                    results.append(await cursor.fetchall())
                return results
        except PoolTimeout as exc:
            raise database_unavailable(exc) from exc
        except psycopg.OperationalError as exc:
            if attempt == 2 or conn is None or not conn.broken:
                raise database_unavailable(exc) from exc
    raise AssertionError("unreachable")


async def scoped_rows(
    pool: AsyncConnectionPool, principal: Principal, sql: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The rows of one read-only statement in the same scope as `scoped_connection` (API role,
    caller's tenants, one transaction), in one round trip (`read_together`)."""
    results = await read_together(pool, [(SCOPE_SQL, _scope_values(principal)), (sql, params)])
    return results[1]
