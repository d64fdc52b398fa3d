"""App events (DESIGN §5): one receipt day's landing file into clean rows and quarantined lines.

Input: the decompressed content of `<landing>/app_events/dt=YYYY-MM-DD/events.ndjson.gz`, one
Segment-spec JSON object per line, received on that day (Asia/Kolkata). Output: `clean` rows
(`APP_EVENTS_SCHEMA`), `rejected` lines (`QUARANTINE_SCHEMA`, one reason each) and the counts,
with `clean.height + rejected.height + duplicates == read` for every input.

Why it works the way it does:

- **Two paths, one answer.** Almost every line is exactly what the app's SDK writes: the members
  in one order, no whitespace, ids and timestamps without escapes. Such a line is recognised by
  one regular expression (`_CANONICAL_LINE`, which also checks that `properties` and `context`
  are well-formed JSON objects) run by polars over all lines at once, and its fields are cut out
  at the byte offsets of their keys, so the happy path never decodes JSON in Python. Every other
  line (another member order, extra members, escapes, whitespace, any fault) takes the exact path:
  `orjson` per line, then the contract checks. Both paths produce the same intermediate frame
  and share every later step, and the screen only admits lines the exact path reads the same way,
  so which path a line took never changes the result (the tests run whole files both ways).
- **JSON kept verbatim.** `properties` (`traits` for identify) and `context` are stored as the
  JSON text received, not re-serialised: nothing is reordered, rounded or lost, and the exact path
  finds the same text by walking the top-level members with the standard library's decoder.
- **Event time as Segment, Snowplow and RudderStack derive it**: `event_timestamp = receivedAt -
  (sentAt - originalTimestamp)`. Device clocks are wrong by seconds to days; the difference of two
  readings of the same device clock is not, and the server clock anchors it.
- **The partition is the receipt day.** A line whose `receivedAt` falls on another IST day is
  quarantined (`received_outside_partition`), so reloading a day is exact and never overlaps
  another.
- **Dedupe keeps the first valid copy** of each `messageId` in file order; later valid copies are
  counted in `duplicates` and dropped. Rejected lines never claim an id.
- **Bounded memory.** `AppEventsParser` takes the file in blocks of any size (lines may straddle
  blocks) and keeps only the partial last line and the message ids seen so far, so a day of any
  size is parsed a block at a time; `parse_app_events` is the one-block case.

Line rules: lines end at `\\n` (a trailing `\\r` is dropped, so CRLF files read the same); a byte
order mark at the start of the input is not part of the first line; blank lines after the last
record are not records, blank lines between records are (`empty_line`). `line_number` counts from
1 in the input, and `raw` is the line decoded with `errors="replace"`, NUL characters replaced too
(PostgreSQL text cannot hold them), so every rejected line can be stored.

Reasons, the first that applies: `invalid_utf8`, `empty_line`, `invalid_json`, `not_an_object`,
`missing_field:<member>` (absent or null), `wrong_type:<member>`, `invalid_value:<member>` (an
unknown `type`, a string holding NUL, a timestamp that is not ISO-8601 with a zone or whose year
is outside 1-9999), `received_outside_partition`, `out_of_range:event_timestamp` (a derived time
no client or database can represent).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import polars as pl

IST = "Asia/Kolkata"  # receipt and event days are Indian calendar days (DESIGN §2)
UTC_US = pl.Datetime("us", "UTC")

APP_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "message_id": pl.String(),  # messageId, the dedupe key
    "received_day": pl.Date(),  # the partition: the IST day the platform received the event
    "type": pl.String(),  # track | screen | identify
    "event_name": pl.String(),  # track's event or screen's name; null for identify
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "session_id": pl.String(),
    "original_timestamp": UTC_US,  # device clock when it happened
    "sent_at": UTC_US,  # device clock when the batch was sent
    "received_at": UTC_US,  # server clock
    "event_timestamp": UTC_US,  # received_at - (sent_at - original_timestamp)
    "event_day": pl.Date(),  # IST day of event_timestamp
    "properties": pl.String(),  # JSON text as received: track/screen properties, identify traits
    "context": pl.String(),  # JSON text as received
    "app_version": pl.String(),  # context.app.version
    "os_name": pl.String(),  # context.os.name
    "os_version": pl.String(),  # context.os.version
    "device_model": pl.String(),  # context.device.model
    "locale": pl.String(),  # context.locale
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "received_day": pl.Date(),
    "line_number": pl.Int64(),  # 1-based in the input
    "raw": pl.String(),  # the line as received, decoded with errors="replace"
    "reason": pl.String(),
}

# The contract every valid line meets (the simulator's `REQUIRED_FIELDS` and `FIELDS_BY_TYPE`
# plant faults against the same one; a test keeps the two equal).
REQUIRED_FIELDS: dict[str, type] = {
    "messageId": str, "type": str, "userId": str, "anonymousId": str, "sessionId": str,
    "originalTimestamp": str, "sentAt": str, "receivedAt": str, "context": dict,
}  # fmt: skip
FIELDS_BY_TYPE: dict[str, dict[str, type]] = {
    "track": {"event": str, "properties": dict},
    "screen": {"name": str, "properties": dict},
    "identify": {"traits": dict},
}
# Per type: the member holding event_name (None: no name) and the one holding properties.
_NAME_AND_PAYLOAD: dict[str, tuple[str | None, str]] = {
    "track": ("event", "properties"),
    "screen": ("name", "properties"),
    "identify": (None, "traits"),
}
# Top-level string members and their columns, in the order the SDK writes them.
_STRING_COLUMNS: dict[str, str] = {
    "messageId": "message_id", "userId": "user_id", "anonymousId": "anonymous_id",
    "sessionId": "session_id", "originalTimestamp": "original_timestamp", "sentAt": "sent_at",
    "receivedAt": "received_at",
}  # fmt: skip
_TIMESTAMPS: dict[str, str] = {
    member: _STRING_COLUMNS[member] for member in ("originalTimestamp", "sentAt", "receivedAt")
}
CONTEXT_COLUMNS: dict[str, str] = {
    "app_version": "$.app.version",
    "os_name": "$.os.name",
    "os_version": "$.os.version",
    "device_model": "$.device.model",
    "locale": "$.locale",
}
# ISO-8601 with a zone: `Z` or an offset, fraction optional. A time without a zone is ambiguous.
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
# Years Python's datetime (so psycopg, pandas, iter_rows) and PostgreSQL can all represent.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)

# The intermediate frame both paths produce: every member still as text, a reason when rejected.
_FIELDS_SCHEMA: dict[str, pl.DataType] = {
    "line_number": pl.Int64(),
    "line": pl.String(),
    "reason": pl.String(),
    "type": pl.String(),
    "event_name": pl.String(),
    **{column: pl.String() for column in _STRING_COLUMNS.values()},
    "properties": pl.String(),
    "context": pl.String(),
}
_BOM = b"\xef\xbb\xbf"
_UNIT_SEPARATOR = b"\x1f"  # the column separator the line splitter borrows from polars' CSV reader


@dataclass(frozen=True)
class AppEventsResult:
    """What one input (or one block of it) gave: `clean.height + rejected.height + duplicates ==
    read`, the reconciliation every partition reports."""

    clean: pl.DataFrame
    rejected: pl.DataFrame
    read: int
    duplicates: int

    @classmethod
    def empty(cls) -> AppEventsResult:
        return cls(pl.DataFrame(schema=APP_EVENTS_SCHEMA), _no_rejects(), 0, 0)

    @classmethod
    def concat(cls, results: Iterable[AppEventsResult]) -> AppEventsResult:
        """The results of consecutive blocks as one."""
        parts = [cls.empty(), *results]
        return cls(
            pl.concat([part.clean for part in parts]),
            pl.concat([part.rejected for part in parts]),
            sum(part.read for part in parts),
            sum(part.duplicates for part in parts),
        )


def parse_app_events(data: bytes, receipt_day: date) -> AppEventsResult:
    """Parse a whole receipt day's file (decompressed) received on `receipt_day` (IST)."""
    parser = AppEventsParser(receipt_day)
    return AppEventsResult.concat([parser.feed(data), parser.finish()])


