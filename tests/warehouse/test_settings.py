"""Settings: defaults, environment variables, and production refusing development secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from warehouse import urls
from warehouse.settings import DEV_SECRETS, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MITRA_* or secret variables from the caller's shell, and no .env file."""
    import os

    for name in list(os.environ):
        if name.startswith(("MITRA_", "WHATSAPP_", "OPENAI_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_use_the_embedded_server_and_dev_secrets() -> None:
    settings = Settings()
    assert settings.env == "development"
    assert settings.operational_url is None and settings.warehouse_url is None
    assert settings.pg_root == Path(".mitra/pg")
    assert settings.landing_root == Path(".mitra/landing")
    assert settings.redis_url is None
    assert settings.jwt_secret.get_secret_value() == DEV_SECRETS["jwt_secret"]


def test_environment_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITRA_OPERATIONAL_URL", "postgresql://app@db.internal:6543/ops")
    monkeypatch.setenv("MITRA_LANDING_URL", "file:///data/landing")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    settings = Settings()
    assert settings.operational_url == "postgresql://app@db.internal:6543/ops"
    assert settings.landing_root == Path("/data/landing")
    assert settings.redis_url == "redis://cache:6379/1"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MITRA_WAREHOUSE_URL=postgresql://u@h/wh\n")
    assert Settings().warehouse_url == "postgresql://u@h/wh"


def test_production_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITRA_ENV", "production")
    monkeypatch.setenv("MITRA_JWT_SECRET", "a-real-32-byte-secret-from-the-vault")
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    assert "MITRA_ENV=production refuses the development secrets" in message
    for name in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "MITRA_PII_KEY"):
        assert name in message
    assert "MITRA_JWT_SECRET" not in message


def test_production_accepts_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MITRA_ENV", "production")
    for name in (
        "MITRA_JWT_SECRET",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "MITRA_PII_KEY",
    ):
        monkeypatch.setenv(name, f"real-{name.lower()}-from-the-secret-manager")
    assert Settings().env == "production"


def test_production_refuses_a_short_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """HS256 wants a key at least as long as its hash (RFC 7518 §3.2)."""
    monkeypatch.setenv("MITRA_ENV", "production")
    for name in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "MITRA_PII_KEY"):
        monkeypatch.setenv(name, f"real-{name.lower()}")
    monkeypatch.setenv("MITRA_JWT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings()


def test_url_forms() -> None:
    url = "postgres://u:p%40ss@host:5433/db"
    assert urls.sqlalchemy_url(url) == "postgresql+psycopg://u:p%40ss@host:5433/db"
    assert urls.psycopg2_url(url) == "postgresql+psycopg2://u:p%40ss@host:5433/db"
    assert urls.libpq_url(url) == "postgresql://u:p%40ss@host:5433/db"
    assert urls.display(url) == "postgresql://u:***@host:5433/db"
    socket = "postgresql://postgres@/agent_mitra_wh?host=/tmp/pg"
    assert urls.dbt_env(socket) == {
        "MITRA_WH_HOST": "/tmp/pg",
        "MITRA_WH_PORT": "5432",
        "MITRA_WH_USER": "postgres",
        "MITRA_WH_PASSWORD": "",
        "MITRA_WH_DBNAME": "agent_mitra_wh",
    }
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        urls.parse("mysql://u@h/db")
