"""The insights endpoints over HTTP on the simulated world (Dagster-built marts, trained and
scored models): every number equals the marts' rows, and every answer is scoped to the caller."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from api.main import create_app
from api.security.sessions import TENANT_ADMIN_PERMISSION
from tests.api.signin import access_token
from tests.built_world import BuiltWarehouse
from tests.live_server import live_server
from warehouse import urls
from warehouse.marts_version import bump_marts_version
from warehouse.operational.enums import UserRole, UserStatus
from warehouse.operational.models import User, UserPermission
from warehouse.settings import Settings

pytestmark = pytest.mark.integration


@dataclass
class Insights:
    base: str
    settings: Settings
    operational: Engine
    warehouse: Engine

    def token(self, user_id: uuid.UUID) -> str:
        return access_token(self.operational, self.settings, user_id)

    def get(self, user_id: uuid.UUID, path: str, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user_id)}"}
        return httpx.get(f"{self.base}{path}", params=params, headers=headers, timeout=30)

    def rows(self, query: str, **params: object) -> list[dict]:
        with self.warehouse.connect() as conn:
            return [dict(r) for r in conn.execute(text(query), params).mappings()]


@pytest.fixture(scope="module")
def insights(
    built_warehouse: BuiltWarehouse, trained_models: tuple, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Insights]:
    assert all(run.success for run in trained_models)
    settings = Settings(
        operational_url=built_warehouse.operational_url,
        warehouse_url=built_warehouse.warehouse_url,
        dagster_url=built_warehouse.operational_url,
        landing_url=str(tmp_path_factory.mktemp("insights-landing")),
    )
    operational = create_engine(urls.sqlalchemy_url(built_warehouse.operational_url))
    warehouse = create_engine(urls.sqlalchemy_url(built_warehouse.warehouse_url))
    with live_server(create_app(settings)) as base:
        yield Insights(base, settings, operational, warehouse)
    operational.dispose()
    warehouse.dispose()


@pytest.fixture(scope="module")
def busiest_agent(insights: Insights) -> dict:
    """The agent with the most medium/high-risk premiums: the richest answers to check."""
    top = insights.rows(
        "SELECT agent_id FROM ml.lapse_scores GROUP BY agent_id"
        " ORDER BY count(*) FILTER (WHERE risk_band <> 'low') DESC, agent_id LIMIT 1"
    )[0]["agent_id"]
    with insights.operational.connect() as conn:
        agent = conn.execute(
            text("SELECT id, user_id, provider_id FROM agents WHERE id = :a"), {"a": top}
        ).one()
    return {"agent_id": agent.id, "user_id": agent.user_id, "provider_id": agent.provider_id}


def _user(insights: Insights, role: UserRole, tenant: uuid.UUID | None = None) -> uuid.UUID:
    """A new active user (with a tenant-admin grant when `tenant`), written as the owner."""
    with Session(insights.operational) as session, session.begin():
        user = User(
            phone=f"+9169{uuid.uuid4().int % 10**8:08d}", role=role, status=UserStatus.ACTIVE
        )
        session.add(user)
        session.flush()
        if tenant is not None:
            session.add(
                UserPermission(
                    user_id=user.id,
                    permission=TENANT_ADMIN_PERMISSION,
                    resource_type="insurance_provider",
                    resource_id=tenant,
                )
            )
        return user.id


def _close(answer: object, mart: object) -> bool:
    """The API's JSON number equals the mart's value (numeric and float compared as floats)."""
    if answer is None or mart is None:
        return answer is None and mart is None
    if isinstance(mart, bool | int) and not isinstance(mart, bool):
        return answer == mart
    return abs(float(answer) - float(mart)) < 1e-9


PERIOD_TABLES = {
    "day": ("agent_performance_daily", "activity_date"),
    "month": ("agent_performance_monthly", "month_start"),
    "year": ("agent_performance_yearly", "year_start"),
}


@pytest.mark.parametrize("period", ["day", "month", "year"])
def test_performance_equals_the_marts(insights: Insights, busiest_agent: dict, period: str) -> None:
    table, column = PERIOD_TABLES[period]
    answer = insights.get(
        busiest_agent["user_id"],
        f"/v1/agents/{busiest_agent['agent_id']}/performance",
        period=period,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    latest = insights.rows(
        f"SELECT max({column}) AS d FROM marts.{table} WHERE agent_id = :a",  # noqa: S608
        a=busiest_agent["agent_id"],
    )[0]["d"]
    assert body["start"] == latest.isoformat()
    row = insights.rows(
        f"SELECT * FROM marts.{table} WHERE agent_id = :a AND {column} = :d",  # noqa: S608
        a=busiest_agent["agent_id"],
        d=latest,
    )[0]
    assert body["current"], "no figures"
    for key, value in body["current"].items():
        assert _close(value, row[key]), key
    peers = insights.rows(
        f"SELECT * FROM marts.{table} WHERE provider_id = :p"  # noqa: S608
        " AND territory IS NOT DISTINCT FROM"
        f" :t AND {column} = :d",
        p=row["provider_id"],
        t=row["territory"],
        d=latest,
    )
    assert body["territory_median"]["agents"] == len(peers)
    for key, median in body["territory_median"]["values"].items():
        values = [float(p[key]) for p in peers if p[key] is not None]
        expected = statistics.median(values) if values else None  # percentile_cont(0.5)
        assert _close(median, expected), key
    previous = insights.rows(
        f"SELECT * FROM marts.{table} WHERE agent_id = :a AND {column} = :d",  # noqa: S608
        a=busiest_agent["agent_id"],
        d=body["previous"]["start"],
    )
    assert (body["previous"]["values"] is None) == (not previous)


def test_leaderboard_is_the_marts_ranking(insights: Insights, busiest_agent: dict) -> None:
    answer = insights.get(
        busiest_agent["user_id"],
        f"/v1/agents/{busiest_agent['agent_id']}/leaderboard",
        within="provider",
        limit=3,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = insights.rows(
        "SELECT m.agent_id, m.provider_rank_new_business_ape AS rank"
        " FROM marts.agent_performance_monthly m JOIN marts.dim_agent d USING (agent_id)"
        " WHERE m.provider_id = :p AND m.month_start = :m"
        " AND m.provider_rank_new_business_ape <= 3 ORDER BY 2, d.agent_code",
        p=busiest_agent["provider_id"],
        m=body["start"],
    )
    assert [(e["agent_id"], e["rank"]) for e in body["leaders"]] == [
        (str(r["agent_id"]), r["rank"]) for r in expected
    ]
    assert body["you"]["agent_id"] == str(busiest_agent["agent_id"])


def test_bad_query_parameters_are_422_problems_naming_them(
    insights: Insights, busiest_agent: dict
) -> None:
    """The period routes read their query with `api.query.QueryModel`: the same 422 problem as
    FastAPI's own parameters, after the caller is authenticated."""
    agent = busiest_agent["agent_id"]
    cases = [
        ("performance", {"period": "week"}, ["query", "period"]),
        ("performance", {"on": "2026-02-30"}, ["query", "on"]),
        ("leaderboard", {"limit": 101}, ["query", "limit"]),
        ("leaderboard", {"within": "country"}, ["query", "within"]),
    ]
    for route, params, location in cases:
        answer = insights.get(busiest_agent["user_id"], f"/v1/agents/{agent}/{route}", **params)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [e["location"] for e in answer.json()["errors"]] == [location]
    anonymous = httpx.get(f"{insights.base}/v1/agents/{agent}/performance?period=week")
    assert anonymous.status_code == 401
    # Unknown parameters are ignored.
    answer = insights.get(
        busiest_agent["user_id"], f"/v1/agents/{agent}/performance", colour="blue", period="day"
    )
    assert answer.status_code == 200 and answer.json()["period"] == "day"


