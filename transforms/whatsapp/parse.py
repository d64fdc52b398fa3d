"""WhatsApp Cloud API webhook deliveries into one frame per raw table.

Input: one landing file of a receipt day, one JSON line per delivery,
`{"received_at": ISO-8601 with offset, "signature": "sha256=<hex>", "body": "<raw body>"}`.

Why it works the way it does:

- **Signature first.** `X-Hub-Signature-256` is an HMAC-SHA256 of the *raw body bytes*, compared
  in constant time; re-serialised JSON would not verify, so the body is never re-encoded first.
- **Two levels of rejection.** A line is rejected whole (a `quarantine` row with a null
  `record_index`) only when nothing in it can be trusted or read as WhatsApp's: `bad_signature`,
  `invalid_json`, `unexpected_shape` (not a `whatsapp_business_account` envelope with entries, or
  no receipt time), `no_records` (an envelope with no change at all). Inside a good line each
  *record* stands alone: one that cannot be loaded becomes a quarantine row of its own (its JSON,
  the reason and its `record_index`), and the records beside it still load.
- **Every field has a home.** `messages` (messages, statuses, `value.errors`), `calls` (never in
  the statuses), `smb_message_echoes`/`message_echoes` (outbound messages the agent typed in the
  Business app, `source = 'echo'`), `history` (`source = 'history'`), `smb_app_state_sync` and
  `system` messages (contact changes), `edit`/`revoke` messages (edits, not new messages),
  account-level fields (kept as JSON). Anything else is quarantined as
  `unhandled_field:<field>` or `unhandled_type:<type>`, loadable once the code knows it.
- **Open vocabularies are data.** An unknown status or interactive subtype loads as it came.
- **Duplicates are normal** (Meta delivers at least once): a record whose table key was already
  seen earlier in the same input is dropped and counted.
- **Nothing derived from a phone number leaves in clear**: numbers become `transforms.pii`
  tokens, and every Meta id (`wamid`, `wacid`, which encode the counterpart's number) gets a keyed
  token column beside it (`<column>_token`). Raw ids stay only in tables under retention.

Counting rules (`WhatsAppResult.counts()`):

- Lines: `read == loaded_lines + duplicate_lines + rejected` (rejected: whole lines). A line is
  a *duplicate line* when every record in it was a duplicate, else a *loaded line*.
- Records (of accepted lines): `records == loaded + duplicates + quarantined` (quarantined: record
  rows), where `loaded` is the rows of every table together. A change with no record
  (`no_records:<field>`), a change not understood as a whole (`unhandled_field:<field>`, a
  conversation change without `metadata.phone_number_id`) and an account-level change each
  count as one record, so nothing a good line holds is ever uncounted. Quarantined records are
  not deduplicated: a line holding one is never a duplicate line.
"""

from __future__ import annotations

import gzip
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from transforms.pii import keyed_token, phone_token_expr
from transforms.whatsapp import records as rec
from transforms.whatsapp.schemas import (
    MESSAGES,
    SHAPES,
    UTC_US,
    Shape,
    conform,
    quarantine_frame,
)

BAD_SIGNATURE = "bad_signature"
INVALID_JSON = "invalid_json"
UNEXPECTED_SHAPE = "unexpected_shape"
NO_RECORDS = "no_records"
BUSINESS_ACCOUNT = "whatsapp_business_account"
SIGNATURE_PREFIX = b"sha256="
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MESSAGE_FIELDS = frozenset({"messages"})
ECHO_FIELDS = frozenset({"smb_message_echoes", "message_echoes"})
# Fields of the business account (not of a conversation): kept whole in one generic table.
ACCOUNT_FIELDS = frozenset(
    {
        "account_alerts",
        "account_review_update",
        "account_settings_update",
        "account_update",
        "automatic_events",
        "business_capability_update",
        "business_status_update",
        "flows",
        "message_template_components_update",
        "message_template_quality_update",
        "message_template_status_update",
        "partner_solutions",
        "payment_configuration_update",
        "phone_number_name_update",
        "phone_number_quality_update",
        "security",
        "template_category_update",
        "template_correct_category_detection",
        "user_preferences",
    }
)
HANDLED_FIELDS = (
    MESSAGE_FIELDS
    | ECHO_FIELDS
    | ACCOUNT_FIELDS
    | {
        "calls",
        "history",
        "smb_app_state_sync",
    }
)


