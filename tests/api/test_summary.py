"""The agent's month in plain language (`GET /v1/agents/{agent_id}/summary`) over HTTP, on the
simulated world built through Dagster and dbt, with a real OpenAI-compatible server on loopback.

The built world holds one month per agent, each alone in its territory; the previous month and
the territory median are checked on a small warehouse of this module's own, with the same mart
columns and hand-made rows whose medians are known.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from api.insights.summary import (
    approx_inr,
    approx_percent,
    inr,
    load_agent_month,
    percent,
    prompt_messages,
)
from api.llm import RETRY_PAUSE_MAX
from api.main import create_app
from tests.api.signin import access_token
from tests.api.test_chat import captured_logs, closed_port_url, fake_llm, llm_settings
from tests.built_world import BuiltWarehouse
from tests.live_server import live_server
from warehouse import urls
from warehouse.settings import Settings

pytestmark = pytest.mark.integration

MART = "marts.agent_performance_monthly"


@dataclass
class World:
    """The built world, its engines, and how to call the API as one of its users."""

    built: BuiltWarehouse
    operational: Engine
    warehouse: Engine
    settings: Settings

    def token(self, user_id: uuid.UUID) -> str:
        return access_token(self.operational, self.settings, user_id)

    def settings_with(self, **fields: Any) -> Settings:
        return self.settings.model_copy(update=fields)

    def get(self, base: str, user: uuid.UUID, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return httpx.get(f"{base}{path}", params=params, headers=headers, timeout=60)

    def one(self, engine: Engine, query: str, **params: Any) -> Any:
        with engine.connect() as conn:
            return conn.execute(text(query), params).one()

    def all(self, engine: Engine, query: str, **params: Any) -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params))


@pytest.fixture(scope="module")
def world(
    built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    settings = Settings(
        operational_url=built_warehouse.operational_url,
        warehouse_url=built_warehouse.warehouse_url,
        dagster_url=built_warehouse.operational_url,
        landing_url=str(tmp_path_factory.mktemp("summary-landing")),
        **llm_settings(None),
    )
    operational = create_engine(urls.sqlalchemy_url(built_warehouse.operational_url))
    warehouse = create_engine(urls.sqlalchemy_url(built_warehouse.warehouse_url))
    yield World(built_warehouse, operational, warehouse, settings)
    operational.dispose()
    warehouse.dispose()


@pytest.fixture(scope="module")
def agent(world: World) -> Any:
    """The busiest agent of the latest month: its mart row, agent id and user id."""
    row = world.one(
        world.warehouse,
        f"SELECT * FROM {MART} WHERE month_start = (SELECT max(month_start) FROM {MART})"  # noqa: S608
        " ORDER BY new_business_ape DESC, agent_id LIMIT 1",
    )
    user_id = world.one(
        world.operational, "SELECT user_id FROM agents WHERE id = :a", a=row.agent_id
    ).user_id
    return {"row": row, "agent_id": row.agent_id, "user_id": user_id}


@pytest.fixture(scope="module")
def template_app(world: World) -> Iterator[str]:
    """The app with no language model configured."""
    with live_server(create_app(world.settings)) as base:
        yield base


@dataclass
class Personal:
    """What must never reach the language model: values (ids, codes, numbers, texts) and
    names (also checked word by word)."""

    values: list[str]
    names: list[str]


def personal_data(world: World, agent_id: uuid.UUID) -> Personal:
    """Every name, personal number, code, id and message text of the agent and its customers."""
    agent = world.one(
        world.operational,
        "SELECT a.id, a.user_id, a.provider_id, a.agent_code, a.irdai_license_number,"
        " a.whatsapp_business_number, a.whatsapp_phone_number_id, a.territory, a.city,"
        " a.pincode, u.phone, u.email, u.full_name FROM agents a JOIN users u ON u.id = a.user_id"
        " WHERE a.id = :a",
        a=agent_id,
    )
    found = Personal(values=[str(v) for v in agent if v is not None], names=[])
    if agent.full_name:
        found.names.append(agent.full_name)
    for holder in world.all(
        world.operational,
        "SELECT id, user_id, customer_code, phone, email, pan, address_line, pincode, full_name"
        " FROM policyholders WHERE agent_id = :a",
        a=agent_id,
    ):
        found.values += [str(v) for v in holder if v is not None]
        found.names.append(holder.full_name)
    for policy in world.all(
        world.operational,
        "SELECT id, policy_number FROM insurance_policies WHERE agent_id = :a",
        a=agent_id,
    ):
        found.values += [str(v) for v in policy]
    for message in world.all(
        world.warehouse,
        "SELECT DISTINCT text_body FROM raw.whatsapp_messages"
        " WHERE phone_number_id = :p AND length(text_body) >= 12",
        p=agent.whatsapp_phone_number_id,
    ):
        found.values.append(message.text_body)
    assert found.names and found.values
    return found


def assert_no_personal_data(prompt: str, personal: Personal) -> None:
    folded = prompt.casefold()
    for value in personal.values:
        assert value.casefold() not in folded, value
        digits = re.sub(r"\D", "", value)
        if value.startswith("+") and len(digits) >= 10:  # a phone without its +, or its 10 digits
            assert digits not in prompt and digits[-10:] not in prompt, value
    for part in {part for name in personal.names for part in name.split() if len(part) >= 3}:
        assert not re.search(rf"\b{re.escape(part)}\b", prompt, re.IGNORECASE), part


# --------------------------------------------------------------------------- the prompt


def test_every_agents_prompt_holds_aggregates_and_no_personal_data(world: World) -> None:
    """Built from each real agent's month of the mart: the prompt states the figures (rounded)
    and none of the agent's or its customers' names, phones, codes, ids or message texts."""
    rows = world.all(world.warehouse, f"SELECT * FROM {MART}")  # noqa: S608
    assert rows
    for row in rows:
        month = load_agent_month(world.warehouse, row.agent_id, row.month_start)
        assert month is not None
        prompt = "\n".join(m["content"] for m in prompt_messages(month))
        assert f"New policies issued: {row.new_policies}" in prompt
        assert f"New-business APE: {approx_inr(float(row.new_business_ape))}" in prompt
        if row.renewal_collection_rate is not None:
            rate = approx_percent(row.renewal_collection_rate)
            assert f"Renewal collection rate: {rate}" in prompt
        assert_no_personal_data(prompt, personal_data(world, row.agent_id))


def test_the_prompt_builder_refuses_anything_but_numbers(world: World, agent: dict) -> None:
    month = load_agent_month(world.warehouse, agent["agent_id"], agent["row"].month_start)
    assert month is not None
    sneaky = replace(month, figures=replace(month.figures, new_policies="Asha Rao"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numbers only"):
        prompt_messages(sneaky)


# --------------------------------------------------------------------------- over HTTP


def test_the_language_model_writes_the_summary_from_the_aggregates(
    world: World, agent: dict
) -> None:
    reply = "A strong month: seven policies and most renewals collected."
    with fake_llm(reply=reply) as llm:
        settings = world.settings_with(**llm_settings(llm.base_url))
        with live_server(create_app(settings)) as base, captured_logs("api.llm") as logs:
            answer = world.get(base, agent["user_id"], f"/v1/agents/{agent['agent_id']}/summary")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    row = agent["row"]
    assert body == {
        "agent_id": str(agent["agent_id"]),
        "month": f"{row.month_start:%Y-%m}",
        "text": reply,
        "source": "llm",
        "model": "test-model",
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366},
    }
    (request,) = llm.requests
    assert request["authorization"] == "Bearer test"
    prompt = llm.prompt()
    assert f"New policies issued: {row.new_policies}" in prompt
    assert f"New-business APE: {approx_inr(float(row.new_business_ape))}" in prompt
    assert_no_personal_data(prompt, personal_data(world, agent["agent_id"]))
    (used,) = [r for r in logs if r.getMessage() == "language model tokens used"]
    assert used.levelname == "INFO"
    assert (used.llm_purpose, used.llm_model) == ("agent_summary", "test-model")
    assert (used.prompt_tokens, used.completion_tokens, used.total_tokens) == (321, 45, 366)


def test_the_template_says_the_marts_figures(world: World, agent: dict, template_app: str) -> None:
    answer = world.get(template_app, agent["user_id"], f"/v1/agents/{agent['agent_id']}/summary")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["source"], body["model"], body["usage"]) == ("template", None, None)
    row, said = agent["row"], body["text"]
    providers = world.one(
        world.warehouse,
        f"SELECT count(*) AS n FROM {MART} WHERE provider_id = :p AND month_start = :m",  # noqa: S608
        p=row.provider_id,
        m=row.month_start,
    ).n
    expected = [
        f"{row.month_start:%B %Y}",
        f"you issued {row.new_policies} new polic",
        f"new-business APE of {inr(float(row.new_business_ape))}",
        f"collected {inr(float(row.first_year_premium))} of first-year premium",
        f"{row.provider_rank_new_business_ape} of {providers} in your insurer",
        f"{row.lapses} polic",
        f"{row.app_active_customers} active in the app",
        f"{row.whatsapp_inbound} WhatsApp messages in and {row.whatsapp_outbound} out",
        f"Videos: {row.videos_shared} shared, {row.videos_completed} watched to the end",
    ]
    if row.renewal_premium_due:
        expected.append(
            f"{inr(float(row.renewal_premium_collected))} collected of "
            f"{inr(float(row.renewal_premium_due))} due, {percent(row.renewal_collection_rate)}"
        )
    if row.persistency_13m_by_count is not None:
        expected.append(f"13th-month persistency: {percent(row.persistency_13m_by_count)}")
    if row.whatsapp_read_rate is not None:
        expected.append(f"{percent(float(row.whatsapp_read_rate))} read")
    for fragment in expected:
        assert fragment in said, (fragment, said)


def test_the_template_answers_when_the_server_is_down(world: World, agent: dict) -> None:
    settings = world.settings_with(
        **llm_settings(closed_port_url(), llm_timeout_seconds=1.0, llm_max_retries=1)
    )
    with live_server(create_app(settings)) as base:
        body = world.get(base, agent["user_id"], f"/v1/agents/{agent['agent_id']}/summary").json()
    assert (body["source"], body["model"], body["usage"]) == ("template", None, None)


def test_the_template_answers_in_time_when_the_server_is_slow(world: World, agent: dict) -> None:
    timeout, retries = 0.5, 1
    with fake_llm(reply="too late", delay=2.0) as llm:
        settings = world.settings_with(
            **llm_settings(llm.base_url, llm_timeout_seconds=timeout, llm_max_retries=retries)
        )
        with live_server(create_app(settings)) as base:
            token = world.token(agent["user_id"])
            started = time.monotonic()
            answer = httpx.get(
                f"{base}/v1/agents/{agent['agent_id']}/summary",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            elapsed = time.monotonic() - started
    assert answer.json()["source"] == "template"
    assert len(llm.requests) == retries + 1  # retried once, then gave up
    assert elapsed < timeout * (retries + 1) + retries * RETRY_PAUSE_MAX + 1.0


def test_months_and_access(world: World, agent: dict, template_app: str) -> None:
    path = f"/v1/agents/{agent['agent_id']}/summary"
    month = f"{agent['row'].month_start:%Y-%m}"
    assert world.get(template_app, agent["user_id"], path, month=month).json()["month"] == month
    missing = world.get(template_app, agent["user_id"], path, month="2001-01")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    for bad in ("2026-13", "2026-9", "0999-01", "september"):
        assert world.get(template_app, agent["user_id"], path, month=bad).status_code == 422
    other = world.one(
        world.operational,
        "SELECT user_id FROM agents WHERE id <> :a ORDER BY id LIMIT 1",
        a=agent["agent_id"],
    ).user_id
    assert world.get(template_app, other, path).status_code == 404
    holder = world.one(
        world.operational, "SELECT user_id FROM policyholders WHERE user_id IS NOT NULL LIMIT 1"
    ).user_id
    assert world.get(template_app, holder, path).status_code == 403
    assert httpx.get(f"{template_app}{path}").status_code == 401


def test_before_the_marts_are_built_the_answer_is_503(
    world: World, agent: dict, warehouse_url: str
) -> None:
    """The session's empty warehouse (schemas, no marts): a deployment not yet refreshed."""
    with live_server(create_app(world.settings_with(warehouse_url=warehouse_url))) as base:
        answer = world.get(base, agent["user_id"], f"/v1/agents/{agent['agent_id']}/summary")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "3600"