def test_premiums_due_are_the_scored_dues(insights: Insights, busiest_agent: dict) -> None:
    answer = insights.get(
        busiest_agent["user_id"], f"/v1/agents/{busiest_agent['agent_id']}/premiums-due"
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = insights.rows(
        "SELECT s.policy_id, s.installment_number, s.lapse_probability, s.risk_band,"
        " p.premium_amount FROM ml.lapse_scores s JOIN marts.dim_policy p USING (policy_id)"
        " WHERE s.agent_id = :a AND s.scored_for = :d AND s.due_date < s.scored_for + 30"
        " ORDER BY s.due_date, s.lapse_probability DESC, s.policy_id",
        a=busiest_agent["agent_id"],
        d=body["as_of"],
    )
    assert len(body["dues"]) == len(expected) > 0
    for due, row in zip(body["dues"], expected, strict=True):
        assert due["policy_id"] == str(row["policy_id"])
        assert due["installment_number"] == row["installment_number"]
        assert _close(due["lapse_probability"], row["lapse_probability"])
        assert due["risk_band"] == row["risk_band"] and _close(due["amount"], row["premium_amount"])
        assert isinstance(due["reasons"], list)
    assert _close(body["total_amount"], round(sum(float(r["premium_amount"]) for r in expected), 2))
    assert body["model_versions"] and all(v.startswith("lapse") for v in body["model_versions"])


def test_at_risk_customers_riskiest_first_with_what_to_do(
    insights: Insights, busiest_agent: dict
) -> None:
    answer = insights.get(
        busiest_agent["user_id"], f"/v1/agents/{busiest_agent['agent_id']}/at-risk-customers"
    )
    assert answer.status_code == 200, answer.text
    customers = answer.json()["customers"]
    assert customers
    probabilities = [c["riskiest_premium"]["lapse_probability"] for c in customers]
    assert probabilities == sorted(probabilities, reverse=True)
    for customer in customers:
        premium = customer["riskiest_premium"]
        assert premium["risk_band"] in ("high", "medium")
        top = insights.rows(
            "SELECT max(lapse_probability) AS p FROM ml.lapse_scores WHERE policyholder_id = :h"
            " AND scored_for = :d",
            h=customer["policyholder_id"],
            d=answer.json()["as_of"],
        )[0]["p"]
        assert _close(premium["lapse_probability"], top)
        assert customer["name"] and customer["suggested_action"]["code"] in (
            "call_now",
            "call_and_remind",
            "remind",
        )
        video = insights.rows(
            "SELECT video_id FROM ml.content_recommendations WHERE list_name = 'send_next'"
            " AND rank = 1 AND policyholder_id = :h ORDER BY scored_for DESC LIMIT 1",
            h=customer["policyholder_id"],
        )
        if video:
            assert customer["suggested_video"]["video_id"] == str(video[0]["video_id"])
        template = customer["whatsapp_template"]
        assert template is not None and template["language"] in (customer["language"], "en")


def test_recommended_videos_are_the_for_you_list(insights: Insights, busiest_agent: dict) -> None:
    holder = insights.rows(
        "SELECT policyholder_id FROM ml.content_recommendations r"
        " JOIN marts.dim_policyholder h USING (policyholder_id)"
        " WHERE r.list_name = 'for_you' AND h.agent_id = :a LIMIT 1",
        a=busiest_agent["agent_id"],
    )[0]["policyholder_id"]
    answer = insights.get(
        busiest_agent["user_id"], f"/v1/policyholders/{holder}/recommended-videos", limit=5
    )
    assert answer.status_code == 200, answer.text
    expected = insights.rows(
        "SELECT video_id FROM ml.content_recommendations WHERE list_name = 'for_you'"
        " AND policyholder_id = :h AND scored_for = (SELECT max(scored_for) FROM"
        " ml.content_recommendations WHERE policyholder_id = :h) ORDER BY rank LIMIT 5",
        h=holder,
    )
    assert [v["video_id"] for v in answer.json()["videos"]] == [
        str(r["video_id"]) for r in expected
    ]


def test_answers_are_scoped_to_the_caller(insights: Insights, busiest_agent: dict) -> None:
    agent_id, tenant = busiest_agent["agent_id"], busiest_agent["provider_id"]
    other_agent, other_tenant_agent = (
        insights.rows(
            "SELECT agent_id FROM marts.dim_agent WHERE agent_id <> :a AND provider_id = :p"
            " LIMIT 1",
            a=agent_id,
            p=tenant,
        )[0]["agent_id"],
        insights.rows(
            "SELECT agent_id FROM marts.dim_agent WHERE provider_id <> :p LIMIT 1", p=tenant
        )[0]["agent_id"],
    )
    admin = _user(insights, UserRole.PROVIDER_ADMIN, tenant)
    holder = _user(insights, UserRole.POLICYHOLDER)
    path = "/v1/agents/{}/performance"
    me = busiest_agent["user_id"]
    assert insights.get(me, path.format(other_agent)).status_code == 404
    assert insights.get(admin, path.format(agent_id)).status_code == 200
    assert insights.get(admin, path.format(other_agent)).status_code == 200
    assert insights.get(admin, path.format(other_tenant_agent)).status_code == 404
    assert insights.get(holder, path.format(agent_id)).status_code == 403
    assert insights.get(me, f"/v1/agents/{uuid.uuid4()}/at-risk-customers").status_code == 404


def _computations(insights: Insights, namespace: str) -> float:
    """`mitra_cache_computations_total` of a namespace, from the app's /metrics."""
    text_format = httpx.get(f"{insights.base}/metrics", timeout=30).text
    total = 0.0
    for line in text_format.splitlines():
        if line.startswith("mitra_cache_computations_total{") and f'"{namespace}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_after_a_marts_refresh_the_next_answer_is_the_new_one(
    insights: Insights, busiest_agent: dict
) -> None:
    path = f"/v1/agents/{busiest_agent['agent_id']}/performance"
    user = busiest_agent["user_id"]
    first = insights.get(user, path)
    again = insights.get(user, path)
    assert again.headers["x-cache"] == "hit" and again.json() == first.json()
    start = first.json()["start"]
    change = (
        "UPDATE marts.agent_performance_monthly SET new_policies = new_policies + :d"
        " WHERE agent_id = :a AND month_start = :m"
    )
    with insights.warehouse.begin() as conn:  # what a refresh would write...
        conn.execute(text(change), {"d": 7, "a": busiest_agent["agent_id"], "m": start})
    try:
        stale = insights.get(user, path)  # ...not yet announced: the cached answer stands
        bump_marts_version(insights.settings.warehouse_url, redis_url=insights.settings.redis_url)
        fresh = insights.get(user, path)
    finally:
        with insights.warehouse.begin() as conn:
            conn.execute(text(change), {"d": -7, "a": busiest_agent["agent_id"], "m": start})
        bump_marts_version(insights.settings.warehouse_url, redis_url=insights.settings.redis_url)
    assert stale.json() == first.json()
    assert fresh.headers["x-cache"] == "miss"
    assert int(fresh.headers["x-marts-version"]) > int(first.headers["x-marts-version"])
    assert fresh.json()["current"]["new_policies"] == first.json()["current"]["new_policies"] + 7


