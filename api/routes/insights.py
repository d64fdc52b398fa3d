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
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

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
    policyholder_row,
)
from api.insights.availability import warehouse_answers
from api.insights.periods import PERIODS, Period
from api.metrics import Metrics
from api.problems import problem_responses
from api.ratelimit import rate_limit
from api.security.deps import Caller, roles
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
    the caller's token and role, as one dependency: each level of FastAPI dependencies cost
    ~10 µs a request, and the five this replaces were an eighth of a cached answer
    (bench/api_insights.py)."""

    def __init__(self, caller: Caller) -> None:
        super().__init__(caller.admits, caller.refusal)
        self._rate_limit = rate_limit(
            "insights", lambda settings: settings.insights_rate_limit_per_minute
        )

    async def __call__(self, request: Request) -> Ask:  # type: ignore[override]
        await self._rate_limit(request)
        principal = await super().__call__(request)
        state = request.app.state
        return Ask(principal, state.engines, state.cache, state.metrics)


StaffAsk = Annotated[Ask, Depends(Asker(roles(UserRole.AGENT, UserRole.PROVIDER_ADMIN)))]
AnyoneAsk = Annotated[Ask, Depends(Asker(Caller(lambda _: True, str)))]
OnDay = Annotated[
    date | None,
    Query(description="a day inside the period wanted; default: the latest period with data"),
]
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
    JSON, cached under the marts version."""
    if inspect.iscoroutinefunction(compute):

        async def serialised() -> bytes:
            return orjson.dumps(await compute())

        with warehouse_answers():
            return await cache.get_or_compute(namespace, key, serialised, ttl)
    with warehouse_answers():
        return await cache.get_or_compute(namespace, key, lambda: orjson.dumps(compute()), ttl)


async def _agent(ask: Ask, agent_id: uuid.UUID) -> AgentScope:
    found = await _cached(
        ask.cache,
        "insights.agent.v1",
        cache_key(agent_id),
        lambda: agent_row(ask.engines.warehouse, agent_id),
    )
    return authorise_agent(ask.principal, orjson.loads(found.value))


def _count_models(metrics: Metrics, body: bytes, model: str) -> None:
    for version in orjson.loads(body).get("model_versions", ()):
        metrics.model_served(model, version)


@router.get(
    "/agents/{agent_id}/performance",
    summary="An agent's performance for a day, month or financial year",
    responses=ERRORS,
)
async def agent_performance(
    agent_id: uuid.UUID,
    ask: StaffAsk,
    period: Period = Period.MONTH,
    on: OnDay = None,
) -> Response:
    """The period's figures (from the marts), the previous period's, and the median of the
    agents of the same territory and insurer for the same period."""
    scope = await _agent(ask, agent_id)
    engines = ask.engines
    spec = PERIODS[period]

    async def compute() -> Any:
        return await perf.performance(engines.warehouse_reads, spec, scope, on)

    key = cache_key(agent_id, period.value, on)
    return cached_response(await _cached(ask.cache, "insights.performance.v1", key, compute))


@router.get(
    "/agents/{agent_id}/leaderboard",
    summary="The leaders of the agent's territory or insurer",
    responses=ERRORS,
)
async def agent_leaderboard(
    agent_id: uuid.UUID,
    ask: StaffAsk,
    period: Period = Period.MONTH,
    on: OnDay = None,
    within: perf.Within = "territory",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """Agents ranked by new-business APE (the marts' ranks), the top `limit` and the agent."""
    scope = await _agent(ask, agent_id)
    engines = ask.engines
    spec = PERIODS[period]

    def compute() -> Any:
        with engines.warehouse.connect() as conn:
            return perf.leaderboard(conn, spec, scope, on, within, limit)

    key = cache_key(agent_id, period.value, on, within, limit)
    return cached_response(await _cached(ask.cache, "insights.leaderboard.v1", key, compute))


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
    scope = await _agent(ask, agent_id)
    engines = ask.engines

    def compute() -> Any:
        with engines.warehouse.connect() as conn:
            return risk.premiums_due(conn, scope, days)

    found = await _cached(ask.cache, "insights.premiums_due.v1", cache_key(agent_id, days), compute)
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
    scope = await _agent(ask, agent_id)
    engines = ask.engines

    def compute() -> Any:
        with (
            engines.warehouse.connect() as conn,
            scoped_session(engines.operational, ask.principal) as session,
        ):
            return risk.at_risk_customers(conn, session, scope, limit)

    found = await _cached(
        ask.cache, "insights.at_risk.v1", cache_key(agent_id, limit), compute, WITH_OPERATIONAL_TTL
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
