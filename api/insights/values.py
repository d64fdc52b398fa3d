"""Mart values as JSON: money and rates as numbers (the app charts them), ids and dates as text.

Money is `numeric` in the marts; a float carries its two decimals exactly as far as JSON's
numbers go (below 2^53 paise), which rupee totals of an agent never approach.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def plain_row(row: Mapping[str, Any], columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    keys = columns if columns is not None else tuple(row.keys())
    return {key: plain(row[key]) for key in keys}