def parse_app_events_blocks(
    blocks: Iterable[bytes], receipt_day: date
) -> Iterator[AppEventsResult]:
    """Parse a file given as consecutive blocks of any size (say, reads of a gzip stream), one
    result per block plus one for the end, so memory holds one block's rows at a time."""
    parser = AppEventsParser(receipt_day)
    for block in blocks:
        yield parser.feed(block)
    yield parser.finish()


class AppEventsParser:
    """Parses one input fed in blocks: lines may straddle blocks, line numbers and dedupe run
    across them. Keeps only the unfinished tail (the partial last line and any blank lines before
    it, which are records only if a line follows) and the message ids already loaded.

    `fast_path=False` sends every line through the exact per-line path; the tests use it to show
    both paths give the same result, and it is much slower.
    """

    def __init__(self, receipt_day: date, *, fast_path: bool = True) -> None:
        self.receipt_day = receipt_day
        self._fast_path = fast_path
        self._tail = b""
        self._next_line = 1
        self._at_start = True
        self._seen = pl.Series("message_id", [], pl.String)

    def feed(self, block: bytes) -> AppEventsResult:
        """Parse the lines `block` completes; keep the rest for the next block."""
        data = self._tail + block
        end = _last_record_end(data)
        if end < 0:
            self._tail = data
            return AppEventsResult.empty()
        self._tail = data[end + 1 :]
        return self._parse(data[:end])

    def finish(self) -> AppEventsResult:
        """Parse what is left: a last line without a newline, and blank lines before it."""
        tail, self._tail = self._tail, b""
        if all(_is_blank(line) for line in tail.split(b"\n")):
            return AppEventsResult.empty()  # blank lines at the end are not records
        return self._parse(tail)

    def _parse(self, body: bytes) -> AppEventsResult:
        """Parse complete lines, the first one numbered `_next_line`."""
        if self._at_start:
            self._at_start = False
            body = body.removeprefix(_BOM)
        lines = _split_lines(body, self._next_line)
        self._next_line += lines.height
        fields = _fields(lines) if self._fast_path else _exact_fields(lines)
        clean, rejected, duplicates = _validate(fields, self.receipt_day, self._seen)
        self._seen = pl.concat([self._seen, clean["message_id"]], rechunk=False)
        return AppEventsResult(clean, rejected, lines.height, duplicates)