# --------------------------------------------------------------------------- previous month, median

PEERS = [  # (name, territory, new_policies, new_business_ape, renewal_collection_rate)
    ("peer-1", "North", 3, 100_000, 0.90),
    ("peer-2", "North", 1, 50_000, 0.70),
    ("elsewhere", "South", 9, 900_000, 0.10),
]


def _mart_columns(built_url: str) -> list[tuple[str, str]]:
    with create_engine(urls.sqlalchemy_url(built_url)).connect() as conn:
        return [
            (r.attname, r.type)
            for r in conn.execute(
                text(
                    "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                    " WHERE attrelid = 'marts.agent_performance_monthly'::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                )
            )
        ]


def _month_row(agent_id: uuid.UUID, provider: uuid.UUID, territory: str, **values: Any) -> dict:
    """A complete September (or other) row: zeros and typical rates unless given."""
    return {
        "agent_id": agent_id,
        "provider_id": provider,
        "territory": territory,
        "month_start": date(2026, 9, 1),
        "month_as_of_date": date(2026, 9, 30),
        "new_policies": 0,
        "new_business_ape": 0,
        "first_year_premium": 0,
        "renewal_premium_due": 100_000,
        "renewal_premium_collected": 80_000,
        "renewal_collection_rate": 0.8,
        "policies_in_force_at_start": 100,
        "lapses": 1,
        "lapse_ratio": 0.01,
        "revivals": 0,
        "persistency_13m_by_count": 0.8,
        "territory_rank_new_business_ape": 2,
        "provider_rank_new_business_ape": 2,
        "app_active_customers": 10,
        "whatsapp_inbound": 20,
        "whatsapp_outbound": 30,
        "whatsapp_outbound_read": 20,
        "whatsapp_read_rate": 0.6667,
        "whatsapp_first_responses": 5,
        "median_first_response_seconds": 5_400,
        "videos_shared": 4,
        "videos_completed": 2,
        **values,
    }