class _Rejected(Exception):
    """A whole line that cannot be loaded, with the quarantine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# An outcome of one record: (table name, row) or (None, (reason, the record's JSON)).
Outcome = tuple[str | None, Any]


@dataclass(frozen=True)
class WhatsAppResult:
    """The frames of one input, one per table, and the counts that reconcile them (see the module
    docstring for the rules)."""

    frames: dict[str, pl.DataFrame]  # by Shape.name: messages, statuses, calls, edits, ...
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA: rejected lines and quarantined records
    read: int  # non-blank lines
    accepted: int  # lines not rejected whole
    duplicates: int  # records dropped as re-deliveries within the input
    duplicate_lines: int  # accepted lines all of whose records were duplicates

    @property
    def messages(self) -> pl.DataFrame:
        return self.frames["messages"]

    @property
    def statuses(self) -> pl.DataFrame:
        return self.frames["statuses"]

    @property
    def rejected(self) -> pl.DataFrame:
        """Lines rejected whole."""
        return self.quarantine.filter(pl.col("record_index").is_null())

    @property
    def quarantined(self) -> pl.DataFrame:
        """Records quarantined from accepted lines."""
        return self.quarantine.filter(pl.col("record_index").is_not_null())

    @property
    def loaded(self) -> int:
        return sum(frame.height for frame in self.frames.values())

    @property
    def loaded_lines(self) -> int:
        return self.accepted - self.duplicate_lines

    def counts(self) -> dict[str, int]:
        """The reconciliation as plain numbers (asset metadata)."""
        quarantined = self.quarantined.height
        return {
            "read": self.read,
            "loaded_lines": self.loaded_lines,
            "duplicate_lines": self.duplicate_lines,
            "rejected": self.rejected.height,
            "records": self.loaded + self.duplicates + quarantined,
            "loaded": self.loaded,
            "duplicates": self.duplicates,
            "quarantined_records": quarantined,
            **{f"rows_{name}": frame.height for name, frame in self.frames.items()},
        }


# --------------------------------------------------------------------------- tokens


def id_token_expr(col: str, key: bytes) -> pl.Expr:
    """Keyed tokens of the Meta ids of `col` (the same key as the phone tokens), one HMAC per
    distinct id; nulls stay null."""

    def tokens(ids: pl.Series) -> pl.Series:
        distinct = ids.drop_nulls().unique()
        mapped = pl.Series([keyed_token(v, key) for v in distinct.to_list()], dtype=pl.String)
        return ids.replace_strict(distinct, mapped, default=None, return_dtype=pl.String)

    return pl.col(col).map_batches(lambda s: tokens(s.cast(pl.String)), return_dtype=pl.String)


def with_id_tokens(frame: pl.DataFrame, key: bytes, shape: Shape = MESSAGES) -> pl.DataFrame:
    """Fill the token of every Meta id column still without one (e.g. chat-export rows, whose
    parser does not know the tokens), keeping tokens already there."""
    return frame.with_columns(
        pl.coalesce(pl.col(token), id_token_expr(raw, key)).alias(token)
        for token, raw in shape.ids.items()
        if raw in frame.columns
    )


# --------------------------------------------------------------------------- one line


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) of every non-blank line; gzip input is decompressed."""
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


def _envelope(line: bytes, app_secret: bytes) -> tuple[int, list[dict[str, Any]]]:
    """(receipt time in µs, the envelope's entries) of one delivery line, or `_Rejected`."""
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
    if not isinstance(envelope, dict) or envelope.get("object") != BUSINESS_ACCOUNT:
        raise _Rejected(UNEXPECTED_SHAPE)
    entries = envelope.get("entry")
    if not isinstance(entries, list) or not entries:
        raise _Rejected(UNEXPECTED_SHAPE)
    return received_at, entries


# --------------------------------------------------------------------------- records


def _attempt(build: Callable[[], tuple[str, dict[str, Any]]], raw: object) -> Outcome:
    try:
        return build()
    except rec.Quarantine as problem:
        return None, (problem.reason, raw)


def _items(value: dict[str, Any], key: str) -> Iterator[tuple[dict[str, Any] | None, object]]:
    """(record or None when it is not an object, the raw element) of `value[key]`; a value that
    is not a list is one malformed element."""
    items = value.get(key)
    if items is None:
        return
    for item in items if isinstance(items, list) else [items]:
        yield (item if isinstance(item, dict) else None), item


def _bad(raw: object, what: str) -> Outcome:
    return None, (f"{UNEXPECTED_SHAPE}:{what}", raw)


def _message(
    message: dict[str, Any],
    change: rec.Change,
    *,
    source: str,
    direction: str,
    phone: str | None,
    user_id: str | None,
) -> Outcome:
    """A message-shaped record to its table: edits and revokes, system events, or messages."""

    def build() -> tuple[str, dict[str, Any]]:
        kind = message.get("type")
        if kind in rec.EDIT_TYPES:
            return "edits", rec.edit_row(
                message, change, source=source, customer_phone=phone, customer_user_id=user_id
            )
        if kind == "system":
            return "contact_changes", rec.system_row(message, change)
        return "messages", rec.message_row(
            message,
            change,
            source=source,
            direction=direction,
            customer_phone=phone,
            customer_user_id=user_id,
        )

    return _attempt(build, message)


