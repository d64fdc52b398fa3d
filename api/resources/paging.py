"""Cursor pagination: keyset on (created_at, id), so pages stay stable while rows are added.

The cursor is opaque to clients (base64url of the last row's key); offsets are not offered
because they skip or repeat rows under concurrent inserts and get slower with depth.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import orjson
from fastapi import HTTPException, status
from sqlalchemy import Select, and_, or_

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "the cursor is not one this API returned"
        ) from exc


def after_cursor(query: Select[Any], model: Any, cursor: str | None, limit: int) -> Select[Any]:
    """`query` ordered by the key, starting after `cursor`, one row more than `limit` (to know
    whether another page follows)."""
    if cursor:
        created, row_id = decode_cursor(cursor)
        query = query.where(
            or_(
                model.created_at > created,
                and_(model.created_at == created, model.id > row_id),
            )
        )
    return query.order_by(model.created_at, model.id).limit(limit + 1)
