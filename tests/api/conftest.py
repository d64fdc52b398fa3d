"""A small two-tenant operational world, the API served over HTTP on it, and signed-in callers.

The world is written as the database owner (as the app's back office would), then every request
goes through the API, whose transactions run as the non-owner role under row-level security.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from api.main import create_app
from api.security.otp_delivery import RecordingOtpSender
from api.security.sessions import TENANT_ADMIN_PERMISSION
from tests.api.signin import access_token
from tests.built_world import BuiltWarehouse
from tests.live_server import live_server
from warehouse import urls
from warehouse.migrate import upgrade
from warehouse.operational.enums import (
    AgentStatus,
    PolicyStatus,
    PolicyType,
    PremiumMode,
    ProviderType,
    UserRole,
    UserStatus,
    VideoStatus,
    WhatsAppTemplateCategory,
)
from warehouse.operational.models import (
    Agent,
    ChatbotKnowledgeBase,
    InsurancePolicy,
    InsuranceProvider,
    Policyholder,
    PremiumPayment,
    User,
    UserPermission,
    VideoContent,
    WhatsAppTemplate,
)
from warehouse.settings import Settings


@dataclass
class Tenant:
    provider_id: uuid.UUID
    admin_user: uuid.UUID
    agent_user: uuid.UUID
    agent_id: uuid.UUID
    other_agent_id: uuid.UUID
    holder_user: uuid.UUID
    holder_id: uuid.UUID
    policy_id: uuid.UUID
    other_agents_policy_id: uuid.UUID
    video_id: uuid.UUID
    template_id: uuid.UUID
    knowledge_id: uuid.UUID
    ids: dict[str, uuid.UUID] = field(default_factory=dict)


@dataclass
class World:
    a: Tenant
    b: Tenant
    super_user: uuid.UUID
    shared_knowledge_id: uuid.UUID


_phone_counter = iter(range(10_000_000))


def new_phone() -> str:
    """A unique valid Indian mobile for this session."""
    return f"+9170{next(_phone_counter):08d}"


def _user(session: Session, role: UserRole) -> User:
    user = User(phone=new_phone(), role=role, status=UserStatus.ACTIVE, full_name=f"{role} user")
    session.add(user)
    session.flush()
    return user


def _tenant(session: Session, code: str) -> Tenant:
    provider = InsuranceProvider(code=code, name=f"{code} Life", provider_type=ProviderType.LIFE)
    session.add(provider)
    session.flush()
    pid = provider.id
    admin, agent_user, other_user, holder_user = (
        _user(session, r)
        for r in (UserRole.PROVIDER_ADMIN, UserRole.AGENT, UserRole.AGENT, UserRole.POLICYHOLDER)
    )
    session.add(
        UserPermission(
            user_id=admin.id,
            permission=TENANT_ADMIN_PERMISSION,
            resource_type="insurance_provider",
            resource_id=pid,
        )
    )
    agent = Agent(
        provider_id=pid,
        user_id=agent_user.id,
        agent_code=f"{code}-000001",
        status=AgentStatus.ACTIVE,
        territory="north",
    )
    other = Agent(
        provider_id=pid,
        user_id=other_user.id,
        agent_code=f"{code}-000002",
        status=AgentStatus.ACTIVE,
        territory="north",
    )
    session.add_all([agent, other])
    session.flush()
    holder = Policyholder(
        provider_id=pid,
        agent_id=agent.id,
        user_id=holder_user.id,
        customer_code=f"{code}-C1",
        full_name="Asha Rao",
        phone=new_phone(),
    )
    other_holder = Policyholder(
        provider_id=pid, agent_id=other.id, customer_code=f"{code}-C2", full_name="Ravi Kumar"
    )
    session.add_all([holder, other_holder])
    session.flush()

    def policy(holder_row: Policyholder, number: str) -> InsurancePolicy:
        return InsurancePolicy(
            provider_id=pid,
            policyholder_id=holder_row.id,
            agent_id=holder_row.agent_id,
            policy_number=number,
            policy_type=PolicyType.ENDOWMENT,
            plan_name="Jeevan",
            sum_assured=Decimal("500000"),
            premium_amount=Decimal("2500"),
            premium_mode=PremiumMode.MONTHLY,
            policy_term_years=20,
            premium_paying_term_years=15,
            issue_date=date(2025, 1, 10),
            status=PolicyStatus.ACTIVE,
        )

    mine, theirs = policy(holder, f"{code}-P1"), policy(other_holder, f"{code}-P2")
    session.add_all([mine, theirs])
    session.flush()
    for n in range(1, 4):
        session.add(
            PremiumPayment(
                provider_id=pid,
                policy_id=mine.id,
                due_date=date(2025, n, 10),
                amount=Decimal("2500"),
                premium_mode=PremiumMode.MONTHLY,
                installment_number=n,
            )
        )
    video = VideoContent(
        provider_id=pid,
        title="Why term insurance",
        category="term_basics",
        url="https://videos.example/1",
        status=VideoStatus.PUBLISHED,
    )
    template = WhatsAppTemplate(
        provider_id=pid,
        name="premium_reminder",
        language="en",
        category=WhatsAppTemplateCategory.UTILITY,
        body="Your premium of {{1}} is due on {{2}}.",
    )
    knowledge = ChatbotKnowledgeBase(
        provider_id=pid, category="claims", question="How do I claim?", answer="Call your agent."
    )
    session.add_all([video, template, knowledge])
    session.flush()
    return Tenant(
        provider_id=pid,
        admin_user=admin.id,
        agent_user=agent_user.id,
        agent_id=agent.id,
        other_agent_id=other.id,
        holder_user=holder_user.id,
        holder_id=holder.id,
        policy_id=mine.id,
        other_agents_policy_id=theirs.id,
        video_id=video.id,
        template_id=template.id,
        knowledge_id=knowledge.id,
    )


@pytest.fixture(scope="session")
def api_database(make_database: Callable[[str], str]) -> str:
    url = make_database("api")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def owner_engine(api_database: str) -> Iterator[Engine]:
    engine = create_engine(urls.sqlalchemy_url(api_database))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def world(owner_engine: Engine) -> World:
    with Session(owner_engine) as session, session.begin():
        a, b = _tenant(session, "TENA"), _tenant(session, "TENB")
        super_user = _user(session, UserRole.SUPER_ADMIN).id
        shared = ChatbotKnowledgeBase(
            category="app", question="How do I sign in?", answer="With a code sent to your phone."
        )
        session.add(shared)
        session.flush()
        return World(a=a, b=b, super_user=super_user, shared_knowledge_id=shared.id)


@dataclass
class Api:
    base: str
    settings: Settings
    sender: RecordingOtpSender
    engine: Engine

    def client(self, user_id: uuid.UUID | None = None) -> httpx.Client:
        """An HTTP client, signed in as `user_id` when given."""
        headers = {"Authorization": f"Bearer {self.token(user_id)}"} if user_id else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def token(self, user_id: uuid.UUID) -> str:
        """An access token for the user, made by the same code as a sign-in (minus the OTP)."""
        return access_token(self.engine, self.settings, user_id)


@pytest.fixture(scope="session")
def api(
    api_database: str,
    warehouse_url: str,
    owner_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """The app on the two-tenant world, with an empty warehouse (no marts)."""
    yield from _serve(api_database, warehouse_url, owner_engine, tmp_path_factory)


@pytest.fixture(scope="session")
def api_with_marts(
    api_database: str,
    built_warehouse: BuiltWarehouse,
    owner_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """The app on the two-tenant world and the session's built warehouse, so every operation,
    insights included, has its tables (the fuzz test: a missing mart is an honest 503, which
    schemathesis would count as a server error)."""
    yield from _serve(api_database, built_warehouse.warehouse_url, owner_engine, tmp_path_factory)


def _serve(
    operational: str, warehouse: str, owner: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    settings = Settings(
        operational_url=operational,
        warehouse_url=warehouse,
        dagster_url=operational,
        landing_url=str(tmp_path_factory.mktemp("landing")),
    )
    sender = RecordingOtpSender()
    with live_server(create_app(settings, otp_sender=sender)) as base:
        yield Api(base=base, settings=settings, sender=sender, engine=owner)


@pytest.fixture
def settings(operational_url: str, warehouse_url: str, tmp_path: Path) -> Settings:
    """Settings with a landing zone of this test's own (the intake tests read what lands)."""
    return Settings(
        operational_url=operational_url,
        warehouse_url=warehouse_url,
        dagster_url=operational_url,
        landing_url=str(tmp_path / "landing"),
    )


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    """The app on `settings`, served for one test; yields its base URL."""
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture
def own_warehouse(make_database: Callable[[str], str]) -> str:
    """A warehouse of this test's own: loads of API-written files (received today, about events
    of other days) must not reach the session's shared warehouse, whose dbt builds would then see
    them as late arrivals."""
    from warehouse.warehouse_ddl import ensure_warehouse

    url = make_database("intake_wh")
    ensure_warehouse(url)
    return url
