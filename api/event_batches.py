"""A batch of app events into landing lines: checked with ingestion's contract, kept verbatim.

Why it works the way it does:

- **One contract.** Each event is checked by the ingestion's own parser
  (`transforms.app_events.parse_app_events`) on exactly the line that will land, so an event the
  API accepts is one ingestion loads, and a refused event gets the reason quarantine would give
  it (`missing_field:sentAt`, `invalid_value:originalTimestamp`, ...). No second schema exists.
- **Verbatim bytes, with the server's clock.** An accepted event lands as the bytes the app sent
  (found by walking the body's JSON, never re-serialised), with one member set by the server:
  `receivedAt` is the server clock by definition (DESIGN §5; the app's own clocks are
  `originalTimestamp` and `sentAt`), it decides the partition, and the event time is derived
  from it. It is inserted right after `sentAt`, where the SDK's member order has it, so the line
  stays on ingestion's fast path, or replaces a value the app sent. Line breaks between JSON
  tokens (a pretty-printed event) become spaces, since an NDJSON line cannot hold them; JSON
  strings cannot contain raw line breaks, so no value changes.
- **Identity from the token.** `userId` is what the marts attribute an event to (and, through
  the user, the agent and the tenant), so it must be the caller's own user id: an event naming
  another user is refused (`forbidden:userId`) rather than rewritten, so accepted bytes stay the
  app's. Agent and tenant are not part of the event contract; they follow from the user.
- **Strict JSON, as ingestion reads it**: the body is read by orjson first (no NaN, no lone
  surrogates), so the span walk below, done with the standard library's scanner because it
  reports positions, only ever sees JSON both libraries read the same way.

Cost, measured on 2 cores (in process, fsync included): 9 ms for 20 events, 24 ms for 500
(270 kB); over HTTP p50 15 ms and 40 ms. Most of a small batch is the parser's fixed cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from json.decoder import scanstring

import orjson
from fastapi import HTTPException, status

from transforms.app_events import parse_app_events

MAX_EVENTS = 500
FORBIDDEN_USER = "forbidden:userId"

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
Span = tuple[int, int]


@dataclass
class Checked:
    """The outcome of a batch: landing lines of the accepted events, reasons of the others,
    both keyed by the event's 0-based index in the batch."""

    lines: dict[int, bytes] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- JSON spans


def _skip(text: str, at: int) -> int:
    return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]  # always matches


def _value_end(text: str, at: int) -> int:
    return _DECODER.raw_decode(text, at)[1]


def _members(text: str, at: int) -> dict[str, Span] | None:
    """Where each member's value lies in the valid JSON object starting at `at` (None if the
    value there is not an object). A repeated key keeps its last span, as orjson keeps its last
    value."""
    if text[at] != "{":
        return None
    spans: dict[str, Span] = {}
    at = _skip(text, at + 1)
    while text[at] != "}":
        key, at = scanstring(text, at + 1)
        start = _skip(text, _skip(text, at) + 1)  # past the colon
        spans[key] = (start, _value_end(text, start))
        at = _skip(text, spans[key][1])
        if text[at] == ",":
            at = _skip(text, at + 1)
    return spans


def _items(text: str, at: int) -> list[Span]:
    """Where each element of the valid JSON array starting at `at` lies."""
    spans: list[Span] = []
    at = _skip(text, at + 1)
    while text[at] != "]":
        spans.append((at, _value_end(text, at)))
        at = _skip(text, spans[-1][1])
        if text[at] == ",":
            at = _skip(text, at + 1)
    return spans


def batch_events(raw: bytes) -> tuple[str, list[Span]]:
    """The body as text and the span of each event of its `batch`, or the 4xx it deserves:
    400 not UTF-8 JSON, 422 not `{"batch": [...]}` with at least one event, 413 over 500."""
    try:
        text = raw.decode("utf-8")
        document = orjson.loads(raw)
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not UTF-8 JSON") from exc
    events = document.get("batch") if isinstance(document, dict) else None
    if not isinstance(events, list) or not events:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f'the body must be {{"batch": [event, ...]}} with 1 to {MAX_EVENTS} events',
        )
    if len(events) > MAX_EVENTS:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the batch holds {len(events)} events; at most {MAX_EVENTS} are taken at once",
        )
    members = _members(text, _skip(text, 0))
    assert members is not None  # orjson read an object
    return text, _items(text, members["batch"][0])


# --------------------------------------------------------------------------- events to lines


def server_time(moment: datetime) -> str:
    """`receivedAt` as the SDK writes times: UTC, milliseconds, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def landing_line(event: str, caller: str, received_at: str) -> str | None:
    """The line one event lands as (see the module docstring), or None when it names a user
    other than `caller`. A JSON value that is not an object is returned as it is, for the
    parser to reject."""
    members = _members(event, 0)
    if members is None:
        return event
    if "userId" in members:
        user_id = json.loads(event[slice(*members["userId"])])
        if isinstance(user_id, str) and user_id != caller:
            return None
    value = f'"{received_at}"'
    if "receivedAt" in members:
        start, end = members["receivedAt"]
        line = event[:start] + value + event[end:]
    elif "sentAt" in members:
        end = members["sentAt"][1]
        line = f'{event[:end]},"receivedAt":{value}{event[end:]}'
    else:  # the parser will say what is missing
        line = f'{{"receivedAt":{value}{"," if members else ""}{event[1:]}'
    if "\n" in line or "\r" in line:
        line = line.replace("\r", " ").replace("\n", " ")
    return line


def check_batch(raw: bytes, caller: str, moment: datetime, day: date) -> Checked:
    """Every event of the body as a landing line received at `moment` (on receipt `day`), or
    the reason it is refused."""
    text, spans = batch_events(raw)
    received_at = server_time(moment)
    checked = Checked()
    for index, (start, end) in enumerate(spans):
        line = landing_line(text[start:end], caller, received_at)
        if line is None:
            checked.rejected[index] = FORBIDDEN_USER
        else:
            checked.lines[index] = line.encode("utf-8")
    indexes = list(checked.lines)
    # A final newline: the parser then reads every line in one block (half its fixed cost).
    parsed = parse_app_events(b"\n".join(checked.lines.values()) + b"\n", day)
    for line_number, reason in parsed.rejected.select("line_number", "reason").iter_rows():
        index = indexes[line_number - 1]
        checked.rejected[index] = reason
        del checked.lines[index]
    return checked
