"""The answer cache of the insights API: never older than the marts, one computation per key.

Why it looks like this (DESIGN §2, §8a; issue 8):

- **Freshness by version, not by deletion.** Every stored answer's key carries the marts version
  (`warehouse.marts_version`), which the pipeline bumps after writing marts or ml tables. A
  lookup reads the version and the answer *in one Redis round trip* (a Lua script), so the
  first request after a bump looks under the new version, misses, and computes from the new
  marts. Old entries are never read again and expire (the TTL is only a backstop).
- **One round trip for a cached answer.** Concurrent lookups share it (`api.redis_batch`):
  one script call reads the version and every answer asked for in the same loop turn.
- **One computation per key.** Under a burst of identical uncached requests, one coroutine per
  process computes (the others await the same task), and across processes the first to take a
  short Redis lock (`SET NX PX`) computes while the others poll for the value; a waiter that
  has waited `wait_seconds` computes itself rather than fail.
- **Never a 5xx because of the cache.** A Redis error makes the request compute uncached (and
  skips Redis for `retry_after_error` seconds, so an outage costs no timeout per request); the
  error is logged once and counted in `mitra_cache_errors_total`. Errors raised by `compute`
  reach the caller (and the requests that awaited that computation) and are never stored.

Without `REDIS_URL` the cache is a dict in the process (one worker only, DESIGN §4), and the
version is read from the warehouse's `ops.marts_version` row on every lookup.

Use (values are bytes: serialise with orjson; the key must hold *everything* the answer depends
on, starting with the caller's scope, e.g. the agent id, never only the URL)::

    result = await cache.get_or_compute(
        "insights.kpis.v1", cache_key(agent_id, period), lambda: orjson.dumps(...), 300
    )
    return cached_response(result)

Bump the namespace's suffix (`.v2`) when an answer's shape changes: the marts version does not
change with a deployment, and old processes may still be writing the old shape.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from sqlalchemy import Engine

from api.cache.base import AnswerCache, CacheResult, Compute, cache_key, cached_response
from api.cache.memory import MemoryAnswerCache
from api.cache.redis_cache import RedisAnswerCache
from api.metrics import Metrics
from api.redis_batch import open_redis

__all__ = [
    "AnswerCache",
    "CacheDep",
    "CacheResult",
    "Compute",
    "MemoryAnswerCache",
    "RedisAnswerCache",
    "cache_key",
    "cached_response",
    "get_cache",
    "open_answer_cache",
    "open_redis",
]


def open_answer_cache(
    warehouse: Engine, warehouse_reads: AsyncConnectionPool, metrics: Metrics, redis: Redis | None
) -> AnswerCache:
    """Redis when configured, else the in-process dict (one worker only), which reads the
    version on every lookup through the asyncio pool."""
    if redis is None:
        return MemoryAnswerCache(warehouse_reads, metrics)
    return RedisAnswerCache(redis, warehouse, metrics)


async def get_cache(request: Request) -> AnswerCache:
    """Async on purpose: FastAPI runs a plain `def` dependency in the threadpool, a thread hop
    per request that cost a cached answer more than Redis did."""
    return request.app.state.cache


CacheDep = Annotated[AnswerCache, Depends(get_cache)]