# ---------------------------------------------------------------------------------------------
# Lines


def _is_blank(line: bytes) -> bool:
    return line in (b"", b"\r")


def _last_record_end(data: bytes) -> int:
    """Index of the newline ending the last non-blank complete line of `data`, -1 if none.
    Blank lines after it stay unread: they are records only if another line follows."""
    end = data.rfind(b"\n")
    while end >= 0:
        start = data.rfind(b"\n", 0, end) + 1
        if not _is_blank(data[start:end]):
            return end
        end = start - 1
    return -1


def _split_lines(body: bytes, first_line: int) -> pl.DataFrame:
    """The lines of `body` (newline separated, none at the end): line_number, line (text) and
    bad_utf8. Polars' CSV reader, with a separator and no quote character, splits in parallel at
    memory speed; it is used when its rules are ours (no `\\r`, no separator byte, no BOM it would
    strip, valid UTF-8, one row per line), else the lines are split one by one."""
    expected = body.count(b"\n") + 1
    fast = b"\r" not in body and _UNIT_SEPARATOR not in body and not body.startswith(_BOM)
    lines = _split_with_csv_reader(body) if fast else None
    if lines is None or lines.len() != expected:
        lines, bad_utf8 = _split_exactly(body)
    else:
        bad_utf8 = pl.repeat(False, expected, eager=True)
    return pl.DataFrame(
        {
            "line_number": pl.int_range(first_line, first_line + expected, eager=True),
            "line": lines,
            "bad_utf8": bad_utf8,
        }
    )


def _split_with_csv_reader(body: bytes) -> pl.Series | None:
    """One string per line (empty lines as ""), or None when the input is not valid UTF-8."""
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            separator=_UNIT_SEPARATOR.decode(),
            quote_char=None,
            schema={"line": pl.String},
        )
    except pl.exceptions.ComputeError:
        return None
    return frame["line"].fill_null("")


