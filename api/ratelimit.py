"""Rate limits per caller, shared by every worker through Redis (issue 8).

    @router.get("/...", dependencies=[Depends(RateLimit("insights", per_minute=120))])

The caller is the user of a valid access token, else the client address (behind a proxy, name
it in `MITRA_FORWARDED_ALLOW_IPS` so that is the real client: `api.main.uvicorn_proxy_flags`). Each
(limit name, caller) gets a window of one minute that starts at its first request: `INCR`,
`PTTL` and `PEXPIRE` on the first, in a Lua script (atomic across workers), batched with the
other requests of the same event-loop turn into one round trip (`api.redis_batch`; the counter
keys travel in ARGV, so one Redis node or a hash-tagged prefix on Redis Cluster).
A caller can thus send up to twice the limit around a window's end; a fixed window is the price
of one key and one round trip per request.

Over the limit: 429 problem+json with `Retry-After` (seconds until the window ends). Every
limited response carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`, added by
`RateLimitHeadersMiddleware` (a route that returns a `Response` itself would drop headers set by
a dependency). Without Redis, or while it is unreachable, each process counts on its own (a
looser limit rather than none, and never a 5xx).

The same counters keep each insurer's daily budget of language-model calls (`spend_llm_call`):
a window that ends at midnight IST, keyed by tenant and day, so chat and summaries cannot run
up a model bill however many accounts ask.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from time import monotonic
from typing import Any

from fastapi import HTTPException, Request, status
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics
from api.redis_batch import ScriptBatcher
from api.security.deps import identify
from api.security.tokens import Principal
from warehouse.settings import Settings

_log = logging.getLogger(__name__)
WINDOW_MS = 60_000
STATE_KEY = "rate_limit"

# ARGV: per hit, the counter key and the window in ms. Returns {count, ms left} per hit.
HITS = """
local out = {}
for i = 1, #ARGV, 2 do
  local n = redis.call('INCR', ARGV[i])
  local ttl = redis.call('PTTL', ARGV[i])
  if ttl < 0 then
    redis.call('PEXPIRE', ARGV[i], ARGV[i + 1])
    ttl = tonumber(ARGV[i + 1])
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out
"""


def split_hits(reply: Any, count: int) -> Sequence[tuple[int, int]]:
    return [(int(reply[2 * i]), int(reply[2 * i + 1])) for i in range(count)]


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """One request's standing against a limit."""

    limit: int
    count: int
    reset_ms: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends (at least 1, as `Retry-After` needs)."""
        return max(math.ceil(self.reset_ms / 1000), 1)


class _LocalWindows:
    """The same fixed windows in a dict, for one process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    def hit(self, key: str, limit: int, window_ms: int = WINDOW_MS) -> RateLimitState:
        now = monotonic()
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            if len(self._windows) >= self._max_keys:
                self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            count, ends = 0, now + window_ms / 1000
        self._windows[key] = (count + 1, ends)
        return RateLimitState(limit, count + 1, int((ends - now) * 1000))


class RateLimiter:
    """Counts requests per (name, caller) in Redis, or in the process without it."""

    def __init__(
        self,
        metrics: Metrics,
        redis: Redis | None,
        *,
        prefix: str = "mitra:rl",
        retry_after_error: float = 1.0,
    ) -> None:
        self._metrics = metrics
        self._redis = redis
        self._hits = ScriptBatcher(redis, HITS, split_hits) if redis is not None else None
        self._prefix = prefix
        self._retry_after_error = retry_after_error
        self._down_until = 0.0
        self._local = _LocalWindows()

    async def hit(
        self, name: str, caller: str, limit: int, window_ms: int = WINDOW_MS
    ) -> RateLimitState:
        """Count one request of `caller` under `name` in its window of `window_ms` (a minute,
        or longer for budgets such as a day's language-model calls)."""
        key = f"{self._prefix}:{name}:{caller}"
        if self._hits is not None and monotonic() >= self._down_until:
            try:
                count, reset_ms = await self._hits.call((), (key, window_ms))
                return RateLimitState(limit, count, reset_ms)
            except RedisError as exc:
                self._metrics.cache_errors.labels("rate_limit").inc()
                _log.warning("rate limits counted per process: Redis failed (%s)", exc)
                self._down_until = monotonic() + self._retry_after_error
        return self._local.hit(key, limit, window_ms)

    def refused(self, name: str) -> None:
        self._metrics.rate_limited.labels(name).inc()


