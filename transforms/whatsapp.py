"""WhatsApp Cloud API webhook deliveries into flat message and status frames (DESIGN §5).

Input: one landing file of a receipt day, one JSON line per delivery,
`{"received_at": ISO-8601 with offset, "signature": "sha256=<hex>", "body": "<raw body>"}`.

Why it works the way it does:

- **Signature first.** `X-Hub-Signature-256` is an HMAC-SHA256 of the *raw body bytes*
  (`body.encode("utf-8")`, exactly what Meta posted), compared with `hmac.compare_digest` so the
  comparison time leaks nothing. Re-serialised JSON would not verify (key order, escapes), so the
  body is never re-encoded before the check. A line that fails is rejected whole: nothing of it
  reaches the clean frames, whatever else is wrong with it.
- **A line is all or nothing.** A delivery whose envelope is not WhatsApp's, or which holds a record
  without the fields every record needs (id, timestamp, type / status), is rejected whole, so the
  line-level accounting stays exact and a half-understood body never half-loads.
- **Duplicates are normal** (Meta delivers at least once, retrying for days): a message `wamid`
  already seen, or a `(wamid, status)` already seen, earlier in the same input is dropped and
  counted. Repeats across days are the next layer's job (staging dedupes on the same keys).
- **No phone numbers or names leave this module in clear.** `from`, `recipient_id` and `wa_id`
  become `transforms.pii` tokens; profile names, the agent's `display_phone_number` and the
  `context.from` number are dropped. Message bodies stay (raw only, under retention).
- **State is folded, not replaced.** `message_states` keeps the furthest status on the one-way
  rank sent < delivered < read whatever the arrival order, with `failed` apart, and is written as
  a monoid fold so a running state table can absorb one day at a time (`merge_states`).

Counting rules (`WhatsAppResult`):

- `read` = non-blank lines of the input; every one is either *accepted* (signature, JSON and
  envelope all good) or *rejected* (one row in `rejected`, the first reason that applied):
  `read == accepted + rejected.height`.
- Accepted lines hold `records` messages and statuses (one per body from the simulator, possibly
  several from Meta): `records == messages.height + statuses.height + duplicates`.
- An accepted line is a *duplicate line* when every record in it was dropped as a duplicate, else
  a *loaded line*: `read == loaded_lines + duplicate_lines + rejected.height`, the line-level
  reconciliation the ingestion asset reports. When a body holds several records, a re-delivery
  of it adds that many to `duplicates` but one to `duplicate_lines`.
"""

from __future__ import annotations

import gzip
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from transforms.pii import phone_token_expr

UTC_US = pl.Datetime("us", "UTC")

MESSAGES_SCHEMA: dict[str, pl.DataType] = {
    "wamid": pl.String(),  # Meta's message id, the key; `chat.<hash>` for chat exports
    "received_day": pl.Date(),  # the partition: the day (IST) the platform received it
    "received_at": UTC_US,  # webhook receipt time; null for chat exports (no receipt clock)
    "sent_at": UTC_US,  # the message's own timestamp
    "source": pl.String(),  # 'webhook' | 'chat_export'
    "phone_number_id": pl.String(),  # the agent's business number id; null for chat exports
    "direction": pl.String(),  # 'inbound' (customer to agent) | 'outbound'; null when unknown
    "customer_user_id": pl.String(),  # business-scoped user id (BSUID), when Meta gives one
    "customer_phone_token": pl.String(),  # HMAC of the E.164 number, when the number is known
    "message_type": pl.String(),  # text, image, document, interactive, button, reaction, ...
    "text_body": pl.String(),  # text, caption or button text: raw schema only (retention)
    "media_id": pl.String(),
    "mime_type": pl.String(),
    "interactive_type": pl.String(),  # button_reply | list_reply
    "reply_id": pl.String(),
    "reply_title": pl.String(),
    "button_payload": pl.String(),
    "reaction_emoji": pl.String(),
    "reaction_to_wamid": pl.String(),
    "context_wamid": pl.String(),  # the agent's message this one answers
    "export_file": pl.String(),  # keyed token of the export's file name (it names the customer)
}
STATUSES_SCHEMA: dict[str, pl.DataType] = {
    "wamid": pl.String(),
    "status": pl.String(),  # sent | delivered | read | failed (others kept as sent by Meta)
    "status_at": UTC_US,
    "received_day": pl.Date(),
    "received_at": UTC_US,
    "phone_number_id": pl.String(),
    "recipient_user_id": pl.String(),
    "recipient_phone_token": pl.String(),
    "error_code": pl.Int64(),
    "error_title": pl.String(),
    "pricing_category": pl.String(),
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "received_day": pl.Date(),
    "line_number": pl.Int64(),  # 1-based line of the landing file
    "raw": pl.String(),  # the line as received (invalid UTF-8 replaced)
    "reason": pl.String(),
}
STATES_SCHEMA: dict[str, pl.DataType] = {
    "wamid": pl.String(),
    "state": pl.String(),  # the furthest of sent/delivered/read; null if only `failed` was seen
    "state_at": UTC_US,  # when that state was first reported
    "failed": pl.Boolean(),
    "failed_at": UTC_US,  # the first failure, which also picks `error_code`
    "error_code": pl.Int64(),
    "last_status_at": UTC_US,  # the latest status of any kind
}
STATE_RANK = {"sent": 1, "delivered": 2, "read": 3}
_STATE_OF_RANK = {rank: state for state, rank in STATE_RANK.items()}

