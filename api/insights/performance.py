"""An agent's performance for a day, month or financial year, beside the period before and the
median of the agents of its territory, and the leaderboards (DESIGN §1, issue 8).

Every figure is read from the marts as dbt computed it (one definition per metric); only the
territory median is computed here, with PostgreSQL's `percentile_cont(0.5)` over the same
period's rows of the agent's peers (same insurer and territory), the agent included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, Literal

from fastapi import HTTPException, status
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import (
    Connection,
    Select,
    TableClause,
    bindparam,
    column,
    func,
    or_,
    select,
    table,
)

from api.db import CompiledQuery, compile_query, read_together
from api.insights.access import AgentScope
from api.insights.periods import RANKS, PeriodSpec
from api.insights.values import plain_row

Within = Literal["territory", "provider"]


SCOPE_COLUMNS = ("agent_id", "provider_id", "territory")
DIM_AGENT = table("dim_agent", column("agent_id"), column("agent_code"), schema="marts")


@dataclass(frozen=True)
class Statements:
    """A period's statements, built once (building 17 median expressions per request cost a
    third of an uncached answer, bench/api_insights.py); values are bound parameters."""

    latest: Select[Any]
    rows: Select[Any]
    medians: Select[Any]


@cache
def _mart(spec: PeriodSpec) -> TableClause:
    """The period's mart as a SQLAlchemy table (names quoted by SQLAlchemy, from the spec)."""
    names = {spec.date_column, *spec.kpis, *RANKS, *SCOPE_COLUMNS}
    return table(spec.table, *(column(name) for name in sorted(names)), schema="marts")


@cache
def statements(spec: PeriodSpec) -> Statements:
    mart = _mart(spec)
    when = mart.c[spec.date_column]
    medians = (func.percentile_cont(0.5).within_group(mart.c[kpi]).label(kpi) for kpi in spec.kpis)
    return Statements(
        latest=select(func.max(when)).where(mart.c.agent_id == bindparam("agent")),
        rows=select(when, *(mart.c[k] for k in (*spec.kpis, *RANKS))).where(
            mart.c.agent_id == bindparam("agent"),
            or_(when == bindparam("start"), when == bindparam("previous")),
        ),
        medians=select(func.count().label("agents"), *medians).where(
            mart.c.provider_id == bindparam("provider"),
            mart.c.territory.is_not_distinct_from(bindparam("territory")),
            when == bindparam("start"),
        ),
    )


@dataclass(frozen=True)
class CompiledStatements:
    """`Statements` as psycopg runs them on the read pool (`api.db.read_together`)."""

    latest: CompiledQuery
    rows: CompiledQuery
    medians: CompiledQuery


@cache
def compiled(spec: PeriodSpec) -> CompiledStatements:
    made = statements(spec)
    return CompiledStatements(*map(compile_query, (made.latest, made.rows, made.medians)))


def _latest_or_404(latest: date | None) -> date:
    if latest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no performance data for this agent yet")
    return latest


def latest_day(conn: Connection, spec: PeriodSpec, scope: AgentScope) -> date:
    """The agent's latest period start in the mart (the default when no day is asked)."""
    return _latest_or_404(conn.execute(statements(spec).latest, {"agent": scope.agent_id}).scalar())


async def performance(
    reads: AsyncConnectionPool, spec: PeriodSpec, scope: AgentScope, on: date | None
) -> dict[str, Any]:
    """The period containing `on` (the latest with data when None), the one before, and the
    territory median of the same period: the figures and the median in one round trip."""
    sql = compiled(spec)
    if on is None:
        [[latest]] = await read_together(reads, [sql.latest.statement(agent=scope.agent_id)])
        start = _latest_or_404(next(iter(latest.values())))
    else:
        start = spec.start_of(on)
    previous = spec.previous(start)
    found, [median_row] = await read_together(
        reads,
        [
            sql.rows.statement(agent=scope.agent_id, start=start, previous=previous),
            sql.medians.statement(
                provider=scope.provider_id, territory=scope.territory, start=start
            ),
        ],
    )
    rows = {row[spec.date_column]: plain_row(row, (*spec.kpis, *RANKS)) for row in found}
    if start not in rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {spec.period} starting {start}")
    median = {"agents": median_row["agents"], "values": plain_row(median_row, spec.kpis)}
    return {
        "agent_id": str(scope.agent_id),
        "period": spec.period.value,
        "start": start.isoformat(),
        "territory": scope.territory,
        "current": rows[start],
        "previous": {"start": previous.isoformat(), "values": rows.get(previous)},
        "territory_median": median,
    }


def leaderboard(
    conn: Connection,
    spec: PeriodSpec,
    scope: AgentScope,
    on: date | None,
    within: Within,
    limit: int,
) -> dict[str, Any]:
    """The top agents of the agent's territory (or insurer) by new-business APE for the
    period, with the mart's own ranks, and the agent's own line wherever it stands."""
    start = spec.start_of(on) if on is not None else latest_day(conn, spec, scope)
    mart = _mart(spec)
    rank = mart.c[f"{within}_rank_new_business_ape"]
    query = (
        select(
            mart.c.agent_id,
            DIM_AGENT.c.agent_code,
            rank.label("rank"),
            mart.c.new_business_ape,
            mart.c.new_policies,
            mart.c.persistency_13m_by_count,
        )
        .join_from(mart, DIM_AGENT, DIM_AGENT.c.agent_id == mart.c.agent_id)
        .where(
            mart.c.provider_id == scope.provider_id,
            mart.c[spec.date_column] == start,
            or_(rank <= limit, mart.c.agent_id == scope.agent_id),
        )
        .order_by(rank, DIM_AGENT.c.agent_code)
    )
    if within == "territory":
        query = query.where(mart.c.territory.is_not_distinct_from(scope.territory))
    entries = [plain_row(row) for row in conn.execute(query).mappings()]
    you = next((e for e in entries if e["agent_id"] == str(scope.agent_id)), None)
    return {
        "agent_id": str(scope.agent_id),
        "period": spec.period.value,
        "start": start.isoformat(),
        "within": within,
        "territory": scope.territory if within == "territory" else None,
        "ranked_on": "new_business_ape",
        "leaders": [e for e in entries if e["rank"] <= limit],
        "you": you,
    }