def test_after_a_refresh_moves_an_agent_the_old_insurers_admin_is_refused(
    insights: Insights, busiest_agent: dict
) -> None:
    """Who may see an agent is decided on the facts of the marts the answer comes from: the
    process remembers an agent's facts, but never admits on facts older than the answer."""
    agent_id, tenant = busiest_agent["agent_id"], busiest_agent["provider_id"]
    other_tenant = insights.rows(
        "SELECT provider_id FROM marts.dim_agent WHERE provider_id <> :p LIMIT 1", p=tenant
    )[0]["provider_id"]
    admin, new_admin = (
        _user(insights, UserRole.PROVIDER_ADMIN, tenant),
        _user(insights, UserRole.PROVIDER_ADMIN, other_tenant),
    )
    path = f"/v1/agents/{agent_id}/performance"
    move = "UPDATE marts.dim_agent SET provider_id = :p WHERE agent_id = :a"
    assert insights.get(admin, path).status_code == 200  # the facts are now remembered
    assert insights.get(new_admin, path).status_code == 404
    with insights.warehouse.begin() as conn:  # a refresh moves the agent to another insurer
        conn.execute(text(move), {"p": other_tenant, "a": agent_id})
    try:
        bump_marts_version(insights.settings.warehouse_url, redis_url=insights.settings.redis_url)
        refused = insights.get(admin, path)
        admitted = insights.get(new_admin, path)
    finally:
        with insights.warehouse.begin() as conn:
            conn.execute(text(move), {"p": tenant, "a": agent_id})
        bump_marts_version(insights.settings.warehouse_url, redis_url=insights.settings.redis_url)
    assert refused.status_code == 404, refused.text
    assert admitted.status_code == 200, admitted.text
    assert insights.get(admin, path).status_code == 200  # moved back, admitted again