def _split_exactly(body: bytes) -> tuple[pl.Series, pl.Series]:
    """Lines one by one: a trailing `\\r` dropped, text decoded, undecodable lines flagged."""
    texts: list[str] = []
    bad: list[bool] = []
    for line in body.split(b"\n"):
        line = line.removesuffix(b"\r")
        try:
            texts.append(line.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(line.decode("utf-8", errors="replace"))
            bad.append(True)
    return pl.Series("line", texts, pl.String), pl.Series("bad_utf8", bad, pl.Boolean)


# ---------------------------------------------------------------------------------------------
# The fast path: canonical lines, recognised by one regular expression and cut at their keys

# A JSON string whose text is its value (no escapes, no control characters): the SDK's ids and
# timestamps. Inside properties and context any valid escape is allowed, except lone surrogates
# (which orjson rejects); numbers are bounded so orjson never overflows to infinity.
_PLAIN = r'"[^"\\\x00-\x1f]*"'
_STRING = (
    r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]'
    r"|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*\""
)
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,2})?"
_NESTING = 3  # objects and arrays inside properties or context; deeper ones take the exact path


def _value_pattern(depth: int) -> str:
    """A compact JSON value with at most `depth` levels of objects or arrays."""
    scalars = [_STRING, _NUMBER, "true", "false", "null"]
    if depth == 0:
        return f"(?:{'|'.join(scalars)})"
    inner = _value_pattern(depth - 1)
    array = rf"\[(?:{inner}(?:,{inner})*)?\]"
    return f"(?:{'|'.join([*scalars, _object_pattern(depth - 1), array])})"


def _object_pattern(depth: int) -> str:
    """A compact JSON object whose values nest at most `depth` more levels."""
    member = f"{_STRING}:{_value_pattern(depth)}"
    return rf"\{{(?:{member}(?:,{member})*)?\}}"


def _canonical_line_pattern() -> str:
    """The whole line as the SDK writes it: members in one order, per type, no whitespace."""
    middle = ",".join(f'"{member}":{_PLAIN}' for member in list(_STRING_COLUMNS)[1:])
    kinds = []
    for kind, (name, payload) in _NAME_AND_PAYLOAD.items():
        named = f',"{name}":{_PLAIN}' if name else ""
        kinds.append(f'"{kind}"{named},{middle},"{payload}"')
    payload = _object_pattern(_NESTING)
    return (
        rf'^\{{"messageId":{_PLAIN},"type":(?:{"|".join(kinds)}):{payload},"context":{payload}\}}$'
    )


_CANONICAL_LINE = _canonical_line_pattern()


def _key_at(pattern: str, *, literal: bool = True) -> pl.Expr:
    """Byte offset of the first occurrence of a member's key. Before any member but context, a
    canonical line holds only keys and escape-free strings, which contain no quote, so the first
    occurrence is the member itself; the context key follows properties, so the screen requires
    it to occur once."""
    return pl.col("line").str.find(pattern, literal=literal)


def _cut(start: str | pl.Expr, end: str | pl.Expr) -> pl.Expr:
    """line[start:end] in bytes: `str.find` counts bytes and `str.slice` characters, and values
    may be non-ASCII, so the cut is made on the line's bytes."""
    start, end = (
        pl.col(start) if isinstance(start, str) else start,
        pl.col(end) if isinstance(end, str) else end,
    )
    return pl.col("bytes").bin.slice(start, end - start).cast(pl.String, strict=False)


def _fields(lines: pl.DataFrame) -> pl.DataFrame:
    """Both paths: canonical lines cut fast, the others read exactly, in line order."""
    canonical = pl.col("line").str.contains(_CANONICAL_LINE) & (
        pl.col("line").str.count_matches(_CONTEXT_KEY, literal=True) == 1
    )
    lines = lines.with_columns(canonical=canonical & ~pl.col("bad_utf8"))
    fast = _canonical_fields(lines.filter("canonical"))
    slow = _exact_fields(lines.filter(~pl.col("canonical")))
    if slow.is_empty():
        return fast
    return pl.concat([fast, slow]).sort("line_number")


# Where values start and end in a canonical line, relative to the keys found in it.
_TYPE_KEY = ',"type":"'
_NAME_KEYS = {"track": ',"type":"track","event":"', "screen": ',"type":"screen","name":"'}
_PAYLOAD_KEYS = {"properties": ',"properties":', "traits": ',"traits":'}
_CONTEXT_KEY = ',"context":'