@pytest.fixture(scope="module")
def small_warehouse(world: World, agent: dict, make_database) -> str:
    """A warehouse of four agents of one insurer in September 2026 (three in the agent's
    territory) and the agent's August: the mart's own columns, rows made by hand."""
    url = make_database("summary_wh")
    columns = _mart_columns(world.built.warehouse_url)
    provider, me = uuid.uuid4(), agent["agent_id"]
    rows = [
        _month_row(
            me,
            provider,
            "North",
            new_policies=4,
            new_business_ape=150_000,
            first_year_premium=120_000,
            renewal_collection_rate=0.85,
            renewal_premium_collected=85_000,
            territory_rank_new_business_ape=1,
            provider_rank_new_business_ape=2,
        ),
        _month_row(
            me,
            provider,
            "North",
            month_start=date(2026, 8, 1),
            month_as_of_date=date(2026, 8, 31),
            new_policies=2,
            new_business_ape=100_000,
            renewal_collection_rate=0.80,
        ),
    ]
    for _, territory, policies, ape, rate in PEERS:
        rows.append(
            _month_row(
                uuid.uuid4(),
                provider,
                territory,
                new_policies=policies,
                new_business_ape=ape,
                renewal_collection_rate=rate,
            )
        )
    engine = create_engine(urls.sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA marts"))
        conn.execute(
            text(
                f"CREATE TABLE {MART} ("
                + ", ".join(f'"{name}" {kind}' for name, kind in columns)
                + ")"
            )
        )
        conn.execute(
            text("CREATE TABLE marts.dim_agent (agent_id uuid, provider_id uuid, territory text)")
        )
        for row in rows:
            names = ", ".join(row)
            conn.execute(
                text(f"INSERT INTO {MART} ({names}) VALUES ({', '.join(':' + n for n in row)})"),  # noqa: S608
                row,
            )
        conn.execute(
            text("INSERT INTO marts.dim_agent VALUES (:a, :p, 'North')"), {"a": me, "p": provider}
        )
    engine.dispose()
    return url


def test_the_previous_month_and_the_territory_median_are_beside_the_month(
    world: World, agent: dict, small_warehouse: str
) -> None:
    path = f"/v1/agents/{agent['agent_id']}/summary"
    with fake_llm(reply="ok") as llm:
        settings = world.settings_with(warehouse_url=small_warehouse)
        with live_server(create_app(settings)) as base:
            template = world.get(base, agent["user_id"], path).json()
        llm_app = settings.model_copy(update=llm_settings(llm.base_url))
        with live_server(create_app(llm_app)) as base:
            assert world.get(base, agent["user_id"], path).json()["source"] == "llm"
    assert template["month"] == "2026-09"
    said = template["text"]
    # Medians over the three agents of the territory: policies 4, 3, 1; APE 1.5, 1, 0.5 lakh;
    # collection 85%, 90%, 70%. The agent elsewhere counts only in the insurer's ranks.
    assert said.startswith(
        "September 2026: you issued 4 new policies (August: 2; territory median 3)"
    )
    assert "new-business APE of ₹1,50,000 (August: ₹1,00,000; territory median ₹1,00,000)" in said
    assert "85.0% (August: 80.0%; territory median 85.0%)" in said
    assert "you rank 1 of 3 in your territory and 2 of 4 in your insurer" in said
    prompt = llm.prompt()
    assert "Month: September 2026." in prompt  # a whole month: no "still running"
    assert "- New policies issued: 4 (last month 2; territory median 3)" in prompt
    assert (
        "- New-business APE: about ₹1.5 lakh (up about 50% on last month; territory median"
        " about ₹1 lakh)" in prompt
    )
    assert "- Renewal collection rate: 85% (up 5 points; territory median 85%)" in prompt
    assert "1 of 3 in the territory and 2 of 4 in the insurer" in prompt


@pytest.mark.parametrize(
    ("amount", "exact", "rounded"),
    [
        (0, "₹0", "₹0"),
        (950, "₹950", "about ₹950"),
        (64_733, "₹64,733", "about ₹65,000"),
        (123_456.5, "₹1,23,456.50", "about ₹1.2 lakh"),
        (12_345_678, "₹1,23,45,678", "about ₹1.2 crore"),
    ],
)
def test_rupees_are_written_as_in_india(amount: float, exact: str, rounded: str) -> None:
    assert inr(amount) == exact
    assert approx_inr(amount) == rounded