def test_a_burst_of_identical_uncached_requests_computes_once(
    insights: Insights, busiest_agent: dict
) -> None:
    bump_marts_version(insights.settings.warehouse_url, redis_url=insights.settings.redis_url)
    namespace = "insights.leaderboard.v1"
    before = _computations(insights, namespace)
    token = insights.token(busiest_agent["user_id"])
    path = f"{insights.base}/v1/agents/{busiest_agent['agent_id']}/leaderboard"

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            headers = {"Authorization": f"Bearer {token}"}
            return await asyncio.gather(
                *(client.get(path, params={"limit": 7}, headers=headers) for _ in range(50))
            )

    answers = asyncio.run(burst())
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert _computations(insights, namespace) - before == 1


def test_insights_are_rate_limited_per_caller_before_the_token_is_judged(
    insights: Insights, busiest_agent: dict
) -> None:
    """`MITRA_INSIGHTS_RATE_LIMIT` per signed-in user; a request with a bad token is counted
    against its address, and is a 401 while that address has budget left. The limits are
    counted in the process here (no Redis), so other tests' requests from this address do not
    share the budget; the Redis counting is tested in test_cache.py."""
    settings = insights.settings.model_copy(
        update={"insights_rate_limit_per_minute": 3, "redis_url": None}
    )
    agent_id = busiest_agent["agent_id"]
    path = f"/v1/agents/{agent_id}/performance"
    me = {"Authorization": f"Bearer {insights.token(busiest_agent['user_id'])}"}
    admin = _user(insights, UserRole.PROVIDER_ADMIN, busiest_agent["provider_id"])
    other = {"Authorization": f"Bearer {insights.token(admin)}"}
    forged = {"Authorization": "Bearer not-a-token"}
    with live_server(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        allowed = [c.get(path, headers=me) for _ in range(3)]
        refused = c.get(path, headers=me)
        someone_else = c.get(path, headers=other)
        bad_tokens = [c.get(path, headers=forged) for _ in range(4)]
    assert [a.status_code for a in allowed] == [200, 200, 200]
    assert [a.headers["x-ratelimit-remaining"] for a in allowed] == ["2", "1", "0"]
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert someone_else.status_code == 200
    assert someone_else.headers["x-ratelimit-remaining"] == "2"
    assert [b.status_code for b in bad_tokens] == [401, 401, 401, 429]
    assert bad_tokens[0].headers["www-authenticate"] == "Bearer"
