"""The API's Redis client, and Lua scripts batched across concurrent requests.

Why batching: with redis-py's asyncio client (hiredis parser), one command costs the server
about 200-250 us of CPU in Python (packing, the connection pool, timeouts, parsing), ten times
what Redis spends on it, and it was most of what a cached answer cost. Requests that ask within
the same turn of the event loop are therefore sent as *one* script call over one connection.
Measured here (2 shared cores, 50 keep-alive connections, uvicorn + uvloop, one worker), on a
bare test route with no authentication: server CPU per cached answer 510-640 us unbatched,
345-400 us batched (a plain 2 KB JSON route: 225-240 us); alone, a lookup fell from ~200 us to
20-50 us. A real insights answer adds the token check, the rate limit (a second batched script)
and the authorisation: 0.16 ms per cached answer in all (bench/api_insights.py, 2026-11-25). At
low load a batch holds one request and costs one extra loop turn, a few microseconds.

Each script handles a list of items: ARGV is the items' arguments one after the other (`arity`
each) and `split` cuts the reply into one result per item. A batch still runs atomically in Redis
(one script), so a lookup and the version it reads are still read together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

R = TypeVar("R")
Item = tuple[Any, ...]
_Pending = list[tuple[Item, "asyncio.Future[Any]"]]


def open_redis(url: str) -> Redis:
    """The API's client: short timeouts and one immediate retry (a pooled connection may have
    been closed by a Redis restart), so an outage costs milliseconds, not seconds."""
    return Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class ScriptBatcher(Generic[R]):
    """Calls one Lua script for all items submitted in the same event-loop turn (per KEYS)."""

    def __init__(
        self,
        client: Redis,
        source: str,
        split: Callable[[Any, int], Sequence[R]],
        *,
        max_batch: int = 256,
    ) -> None:
        self._script = client.register_script(source)
        self._split = split
        self._max_batch = max_batch
        self._pending: dict[tuple[str, ...], _Pending] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, keys: tuple[str, ...], item: Item) -> asyncio.Future[R]:
        """The item's result, once its batch has been answered (or the batch's Redis error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        batch = self._pending.setdefault(keys, [])
        batch.append((item, future))
        if len(batch) == 1:
            loop.call_soon(self._flush, keys)
        elif len(batch) >= self._max_batch:
            self._flush(keys)
        return future

    def _flush(self, keys: tuple[str, ...]) -> None:
        batch = self._pending.pop(keys, None)
        if not batch:
            return
        task = asyncio.ensure_future(self._send(keys, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, keys: tuple[str, ...], batch: _Pending) -> None:
        args = [value for item, _ in batch for value in item]
        try:
            results = self._split(await self._script(keys=list(keys), args=args), len(batch))
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every waiter gets it, as if it had called alone
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a waiter may have been cancelled (client gone)
                future.set_result(result)
