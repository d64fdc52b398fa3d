"""The answer cache in Redis, shared by every worker and host (DESIGN §8a).

Keys: `mitra:<warehouse id>:a:<namespace>:<version>:<key>` for answers, `...:lock:...` for the
computation locks, `mitra:<warehouse id>:marts_version` for the version (see
`warehouse.marts_version`). The lookup script builds the answer keys from the version it reads,
so it needs one Redis node (or a hash tag around the prefix on Redis Cluster).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from time import monotonic
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api.cache.base import AnswerCache, Compute
from api.metrics import Metrics
from api.redis_batch import ScriptBatcher
from warehouse.marts_version import (
    REDIS_VERSION_TTL_MS,
    SET_IF_NEWER,
    MartsVersion,
    read_marts_version,
    redis_prefix,
    redis_version_key,
)

_log = logging.getLogger("api.cache")

# KEYS[1] the version key. ARGV: per lookup, the answer key before and after the version.
# Returns nil when no version is known, else {version, answer or nil for each lookup}: the
# version and the answers of a whole batch in one round trip, read atomically.
LOOKUP = """
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local out = {v}
for i = 1, #ARGV, 2 do
  out[#out + 1] = redis.call('GET', ARGV[i] .. v .. ARGV[i + 1])
end
return out
"""
# KEYS: answer, lock. ARGV: token, lock ms. {1, nil} when the lock is ours, {0, answer} when
# someone stored it meanwhile, {0, nil} when someone else is computing.
CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then return {0, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, false} end
return {0, false}
"""
# KEYS: answer, lock. ARGV: value, ttl ms, token ('' when not holding the lock).
STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
# KEYS: lock. ARGV: token. Releases the lock only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Found = tuple[bytes, bytes | None] | None


def split_lookups(reply: Any, count: int) -> Sequence[Found]:
    """One (version, answer) per lookup of the batch; None for all when no version is known."""
    if reply is None:
        return [None] * count
    return [(reply[0], reply[i]) for i in range(1, count + 1)]


class RedisAnswerCache(AnswerCache):
    """See the package docstring: one round trip per cached answer (shared by the concurrent
    ones), a `SET NX PX` lock so one process computes, the others poll for the value."""

    def __init__(
        self,
        client: Redis,
        warehouse: Engine,
        metrics: Metrics,
        *,
        lock_ms: int = 5_000,
        wait_seconds: float = 5.0,
        retry_after_error: float = 1.0,
    ) -> None:
        super().__init__(metrics, retry_after_error=retry_after_error)
        self._warehouse = warehouse
        self._lock_ms = lock_ms
        self._wait_seconds = wait_seconds
        self._lookups = ScriptBatcher[Found](client, LOOKUP, split_lookups)
        self._claim_script = client.register_script(CLAIM)
        self._store_script = client.register_script(STORE)
        self._release_script = client.register_script(RELEASE)
        self._seed_script = client.register_script(SET_IF_NEWER)
        self._prefix: str | None = None
        self._version_key = ""
        self._seeding: asyncio.Task[None] | None = None

    def _read_row(self) -> MartsVersion:
        with self._warehouse.connect() as conn:
            return read_marts_version(conn)

    async def _seed(self) -> None:
        """Learn the warehouse id (the key prefix) and put its version into Redis, when Redis
        has none (first use, or the mirror expired); concurrent requests share one warehouse
        read. Safe to share: the version served is read from Redis afterwards, and the seed
        never lowers a newer version a bump published meanwhile."""
        if self._seeding is None or self._seeding.done():
            self._seeding = asyncio.ensure_future(self._seed_once())
            self._seeding.add_done_callback(lambda task: task.cancelled() or task.exception())
        await asyncio.shield(self._seeding)

    async def _seed_once(self) -> None:
        row = await run_in_threadpool(self._read_row)
        self._prefix = redis_prefix(row.warehouse_id)
        self._version_key = redis_version_key(row.warehouse_id)
        await self._seed_script(keys=[self._version_key], args=[row.version, REDIS_VERSION_TTL_MS])

    async def _lookup(self, namespace: str, key: str) -> tuple[int | None, bytes | None]:
        if not self._available():
            return None, None
        try:
            if self._prefix is None:
                await self._seed()
            item = (f"{self._prefix}:a:{namespace}:", f":{key}")
            found = await self._lookups.call((self._version_key,), item)
            if found is None:
                await self._seed()
                found = await self._lookups.call((self._version_key,), item)
        except (RedisError, SQLAlchemyError) as exc:
            self._failed("lookup", exc)
            return None, None
        if found is None:  # evicted at once (maxmemory): as if unavailable
            return None, None
        return int(found[0]), found[1]

    async def _fill_version(
        self, namespace: str, key: str, version: int, compute: Compute, ttl: int
    ) -> bytes:
        answer_key = f"{self._prefix}:a:{namespace}:{version}:{key}"
        lock_key = f"{self._prefix}:lock:{namespace}:{version}:{key}"
        token = secrets.token_hex(8)
        deadline = monotonic() + self._wait_seconds
        delay = 0.002
        try:
            while True:
                claimed, stored = await self._claim_script(
                    keys=[answer_key, lock_key], args=[token, self._lock_ms]
                )
                if stored is not None:
                    return stored  # another process computed it meanwhile
                if claimed:
                    break
                if monotonic() >= deadline:
                    _log.warning(
                        "waited %.1f s for %s; computing it here", self._wait_seconds, answer_key
                    )
                    token = ""
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        except RedisError as exc:
            self._failed("claim", exc)
            return await self._compute(namespace, compute)
        try:
            value = await self._compute(namespace, compute)
        except BaseException:
            if token:
                await self._release(lock_key, token)
            raise
        try:
            await self._store_script(keys=[answer_key, lock_key], args=[value, ttl * 1000, token])
        except RedisError as exc:
            self._failed("store", exc)
        return value

    async def _release(self, lock_key: str, token: str) -> None:
        try:
            await self._release_script(keys=[lock_key], args=[token])
        except RedisError as exc:  # the lock expires on its own
            self._failed("release", exc)
