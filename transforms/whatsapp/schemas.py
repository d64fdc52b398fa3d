"""The one definition of every WhatsApp raw table's shape, and the helpers that enforce it.

Each `Shape` names a table's columns (polars types), the key a record is deduplicated on within
one input, and which columns are keyed tokens of which clear values: `phones` maps a token
column to the helper column holding the clear number (dropped before the frame leaves the
transform), `ids` maps a token column to the Meta id it is the token of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import polars as pl

UTC_US = pl.Datetime("us", "UTC")
S, INT, B, D = pl.String(), pl.Int64(), pl.Boolean(), pl.Date()

MESSAGES_SCHEMA: dict[str, pl.DataType] = {
    "wamid": S,  # Meta's message id (raw: partitions dropped after retention); `chat.<hash>`
    "wamid_token": S,  # keyed token of `wamid`: wamids encode the sender's phone number
    "received_day": D,  # the partition: the day (IST) the platform received it
    "received_at": UTC_US,  # webhook receipt time; null for chat exports (no receipt clock)
    "sent_at": UTC_US,  # the message's own timestamp
    "source": S,  # 'webhook' | 'echo' (typed in the Business app) | 'history' | 'chat_export'
    "phone_number_id": S,  # the agent's business number id; null for chat exports
    "direction": S,  # 'inbound' (customer to agent) | 'outbound'; null when unknown
    "customer_user_id": S,  # business-scoped user id (BSUID), when Meta gives one
    "customer_phone_token": S,  # HMAC of the customer's E.164 number, when known
    "message_type": S,  # text, image, document, interactive, button, reaction, order, ...
    "text_body": S,  # text, caption, button text or Flow body: raw schema only (retention)
    "media_id": S,
    "mime_type": S,
    "media_filename": S,  # documents: the file's name (may name a person: raw only)
    "voice": B,  # audio: a voice note recorded in the app
    "animated": B,  # sticker
    "interactive_type": S,  # button_reply | list_reply | nfm_reply | call_permission_reply | ...
    "reply_id": S,
    "reply_title": S,
    "flow_name": S,  # nfm_reply (WhatsApp Flows answer)
    "flow_response_json": S,  # the Flow's answers, as Meta sent them (JSON text)
    "permission_response": S,  # call_permission_reply: accept | reject
    "button_payload": S,
    "reaction_emoji": S,  # null with a reaction row: the reaction was removed
    "reaction_to_wamid": S,
    "reaction_to_wamid_token": S,
    "context_wamid": S,  # the agent's message this one answers
    "context_wamid_token": S,
    "forwarded": B,
    "edited": B,  # chat exports: the line carried the phone's "edited" marker (webhooks: edits)
    "order_catalog_id": S,
    "order_product_items_json": S,
    "order_item_count": INT,
    "shared_contact_count": INT,  # contact cards hold third parties' numbers: only the count
    "referral_source_type": S,  # click-to-WhatsApp ad the conversation started from
    "referral_source_id": S,
    "referral_source_url": S,
    "referral_ctwa_clid": S,
    "referral_headline": S,
    "referral_media_type": S,
    "error_code": INT,  # `unsupported` messages and other message-level errors: the first one
    "error_title": S,
    "errors_json": S,  # every error, as sent
    "export_file": S,  # keyed token of the export's file name (it names the customer)
}
STATUSES_SCHEMA: dict[str, pl.DataType] = {
    "wamid": S,
    "wamid_token": S,
    "status": S,  # sent | delivered | read | played | failed | deleted | anything Meta adds
    "status_at": UTC_US,
    "received_day": D,
    "received_at": UTC_US,
    "phone_number_id": S,
    "recipient_user_id": S,
    "recipient_phone_token": S,
    "error_code": INT,  # the first error's code and title; all of them in `errors_json`
    "error_title": S,
    "errors_json": S,
    "conversation_id": S,
    "conversation_origin_type": S,
    "conversation_expires_at": UTC_US,
    "pricing_billable": B,
    "pricing_model": S,
    "pricing_category": S,
    "pricing_type": S,
}
CALLS_SCHEMA: dict[str, pl.DataType] = {
    "call_id": S,  # `wacid.…` (raw: under retention)
    "call_id_token": S,
    "event": S,  # connect | terminate | status (a call's status update)
    "status": S,  # COMPLETED | FAILED | RINGING | ACCEPTED | REJECTED | ...
    "direction": S,  # USER_INITIATED | BUSINESS_INITIATED
    "event_at": UTC_US,
    "started_at": UTC_US,
    "ended_at": UTC_US,
    "duration_s": INT,
    "received_day": D,
    "received_at": UTC_US,
    "phone_number_id": S,
    "customer_user_id": S,
    "customer_phone_token": S,
    "error_code": INT,
    "error_title": S,
    "errors_json": S,
}
EDITS_SCHEMA: dict[str, pl.DataType] = {
    "wamid": S,  # the edit or revoke event's own id
    "wamid_token": S,
    "original_wamid": S,  # the message edited or revoked
    "original_wamid_token": S,
    "action": S,  # edit | revoke
    "new_text": S,  # edits: the message's new text or caption (raw only)
    "new_message_type": S,
    "edited_at": UTC_US,
    "source": S,  # 'webhook' (the customer edited) | 'echo' (the agent did, in the app)
    "received_day": D,
    "received_at": UTC_US,
    "phone_number_id": S,
    "customer_user_id": S,
    "customer_phone_token": S,
}
CONTACT_CHANGES_SCHEMA: dict[str, pl.DataType] = {
    "source": S,  # 'app_state_sync' (the phone's address book) | 'system' (a system message)
    "action": S,  # add | edit | remove | user_changed_number | customer_identity_changed
    "contact_phone_token": S,  # the contact's number (for a number change: the old one)
    "new_phone_token": S,  # user_changed_number: the new number
    "customer_user_id": S,
    "event_wamid_token": S,  # system messages: the event's id, as a token only
    "changed_at": UTC_US,
    "received_day": D,
    "received_at": UTC_US,
    "phone_number_id": S,
}
ACCOUNT_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "field": S,  # the change's field, e.g. account_update, message_template_status_update
    "event": S,  # value.event (or `errors` / `history_errors`), when there is one
    "waba_id": S,  # the entry's id
    "phone_number_id": S,
    "event_at": UTC_US,
    "error_code": INT,  # the first of `value.errors`, for error events
    "value_json": S,  # the change's value as sent (raw: under retention)
    "received_day": D,
    "received_at": UTC_US,
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "received_day": D,
    "line_number": INT,  # 1-based line of the landing file
    "record_index": INT,  # null: the whole line was rejected; else the record's place in it
    "raw": S,  # the line (invalid UTF-8 replaced), or the record's JSON
    "reason": S,
}


@dataclass(frozen=True)
class Shape:
    name: str
    schema: dict[str, pl.DataType]
    key: tuple[str, ...]  # dedupe key, in the names rows carry (`<time>_s`, clear phones)
    phones: dict[str, str] = field(default_factory=dict)  # token column -> clear number helper
    ids: dict[str, str] = field(default_factory=dict)  # token column -> raw id column


MESSAGES = Shape(
    "messages",
    MESSAGES_SCHEMA,
    ("wamid",),
    phones={"customer_phone_token": "customer_phone"},
    ids={
        "wamid_token": "wamid",
        "context_wamid_token": "context_wamid",
        "reaction_to_wamid_token": "reaction_to_wamid",
    },
)
STATUSES = Shape(
    "statuses",
    STATUSES_SCHEMA,
    ("wamid", "status"),
    phones={"recipient_phone_token": "recipient_phone"},
    ids={"wamid_token": "wamid"},
)
CALLS = Shape(
    "calls",
    CALLS_SCHEMA,
    ("call_id", "event", "status"),
    phones={"customer_phone_token": "customer_phone"},
    ids={"call_id_token": "call_id"},
)
EDITS = Shape(
    "edits",
    EDITS_SCHEMA,
    ("wamid",),
    phones={"customer_phone_token": "customer_phone"},
    ids={"wamid_token": "wamid", "original_wamid_token": "original_wamid"},
)
CONTACT_CHANGES = Shape(
    "contact_changes",
    CONTACT_CHANGES_SCHEMA,
    ("source", "action", "contact_phone", "new_phone", "event_wamid", "changed_at_s"),
    phones={"contact_phone_token": "contact_phone", "new_phone_token": "new_phone"},
    ids={"event_wamid_token": "event_wamid"},
)
ACCOUNT_EVENTS = Shape(
    "account_events", ACCOUNT_EVENTS_SCHEMA, ("field", "waba_id", "event_at_s", "value_json")
)
SHAPES = (MESSAGES, STATUSES, CALLS, EDITS, CONTACT_CHANGES, ACCOUNT_EVENTS)


def conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Exactly `schema`'s columns, in its order and types; columns `frame` lacks are null.

    Every producer of a table goes through this, so the schema dicts stay the one definition.
    """
    return frame.select(
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    )


def quarantine_frame(
    rows: list[tuple[int, str, str]] | list[tuple[int, int | None, str, str]], receipt_day: date
) -> pl.DataFrame:
    """QUARANTINE_SCHEMA rows from (line number, raw text, reason) or (line number, record
    index, raw text, reason)."""
    if rows and len(rows[0]) == 3:
        rows = [(line, None, raw, reason) for line, raw, reason in rows]  # type: ignore[misc]
    frame = pl.DataFrame(
        rows,
        schema={"line_number": INT, "record_index": INT, "raw": S, "reason": S},
        orient="row",
    )
    return conform(frame.with_columns(received_day=pl.lit(receipt_day)), QUARANTINE_SCHEMA)
