"""`GET /v1/agents/{agent_id}/summary`: the agent's month in plain language (issue 8).

Who may ask is `api.insights.access.agent_scope`'s rule (the agent itself, its insurer's admins,
super admins; 404 for anyone else's agent). What the text says and what the language model may
see is `api.insights.summary`'s. The route is a plain `def`: the warehouse reads and the model's
HTTP call block, so FastAPI runs it in its threadpool; the answer never waits longer than the
model's timeout x attempts, after which the template answers.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from anyio import from_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from api.deps import EnginesDep, SettingsDep
from api.insights.access import agent_scope
from api.insights.availability import warehouse_answers
from api.insights.summary import latest_month, load_agent_month, summarise
from api.llm import LlmConfig
from api.problems import problem_responses
from api.ratelimit import RateLimit, spend_llm_call
from api.security.deps import CurrentPrincipal

MONTH_PATTERN = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"

router = APIRouter(prefix="/v1/agents", tags=["insights"])
SUMMARY_LIMIT = RateLimit("summary", lambda settings: settings.summary_rate_limit_per_minute)


class TokenUsage(BaseModel):
    prompt_tokens: int = Field(description="tokens of the prompt, as the server counted them")
    completion_tokens: int = Field(description="tokens of the answer")
    total_tokens: int


class AgentSummary(BaseModel):
    agent_id: uuid.UUID
    month: str = Field(description="the month summarised, YYYY-MM", examples=["2026-09"])
    text: str = Field(description="a short plain-language account of the month")
    source: Literal["llm", "template"] = Field(
        description="who wrote `text`: the configured language model, or the deterministic "
        "template (no model configured, or it failed or timed out)"
    )
    model: str | None = Field(description="the model that wrote `text`; null for the template")
    usage: TokenUsage | None = Field(description="tokens the model used; null for the template")


_EXAMPLE = {
    "agent_id": "0b7c1a52-6f1e-4d3a-9c2b-5e8f7a6d4c31",
    "month": "2026-09",
    "text": "September 2026, to 21 September: you issued 2 new policies, with new-business APE "
    "of ₹64,733, and collected ₹83,090 of first-year premium. ...",
    "source": "template",
    "model": None,
    "usage": None,
}


def _month(value: str | None) -> date | None:
    if value is None:
        return None
    year, month = value.split("-")
    return date(int(year), int(month), 1)


@router.get(
    "/{agent_id}/summary",
    response_model=AgentSummary,
    summary="The agent's month in plain language",
    description="A short account of the agent's month from `marts.agent_performance_monthly`, "
    "beside the previous month and the median agent of the same territory and insurer. Written "
    "by the configured OpenAI-compatible language model from the month's rounded aggregates "
    "only (no names, personal numbers or message texts ever reach it); by a deterministic "
    "template with the exact figures when no model is configured or it fails. `source` says "
    "which. Agents see their own summary, provider admins those of their insurer's agents.",
    responses={
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
        **problem_responses(
            401,
            422,
            explained={
                403: ("The caller is not an agent or an admin.", "insights are for agents"),
                404: (
                    "No such agent within the caller's reach, or no figures for that month.",
                    "no figures for this agent in 2026-09",
                ),
                429: (
                    "Over the caller's summaries a minute, or the insurer's language-model "
                    "answers of the day.",
                    "more than 20 requests a minute (summary); retry in 31 s",
                ),
                503: (
                    "The marts are not built yet, or the warehouse is down: retry later.",
                    "the insights are not available yet: the marts have not been built",
                ),
            },
        ),
    },
    dependencies=[Depends(SUMMARY_LIMIT)],
)
def agent_summary(
    request: Request,
    agent_id: uuid.UUID,
    principal: CurrentPrincipal,
    engines: EnginesDep,
    settings: SettingsDep,
    month: Annotated[
        str | None,
        Query(
            pattern=MONTH_PATTERN,
            description="the month, YYYY-MM; default the latest month in the mart",
            examples=["2026-09"],
        ),
    ] = None,
) -> AgentSummary:
    with warehouse_answers():
        scope = agent_scope(engines.warehouse, principal, agent_id)
        wanted = _month(month) or latest_month(engines.warehouse, scope.agent_id)
        figures = load_agent_month(engines.warehouse, scope.agent_id, wanted) if wanted else None
    if figures is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no figures for this agent in {month}" if month else "no figures for this agent yet",
        )
    llm = LlmConfig.from_settings(settings)
    if llm is not None:
        from_thread.run(spend_llm_call, request, (scope.provider_id,))
    answer = summarise(figures, llm)
    return AgentSummary(
        agent_id=scope.agent_id,
        month=f"{figures.month:%Y-%m}",
        text=answer.text,
        source=answer.source,
        model=answer.model,
        usage=TokenUsage(**answer.usage) if answer.usage else None,
    )