BAD_SIGNATURE = "bad_signature"
INVALID_JSON = "invalid_json"
UNEXPECTED_SHAPE = "unexpected_shape"
NO_RECORDS = "no_records"  # a verified WhatsApp envelope without messages or statuses
BUSINESS_ACCOUNT = "whatsapp_business_account"
SIGNATURE_PREFIX = b"sha256="
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_DIGITS = 12  # unix seconds until year 33658: anything longer is garbage

# Intermediate columns, as `_flatten` yields them: numbers not yet typed, phones not yet tokens.
_DERIVED = ("received_day", "received_at", "sent_at", "source", "direction")
_MESSAGE_INPUT: dict[str, pl.DataType] = {
    "line_number": pl.Int64(),
    "received_at_us": pl.Int64(),
    "timestamp_s": pl.Int64(),
    "customer_phone": pl.String(),
    **{
        name: dtype
        for name, dtype in MESSAGES_SCHEMA.items()
        if name not in (*_DERIVED, "customer_phone_token", "export_file")
    },
}
_STATUS_INPUT: dict[str, pl.DataType] = {
    "line_number": pl.Int64(),
    "received_at_us": pl.Int64(),
    "timestamp_s": pl.Int64(),
    "recipient_phone": pl.String(),
    "wamid": pl.String(),
    "status": pl.String(),
    "phone_number_id": pl.String(),
    "recipient_user_id": pl.String(),
    "error_code": pl.Int64(),
    "error_title": pl.String(),
    "pricing_category": pl.String(),
}


@dataclass(frozen=True)
class WhatsAppResult:
    """The clean frames of one input, what was rejected and the counts that reconcile them (see
    the module docstring for the exact rules)."""

    messages: pl.DataFrame  # MESSAGES_SCHEMA
    statuses: pl.DataFrame  # STATUSES_SCHEMA
    rejected: pl.DataFrame  # QUARANTINE_SCHEMA
    read: int  # non-blank lines
    accepted: int  # lines whose records were loaded or deduplicated
    duplicates: int  # records dropped as re-deliveries within the input
    duplicate_lines: int  # accepted lines all of whose records were duplicates

    @property
    def loaded(self) -> int:
        return self.messages.height + self.statuses.height

    @property
    def loaded_lines(self) -> int:
        return self.accepted - self.duplicate_lines

    def counts(self) -> dict[str, int]:
        """The reconciliation as plain numbers (asset metadata):
        `read == loaded_lines + duplicate_lines + rejected` and
        `records == loaded + duplicates`."""
        return {
            "read": self.read,
            "loaded_lines": self.loaded_lines,
            "duplicate_lines": self.duplicate_lines,
            "rejected": self.rejected.height,
            "records": self.loaded + self.duplicates,
            "loaded": self.loaded,
            "duplicates": self.duplicates,
        }


class _Rejected(Exception):
    """A line that cannot be loaded, with the quarantine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- shared helpers


def conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Exactly `schema`'s columns, in its order and types; columns `frame` lacks are null.

    Every producer of a table goes through this, so the schema dicts stay the one definition.
    """
    return frame.select(
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    )


def quarantine_frame(rows: list[tuple[int, str, str]], receipt_day: date) -> pl.DataFrame:
    """QUARANTINE_SCHEMA rows from (line number, raw text, reason)."""
    frame = pl.DataFrame(
        rows, schema={"line_number": pl.Int64, "raw": pl.String, "reason": pl.String}, orient="row"
    )
    return conform(frame.with_columns(received_day=pl.lit(receipt_day)), QUARANTINE_SCHEMA)


