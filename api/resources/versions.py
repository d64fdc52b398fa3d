"""Optimistic concurrency (ETag / If-Match) and idempotent creates (Idempotency-Key).

ETag: a strong validator derived from the row's id and `updated_at` (the trigger moves it on
every UPDATE, by the API or not), so any change of the row changes it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from fastapi import HTTPException, status


def etag_of(row_id: uuid.UUID, updated_at: datetime) -> str:
    digest = hashlib.sha256(f"{row_id}:{updated_at.isoformat()}".encode()).hexdigest()
    return f'"{digest[:24]}"'


def check_if_match(if_match: str | None, current: str, *, required: bool) -> None:
    """428 when a required If-Match is missing, 412 when it names another version."""
    if if_match is None:
        if required:
            raise HTTPException(
                status.HTTP_428_PRECONDITION_REQUIRED,
                "send If-Match with the ETag from your last read of this resource",
            )
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in candidates or current in candidates:
        return
    raise HTTPException(
        status.HTTP_412_PRECONDITION_FAILED,
        "the resource changed since you read it; read it again and retry",
        headers={"ETag": current},
    )


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
