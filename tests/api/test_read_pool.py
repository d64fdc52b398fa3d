"""The API's asyncio read pool (`api.db.read_together`): the statements of a read run in one
transaction under the caller's scope, which ends with them; values are bound, never spliced; a
connection the database dropped is replaced by one retry, and a database that cannot be reached
is a 503, never a 500."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool

from api.db import open_read_pool, read_together, scoped_rows
from api.security.tokens import Principal
from warehouse import urls
from warehouse.operational.enums import UserRole
from warehouse.operational.rls import API_ROLE


async def _backend_pid(pool: AsyncConnectionPool) -> int:
    [[row]] = await read_together(pool, [("SELECT pg_backend_pid() AS pid", {})])
    return row["pid"]


WHO = (
    "SELECT current_user AS role, current_setting('mitra.tenant_ids', true) AS tenants,"
    " txid_current() AS tx"
)


def test_the_scope_holds_for_the_reads_statements_and_ends_with_them(operational_url: str) -> None:
    """The scope set by the first statement is seen by every later one, in one transaction;
    the next read on the same pooled connection runs unscoped again."""
    tenant = uuid.uuid4()
    agent = Principal(uuid.uuid4(), UserRole.AGENT, uuid.uuid4(), tenant_ids=(tenant,))

    async def scenario() -> tuple[list[dict], list[list[dict]]]:
        pool = open_read_pool(operational_url, 1)  # one connection: both reads share it
        await pool.open(wait=True)
        try:
            scoped = await scoped_rows(pool, agent, WHO, {})
            after = await read_together(pool, [(WHO, {}), (WHO, {})])
            return scoped, after
        finally:
            await pool.close()

    scoped, (first, second) = asyncio.run(scenario())
    assert scoped == [{"role": API_ROLE, "tenants": str(tenant), "tx": scoped[0]["tx"]}]
    assert first[0]["role"] != API_ROLE and first[0]["tenants"] in ("", None)
    assert first[0]["tx"] == second[0]["tx"]  # one transaction
    assert first[0]["tx"] != scoped[0]["tx"]


def test_values_are_bound_never_spliced(operational_url: str) -> None:
    hostile = "x'); SELECT pg_sleep(10); --\\ %s %(v)s ₹ नमस्ते"
    ids = [uuid.uuid4(), uuid.uuid4()]

    async def scenario() -> list[list[dict]]:
        pool = open_read_pool(operational_url, 1)
        await pool.open(wait=True)
        try:
            return await read_together(
                pool,
                [
                    ("SELECT %(v)s AS v, %(n)s AS n", {"v": hostile, "n": None}),
                    (
                        "SELECT %(id)s = ANY(%(ids)s) AS hit, %(none)s = ANY(%(empty)s) AS miss",
                        {"id": ids[1], "ids": ids, "none": ids[0], "empty": []},
                    ),
                    ("SELECT '100%%' AS percent", {}),
                ],
            )
        finally:
            await pool.close()

    texts, arrays, percent = asyncio.run(scenario())
    assert texts == [{"v": hostile, "n": None}]
    assert arrays == [{"hit": True, "miss": False}]
    assert percent == [{"percent": "100%"}]


def test_a_read_survives_a_dropped_connection(operational_url: str) -> None:
    async def scenario() -> tuple[int, int]:
        pool = open_read_pool(operational_url, 1)
        await pool.open(wait=True)
        try:
            before = await _backend_pid(pool)
            with psycopg.connect(urls.libpq_url(operational_url), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (before,))
            return before, await _backend_pid(pool)  # the stale connection fails; one retry
        finally:
            await pool.close()

    before, after = asyncio.run(scenario())
    assert after != before


def test_an_unreachable_database_is_a_503(operational_url: str) -> None:
    missing = urls.with_database(operational_url, "mitra_no_such_database")

    async def scenario() -> None:
        pool = AsyncConnectionPool(urls.libpq_url(missing), min_size=1, open=False, timeout=1)
        await pool.open(wait=False)
        try:
            await read_together(pool, [("SELECT 1", {})])
        finally:
            await pool.close()

    with pytest.raises(HTTPException) as raised:
        asyncio.run(scenario())
    assert raised.value.status_code == 503
    assert raised.value.headers == {"Retry-After": "5"}
