"""The platform's settings: one definition of every environment variable (DESIGN §4).

They live in `warehouse/` because it is the lowest layer that every other package (api, ml,
orchestration, simulator) may import. Nothing here reads the environment at import time: call
`get_settings()` (cached) or build `Settings(...)` directly in tests.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development values for the secrets. They make `make demo` work with no set-up and are refused
# when MITRA_ENV=production, so a forgotten variable can never ship a guessable key.
DEV_SECRETS: dict[str, str] = {
    "jwt_secret": "dev-jwt-secret-change-me-not-for-production",
    "whatsapp_app_secret": "dev-whatsapp-app-secret",
    "whatsapp_verify_token": "dev-whatsapp-verify-token",
    "pii_key": "dev-pii-key-change-me",
}

# Environment variable behind each secret, for error messages.
SECRET_ENV_NAMES: dict[str, str] = {
    "jwt_secret": "MITRA_JWT_SECRET",
    "whatsapp_app_secret": "WHATSAPP_APP_SECRET",
    "whatsapp_verify_token": "WHATSAPP_VERIFY_TOKEN",
    "pii_key": "MITRA_PII_KEY",
}

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_JWT_SECRET_BYTES = 32

Environment = Literal["development", "test", "production"]


def _env(name: str) -> AliasChoices:
    """Accept the documented environment variable and the field name (for keyword use)."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every setting of the platform, read from the environment and an optional `.env` file.

    Database URLs left unset mean "use the embedded PostgreSQL server" (see
    `warehouse.databases.resolve_database_urls`); a URL that is set always wins.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Keyword construction by field name (tests, tools) while the environment is matched on
        # the documented names only, exactly: `home` must never pick up $HOME.
        populate_by_name=True,
        case_sensitive=True,
    )

    env: Environment = Field("development", validation_alias=_env("MITRA_ENV"))
    home: Path = Field(
        Path(".mitra"),
        validation_alias=_env("MITRA_HOME"),
        description="Local state: the embedded PostgreSQL data directory, Dagster files.",
    )

    operational_url: str | None = Field(None, validation_alias=_env("MITRA_OPERATIONAL_URL"))
    warehouse_url: str | None = Field(None, validation_alias=_env("MITRA_WAREHOUSE_URL"))
    dagster_url: str | None = Field(None, validation_alias=_env("MITRA_DAGSTER_URL"))
    landing_url: str = Field("./.mitra/landing", validation_alias=_env("MITRA_LANDING_URL"))

    partitions_start: date = Field(
        date(2025, 1, 1),
        validation_alias=_env("MITRA_PARTITIONS_START"),
        description="First day of the daily partitions of the landing sources.",
    )
    raw_retention_days: int = Field(
        365,
        ge=1,
        validation_alias=_env("MITRA_RAW_RETENTION_DAYS"),
        description="Days of raw message bodies kept; older partitions are dropped (DPDP Act).",
    )

    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))

    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    llm_model: str = Field("gpt-4o-mini", validation_alias=_env("MITRA_LLM_MODEL"))
    llm_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        validation_alias=_env("MITRA_LLM_TIMEOUT_SECONDS"),
        description="Longest wait for one language-model request (connect, send, each read).",
    )
    llm_max_retries: int = Field(
        1,
        ge=0,
        le=5,
        validation_alias=_env("MITRA_LLM_MAX_RETRIES"),
        description="Further attempts after a failed language-model request (timeouts, refused "
        "connections, 429 and 5xx answers); a caller waits at most about timeout x (retries + 1).",
    )

    insights_rate_limit_per_minute: int = Field(
        240,
        ge=1,
        validation_alias=_env("MITRA_INSIGHTS_RATE_LIMIT"),
        description="Insights requests a minute per caller (user, else client address).",
    )
    export_rate_limit_per_minute: int = Field(
        20,
        ge=1,
        validation_alias=_env("MITRA_EXPORT_RATE_LIMIT"),
        description="Mart exports a minute per caller: a few files, a script pages by date.",
    )

    events_rate_limit_per_minute: int = Field(
        120,
        ge=1,
        validation_alias=_env("MITRA_EVENTS_RATE_LIMIT"),
        description="Event batches a minute per caller (the app sends one every few seconds).",
    )
    chat_rate_limit_per_minute: int = Field(
        20,
        ge=1,
        validation_alias=_env("MITRA_CHAT_RATE_LIMIT"),
        description="Chatbot questions a minute per caller.",
    )
    summary_rate_limit_per_minute: int = Field(
        20,
        ge=1,
        validation_alias=_env("MITRA_SUMMARY_RATE_LIMIT"),
        description="Month summaries a minute per caller.",
    )
    llm_calls_per_tenant_per_day: int = Field(
        5000,
        ge=1,
        validation_alias=_env("MITRA_LLM_CALLS_PER_TENANT_PER_DAY"),
        description="Language-model calls (chat, summaries) a day (IST) per insurer; callers "
        "without an insurer share one such budget. Over it: 429 until midnight.",
    )
    export_send_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        validation_alias=_env("MITRA_EXPORT_SEND_TIMEOUT_SECONDS"),
        description="Longest wait for a client to take the next part of a mart export; a "
        "stalled client is cut off and its warehouse connection returned.",
    )
    exports_per_caller: int = Field(
        2,
        ge=1,
        validation_alias=_env("MITRA_EXPORTS_PER_CALLER"),
        description="Mart exports one caller may run at once, per API process (429 beyond).",
    )
    forwarded_allow_ips: str = Field(
        "",
        validation_alias=_env("MITRA_FORWARDED_ALLOW_IPS"),
        description="Proxies whose X-Forwarded-For/-Proto uvicorn trusts (comma-separated "
        "addresses or networks, as uvicorn's --forwarded-allow-ips). Empty: none, the peer "
        "address is the client.",
    )

    jwt_secret: SecretStr = Field(
        SecretStr(DEV_SECRETS["jwt_secret"]), validation_alias=_env("MITRA_JWT_SECRET")
    )
    whatsapp_app_secret: SecretStr = Field(
        SecretStr(DEV_SECRETS["whatsapp_app_secret"]),
        validation_alias=_env("WHATSAPP_APP_SECRET"),
    )
    whatsapp_verify_token: SecretStr = Field(
        SecretStr(DEV_SECRETS["whatsapp_verify_token"]),
        validation_alias=_env("WHATSAPP_VERIFY_TOKEN"),
    )
    pii_key: SecretStr = Field(
        SecretStr(DEV_SECRETS["pii_key"]), validation_alias=_env("MITRA_PII_KEY")
    )

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        """In production every secret must be set, and to something other than its dev value."""
        if self.env != "production":
            return self
        weak = [
            SECRET_ENV_NAMES[name]
            for name, dev_value in DEV_SECRETS.items()
            if getattr(self, name).get_secret_value() in ("", dev_value)
        ]
        if len(self.jwt_secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            weak.append(f"MITRA_JWT_SECRET (at least {MIN_JWT_SECRET_BYTES} bytes for HS256)")
        if weak:
            raise ValueError(
                "MITRA_ENV=production refuses the development secrets; set "
                + ", ".join(weak)
                + " to real values (for example from your secret manager)."
            )
        return self

    @property
    def pg_root(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.home / "pg"

    @property
    def landing_root(self) -> Path:
        """The landing zone as a local path (`file://` prefixes are accepted)."""
        url = self.landing_url
        return Path(url.removeprefix("file://"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests build `Settings(...)` or clear this cache."""
    return Settings()