def caller_key(request: Request, found: Principal | HTTPException) -> str:
    """Whom a request counts against, given what `identify` found: `user:<id>` for a verified
    caller, else `ip:<address>` (a bad token is not an error here: the route's own
    authentication answers it)."""
    if isinstance(found, Principal):
        return found.rate_key
    return f"ip:{request.client.host if request.client else 'unknown'}"


class RateLimit:
    """A dependency that admits `per_minute` requests a minute per caller under `name` (routes
    sharing a name share the budget), else answers 429 with `Retry-After`. `per_minute` may be
    read from the app's settings (a function of them), so deployments can tune it."""

    def __init__(self, name: str, per_minute: int | Callable[[Settings], int]) -> None:
        if isinstance(per_minute, int) and per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.name = name
        self.per_minute = per_minute

    async def __call__(self, request: Request) -> None:
        await self.count(request, caller_key(request, identify(request)))

    async def count(self, request: Request, caller: str) -> None:
        """Count one request of `caller` (a `caller_key`); 429 when over the limit. For
        dependencies that have identified the caller already (`api.routes.insights.Asker`)."""
        limiter: RateLimiter = request.app.state.rate_limiter
        limit = self.per_minute
        if not isinstance(limit, int):
            limit = limit(request.app.state.settings)
        state = await limiter.hit(self.name, caller, limit)
        request.state.rate_limit = state  # STATE_KEY, for RateLimitHeadersMiddleware
        if not state.allowed:
            limiter.refused(self.name)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"more than {limit} requests a minute ({self.name});"
                f" retry in {state.retry_after} s",
                headers={"Retry-After": str(state.retry_after)},
            )


class RateLimitHeadersMiddleware:
    """Adds `X-RateLimit-Limit` / `-Remaining` to responses of rate-limited routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {}).get(STATE_KEY)
                if isinstance(state, RateLimitState):
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-ratelimit-limit", str(state.limit).encode()),
                        (b"x-ratelimit-remaining", str(state.remaining).encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --------------------------------------------------------------------------- language-model budget

LLM_BUDGET = "llm_day"
_IST = timezone(timedelta(hours=5, minutes=30))


def llm_budget_key(tenant_ids: Iterable[uuid.UUID], day: date) -> str:
    """Whose daily budget a language-model call spends: the insurer's (the lowest id when a
    policyholder holds policies with several), or `none`, shared by every caller without an
    insurer (open sign-up), so new accounts cannot multiply the budget."""
    tenants = sorted(str(t) for t in tenant_ids)
    return f"{tenants[0] if tenants else 'none'}:{day.isoformat()}"


async def spend_llm_call(request: Request, tenant_ids: Iterable[uuid.UUID]) -> None:
    """Count one language-model call against the tenant's budget of the day (IST), or raise 429
    with `Retry-After` (until midnight IST) when it is spent. Call it just before the model is
    asked, so only real calls count; from a worker thread, through `anyio.from_thread.run`."""
    limiter: RateLimiter = request.app.state.rate_limiter
    limit = request.app.state.settings.llm_calls_per_tenant_per_day
    now = datetime.now(_IST)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), _IST)
    window_ms = max(int((midnight - now).total_seconds() * 1000), 1)
    state = await limiter.hit(LLM_BUDGET, llm_budget_key(tenant_ids, now.date()), limit, window_ms)
    if not state.allowed:
        limiter.refused(LLM_BUDGET)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"the insurer's {limit} language-model answers of the day are used up;"
            f" retry in {state.retry_after} s",
            headers={"Retry-After": str(state.retry_after)},
        )
