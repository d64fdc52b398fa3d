"""Python enums behind the operational schema's PostgreSQL enum types.

Each enum's *values* are the labels stored in PostgreSQL (lowercase snake case, stable across
renames of the Python member), and `PG_ENUM_NAMES` gives the database type name of each one, so the
models, the migration and the tests agree on one spelling. Labels may only be appended (PostgreSQL
cannot drop an enum label without rewriting every column that uses the type): add a value at the
end and write a migration with `ALTER TYPE ... ADD VALUE`.
"""

from __future__ import annotations

from enum import StrEnum


class UserRole(StrEnum):
    """Who a login is: drives the JWT role claim and row-level security (DESIGN §8)."""

    POLICYHOLDER = "policyholder"
    AGENT = "agent"
    PROVIDER_ADMIN = "provider_admin"
    SUPER_ADMIN = "super_admin"
    SUPPORT = "support"


class UserStatus(StrEnum):
    """Account life cycle; OTP login creates users as `pending_verification`."""

    PENDING_VERIFICATION = "pending_verification"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"


class ProviderType(StrEnum):
    """IRDAI's three classes of insurer."""

    LIFE = "life"
    HEALTH = "health"
    GENERAL = "general"


class ProviderStatus(StrEnum):
    """Tenant life cycle: insurers are never hard-deleted, only made inactive."""

    ONBOARDING = "onboarding"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"


class AgentStatus(StrEnum):
    """Agent life cycle; `terminated` keeps the row so past business stays attributed."""

    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"
    TERMINATED = "terminated"


class Gender(StrEnum):
    """As recorded on the proposal form; `undisclosed` when the customer declines."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNDISCLOSED = "undisclosed"


class PolicyType(StrEnum):
    """Product families sold by Indian life and health insurers."""

    ENDOWMENT = "endowment"
    TERM = "term"
    MONEY_BACK = "money_back"
    ULIP = "ulip"
    HEALTH = "health"
    WHOLE_LIFE = "whole_life"
    PENSION = "pension"


class PremiumMode(StrEnum):
    """How often a premium falls due; the grace period depends on it (DESIGN §6)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"
    ANNUAL = "annual"
    SINGLE = "single"


class PolicyStatus(StrEnum):
    """Policy life cycle, from proposal to exit (maturity, surrender, death claim)."""

    PROPOSED = "proposed"
    ACTIVE = "active"
    GRACE = "grace"
    LAPSED = "lapsed"
    REVIVED = "revived"
    PAID_UP = "paid_up"
    MATURED = "matured"
    SURRENDERED = "surrendered"
    DEATH_CLAIM = "death_claim"
    CANCELLED = "cancelled"


class PremiumPaymentStatus(StrEnum):
    """State of one premium instalment; lapse and revival are defined in DESIGN §6."""

    DUE = "due"
    PAID = "paid"
    PAID_IN_GRACE = "paid_in_grace"
    LAPSED = "lapsed"
    REVIVED = "revived"
    WAIVED = "waived"


class PaymentChannel(StrEnum):
    """How a premium reached the insurer (NACH is the recurring bank mandate)."""

    UPI = "upi"
    NACH = "nach"
    NET_BANKING = "net_banking"
    DEBIT_CARD = "debit_card"
    CREDIT_CARD = "credit_card"
    WALLET = "wallet"
    CASH = "cash"
    CHEQUE = "cheque"


class VideoStatus(StrEnum):
    """Publishing state of an educational video; only `published` ones are recommended."""

    DRAFT = "draft"
    PROCESSING = "processing"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class WhatsAppTemplateCategory(StrEnum):
    """Meta's template categories (they are priced differently)."""

    MARKETING = "marketing"
    UTILITY = "utility"
    AUTHENTICATION = "authentication"


class WhatsAppTemplateStatus(StrEnum):
    """Meta's review states of a template, plus `draft` before submission."""

    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAUSED = "paused"
    DISABLED = "disabled"


class PerformancePeriod(StrEnum):
    """Grain of an `agent_performance` row."""

    DAILY = "daily"
    MONTHLY = "monthly"


# PostgreSQL type name of each enum: the one place those names are spelt for the models.
PG_ENUM_NAMES: dict[type[StrEnum], str] = {
    UserRole: "user_role",
    UserStatus: "user_status",
    ProviderType: "provider_type",
    ProviderStatus: "provider_status",
    AgentStatus: "agent_status",
    Gender: "gender",
    PolicyType: "policy_type",
    PremiumMode: "premium_mode",
    PolicyStatus: "policy_status",
    PremiumPaymentStatus: "premium_payment_status",
    PaymentChannel: "payment_channel",
    VideoStatus: "video_status",
    WhatsAppTemplateCategory: "whatsapp_template_category",
    WhatsAppTemplateStatus: "whatsapp_template_status",
    PerformancePeriod: "performance_period",
}