def _canonical_fields(lines: pl.DataFrame) -> pl.DataFrame:
    """Every field of canonical lines, cut between the byte offsets of consecutive keys: each
    value runs from the end of its key to the next key (less the closing quote of a string)."""
    members = list(_STRING_COLUMNS)[1:]  # after messageId, which starts the line
    payload_keys = "|".join(re.escape(key) for key in _PAYLOAD_KEYS.values())
    located = lines.select(
        "line_number",
        "line",
        pl.col("line").cast(pl.Binary).alias("bytes"),
        _key_at(_TYPE_KEY).alias("type"),
        *[_key_at(f',"{member}":"').alias(member) for member in members],
        _key_at(payload_keys, literal=False).alias("payload"),
        _key_at(_CONTEXT_KEY).alias("context"),
    )
    kind = _cut(pl.col("type") + len(_TYPE_KEY), pl.col("type") + len(_TYPE_KEY) + 1)
    kind = kind.replace_strict({"t": "track", "s": "screen", "i": "identify"})
    name_start = pl.when(kind == "track").then(pl.col("type") + len(_NAME_KEYS["track"]))
    name_start = name_start.when(kind == "screen").then(pl.col("type") + len(_NAME_KEYS["screen"]))
    payload_start = pl.col("payload") + pl.when(kind == "identify").then(
        len(_PAYLOAD_KEYS["traits"])
    ).otherwise(len(_PAYLOAD_KEYS["properties"]))
    starts = [pl.lit(len('{"messageId":"'))] + [pl.col(m) + len(f',"{m}":"') for m in members]
    ends = [pl.col(m) - 1 for m in ["type", *members[1:], "payload"]]
    line_end = pl.col("bytes").bin.size() - 1  # before the closing brace
    return located.select(
        "line_number",
        "line",
        pl.lit(None, pl.String).alias("reason"),
        kind.alias("type"),
        _cut(name_start, pl.col(members[0]) - 1).alias("event_name"),
        *[
            _cut(start, end).alias(column)
            for start, end, column in zip(starts, ends, _STRING_COLUMNS.values(), strict=True)
        ],
        _cut(payload_start, "context").alias("properties"),
        _cut(pl.col("context") + len(_CONTEXT_KEY), line_end).alias("context"),
    )


# ---------------------------------------------------------------------------------------------
# The exact path: one line at a time


def _exact_fields(lines: pl.DataFrame) -> pl.DataFrame:
    """Read each line with orjson and check it against the contract."""
    rows = [
        (number, text, *_read_line(text, bad))
        for number, text, bad in lines.select("line_number", "line", "bad_utf8").iter_rows()
    ]
    return pl.DataFrame(rows, schema=_FIELDS_SCHEMA, orient="row")


_REJECTED_LINE = (None,) * (len(_FIELDS_SCHEMA) - 3)  # the fields after line_number, line, reason


def _read_line(text: str, bad_utf8: bool) -> tuple[str | None, ...]:
    """(reason, type, event_name, string members..., properties, context) of one line."""
    reason, event = _decode(text, bad_utf8)
    if event is None:
        return (reason, *_REJECTED_LINE)
    kind = event["type"]
    name, payload = _NAME_AND_PAYLOAD[kind]
    spans = _member_spans(text)
    return (
        None,
        kind,
        event[name] if name else None,
        *[event[member] for member in _STRING_COLUMNS],
        text[slice(*spans[payload])],
        text[slice(*spans["context"])],
    )


def _decode(text: str, bad_utf8: bool) -> tuple[str | None, dict[str, Any] | None]:
    """(None, the event) for a line that meets the contract, else (the reason, None)."""
    if bad_utf8:
        return "invalid_utf8", None
    if not text:
        return "empty_line", None
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "invalid_json", None
    if not isinstance(event, dict):
        return "not_an_object", None
    reason = _contract_violation(event)
    return (reason, None) if reason else (None, event)


def _contract_violation(event: dict[str, Any]) -> str | None:
    """The first member that breaks the contract, as a reason; None if none does."""
    reason = _member_violation(event, REQUIRED_FIELDS)
    if reason:
        return reason
    if event["type"] not in FIELDS_BY_TYPE:
        return "invalid_value:type"
    return _member_violation(event, FIELDS_BY_TYPE[event["type"]])


