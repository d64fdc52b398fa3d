"""What agents open the app for (`/v1/agents/{agent_id}/...`), and a policyholder's videos.

Each answer is computed from the marts and model outputs by `api.insights`, serialised once with
orjson (DESIGN §9) and cached under the marts version (`api.cache`), so a cached answer costs one
Redis round trip and is never older than the marts. Who may see an agent is decided on every
request (`api.insights.access`); only the facts it is decided on (the agent's tenant and
territory) are cached, so a cached answer is only ever served to a caller allowed to see it.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.cache import AnswerCache, CacheResult, cache_key, cached_response
from api.db import scoped_session
from api.deps import Engines
from api.insights import performance as perf
from api.insights import risk
from api.insights.access import (
    AgentScope,
    agent_row,
    authorise_agent,
    authorise_policyholder,
    authorise_scope,
    policyholder_row,
    scope_of,
)
from api.insights.availability import warehouse_answers
from api.insights.periods import FIRST_DAY, LAST_DAY, PERIODS, Period
from api.metrics import Metrics
from api.problems import problem_responses
from api.query import QueryModel
from api.ratelimit import RateLimit, caller_key
from api.security.deps import Caller, identify, roles
from api.security.tokens import Principal
from warehouse.operational.enums import UserRole

router = APIRouter(prefix="/v1", tags=["insights"])


@dataclass(frozen=True, slots=True)
class Ask:
    """Who asks an insights question, and what answers it."""

    principal: Principal
    engines: Engines
    cache: AnswerCache
    metrics: Metrics


class Asker(Caller):
    """The insights rate limit (`MITRA_INSIGHTS_RATE_LIMIT`, counted first, as for anyone), then
    the caller's token and role, as one dependency that reads the token once: each level of
    FastAPI dependencies cost ~10 µs a request, and the five this replaces were an eighth of a
    cached answer (bench/api_insights.py)."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(caller.admits, caller.refusal)
        self._rate_limit = RateLimit(
            "insights", lambda settings: settings.insights_rate_limit_per_minute
        )

    async def __call__(self, request: Request) -> Ask:  # type: ignore[override]
        found = identify(request)
        await self._rate_limit.count(request, caller_key(request, found))
        principal = self.admitted(found)
        state = request.app.state
        return Ask(principal, state.engines, state.cache, state.metrics)


StaffAsk = Annotated[Ask, Depends(Asker(roles(UserRole.AGENT, UserRole.PROVIDER_ADMIN)))]
AnyoneAsk = Annotated[Ask, Depends(Asker(Caller(lambda _: True, str)))]


class PeriodQuery(BaseModel):
    """The period of an agent's figures (read by `QueryModel`: these routes are the hottest)."""

    period: Period = Period.MONTH
    on: date | None = Field(
        None,
        # Bounded so a period's start and the one before stay inside the calendar.
        ge=FIRST_DAY,
        le=LAST_DAY,
        description="a day inside the period wanted; default: the latest period with data",
    )


class LeaderboardQuery(PeriodQuery):
    within: perf.Within = "territory"
    limit: int = Field(10, ge=1, le=100)


PERIOD_QUERY = QueryModel(PeriodQuery)
LEADERBOARD_QUERY = QueryModel(LeaderboardQuery)
ERRORS = problem_responses(401, 403, 404, 422, 429, 503)

# TTLs are a backstop only (the marts version makes answers fresh); answers that also hold
# operational data (names, templates), which the version does not track, live shorter.
MARTS_TTL = 6 * 3600
WITH_OPERATIONAL_TTL = 300


async def _cached(
    cache: AnswerCache,
    namespace: str,
    key: str,
    compute: Callable[[], Any] | Callable[[], Awaitable[Any]],
    ttl: int = MARTS_TTL,
) -> CacheResult:
    """The answer of `compute` (a plain function, run in the threadpool, or an `async def`) as
    JSON, cached under the marts version. A hit costs no more than the lookup: what only a
    computation needs is decided when one runs (`_serialised`)."""
    return await cache.get_or_compute(namespace, key, partial(_serialised, compute), ttl)