def _errors(field_name: str, value: dict[str, Any], change: rec.Change, event: str) -> Outcome:
    """Errors at the top of a value (e.g. 131000 with no message): data, as an account event."""
    only = {"errors": value.get("errors")}
    row = lambda: rec.account_row(field_name, only, change, None, event)  # noqa: E731
    return _attempt(lambda: ("account_events", row()), only)


def _conversation_records(
    field_name: str, value: dict[str, Any], change: rec.Change
) -> Iterator[Outcome]:
    echo = field_name in ECHO_FIELDS
    for message, raw in _items(value, "message_echoes" if echo else "messages"):
        if message is None:
            yield _bad(raw, "message")
        elif echo:
            yield _message(message, change, source="echo", direction="outbound",
                           phone=rec.text(message.get("to")),
                           user_id=rec.text(message.get("to_user_id")))  # fmt: skip
        else:
            yield _message(message, change, source="webhook", direction="inbound",
                           phone=rec.text(message.get("from")),
                           user_id=rec.text(message.get("from_user_id")))  # fmt: skip
    for status, raw in _items(value, "statuses"):
        if status is None:
            yield _bad(raw, "status")
        elif rec.is_call_status(status):
            yield _attempt(
                lambda s=status: ("calls", rec.call_row(s, change, event="status")), status
            )
        else:
            yield _attempt(lambda s=status: ("statuses", rec.status_row(s, change)), status)
    if value.get("errors") is not None:
        yield _errors(field_name, value, change, "errors")


def _call_records(value: dict[str, Any], change: rec.Change) -> Iterator[Outcome]:
    for call, raw in _items(value, "calls"):
        yield (
            _bad(raw, "call")
            if call is None
            else _attempt(lambda c=call: ("calls", rec.call_row(c, change)), call)
        )
    for status, raw in _items(value, "statuses"):
        yield (
            _bad(raw, "status")
            if status is None
            else _attempt(
                lambda s=status: ("calls", rec.call_row(s, change, event="status")), status
            )
        )
    if value.get("errors") is not None:
        yield _errors("calls", value, change, "errors")


def _history_records(value: dict[str, Any], change: rec.Change) -> Iterator[Outcome]:
    """Past chats synced when the agent's number joined: their messages, as `history`; a chunk
    with errors (e.g. the agent declined to share) is kept as an account event."""
    for chunk, raw in _items(value, "history"):
        if chunk is None:
            yield _bad(raw, "history")
            continue
        if chunk.get("errors") is not None:
            yield _errors("history", chunk, change, "history_errors")
        for thread, raw_thread in _items(chunk, "threads"):
            if thread is None:
                yield _bad(raw_thread, "thread")
                continue
            customer = rec.text(thread.get("id"))
            for message, raw_message in _items(thread, "messages"):
                if message is None:
                    yield _bad(raw_message, "message")
                    continue
                sender = rec.text(message.get("from"))
                outbound = sender is None or sender == change.display_number or sender != customer
                yield _message(message, change, source="history",
                               direction="outbound" if outbound else "inbound",
                               phone=customer, user_id=None)  # fmt: skip


def _state_sync_records(value: dict[str, Any], change: rec.Change) -> Iterator[Outcome]:
    for item, raw in _items(value, "state_sync"):
        yield (
            _bad(raw, "state_sync")
            if item is None
            else _attempt(lambda i=item: ("contact_changes", rec.state_sync_row(i, change)), item)
        )


def _change_records(entry: dict[str, Any], change: object, received_s: int) -> list[Outcome]:
    """Every record of one change; never raises."""
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        return [_bad(change, "change")]
    field_name = change.get("field") if isinstance(change.get("field"), str) else "?"
    value: dict[str, Any] = change["value"]
    metadata = rec.obj(value.get("metadata"))
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)] if isinstance(
        value.get("contacts"), list) else []  # fmt: skip
    context = rec.Change(
        field=field_name,
        received_s=received_s,
        waba_id=rec.text(entry.get("id")),
        phone_number_id=rec.text(metadata.get("phone_number_id")),
        display_number=rec.text(metadata.get("display_phone_number")),
        contacts=contacts,
    )
    if field_name not in HANDLED_FIELDS:
        return [(None, (f"unhandled_field:{field_name}", change))]
    if field_name in ACCOUNT_FIELDS:
        return [_attempt(lambda: ("account_events", rec.account_row(
            field_name, value, context, entry.get("time"))), change)]  # fmt: skip
    if context.phone_number_id is None:
        return [(None, ("missing_field:metadata.phone_number_id", change))]
    if field_name == "calls":
        outcomes = list(_call_records(value, context))
    elif field_name == "history":
        outcomes = list(_history_records(value, context))
    elif field_name == "smb_app_state_sync":
        outcomes = list(_state_sync_records(value, context))
    else:
        outcomes = list(_conversation_records(field_name, value, context))
    return outcomes or [(None, (f"{NO_RECORDS}:{field_name}", change))]


