"""Bodies of the operational resources: what may be created, changed and read.

Create bodies name every column a client may set; update bodies are the same fields, all
optional (PATCH semantics: only what is sent changes). Tenant (`provider_id`) and ownership
(`agent_id` for an agent) come from the caller's token, never trusted from a body, except for
a super admin, who names the tenant. Read bodies add the server's columns.
"""

from __future__ import annotations

import uuid
from copy import copy
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from api.json_limits import value_problem
from api.schemas.formats import IndianMobile, IrdaiLicence, Language, Pan, Pincode
from warehouse.operational.enums import (
    AgentStatus,
    Gender,
    PolicyStatus,
    PolicyType,
    PremiumMode,
    PremiumPaymentStatus,
    VideoStatus,
    WhatsAppTemplateCategory,
    WhatsAppTemplateStatus,
)

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=4000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """No NUL in any text (PostgreSQL refuses it) and no nesting past `MAX_JSON_DEPTH` in
        the free-form members (nominees, buttons), whatever field holds them."""
        if (problem := value_problem(data)) is not None:
            raise ValueError(problem)
        return data


def patch_body(create: type[BaseModel], *fields: str, **extra: Any) -> type[BaseModel]:
    """The PATCH body of a resource: `fields` of its create body, each optional (only what is sent
    changes), with the same validation, so each field's rules are written once; `extra` adds
    fields only an update may set, as `create_model` definitions."""
    definitions: dict[str, Any] = {}
    for name in fields:
        field = copy(create.model_fields[name])
        field.default, field.default_factory = None, None
        definitions[name] = (field.annotation | None, field)
    name = create.__name__.replace("Create", "Update")
    return create_model(name, __base__=_Body, **definitions, **extra)


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------- agents


class AgentCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone": "+919812345678",
                    "full_name": "Suresh Patil",
                    "agent_code": "LIC-000123",
                    "irdai_license_number": "IRDAI/LIC-000123",
                    "territory": "Pune West",
                    "state": "Maharashtra",
                    "city": "Pune",
                    "pincode": "411001",
                    "preferred_languages": ["mr", "hi"],
                }
            ]
        }
    )

    phone: IndianMobile = Field(description="the agent's mobile: their sign-in")
    full_name: ShortText
    agent_code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    irdai_license_number: IrdaiLicence | None = None
    irdai_license_expires_on: date | None = None
    territory: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=100)
    city: str | None = Field(None, max_length=100)
    pincode: Pincode | None = None
    preferred_languages: list[Language] = Field(default_factory=list, max_length=10)
    whatsapp_business_number: IndianMobile | None = None
    status: AgentStatus = AgentStatus.PENDING_APPROVAL
    joined_on: date | None = None
    provider_id: uuid.UUID | None = Field(None, description="super admins only: the tenant")


AgentUpdate = patch_body(
    AgentCreate,
    "irdai_license_number",
    "irdai_license_expires_on",
    "territory",
    "state",
    "city",
    "pincode",
    "preferred_languages",
    "whatsapp_business_number",
    "status",
)


class AgentRead(_Read):
    user_id: uuid.UUID
    agent_code: str
    irdai_license_number: str | None
    irdai_license_expires_on: date | None
    territory: str | None
    state: str | None
    city: str | None
    pincode: str | None
    preferred_languages: list[str]
    whatsapp_business_number: str | None
    status: AgentStatus
    joined_on: date | None


# --------------------------------------------------------------------------- policyholders


class PolicyholderCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_code": "C-10023",
                    "full_name": "Asha Rao",
                    "phone": "+919876543210",
                    "pan": "ABCDE1234F",
                    "pincode": "560001",
                    "preferred_language": "kn",
                    "whatsapp_opt_in": True,
                }
            ]
        }
    )

    customer_code: str = Field(min_length=1, max_length=64)
    full_name: ShortText
    phone: IndianMobile | None = None
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    date_of_birth: date | None = None
    gender: Gender | None = None
    occupation: str | None = Field(None, max_length=100)
    annual_income: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    pan: Pan | None = None
    address_line: str | None = Field(None, max_length=500)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=100)
    pincode: Pincode | None = None
    preferred_language: Language = "en"
    whatsapp_opt_in: bool = False
    agent_id: uuid.UUID | None = Field(None, description="provider admins: the serving agent")
    provider_id: uuid.UUID | None = Field(None, description="super admins only: the tenant")

    @model_validator(mode="after")
    def _born_in_the_past(self) -> PolicyholderCreate:
        if self.date_of_birth is not None and self.date_of_birth >= date.today():
            raise ValueError("date_of_birth must be in the past")
        return self


PolicyholderUpdate = patch_body(
    PolicyholderCreate,
    "full_name",
    "phone",
    "email",
    "occupation",
    "annual_income",
    "pan",
    "address_line",
    "city",
    "state",
    "pincode",
    "preferred_language",
    "whatsapp_opt_in",
)


class PolicyholderRead(_Read):
    agent_id: uuid.UUID
    user_id: uuid.UUID | None
    customer_code: str
    full_name: str
    phone: str | None
    email: str | None
    date_of_birth: date | None
    gender: Gender | None
    occupation: str | None
    annual_income: Decimal | None
    pan: str | None
    address_line: str | None
    city: str | None
    state: str | None
    pincode: str | None
    preferred_language: str
    whatsapp_opt_in: bool


# --------------------------------------------------------------------------- policies


class PolicyCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policyholder_id": "0b7c6f9e-6f1e-4f37-9a55-2f0f3c9b8d11",
                    "policy_number": "LIC-94512345",
                    "policy_type": "endowment",
                    "plan_name": "Jeevan Anand",
                    "sum_assured": "500000.00",
                    "premium_amount": "2450.00",
                    "premium_mode": "monthly",
                    "policy_term_years": 20,
                    "premium_paying_term_years": 15,
                    "issue_date": "2026-04-01",
                }
            ]
        }
    )

    policyholder_id: uuid.UUID
    policy_number: str = Field(min_length=1, max_length=64)
    policy_type: PolicyType
    plan_name: ShortText
    plan_code: str | None = Field(None, max_length=32)
    sum_assured: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    premium_amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    premium_mode: PremiumMode
    policy_term_years: int = Field(ge=1, le=100)
    premium_paying_term_years: int = Field(ge=1, le=100)
    issue_date: date
    maturity_date: date | None = None
    status: PolicyStatus = PolicyStatus.PROPOSED
    nominee_details: list[dict[str, Any]] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _terms_agree(self) -> PolicyCreate:
        if self.premium_paying_term_years > self.policy_term_years:
            raise ValueError("premium_paying_term_years exceeds policy_term_years")
        if self.maturity_date is not None and self.maturity_date <= self.issue_date:
            raise ValueError("maturity_date must be after issue_date")
        return self


PolicyUpdate = patch_body(
    PolicyCreate, "plan_name", "plan_code", "premium_mode", "status", "nominee_details"
)


class PolicyRead(_Read):
    policyholder_id: uuid.UUID
    agent_id: uuid.UUID
    policy_number: str
    policy_type: PolicyType
    plan_name: str
    plan_code: str | None
    sum_assured: Decimal
    premium_amount: Decimal
    premium_mode: PremiumMode
    policy_term_years: int
    premium_paying_term_years: int
    issue_date: date
    maturity_date: date | None
    status: PolicyStatus
    nominee_details: list[dict[str, Any]]


class PremiumPaymentRead(_Read):
    policy_id: uuid.UUID
    due_date: date
    amount: Decimal
    premium_mode: PremiumMode
    installment_number: int
    status: PremiumPaymentStatus
    paid_at: datetime | None
    paid_amount: Decimal | None


# --------------------------------------------------------------------------- content


class VideoCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "What is a grace period?",
                    "category": "premium_basics",
                    "language": "hi",
                    "duration_seconds": 95,
                    "url": "https://videos.example/grace-period-hi.mp4",
                    "policy_types": ["endowment", "term"],
                    "status": "published",
                }
            ]
        }
    )

    title: ShortText
    description: str | None = Field(None, max_length=4000)
    category: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    language: Language = "en"
    duration_seconds: int | None = Field(None, gt=0, le=86_400)
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https://")
    thumbnail_url: str | None = Field(None, max_length=2000, pattern=r"^https://")
    tags: list[str] = Field(default_factory=list, max_length=20)
    policy_types: list[PolicyType] = Field(default_factory=list, max_length=10)
    status: VideoStatus = VideoStatus.DRAFT
    provider_id: uuid.UUID | None = Field(None, description="super admins only: the tenant")


VideoUpdate = patch_body(
    VideoCreate, "title", "description", "category", "tags", "policy_types", "status"
)


class VideoRead(_Read):
    uploaded_by_agent_id: uuid.UUID | None
    title: str
    description: str | None
    category: str
    language: str
    duration_seconds: int | None
    url: str
    thumbnail_url: str | None
    tags: list[str]
    policy_types: list[str]
    status: VideoStatus
    view_count: int
    published_at: datetime | None


class KnowledgeCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "category": "premiums",
                    "question": "What happens if I miss a premium?",
                    "answer": "30 days of grace (15 if monthly) to pay and keep cover.",
                    "keywords": ["grace", "missed", "premium"],
                    "language": "en",
                }
            ]
        }
    )

    category: str = Field(min_length=1, max_length=64)
    question: LongText
    answer: LongText
    keywords: list[str] = Field(default_factory=list, max_length=30)
    language: Language = "en"
    is_active: bool = True
    provider_id: uuid.UUID | None = Field(
        None, description="super admins: the tenant, or omitted for an answer shared by all"
    )


KnowledgeUpdate = patch_body(
    KnowledgeCreate, "category", "question", "answer", "keywords", "language"
)


class KnowledgeRead(_Read):
    category: str
    question: str
    answer: str
    keywords: list[str]
    language: str
    is_active: bool
    usage_count: int


class TemplateCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "premium_due_reminder",
                    "language": "hi",
                    "category": "utility",
                    "body": "नमस्ते {{1}}, आपकी पॉलिसी {{2}} का प्रीमियम {{3}} को देय है।",
                    "variables": ["name", "policy_number", "due_date"],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$", examples=["en", "hi", "en_US"])
    category: WhatsAppTemplateCategory
    header: str | None = Field(None, max_length=60)
    body: str = Field(min_length=1, max_length=1024)
    footer: str | None = Field(None, max_length=60)
    buttons: list[dict[str, Any]] = Field(default_factory=list, max_length=10)
    variables: list[str] = Field(default_factory=list, max_length=20)
    provider_id: uuid.UUID | None = Field(None, description="super admins only: the tenant")


TemplateUpdate = patch_body(
    TemplateCreate,
    "header",
    "body",
    "footer",
    "buttons",
    "variables",
    approval_status=(WhatsAppTemplateStatus | None, None),
)


class TemplateRead(_Read):
    name: str
    language: str
    category: WhatsAppTemplateCategory
    header: str | None
    body: str
    footer: str | None
    buttons: list[dict[str, Any]]
    variables: list[str]
    approval_status: WhatsAppTemplateStatus
    meta_template_id: str | None
    rejection_reason: str | None
