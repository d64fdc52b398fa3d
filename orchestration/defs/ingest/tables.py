"""The raw and quarantine tables of each landing source, derived from the transforms' schemas."""

from __future__ import annotations

import polars as pl

from transforms import app_events, whatsapp
from warehouse.raw_tables import TableSpec

_PG_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "text",
    pl.Date: "date",
    pl.Int64: "bigint",
    pl.Int32: "integer",
    pl.Float64: "double precision",
    pl.Boolean: "boolean",
}


def pg_type(dtype: pl.DataType) -> str:
    """The PostgreSQL type a polars column is stored as."""
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    for polars_type, name in _PG_TYPES.items():
        if isinstance(dtype, polars_type):
            return name
    raise TypeError(f"no PostgreSQL type for polars {dtype}")


def spec(
    schema: str,
    name: str,
    columns: dict[str, pl.DataType],
    *,
    key: tuple[str, ...] = (),
    partition_column: str | None = "received_day",
) -> TableSpec:
    return TableSpec(
        schema=schema,
        name=name,
        columns=tuple((column, pg_type(dtype)) for column, dtype in columns.items()),
        primary_key=key,
        partition_column=partition_column,
    )


APP_EVENTS = spec(
    "raw", "app_events", app_events.APP_EVENTS_SCHEMA, key=("message_id", "received_day")
)
APP_EVENTS_QUARANTINE = spec(
    "quarantine", "app_events", app_events.QUARANTINE_SCHEMA, key=("received_day", "line_number")
)
WHATSAPP_MESSAGES = spec(
    "raw", "whatsapp_messages", whatsapp.MESSAGES_SCHEMA, key=("wamid", "received_day")
)
WHATSAPP_STATUSES = spec(
    "raw", "whatsapp_statuses", whatsapp.STATUSES_SCHEMA, key=("wamid", "status", "received_day")
)
WHATSAPP_QUARANTINE = spec("quarantine", "whatsapp", whatsapp.QUARANTINE_SCHEMA)
WHATSAPP_STATES = spec(
    "raw", "whatsapp_message_states", whatsapp.STATES_SCHEMA, key=("wamid",), partition_column=None
)