def _line_records(entries: list[object], received_s: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for entry in entries:
        if not isinstance(entry, dict):
            outcomes.append(_bad(entry, "entry"))
            continue
        changes = entry.get("changes")
        for change in changes if isinstance(changes, list) else [changes]:
            outcomes += _change_records(entry, change, received_s)
    return outcomes


# --------------------------------------------------------------------------- the frames


@dataclass
class _Collected:
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {shape.name: [] for shape in SHAPES}
    )
    quarantine: list[tuple[int, int | None, str, str]] = field(default_factory=list)
    read: int = 0


def _collect(data: bytes, app_secret: bytes) -> _Collected:
    out = _Collected()
    for number, line in _lines(data):
        out.read += 1
        try:
            received_us, entries = _envelope(line, app_secret)
            outcomes = _line_records(entries, received_us // 1_000_000)
            if not outcomes:
                raise _Rejected(NO_RECORDS)
        except _Rejected as rejected:
            out.quarantine.append((number, None, line.decode("utf-8", "replace"), rejected.reason))
            continue
        for index, (table, payload) in enumerate(outcomes):
            if table is None:
                reason, raw = payload
                out.quarantine.append((number, index, rec.as_json(raw) or "null", reason))
            else:
                stamp = {"line_number": number, "record_index": index}
                stamp["received_at_us"] = received_us
                out.rows[table].append(payload | stamp)
    return out


def _input_schema(shape: Shape) -> dict[str, pl.DataType]:
    """The columns rows carry before typing: times as `<column>_s`, clear phone helpers."""
    schema: dict[str, pl.DataType] = {
        "line_number": pl.Int64(),
        "record_index": pl.Int64(),
        "received_at_us": pl.Int64(),
    }
    for name, dtype in shape.schema.items():
        if name in ("received_day", "received_at") or name in shape.phones or name in shape.ids:
            continue
        schema[f"{name}_s" if dtype == UTC_US else name] = pl.Int64() if dtype == UTC_US else dtype
    for helper in shape.phones.values():
        schema[helper] = pl.String()
    for raw in shape.ids.values():
        schema.setdefault(raw, pl.String())
    return schema


def _utc(column: str, unit: str) -> pl.Expr:
    return pl.from_epoch(column, time_unit=unit).dt.cast_time_unit("us").dt.replace_time_zone("UTC")


def _table(
    shape: Shape, rows: list[dict[str, Any]], receipt_day: date, pii_key: bytes
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(the table's frame, (line_number) of the rows kept, duplicates dropped)."""
    schema = _input_schema(shape)
    frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    kept = frame.filter(pl.struct(list(shape.key)).is_first_distinct())
    times = [n for n, t in shape.schema.items() if t == UTC_US and n != "received_at"]
    typed = kept.with_columns(
        received_day=pl.lit(receipt_day),
        received_at=_utc("received_at_us", "us"),
        **{name: _utc(f"{name}_s", "s") for name in times},
        **{token: phone_token_expr(helper, pii_key) for token, helper in shape.phones.items()},
        **{token: id_token_expr(raw, pii_key) for token, raw in shape.ids.items()},
    )
    return conform(typed, shape.schema), kept.select("line_number"), frame.height - kept.height


def parse_webhook_deliveries(
    data: bytes, receipt_day: date, app_secret: bytes, pii_key: bytes
) -> WhatsAppResult:
    """Verify, route, deduplicate and pseudonymise one receipt day's webhook deliveries.

    `data` is the landing file's content (NDJSON, gzip-compressed or not); `receipt_day` is the
    partition (stored as `received_day` on every row). Never raises on content.
    """
    collected = _collect(data, app_secret)
    frames: dict[str, pl.DataFrame] = {}
    kept_lines = [pl.DataFrame(schema={"line_number": pl.Int64()})]
    duplicates = 0
    for shape in SHAPES:
        frame, lines, dropped = _table(shape, collected.rows[shape.name], receipt_day, pii_key)
        frames[shape.name] = frame
        kept_lines.append(lines)
        duplicates += dropped
    quarantine = quarantine_frame(collected.quarantine, receipt_day)
    rejected = quarantine.filter(pl.col("record_index").is_null()).height
    record_lines = quarantine.filter(pl.col("record_index").is_not_null()).select("line_number")
    loaded_lines = pl.concat([*kept_lines, record_lines])["line_number"].n_unique()
    accepted = collected.read - rejected
    return WhatsAppResult(
        frames=frames,
        quarantine=quarantine,
        read=collected.read,
        accepted=accepted,
        duplicates=duplicates,
        duplicate_lines=accepted - loaded_lines,
    )