async def _serialised(compute: Callable[[], Any] | Callable[[], Awaitable[Any]]) -> bytes:
    """`compute`'s answer as JSON; only a computation reads the warehouse, so its errors are
    mapped to 503 here (`warehouse_answers`)."""
    with warehouse_answers():
        if inspect.iscoroutinefunction(compute):
            return orjson.dumps(await compute())
        return await run_in_threadpool(lambda: orjson.dumps(compute()))


FACTS_NAMESPACE = "insights.agent.v1"
FACTS_MEMO_MAX = 50_000  # agents remembered per process (a few hundred bytes each)

# Each agent's facts (tenant, territory) as last read, parsed into a scope, with the marts
# version they belong to. A request decides on them, then checks that its answer has the same
# version: the decision is then exactly the one fresh facts would give, without their own Redis
# lookup (a fifth of a cached answer's CPU, bench/api_insights.py). Any other version, or a
# refusal, is decided again on fresh facts, so a memo never refuses wrongly nor admits on stale
# facts.
_facts_memo: dict[uuid.UUID, tuple[int, AgentScope]] = {}


async def _fresh_facts(ask: Ask, agent_id: uuid.UUID) -> tuple[int | None, dict[str, Any] | None]:
    """The agent's facts from the answer cache (the warehouse on a miss), and their version."""
    found = await _cached(
        ask.cache,
        FACTS_NAMESPACE,
        cache_key(agent_id),
        lambda: agent_row(ask.engines.warehouse, agent_id),
    )
    row = orjson.loads(found.value)
    if found.version is not None and row is not None:
        if len(_facts_memo) >= FACTS_MEMO_MAX:
            _facts_memo.clear()
        _facts_memo[agent_id] = (found.version, scope_of(row))
    return found.version, row


async def _decided(ask: Ask, agent_id: uuid.UUID) -> tuple[int | None, AgentScope]:
    """The agent's scope if the caller may see it (403/404 otherwise), and the facts' version."""
    memo = _facts_memo.get(agent_id)
    if memo is not None:
        try:
            return memo[0], authorise_scope(ask.principal, memo[1])
        except HTTPException:
            pass  # decide a refusal on fresh facts
    return await _decided_afresh(ask, agent_id)


async def _decided_afresh(ask: Ask, agent_id: uuid.UUID) -> tuple[int | None, AgentScope]:
    """The decision on fresh facts, and their version."""
    version, row = await _fresh_facts(ask, agent_id)
    return version, authorise_agent(ask.principal, row)


