"""Access tokens remembered per process (`verified_principal`): remembering a verified token must
never extend its life or carry it to an app with another secret."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from api.security.tokens import (
    ACCESS_TOKEN_TTL,
    InvalidToken,
    Principal,
    issue_access_token,
    verified_principal,
)
from warehouse.operational.enums import UserRole
from warehouse.settings import Settings


def _settings(secret: str) -> Settings:
    return Settings(jwt_secret=SecretStr(secret))


def _principal() -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        role=UserRole.AGENT,
        session_id=uuid.uuid4(),
        tenant_ids=(uuid.uuid4(),),
        agent_id=uuid.uuid4(),
    )


def test_a_remembered_token_still_expires() -> None:
    settings = _settings("s" * 40)
    principal = _principal()
    # Issued so that it expires two seconds from now.
    issued = datetime.now(UTC) - ACCESS_TOKEN_TTL + timedelta(seconds=2)
    token = issue_access_token(settings, principal, now=issued)
    assert verified_principal(settings, token) == principal
    assert verified_principal(settings, token) == principal  # from memory
    time.sleep(3.1)
    with pytest.raises(InvalidToken):
        verified_principal(settings, token)


def test_a_remembered_token_is_not_taken_under_another_secret() -> None:
    ours, theirs = _settings("a" * 40), _settings("b" * 40)
    principal = _principal()
    token = issue_access_token(ours, principal)
    assert verified_principal(ours, token) == principal
    with pytest.raises(InvalidToken):
        verified_principal(theirs, token)


def test_a_forged_token_is_refused_even_beside_remembered_ones() -> None:
    settings = _settings("c" * 40)
    token = issue_access_token(settings, _principal())
    verified_principal(settings, token)
    header, claims, signature = token.split(".")
    forged = f"{header}.{claims}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken):
        verified_principal(settings, forged)
