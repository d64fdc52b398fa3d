"""Access tokens for tests: made by the same code as an OTP sign-in, minus the code."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from api.db import scoped_session
from api.security.sessions import start_session
from api.security.tokens import issue_access_token
from warehouse.operational.models import User
from warehouse.settings import Settings


def access_token(operational: Engine, settings: Settings, user_id: uuid.UUID) -> str:
    """A signed-in session for the user (a `user_sessions` row) and its access token."""
    with scoped_session(operational, None) as session:
        user = session.get(User, user_id)
        assert user is not None, f"no user {user_id}"
        issued = start_session(session, user, ip=None, user_agent="tests")
    return issue_access_token(settings, issued.principal)
