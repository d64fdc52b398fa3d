"""The audit trail: one `audit_logs` row per write, in the writing transaction.

Why in the same transaction: a write without its audit row (or an audit row for a write that rolled
back) can never exist. Values are stored as JSON (UUIDs, dates and decimals as text) so the
trail stays readable whatever the table's types.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import insert, null
from sqlalchemy.orm import Session

from api.context import RequestContext
from api.security.tokens import Principal
from warehouse.operational.models import AuditLog


def jsonable(value: Any) -> Any:
    """A value as JSON would carry it (what audit rows and ETags are computed from)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record(
    session: Session,
    context: RequestContext,
    *,
    principal: Principal | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    provider_id: uuid.UUID | None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    actor_user_id: uuid.UUID | None = None,
) -> None:
    """Insert the audit row for one write, in `session`'s transaction.

    A plain INSERT without RETURNING: the API role may add audit rows it is not allowed to read
    back (sign-in rows belong to no tenant), and nothing needs the generated id.
    """
    session.execute(
        insert(AuditLog).values(
            actor_user_id=actor_user_id or (principal.user_id if principal else None),
            actor_role=principal.role if principal else None,
            provider_id=provider_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            old_values=jsonable(old) if old is not None else null(),
            new_values=jsonable(new) if new is not None else null(),
            ip_address=context.ip_address,
            user_agent=context.user_agent,
            request_id=context.request_id,
        )
    )
