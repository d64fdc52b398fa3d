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
# Calls, edits and account events have no key Meta guarantees unique (a call's events, an edit
# re-sent with another id): the parser dedupes them, the tables take what it kept.
WHATSAPP_CALLS = spec("raw", "whatsapp_calls", whatsapp.CALLS_SCHEMA)
WHATSAPP_EDITS = spec("raw", "whatsapp_message_edits", whatsapp.EDITS_SCHEMA)
WHATSAPP_CONTACT_CHANGES = spec("raw", "whatsapp_contact_changes", whatsapp.CONTACT_CHANGES_SCHEMA)
WHATSAPP_ACCOUNT_EVENTS = spec("raw", "whatsapp_account_events", whatsapp.ACCOUNT_EVENTS_SCHEMA)
WHATSAPP_QUARANTINE = spec("quarantine", "whatsapp", whatsapp.QUARANTINE_SCHEMA)
WHATSAPP_STATES = spec(
    "raw",
    "whatsapp_message_states",
    whatsapp.STATES_SCHEMA,
    key=("wamid_token",),
    partition_column=None,
)
# The table of each of the parser's frames (`Shape.name`).
WHATSAPP_TABLES = {
    whatsapp.MESSAGES.name: WHATSAPP_MESSAGES,
    whatsapp.STATUSES.name: WHATSAPP_STATUSES,
    whatsapp.CALLS.name: WHATSAPP_CALLS,
    whatsapp.EDITS.name: WHATSAPP_EDITS,
    whatsapp.CONTACT_CHANGES.name: WHATSAPP_CONTACT_CHANGES,
    whatsapp.ACCOUNT_EVENTS.name: WHATSAPP_ACCOUNT_EVENTS,
}
# Tables holding raw Meta ids, bodies or payloads: their partitions past the retention window
# are dropped. Contact changes hold tokens only and are kept.
WHATSAPP_RETAINED = (
    WHATSAPP_MESSAGES,
    WHATSAPP_STATUSES,
    WHATSAPP_CALLS,
    WHATSAPP_EDITS,
    WHATSAPP_ACCOUNT_EVENTS,
    WHATSAPP_QUARANTINE,
)
