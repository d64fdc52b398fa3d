"""The API's asyncio read pool (`api.db.pipelined`): a connection the database dropped is
replaced by one retry, and a database that cannot be reached is a 503, never a 500."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool

from api.db import open_read_pool, pipelined
from warehouse import urls


async def _backend_pid(pool: AsyncConnectionPool) -> int:
    [[row]] = await pipelined(pool, [("SELECT pg_backend_pid() AS pid", {})])
    return row["pid"]


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
            await pipelined(pool, [("SELECT 1", {})])
        finally:
            await pool.close()

    with pytest.raises(HTTPException) as raised:
        asyncio.run(scenario())
    assert raised.value.status_code == 503
    assert raised.value.headers == {"Retry-After": "5"}
