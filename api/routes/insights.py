"""What agents open the app for (`/v1/agents/{agent_id}/...`), and a policyholder's videos.

Each answer is computed from the marts and model outputs by `api.insights`, scoped by
`api.insights.access` (an agent sees itself, a provider admin its tenant), and serialised once
with orjson (DESIGN §9: several times faster than FastAPI's encoder for lists).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.db import scoped_session
from api.deps import EnginesDep
from api.insights import performance as perf
from api.insights import risk
from api.insights.access import agent_scope, policyholder_visible
from api.insights.availability import warehouse_answers
from api.insights.periods import PERIODS, Period
from api.problems import problem_responses
from api.security.deps import CurrentPrincipal, roles
from api.security.tokens import Principal
from warehouse.operational.enums import UserRole

router = APIRouter(prefix="/v1", tags=["insights"])

Staff = Annotated[Principal, Depends(roles(UserRole.AGENT, UserRole.PROVIDER_ADMIN))]
OnDay = Annotated[
    date | None,
    Query(description="a day inside the period wanted; default: the latest period with data"),
]
ERRORS = problem_responses(401, 403, 404, 422, 503)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def _answer(compute: Callable[[], Any]) -> Response:
    with warehouse_answers():
        return _json(await run_in_threadpool(compute))


@router.get(
    "/agents/{agent_id}/performance",
    summary="An agent's performance for a day, month or financial year",
    responses=ERRORS,
)
async def agent_performance(
    agent_id: uuid.UUID,
    principal: Staff,
    engines: EnginesDep,
    period: Period = Period.MONTH,
    on: OnDay = None,
) -> Response:
    """The period's figures (from the marts), the previous period's, and the median of the
    agents of the same territory and insurer for the same period."""
    spec = PERIODS[period]

    def compute() -> Any:
        scope = agent_scope(engines.warehouse, principal, agent_id)
        with engines.warehouse.connect() as conn:
            return perf.performance(conn, spec, scope, on)

    return await _answer(compute)


@router.get(
    "/agents/{agent_id}/leaderboard",
    summary="The leaders of the agent's territory or insurer",
    responses=ERRORS,
)
async def agent_leaderboard(
    agent_id: uuid.UUID,
    principal: Staff,
    engines: EnginesDep,
    period: Period = Period.MONTH,
    on: OnDay = None,
    within: perf.Within = "territory",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """Agents ranked by new-business APE (the marts' ranks), the top `limit` and the agent."""
    spec = PERIODS[period]

    def compute() -> Any:
        scope = agent_scope(engines.warehouse, principal, agent_id)
        with engines.warehouse.connect() as conn:
            return perf.leaderboard(conn, spec, scope, on, within, limit)

    return await _answer(compute)


@router.get(
    "/agents/{agent_id}/premiums-due",
    summary="Premiums due soon, with their lapse risk",
    responses=ERRORS,
)
async def premiums_due(
    agent_id: uuid.UUID,
    principal: Staff,
    engines: EnginesDep,
    days: Annotated[int, Query(ge=1, le=30)] = 30,
) -> Response:
    """Every premium of the agent's customers due within `days` of the latest scoring, with
    the lapse model's probability, band and reasons."""

    def compute() -> Any:
        scope = agent_scope(engines.warehouse, principal, agent_id)
        with engines.warehouse.connect() as conn:
            return risk.premiums_due(conn, scope, days)

    return await _answer(compute)


@router.get(
    "/agents/{agent_id}/at-risk-customers",
    summary="Customers most likely to let a policy lapse, and what to do",
    responses=ERRORS,
)
async def at_risk_customers(
    agent_id: uuid.UUID,
    principal: Staff,
    engines: EnginesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Riskiest first: the premium at risk with the model's reasons, a suggested action, the
    video to send next and the WhatsApp template to send it with."""

    def compute() -> Any:
        scope = agent_scope(engines.warehouse, principal, agent_id)
        with (
            engines.warehouse.connect() as conn,
            scoped_session(engines.operational, principal) as session,
        ):
            return risk.at_risk_customers(conn, session, scope, limit)

    return await _answer(compute)


@router.get(
    "/policyholders/{policyholder_id}/recommended-videos",
    summary="Videos recommended to a policyholder",
    responses=ERRORS,
)
async def recommended_videos(
    policyholder_id: uuid.UUID,
    principal: CurrentPrincipal,
    engines: EnginesDep,
    limit: Annotated[int, Query(ge=1, le=10)] = 10,
) -> Response:
    """The recommender's "for you" list of the latest scoring (the policyholder, their agent,
    or an admin of their insurer may ask)."""

    def compute() -> Any:
        policyholder_visible(engines.warehouse, principal, policyholder_id)
        with engines.warehouse.connect() as conn:
            return risk.recommended_videos(conn, policyholder_id, limit)

    return await _answer(compute)
