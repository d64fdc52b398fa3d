"""Insights depend on the warehouse: when it cannot answer, say so as a 503 with `Retry-After`
(a deployment whose marts are not built yet, or a warehouse that is down), never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status
from psycopg.errors import UndefinedTable
from sqlalchemy.exc import OperationalError, ProgrammingError


@contextmanager
def warehouse_answers() -> Iterator[None]:
    """Map "no marts yet" and "warehouse down" raised inside the block to 503 problems (from
    SQLAlchemy, or from psycopg itself on the read pool)."""
    try:
        yield
    except (ProgrammingError, UndefinedTable) as exc:
        if not isinstance(exc, UndefinedTable) and not isinstance(exc.orig, UndefinedTable):
            raise
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the insights are not available yet: the marts have not been built",
            headers={"Retry-After": "3600"},
        ) from exc
    except OperationalError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the warehouse is unavailable; retry later",
            headers={"Retry-After": "30"},
        ) from exc
