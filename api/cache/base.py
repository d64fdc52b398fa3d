"""What every answer cache does, whatever stores it: lookup, single flight, compute, degrade."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from time import monotonic, perf_counter

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from api.metrics import Metrics

_log = logging.getLogger("api.cache")

# A computation: a plain function runs in the threadpool (it may block on the database); an
# `async def` is awaited on the event loop (the one-round-trip reads of `api.db`).
Compute = Callable[[], bytes] | Callable[[], Awaitable[bytes]]
NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_CHECKED_NAMESPACES: set[str] = set()  # namespaces are constants of the code: check each once
MAX_KEY_CHARS = 200
Flight = tuple[str, int | None, str]


@dataclass(frozen=True, slots=True)
class CacheResult:
    """An answer; `hit` when it came from the cache without computing or waiting; `version` the
    marts version it belongs to (None when the cache was unavailable and it was computed
    uncached)."""

    value: bytes
    hit: bool
    version: int | None


def cache_key(*parts: object) -> str:
    """A key from the values an answer depends on (ids, filters), unambiguous whatever they hold:
    `cache_key(agent_id, "month", "2026-10")`."""
    return "|".join(str(part).replace("\\", "\\\\").replace("|", "\\|") for part in parts)


def cached_response(
    result: CacheResult, media_type: str = "application/json", status_code: int = 200
) -> Response:
    """The answer as a response, saying whether it was cached and for which marts version."""
    headers = {"X-Cache": "hit" if result.hit else "miss"}
    if result.version is not None:
        headers["X-Marts-Version"] = str(result.version)
    return Response(result.value, status_code, headers, media_type)


def stored_key(key: str) -> str:
    """Keys longer than MAX_KEY_CHARS are stored by their hash (Redis keys stay small)."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "h:" + hashlib.blake2b(key.encode(), digest_size=20).hexdigest()


class AnswerCache(ABC):
    """The cache interface endpoints use (through `CacheDep`); see `api.cache`."""

    def __init__(self, metrics: Metrics, *, retry_after_error: float = 1.0) -> None:
        self._metrics = metrics
        self._retry_after_error = retry_after_error
        self._down_until = 0.0
        self._inflight: dict[Flight, asyncio.Task[bytes]] = {}

    async def get_or_compute(
        self, namespace: str, key: str, compute: Compute, ttl_seconds: int
    ) -> CacheResult:
        """The cached answer for (`namespace`, `key`) at the current marts version, else
        `compute()` run once (see `Compute`) and stored for `ttl_seconds`. `namespace` is
        lower-case letters, digits and `._-`."""
        if namespace not in _CHECKED_NAMESPACES:
            if not NAMESPACE.fullmatch(namespace):
                raise ValueError(f"cache namespace {namespace!r} must match {NAMESPACE.pattern}")
            _CHECKED_NAMESPACES.add(namespace)
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        key = stored_key(key)
        version, value = await self._lookup(namespace, key)
        if value is not None:
            self._metrics.child(self._metrics.cache_hits, namespace).inc()
            return CacheResult(value, True, version)
        self._metrics.child(self._metrics.cache_misses, namespace).inc()
        flight = (namespace, version, key)
        task = self._inflight.get(flight)
        if task is None:
            task = asyncio.ensure_future(self._fill(namespace, key, version, compute, ttl_seconds))
            self._inflight[flight] = task
            task.add_done_callback(partial(self._landed, flight))
        # Shielded: a client that disconnects must not cancel the others' computation.
        return CacheResult(await asyncio.shield(task), False, version)

    async def aclose(self) -> None:
        """Wait for computations in flight (their requests are being answered)."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    def _landed(self, flight: Flight, task: asyncio.Task[bytes]) -> None:
        if self._inflight.get(flight) is task:
            del self._inflight[flight]
        if not task.cancelled():
            task.exception()  # retrieved: the awaiting requests have it

    async def _fill(
        self, namespace: str, key: str, version: int | None, compute: Compute, ttl: int
    ) -> bytes:
        if version is None:
            return await self._compute(namespace, compute)
        return await self._fill_version(namespace, key, version, compute, ttl)

    async def _compute(self, namespace: str, compute: Compute) -> bytes:
        start = perf_counter()
        if inspect.iscoroutinefunction(compute):
            value = await compute()
        else:
            value = await run_in_threadpool(compute)
        if not isinstance(value, bytes):
            raise TypeError(f"a cached answer must be bytes, not {type(value).__name__}")
        self._metrics.cache_computations.labels(namespace).inc()
        self._metrics.cache_compute_seconds.labels(namespace).observe(perf_counter() - start)
        return value

    def _available(self) -> bool:
        return monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        """Count, log (once per outage), and skip the store for a moment."""
        self._metrics.cache_errors.labels(operation).inc()
        if self._available():
            _log.warning(
                "answer cache unavailable (%s: %s: %s); computing uncached for %.1f s",
                operation,
                type(exc).__name__,
                exc,
                self._retry_after_error,
            )
        self._down_until = monotonic() + self._retry_after_error

    @abstractmethod
    async def _lookup(self, namespace: str, key: str) -> tuple[int | None, bytes | None]:
        """(current version or None when unavailable, stored answer or None); never raises."""

    @abstractmethod
    async def _fill_version(
        self, namespace: str, key: str, version: int, compute: Compute, ttl: int
    ) -> bytes:
        """Compute (once across processes where the store allows) and store under `version`."""
