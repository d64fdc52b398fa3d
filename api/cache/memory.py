"""The answer cache without Redis: a dict in the process (one worker only, DESIGN §4)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from time import monotonic

import psycopg
from fastapi import HTTPException
from psycopg_pool import AsyncConnectionPool

from api.cache.base import AnswerCache, Compute
from api.db import read_together
from api.metrics import Metrics
from warehouse.marts_version import READ_VERSION_SQL


class MemoryAnswerCache(AnswerCache):
    """Answers in a dict of this process. The version is read from the warehouse's
    `ops.marts_version` for every lookup (a one-row read), so a bump is seen at once; lookups
    that arrive while a read is in flight share it (as Redis lookups share one round trip,
    `api.redis_batch`), so a burst costs one read per round trip, not one query each. The read
    runs on the event loop over the warehouse's asyncio pool (`api.db.read_together`) rather than
    taking a thread per read (cached answers 7,000 -> 7,140 req/s in bench/api_insights.py).
    At most `max_entries` answers, the oldest dropped first."""

    def __init__(
        self,
        warehouse: AsyncConnectionPool,
        metrics: Metrics,
        *,
        max_entries: int = 10_000,
        retry_after_error: float = 1.0,
    ) -> None:
        super().__init__(metrics, retry_after_error=retry_after_error)
        self._warehouse = warehouse
        self._max_entries = max_entries
        self._version: int | None = None
        self._version_read: asyncio.Future[int] | None = None
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    async def _read_version(self) -> int:
        rows = (await read_together(self._warehouse, [(READ_VERSION_SQL, {})]))[0]
        if not rows:
            raise LookupError("ops.marts_version has no row: run the migrations")
        return int(rows[0]["version"])

    def _read_done(self, _: asyncio.Future[int]) -> None:
        self._version_read = None

    async def _current_version(self) -> int:
        """The version, from the read in flight if there is one, else from a new read."""
        if self._version_read is None:
            self._version_read = asyncio.ensure_future(self._read_version())
            self._version_read.add_done_callback(self._read_done)
        return await asyncio.shield(self._version_read)

    async def _lookup(self, namespace: str, key: str) -> tuple[int | None, bytes | None]:
        if not self._available():
            return None, None
        try:
            version = await self._current_version()
        except (HTTPException, psycopg.Error, LookupError) as exc:  # HTTPException: a 503
            self._failed("version", exc)
            return None, None
        if version != self._version:
            self._entries.clear()  # all of an older version: never read again
            self._version = version
        entry = self._entries.get((namespace, key))
        if entry is None or entry[0] <= monotonic():
            return version, None
        return version, entry[1]

    async def _fill_version(
        self, namespace: str, key: str, version: int, compute: Compute, ttl: int
    ) -> bytes:
        value = await self._compute(namespace, compute)
        if version == self._version:  # not when a newer version was seen meanwhile
            self._entries[(namespace, key)] = (monotonic() + ttl, value)
            self._entries.move_to_end((namespace, key))
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value
