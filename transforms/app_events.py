"""App events (DESIGN §5): one receipt day's landing file into clean rows and quarantined lines.

Input: the decompressed content of `<landing>/app_events/dt=YYYY-MM-DD/events.ndjson.gz`, one
Segment-spec JSON object per line, received on that day (Asia/Kolkata). Output: `clean` rows
(`APP_EVENTS_SCHEMA`), `rejected` lines (`QUARANTINE_SCHEMA`, one reason each) and the counts,
with `clean.height + rejected.height + duplicates == read` for every input.

Why it works the way it does:

- **Two paths, one answer.** Almost every line is exactly what the app's SDK writes: the members
  in one order, no whitespace, ids and timestamps without escapes. Polars cuts every line at the
  byte offsets of its keys, column-wise, then proves each cut: the keys must tile the line in the
  SDK's layout (the pieces rendered back would give the line itself), the strings must hold no
  quote, backslash or control character, and `properties` and `context` must match a regular
  expression of compact JSON objects (checked once per distinct value). A proven line is valid
  JSON whose fields are exactly those cuts, so the happy path never decodes JSON in Python. Every
  other line (another member order, extra members, escapes, whitespace, any fault) takes the exact
  path: `orjson` per line, then the contract checks. Both paths produce the same intermediate
  frame and share every later step, so which path a line took never changes the result (the tests
  run whole simulator days and randomly damaged lines both ways). On simulator days 0.5% of lines
  take the exact path.
- **JSON kept verbatim.** `properties` (`traits` for identify) and `context` are stored as the
  JSON text received, not re-serialised: nothing is reordered, rounded or lost. The exact path
  finds the same text by walking the top-level members (brackets counted outside strings, so any
  nesting orjson accepts is followed without recursion).
- **Event time as Segment, Snowplow and RudderStack derive it**: `event_timestamp = receivedAt -
  (sentAt - originalTimestamp)`. Device clocks are wrong by seconds to days; the difference of two
  readings of the same device clock is not, and the server clock anchors it.
- **The partition is the receipt day.** A line whose `receivedAt` falls on another IST day is
  quarantined (`received_outside_partition`), so reloading a day is exact and never overlaps
  another.
- **Dedupe keeps the first valid copy** of each `messageId` in file order; later valid copies are
  counted in `duplicates` and dropped. Rejected lines never claim an id.
- **Bounded memory.** `AppEventsParser` takes the file in blocks of any size (lines may straddle
  blocks) and keeps only the partial last line and the message ids seen so far, as two 64-bit
  hashes each (`transforms.seen_keys`: 16 bytes an event, not the ~120 of a set of strings), so
  a day of any size is parsed a block at a time; `parse_app_events` is the one-block case.

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

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import polars as pl

from transforms.seen_keys import SeenKeys

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

# The contract every valid line meets (DESIGN §5); the simulator plants its faults against it.
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
# Columns looked up in the context (a string as it is, another JSON value as its compact JSON
# text, null when absent), so marts can group by app release or device without parsing JSON.
CONTEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "app_version": ("app", "version"),
    "os_name": ("os", "name"),
    "os_version": ("os", "version"),
    "device_model": ("device", "model"),
    "locale": ("locale",),
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
        return cls(_NO_ROWS, _NO_REJECTS, 0, 0)

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
        self._seen = SeenKeys()  # message ids loaded from the blocks before the last
        self._last_ids = pl.Series("message_id", [], pl.String)  # those of the last block

    def feed(self, block: bytes) -> AppEventsResult:
        """Parse the lines `block` completes; keep the rest for the next block."""
        data = self._tail + block
        if self._at_start:  # a byte order mark marks the encoding, not the first line
            if _BOM.startswith(data):
                self._tail = data
                return AppEventsResult.empty()
            data, self._at_start = data.removeprefix(_BOM), False
        end = _last_record_end(data)
        if end < 0:
            self._tail = data
            return AppEventsResult.empty()
        self._tail = data[end + 1 :]
        return self._parse(data[:end])

    def finish(self) -> AppEventsResult:
        """Parse what is left: a last line without a newline, and blank lines before it."""
        tail, self._tail = self._tail, b""
        if self._at_start:
            tail = tail.removeprefix(_BOM)
        if all(_is_blank(line) for line in tail.split(b"\n")):
            return AppEventsResult.empty()  # blank lines at the end are not records
        return self._parse(tail)

    def _parse(self, body: bytes) -> AppEventsResult:
        """Parse complete lines, the first one numbered `_next_line`."""
        lines = _split_lines(body, self._next_line)
        self._next_line += lines.height
        fields = _fields(lines) if self._fast_path else _exact_fields(lines)
        self._seen.add(self._last_ids)  # only once a second block comes: one block, no hashes
        clean, rejected, duplicates = _validate(fields, self.receipt_day, self._seen)
        self._last_ids = clean["message_id"]
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
    fast = b"\r" not in body and _UNIT_SEPARATOR not in body and not body.startswith(_BOM)
    lines = _split_with_csv_reader(body) if fast else None
    if lines is None or not _is_split_of(lines, body):
        lines, bad_utf8 = _split_exactly(body)
    else:
        bad_utf8 = pl.repeat(False, lines.len(), eager=True)
    return pl.DataFrame(
        {
            "line_number": pl.int_range(first_line, first_line + lines.len(), eager=True),
            "line": lines,
            "bad_utf8": bad_utf8,
        }
    )


def _is_split_of(lines: pl.Series, body: bytes) -> bool:
    """Whether `lines` joined by newlines are exactly `body`, byte for byte in length: a line
    dropped, merged or trimmed by the reader would change the total."""
    return lines.str.len_bytes().sum() + lines.len() - 1 == len(body)


def _split_with_csv_reader(body: bytes) -> pl.Series | None:
    """One string per line (empty lines as ""), or None when the reader refuses the input."""
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            separator=_UNIT_SEPARATOR.decode(),
            quote_char=None,
            schema={"line": pl.String},
        )
    except pl.exceptions.PolarsError:  # not UTF-8, say: split line by line instead
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
# The fast path: lines exactly as the SDK writes them, cut at their keys, proven by the tiling

# The layout of a canonical line: members in this order, no whitespace, strings without escapes.
_LAYOUT_HEAD = '{"messageId":"'
_TYPE_KEY = '","type":"'
_NAME_KEYS = {kind: f'","{name}":"' for kind, (name, _) in _NAME_AND_PAYLOAD.items() if name}
_MIDDLE = list(_STRING_COLUMNS)[1:]  # userId .. receivedAt, each '","<member>":"<text>'
_PAYLOAD_KEYS = {payload: f'","{payload}":' for _, payload in _NAME_AND_PAYLOAD.values()}
_CONTEXT_KEY = ',"context":'
# A string is plain, and its JSON text its value, without quotes, backslashes or control chars.
_NOT_PLAIN = r'["\\\x00-\x1f]'
# A compact JSON object orjson reads: strings with valid escapes (no lone surrogates), bounded
# numbers (never infinity), objects and arrays nested at most _NESTING deep inside it.
_STRING = (
    r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]'
    r"|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*\""
)
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,2})?"
_NESTING = 3


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


_JSON_OBJECT = f"^{_object_pattern(_NESTING)}$"


def _fields(lines: pl.DataFrame) -> pl.DataFrame:
    """Both paths: canonical lines cut fast, the others read exactly, in line order.

    A line is canonical when its keys, found by their first occurrence, tile it in the SDK's
    layout (so rendering the pieces back would give the line itself), its strings are plain
    and its properties and context are well-formed JSON objects. Such a line is valid JSON that
    the exact path reads into the very same fields, so which path a line takes never changes
    the result.
    """
    cut = lines.lazy().with_columns(_KEY_OFFSETS).with_columns(_kind()).select(_CUTS)
    cut = cut.with_columns(plain=_CANONICAL).collect()  # lazy: polars runs columns in parallel
    objects = [_is_json_object(cut[column]) for column in ("properties", "context")]
    canonical = (pl.col("plain") & objects[0] & objects[1]).fill_null(False)
    cut = cut.with_columns(canonical=canonical)
    fast = cut.filter("canonical").select(list(_FIELDS_SCHEMA))
    slow = _exact_fields(lines.filter(~cut["canonical"]))
    if slow.is_empty():
        return fast
    return fast.merge_sorted(slow, key="line_number")  # both in line order already


def _cut(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """The line's bytes from `start` to `end` (exclusive) as text; null where either is null.
    Offsets from `str.find` count bytes while `str.slice` counts characters, and values may be
    non-ASCII, so the cut is made on the line's bytes. Polars' cast from bytes to text fails on
    invalid UTF-8 even when told not to be strict, so every offset here is a character boundary
    of the (valid UTF-8) line: the start or end of an ASCII key found in it, the line's start,
    or the position of its last byte when that byte is "}"."""
    raw = pl.col("line").cast(pl.Binary).bin.slice(start, (end - start).clip(lower_bound=0))
    return raw.cast(pl.String)


def _offset(key: str) -> pl.Expr:
    return pl.col(f"@{key}")


def _after(key: str) -> pl.Expr:
    """Where the value after `key` starts."""
    return _offset(key) + len(_KEYS[key])


# The keys a canonical line is cut at, found by their first occurrence: before each of them the
# line holds only keys and plain strings, which contain no quote; a context key nested in the
# properties would come first, but then the cut properties are not a whole JSON object.
_KEYS = {"type": _TYPE_KEY} | {m: f'","{m}":"' for m in _MIDDLE} | _PAYLOAD_KEYS
_KEYS |= {"context": _CONTEXT_KEY}
_KEY_OFFSETS = [
    pl.col("line").str.find(key, literal=True).alias(f"@{name}") for name, key in _KEYS.items()
]
# What follows the type key: the kind, and the key of its name (`","type":"track","event":"`).
_KIND_TEXT = {kind: f"{_TYPE_KEY}{kind}{_NAME_KEYS.get(kind, '')}" for kind in _NAME_AND_PAYLOAD}


def _kind() -> pl.Expr:
    """The type whose text follows the type key, compared as bytes; null if none does."""
    kind = pl.lit(None, pl.String)
    for name, text in _KIND_TEXT.items():
        here = pl.col("line").cast(pl.Binary).bin.slice(_offset("type"), len(text))
        kind = pl.when(here == text.encode()).then(pl.lit(name)).otherwise(kind)
    return kind.alias("type")


_IS = {kind: pl.col("type") == kind for kind in _NAME_AND_PAYLOAD}


def _name_start() -> pl.Expr:
    """Where event_name starts, after `<kind>","event":"` or `<kind>","name":"`; null for
    identify, which has no name."""
    start = pl.lit(None, pl.Int64)
    for kind in _NAME_KEYS:
        start = pl.when(_IS[kind]).then(_offset("type") + len(_KIND_TEXT[kind])).otherwise(start)
    return start


_HEAD_END = pl.when(pl.col("line").str.starts_with(_LAYOUT_HEAD)).then(len(_LAYOUT_HEAD))
_BODY_END = pl.when(pl.col("line").str.ends_with("}")).then(pl.col("line").str.len_bytes() - 1)
_PAYLOAD_AT = pl.when(_IS["identify"]).then(_offset("traits")).otherwise(_offset("properties"))
_PAYLOAD_START = pl.when(_IS["identify"]).then(_after("traits")).otherwise(_after("properties"))


def _kind_end() -> pl.Expr:
    """Where the type's text (and the name's key, for kinds with a name) ends."""
    end = pl.lit(None, pl.Int64)
    for kind, text in _KIND_TEXT.items():
        end = pl.when(_IS[kind]).then(_offset("type") + len(text)).otherwise(end)
    return end


# The line is exactly the SDK's layout when the cuts tile it: the head, then each key where the
# previous piece ends, every piece of zero or more bytes (identify has no name, so nothing lies
# between its type and userId), and the closing brace last. The pieces between the keys are then
# the values, and rendering them back in the layout would give the line itself; comparing
# offsets proves that without building the rendered text.
_TILED = pl.all_horizontal(
    _offset("type") >= _HEAD_END,
    pl.when(_IS["identify"])
    .then(_kind_end() == _offset(_MIDDLE[0]))
    .otherwise(_kind_end() <= _offset(_MIDDLE[0])),
    *[_after(m) <= _offset(end) for m, end in itertools.pairwise(_MIDDLE)],
    _after(_MIDDLE[-1]) <= _PAYLOAD_AT,
    _offset("context") >= _PAYLOAD_START,
    _after("context") <= _BODY_END,
)
_CUTS = [
    "line_number",
    "line",
    "bad_utf8",
    pl.lit(None, pl.String).alias("reason"),
    "type",
    _cut(_name_start(), _offset(_MIDDLE[0])).alias("event_name"),
    _cut(_HEAD_END, _offset("type")).alias("message_id"),
    *[
        _cut(_after(m), _offset(end)).alias(_STRING_COLUMNS[m])
        for m, end in itertools.pairwise(_MIDDLE)
    ],
    _cut(_after(_MIDDLE[-1]), _PAYLOAD_AT).alias(_STRING_COLUMNS[_MIDDLE[-1]]),
    _cut(_PAYLOAD_START, _offset("context")).alias("properties"),
    _cut(_after("context"), _BODY_END).alias("context"),
    _TILED.alias("tiled"),
]


# The strings whose text is taken as their value, so must not hold a quote, backslash or control.
_PLAIN_STRINGS = [
    pl.col("message_id"),
    pl.col("event_name").fill_null(""),
    *[pl.col(_STRING_COLUMNS[m]) for m in _MIDDLE],
]
_CANONICAL = (
    pl.col("tiled")
    & ~pl.any_horizontal(column.str.contains(_NOT_PLAIN) for column in _PLAIN_STRINGS)
    & ~pl.col("bad_utf8")
)


def _is_json_object(texts: pl.Series) -> pl.Series:
    """Whether each text is a compact JSON object orjson reads, checked once per distinct text
    (a device's context repeats on every event it sends)."""
    distinct = texts.unique()
    valid = distinct.filter(distinct.str.contains(_JSON_OBJECT))
    return texts.is_in(valid.implode())


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
        end = _value_end(text, at)
        spans[key] = (at, end)
        at = _WHITESPACE.match(text, end).end()
        if text[at] == ",":
            at = _WHITESPACE.match(text, at + 1).end()
    return spans


# A JSON string, or one bracket of an object or array: what matters to find where a value ends.
_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_DEPTH = {"{": 1, "[": 1, "}": -1, "]": -1}


def _value_end(text: str, at: int) -> int:
    """Where the valid JSON value starting at `at` ends: a scalar by the decoder, an object or
    array by counting brackets outside strings, so any nesting orjson accepts is followed
    without recursion."""
    if text[at] not in "{[":
        return _DECODER.raw_decode(text, at)[1]
    depth = 0
    for token in _BRACKET_OR_STRING.finditer(text, at):
        depth += _DEPTH.get(token.group(), 0)
        if depth == 0:
            return token.end()
    raise ValueError("unbalanced JSON")  # orjson accepted the line: cannot happen


# ---------------------------------------------------------------------------------------------
# Shared by both paths: timestamps, the partition, event time, dedupe, context columns


def _validate(
    fields: pl.DataFrame, receipt_day: date, seen: SeenKeys
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(clean rows, rejected lines, duplicates dropped) of the fields of consecutive lines;
    `seen` holds the message ids loaded from earlier blocks (16 bytes an id, checked in time
    that grows with the block, not with the day so far)."""
    partition = _fails(_RECEIVED_DAY.ne(pl.lit(receipt_day)), "received_outside_partition")
    reasons = [*_TIMESTAMP_CHECKS, partition]
    frame = (
        fields.lazy()
        .with_columns(_PARSED_TIMESTAMPS)
        .with_columns(_EVENT_TIMESTAMP)
        .with_columns(reason=pl.coalesce("reason", *reasons, _EVENT_TIME_CHECK))
        .collect()
    )
    valid = frame.filter(pl.col("reason").is_null())
    repeated = ~valid["message_id"].is_first_distinct()
    if seen.count:
        repeated = repeated | seen.contains(valid["message_id"])
    clean = valid.filter(~repeated)
    return (
        _clean_rows(clean, receipt_day),
        _rejected_rows(frame, receipt_day),
        valid.height - clean.height,
    )


def _outside(column: str) -> pl.Expr:
    """Unparseable (null), or a year no client or database here can hold."""
    earliest, latest = (pl.lit(bound, UTC_US) for bound in (_EARLIEST, _LATEST))
    return pl.col(column).is_null() | ~pl.col(column).is_between(earliest, latest)


def _fails(condition: pl.Expr, reason: str) -> pl.Expr:
    return pl.when(condition).then(pl.lit(reason))


# Built once: expressions with datetime literals cost more to build than to run on a block.
_PARSED_TIMESTAMPS = [
    pl.col(column).str.to_datetime(_ISO_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    for column in _TIMESTAMPS.values()
]
_EVENT_TIMESTAMP = (
    pl.col("received_at") - (pl.col("sent_at") - pl.col("original_timestamp"))
).alias("event_timestamp")
_TIMESTAMP_CHECKS = [
    _fails(_outside(column), f"invalid_value:{member}") for member, column in _TIMESTAMPS.items()
]
_RECEIVED_DAY = pl.col("received_at").dt.convert_time_zone(IST).dt.date()
_EVENT_TIME_CHECK = _fails(_outside("event_timestamp"), "out_of_range:event_timestamp")


def _clean_rows(valid: pl.DataFrame, receipt_day: date) -> pl.DataFrame:
    """The clean schema: partition, event day and the context's columns added."""
    rows = valid.with_columns(
        received_day=pl.lit(receipt_day, pl.Date),
        event_day=pl.col("event_timestamp").dt.convert_time_zone(IST).dt.date(),
    )
    return _with_context_columns(rows).select(list(APP_EVENTS_SCHEMA))


def _with_context_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """App version, OS, device model and locale from each distinct context (a device on a
    network), looked up once per context rather than once per event: a day has a few hundred
    distinct contexts per ten thousand events, and orjson reads one faster than polars'
    JSONPath finds five values in it."""
    contexts = pl.DataFrame(
        [_context_values(text) for text in rows["context"].unique()],
        schema={"context": pl.String, **dict.fromkeys(CONTEXT_COLUMNS, pl.String)},
        orient="row",
    )
    return rows.join(contexts, on="context", how="left", maintain_order="left")


def _context_values(text: str) -> tuple[str | None, ...]:
    """The context text and its CONTEXT_COLUMNS values (the text is a JSON object: both paths
    made sure of it)."""
    context = orjson.loads(text)
    return (text, *(_json_at(context, path) for path in CONTEXT_COLUMNS.values()))


def _json_at(value: Any, path: tuple[str, ...]) -> str | None:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _rejected_rows(frame: pl.DataFrame, receipt_day: date) -> pl.DataFrame:
    return frame.filter(pl.col("reason").is_not_null()).select(
        pl.lit(receipt_day, pl.Date).alias("received_day"),
        "line_number",
        pl.col("line").str.replace_all("\x00", "\ufffd", literal=True).alias("raw"),
        "reason",
    )


# Empty results, built once (frames are immutable; building one costs more than parsing a line).
_NO_ROWS = pl.DataFrame(schema=APP_EVENTS_SCHEMA)
_NO_REJECTS = pl.DataFrame(schema=QUARANTINE_SCHEMA)