def _utc(column: str, unit: str) -> pl.Expr:
    return pl.from_epoch(column, time_unit=unit).dt.cast_time_unit("us").dt.replace_time_zone("UTC")


# --------------------------------------------------------------------------- one line


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) of every non-blank line; gzip input is decompressed, since the
    landing files are `.ndjson.gz` and callers should not need to know."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield number, line.rstrip(b"\r")


def signature_ok(raw: bytes, header: object, app_secret: bytes) -> bool:
    """Constant-time check of `sha256=<hex>` against HMAC-SHA256(app_secret, raw)."""
    if not isinstance(header, str):
        return False
    given = header.encode("utf-8", "replace")
    expected = SIGNATURE_PREFIX + hmac.digest(app_secret, raw, "sha256").hex().encode()
    return hmac.compare_digest(given.lower(), expected)


def _received_at_us(value: object) -> int:
    """Microseconds since the epoch of an ISO-8601 time with an offset (naive times are refused:
    guessing their zone would shift a day's boundary)."""
    if not isinstance(value, str):
        raise _Rejected(UNEXPECTED_SHAPE)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Rejected(UNEXPECTED_SHAPE) from None
    if moment.tzinfo is None:
        raise _Rejected(UNEXPECTED_SHAPE)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _parse_line(
    line: bytes, app_secret: bytes
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """(receipt time in µs, message rows, status rows) of one delivery line, or `_Rejected`."""
    try:
        delivery = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise _Rejected(INVALID_JSON) from None
    if not isinstance(delivery, dict) or not isinstance(delivery.get("body"), str):
        raise _Rejected(UNEXPECTED_SHAPE)
    try:
        raw = delivery["body"].encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not bytes Meta could have signed
        raise _Rejected(BAD_SIGNATURE) from None
    if not signature_ok(raw, delivery.get("signature"), app_secret):
        raise _Rejected(BAD_SIGNATURE)
    received_at = _received_at_us(delivery.get("received_at"))
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Rejected(INVALID_JSON) from None
    messages, statuses = _flatten(envelope)
    if not messages and not statuses:
        raise _Rejected(NO_RECORDS)
    return received_at, messages, statuses


# --------------------------------------------------------------------------- the envelope


def _dicts(value: object) -> list[dict[str, Any]]:
    """A list of objects, as the envelope's arrays must be; absent means empty."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Rejected(UNEXPECTED_SHAPE)
    return value


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _required(record: dict[str, Any], key: str) -> str:
    value = _text(record.get(key))
    if value is None:
        raise _Rejected(UNEXPECTED_SHAPE)
    return value


def _unix_seconds(value: object) -> int:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise _Rejected(UNEXPECTED_SHAPE)
    return int(text)


def _flatten(envelope: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Message and status rows of `entry[].changes[].value`, each with its value's
    `metadata.phone_number_id` (the receiving agent)."""
    if not isinstance(envelope, dict) or envelope.get("object") != BUSINESS_ACCOUNT:
        raise _Rejected(UNEXPECTED_SHAPE)
    messages: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    entries = _dicts(envelope.get("entry"))
    if not entries:
        raise _Rejected(UNEXPECTED_SHAPE)
    for entry in entries:
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                raise _Rejected(UNEXPECTED_SHAPE)
            number_id = _required(_obj(value.get("metadata")), "phone_number_id")
            contacts = _dicts(value.get("contacts"))
            for message in _dicts(value.get("messages")):
                messages.append(_message_row(message, number_id, contacts))
            for status in _dicts(value.get("statuses")):
                statuses.append(_status_row(status, number_id, contacts))
    return messages, statuses


def _contact_for(
    contacts: list[dict[str, Any]], phone: str | None, user_id: str | None
) -> dict[str, Any]:
    """The contact a record refers to: matched on wa_id or user_id, or the only one there is."""
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (
            user_id and contact.get("user_id") == user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _payload(message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The type-specific columns of a message. Unknown types with a media object (audio, video,
    sticker, ...) keep their media id; others (location, contacts) keep only their type, as
    shared contact cards hold other people's numbers."""
    if message_type == "text":
        return {"text_body": _text(payload.get("body"))}
    if message_type == "reaction":
        return {
            "reaction_emoji": _text(payload.get("emoji")),
            "reaction_to_wamid": _text(payload.get("message_id")),
        }
    if message_type == "interactive":
        kind = _text(payload.get("type"))
        reply = _obj(payload.get(kind)) if kind else {}
        return {
            "interactive_type": kind,
            "reply_id": _text(reply.get("id")),
            "reply_title": _text(reply.get("title")),
        }
    if message_type == "button":
        return {
            "button_payload": _text(payload.get("payload")),
            "text_body": _text(payload.get("text")),
        }
    if "id" in payload:
        return {
            "media_id": _text(payload.get("id")),
            "mime_type": _text(payload.get("mime_type")),
            "text_body": _text(payload.get("caption")),
        }
    return {}


def _message_row(
    message: dict[str, Any], phone_number_id: str, contacts: list[dict[str, Any]]
) -> dict[str, Any]:
    message_type = _required(message, "type")
    phone, user_id = _text(message.get("from")), _text(message.get("from_user_id"))
    contact = _contact_for(contacts, phone, user_id)
    return {
        "wamid": _required(message, "id"),
        "timestamp_s": _unix_seconds(message.get("timestamp")),
        "phone_number_id": phone_number_id,
        "customer_phone": phone or _text(contact.get("wa_id")),
        "customer_user_id": user_id or _text(contact.get("user_id")),
        "message_type": message_type,
        "context_wamid": _text(_obj(message.get("context")).get("id")),
        **_payload(message_type, _obj(message.get(message_type))),
    }


def _status_row(
    status: dict[str, Any], phone_number_id: str, contacts: list[dict[str, Any]]
) -> dict[str, Any]:
    phone, user_id = _text(status.get("recipient_id")), _text(status.get("recipient_user_id"))
    contact = _contact_for(contacts, phone, user_id)
    errors = status.get("errors")
    error = _obj(errors[0]) if isinstance(errors, list) and errors else {}
    code = error.get("code")
    return {
        "wamid": _required(status, "id"),
        "status": _required(status, "status"),
        "timestamp_s": _unix_seconds(status.get("timestamp")),
        "phone_number_id": phone_number_id,
        "recipient_phone": phone or _text(contact.get("wa_id")),
        "recipient_user_id": user_id or _text(contact.get("user_id")),
        "error_code": code if isinstance(code, int) and not isinstance(code, bool) else None,
        "error_title": _text(error.get("title")),
        "pricing_category": _text(_obj(status.get("pricing")).get("category")),
    }


# --------------------------------------------------------------------------- the frames


@dataclass
class _Collected:
    messages: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    rejected: list[tuple[int, str, str]]
    read: int = 0


def _collect(data: bytes, app_secret: bytes) -> _Collected:
    out = _Collected([], [], [])
    for number, line in _lines(data):
        out.read += 1
        try:
            received_at, messages, statuses = _parse_line(line, app_secret)
        except _Rejected as rejected:
            out.rejected.append((number, line.decode("utf-8", "replace"), rejected.reason))
            continue
        stamp = {"line_number": number, "received_at_us": received_at}
        out.messages += [{**row, **stamp} for row in messages]
        out.statuses += [{**row, **stamp} for row in statuses]
    return out


def _first_seen(
    rows: list[dict[str, Any]], schema: dict[str, pl.DataType], key: list[str]
) -> tuple[pl.DataFrame, int]:
    """(rows as a frame with only each key's first occurrence, rows dropped)."""
    frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    kept = frame.filter(pl.struct(key).is_first_distinct())
    return kept, frame.height - kept.height


def _message_frame(raw: pl.DataFrame, receipt_day: date, pii_key: bytes) -> pl.DataFrame:
    return conform(
        raw.with_columns(
            received_day=pl.lit(receipt_day),
            received_at=_utc("received_at_us", "us"),
            sent_at=_utc("timestamp_s", "s"),
            source=pl.lit("webhook"),
            direction=pl.lit("inbound"),
            customer_phone_token=phone_token_expr("customer_phone", pii_key),
        ),
        MESSAGES_SCHEMA,
    )


def _status_frame(raw: pl.DataFrame, receipt_day: date, pii_key: bytes) -> pl.DataFrame:
    return conform(
        raw.with_columns(
            received_day=pl.lit(receipt_day),
            received_at=_utc("received_at_us", "us"),
            status_at=_utc("timestamp_s", "s"),
            recipient_phone_token=phone_token_expr("recipient_phone", pii_key),
        ),
        STATUSES_SCHEMA,
    )


def parse_webhook_deliveries(
    data: bytes, receipt_day: date, app_secret: bytes, pii_key: bytes
) -> WhatsAppResult:
    """Verify, flatten, deduplicate and pseudonymise one receipt day's webhook deliveries.

    `data` is the landing file's content (NDJSON, gzip-compressed or not); `receipt_day` is the
    partition (stored as `received_day` on every row). Never raises on bad lines: each goes to
    `rejected` with `bad_signature`, `invalid_json`, `unexpected_shape` or `no_records`.
    """
    collected = _collect(data, app_secret)
    messages, dup_messages = _first_seen(collected.messages, _MESSAGE_INPUT, ["wamid"])
    statuses, dup_statuses = _first_seen(collected.statuses, _STATUS_INPUT, ["wamid", "status"])
    accepted = collected.read - len(collected.rejected)
    loaded_lines = pl.concat([messages["line_number"], statuses["line_number"]]).n_unique()
    return WhatsAppResult(
        messages=_message_frame(messages, receipt_day, pii_key),
        statuses=_status_frame(statuses, receipt_day, pii_key),
        rejected=quarantine_frame(collected.rejected, receipt_day),
        read=collected.read,
        accepted=accepted,
        duplicates=dup_messages + dup_statuses,
        duplicate_lines=accepted - loaded_lines,
    )


# --------------------------------------------------------------------------- message states


def _partial_from_statuses(statuses: pl.DataFrame) -> pl.DataFrame:
    """Status rows in the fold's partial form: one row per status, contributing its rank (if
    ranked), its failure (if failed) and its time."""
    rank = pl.col("status").replace_strict(STATE_RANK, default=None, return_dtype=pl.Int64)
    failed = pl.col("status") == "failed"
    return statuses.select(
        "wamid",
        rank=rank,
        state_at=pl.when(rank.is_not_null()).then(pl.col("status_at")),
        failed=failed,
        failed_at=pl.when(failed).then(pl.col("status_at")),
        error_code=pl.when(failed).then(pl.col("error_code")),
        last_status_at=pl.col("status_at"),
    )


def _partial_from_states(states: pl.DataFrame) -> pl.DataFrame:
    """A states table in the fold's partial form: already one row per message."""
    rank = pl.col("state").replace_strict(STATE_RANK, default=None, return_dtype=pl.Int64)
    rest = ("state_at", "failed", "failed_at", "error_code", "last_status_at")
    return states.select(pl.col("wamid"), rank.alias("rank"), pl.col(*rest))


def _fold(partial: pl.DataFrame) -> pl.DataFrame:
    """One row per wamid. Each column is a commutative, associative choice (max rank and the
    earliest time at it; any failure and the earliest one with the smallest code; the latest
    time), so folding partial results gives the same answer as folding all statuses at once."""
    top = pl.col("rank") == pl.col("rank").max()
    first_failure = pl.col("failed_at") == pl.col("failed_at").min()
    states = partial.group_by("wamid").agg(
        rank=pl.col("rank").max(),
        state_at=pl.col("state_at").filter(top).min(),
        failed=pl.col("failed").any(),
        failed_at=pl.col("failed_at").min(),
        error_code=pl.col("error_code").filter(first_failure).min(),
        last_status_at=pl.col("last_status_at").max(),
    )
    state = pl.col("rank").replace_strict(_STATE_OF_RANK, default=None, return_dtype=pl.String)
    return conform(states.with_columns(state=state), STATES_SCHEMA).sort("wamid")


def message_states(statuses: pl.DataFrame) -> pl.DataFrame:
    """The state of each message (STATES_SCHEMA) from its status rows (STATUSES_SCHEMA or at least
    `wamid`, `status`, `status_at`, `error_code`), whatever their order and duplicates.

    `state` is the furthest of sent < delivered < read ever reported: a late `delivered` after a
    `read` never moves it back, and a skipped `delivered` needs nothing. `failed` is kept apart
    (DESIGN §5): a failure does not erase a state already reached, and a state does not hide a
    failure. Unknown statuses only move `last_status_at`.
    """
    return _fold(_partial_from_statuses(statuses))


def merge_states(old_states: pl.DataFrame | None, new_statuses: pl.DataFrame) -> pl.DataFrame:
    """Fold a day's statuses into a running states table: equal to `message_states` of all the
    statuses ever seen, without keeping them (`merge_states(message_states(a), b) ==
    message_states(concat(a, b))`)."""
    if old_states is None:
        return message_states(new_statuses)
    return _fold(
        pl.concat([_partial_from_states(old_states), _partial_from_statuses(new_statuses)])
    )