def _member_violation(event: dict[str, Any], members: Mapping[str, type]) -> str | None:
    for member, kind in members.items():
        value = event.get(member)
        if value is None:
            return f"missing_field:{member}"
        if not isinstance(value, kind):
            return f"wrong_type:{member}"
        if kind is str and "\x00" in value:
            return f"invalid_value:{member}"
    return None


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _member_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each top-level member's value lies in `text`, a JSON object orjson accepted, so
    values can be kept verbatim. A repeated key keeps its last value, as orjson does."""
    spans: dict[str, tuple[int, int]] = {}
    at = _WHITESPACE.match(text, _WHITESPACE.match(text).end() + 1).end()  # after "{"
    while text[at] != "}":
        key, at = json.decoder.scanstring(text, at + 1)
        at = _WHITESPACE.match(text, _WHITESPACE.match(text, at).end() + 1).end()  # after ":"
        _, end = _DECODER.raw_decode(text, at)
        spans[key] = (at, end)
        at = _WHITESPACE.match(text, end).end()
        if text[at] == ",":
            at = _WHITESPACE.match(text, at + 1).end()
    return spans


# ---------------------------------------------------------------------------------------------
# Shared by both paths: timestamps, the partition, event time, dedupe, context columns


def _validate(
    fields: pl.DataFrame, receipt_day: date, seen: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(clean rows, rejected lines, duplicates dropped) of the fields of consecutive lines."""
    frame = fields.with_columns(
        pl.col(column).str.to_datetime(_ISO_FORMAT, time_unit="us", time_zone="UTC", strict=False)
        for column in _TIMESTAMPS.values()
    ).with_columns(
        event_timestamp=pl.col("received_at") - (pl.col("sent_at") - pl.col("original_timestamp"))
    )
    frame = frame.with_columns(reason=pl.coalesce("reason", *_checks(receipt_day)))
    valid = frame.filter(pl.col("reason").is_null())
    repeated = ~pl.col("message_id").is_first_distinct()
    if seen.len():
        repeated = repeated | pl.col("message_id").is_in(seen)
    clean = valid.filter(~repeated)
    return (
        _clean_rows(clean, receipt_day),
        _rejected_rows(frame, receipt_day),
        valid.height - clean.height,
    )


def _checks(receipt_day: date) -> list[pl.Expr]:
    """Reasons from the parsed timestamps, in the order they apply; null where a check passes."""

    def fails(condition: pl.Expr, reason: str) -> pl.Expr:
        return pl.when(condition).then(pl.lit(reason))

    def outside(column: str) -> pl.Expr:  # unparseable (null) or beyond what clients can hold
        return pl.col(column).is_null() | ~pl.col(column).is_between(_EARLIEST, _LATEST)

    received_day = pl.col("received_at").dt.convert_time_zone(IST).dt.date()
    return [
        *[
            fails(outside(column), f"invalid_value:{member}")
            for member, column in _TIMESTAMPS.items()
        ],
        fails(received_day != receipt_day, "received_outside_partition"),
        fails(outside("event_timestamp"), "out_of_range:event_timestamp"),
    ]


def _clean_rows(valid: pl.DataFrame, receipt_day: date) -> pl.DataFrame:
    """The clean schema: partition, event day and the context's columns added."""
    rows = valid.with_columns(
        received_day=pl.lit(receipt_day, pl.Date),
        event_day=pl.col("event_timestamp").dt.convert_time_zone(IST).dt.date(),
    )
    return _with_context_columns(rows).select(list(APP_EVENTS_SCHEMA))


def _with_context_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """App version, OS, device model and locale from each distinct context (a device on a
    network), looked up once per context rather than once per event."""
    contexts = rows.select(pl.col("context").unique()).with_columns(
        pl.col("context").str.json_path_match(path).alias(column)
        for column, path in CONTEXT_COLUMNS.items()
    )
    return rows.join(contexts, on="context", how="left", maintain_order="left")


def _rejected_rows(frame: pl.DataFrame, receipt_day: date) -> pl.DataFrame:
    return frame.filter(pl.col("reason").is_not_null()).select(
        pl.lit(receipt_day, pl.Date).alias("received_day"),
        "line_number",
        pl.col("line").str.replace_all("\x00", "\ufffd", literal=True).alias("raw"),
        "reason",
    )


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)