async def _agent_answer(
    ask: Ask,
    agent_id: uuid.UUID,
    namespace: str,
    key: str,
    compute: Callable[[AgentScope], Awaitable[Any]],
    ttl: int = MARTS_TTL,
) -> CacheResult:
    """An answer about an agent the caller may see, cached under the marts version.

    `compute` gets the agent's scope from the facts of the marts it computes from (read when it
    runs), never the memo's, so an answer is never computed for a territory of older marts."""
    version, _ = await _decided(ask, agent_id)

    async def computed() -> Any:
        _, row = await _fresh_facts(ask, agent_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agent")
        return await compute(scope_of(row))

    found = await _cached(ask.cache, namespace, key, computed, ttl)
    if version is None or found.version != version:
        await _decided_afresh(ask, agent_id)  # the answer is of other marts than the memo
    return found


def threaded(compute: Callable[[AgentScope], Any]) -> Callable[[AgentScope], Awaitable[Any]]:
    """A blocking computation, run in the threadpool."""

    async def run(scope: AgentScope) -> Any:
        return await run_in_threadpool(compute, scope)

    return run


def _count_models(metrics: Metrics, body: bytes, model: str) -> None:
    for version in orjson.loads(body).get("model_versions", ()):
        metrics.model_served(model, version)


@router.get(
    "/agents/{agent_id}/performance",
    summary="An agent's performance for a day, month or financial year",
    responses=ERRORS,
    openapi_extra=PERIOD_QUERY.openapi_extra,
)
async def agent_performance(agent_id: uuid.UUID, ask: StaffAsk, request: Request) -> Response:
    """The period's figures (from the marts), the previous period's, and the median of the
    agents of the same territory and insurer for the same period."""
    query = PERIOD_QUERY.read(request)
    period, on = query.period, query.on
    spec = PERIODS[period]

    async def compute(scope: AgentScope) -> Any:
        return await perf.performance(ask.engines.warehouse_reads, spec, scope, on)

    key = cache_key(agent_id, period.value, on)
    found = await _agent_answer(ask, agent_id, "insights.performance.v1", key, compute)
    return cached_response(found)


@router.get(
    "/agents/{agent_id}/leaderboard",
    summary="The leaders of the agent's territory or insurer",
    responses=ERRORS,
    openapi_extra=LEADERBOARD_QUERY.openapi_extra,
)
async def agent_leaderboard(agent_id: uuid.UUID, ask: StaffAsk, request: Request) -> Response:
    """Agents ranked by new-business APE (the marts' ranks), the top `limit` and the agent."""
    query = LEADERBOARD_QUERY.read(request)
    period, on, within, limit = query.period, query.on, query.within, query.limit
    spec = PERIODS[period]

    def compute(scope: AgentScope) -> Any:
        with ask.engines.warehouse.connect() as conn:
            return perf.leaderboard(conn, spec, scope, on, within, limit)

    key = cache_key(agent_id, period.value, on, within, limit)
    found = await _agent_answer(ask, agent_id, "insights.leaderboard.v1", key, threaded(compute))
    return cached_response(found)


@router.get(
    "/agents/{agent_id}/premiums-due",
    summary="Premiums due soon, with their lapse risk",
    responses=ERRORS,
)
async def premiums_due(
    agent_id: uuid.UUID,
    ask: StaffAsk,
    days: Annotated[int, Query(ge=1, le=30)] = 30,
) -> Response:
    """Every premium of the agent's customers due within `days` of the latest scoring, with
    the lapse model's probability, band and reasons."""

    def compute(scope: AgentScope) -> Any:
        with ask.engines.warehouse.connect() as conn:
            return risk.premiums_due(conn, scope, days)

    key = cache_key(agent_id, days)
    found = await _agent_answer(ask, agent_id, "insights.premiums_due.v1", key, threaded(compute))
    _count_models(ask.metrics, found.value, "lapse")
    return cached_response(found)


@router.get(
    "/agents/{agent_id}/at-risk-customers",
    summary="Customers most likely to let a policy lapse, and what to do",
    responses=ERRORS,
)
async def at_risk_customers(
    agent_id: uuid.UUID,
    ask: StaffAsk,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Riskiest first: the premium at risk with the model's reasons, a suggested action, the
    video to send next and the WhatsApp template to send it with."""

    def compute(scope: AgentScope) -> Any:
        with (
            ask.engines.warehouse.connect() as conn,
            scoped_session(ask.engines.operational, ask.principal) as session,
        ):
            return risk.at_risk_customers(conn, session, scope, limit)

    key = cache_key(agent_id, limit)
    found = await _agent_answer(
        ask, agent_id, "insights.at_risk.v1", key, threaded(compute), WITH_OPERATIONAL_TTL
    )
    _count_models(ask.metrics, found.value, "lapse")
    return cached_response(found)


@router.get(
    "/policyholders/{policyholder_id}/recommended-videos",
    summary="Videos recommended to a policyholder",
    responses=ERRORS,
)
async def recommended_videos(
    policyholder_id: uuid.UUID,
    ask: AnyoneAsk,
    limit: Annotated[int, Query(ge=1, le=10)] = 10,
) -> Response:
    """The recommender's "for you" list of the latest scoring (the policyholder, their agent,
    or an admin of their insurer may ask)."""
    engines = ask.engines
    facts = await _cached(
        ask.cache,
        "insights.policyholder.v1",
        cache_key(policyholder_id),
        lambda: policyholder_row(engines.warehouse, policyholder_id),
    )
    authorise_policyholder(ask.principal, policyholder_id, orjson.loads(facts.value))

    def compute() -> Any:
        with engines.warehouse.connect() as conn:
            return risk.recommended_videos(conn, policyholder_id, limit)

    key = cache_key(policyholder_id, limit)
    found = await _cached(ask.cache, "insights.recommended_videos.v1", key, compute)
    _count_models(ask.metrics, found.value, "recommender")
    return cached_response(found)
