"""`api.event_batches` on its own: the landing line keeps the app's bytes and carries the
server's `receivedAt` as the value ingestion reads, however the event spells or repeats its keys
(the shortcut that finds a key without walking the event must never pick the wrong one)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from api.event_batches import FORBIDDEN_USER, batch_events, event_lines

CALLER = "9b1d2c5e-8f0a-4b7e-a1c3-2d4e6f8a0b1c"
MOMENT = datetime(2026, 11, 25, 10, 15, 30, 123456, tzinfo=UTC)
SERVER = "2026-11-25T10:15:30.123Z"
SENT = '"sentAt":"2026-11-25T10:15:29.000Z"'
BASE = (
    f'"messageId":"m1","type":"track","event":"e","userId":"{CALLER}","anonymousId":"a",'
    '"sessionId":"s","originalTimestamp":"2026-11-25T10:15:00.000Z"'
)


def _line(event: str) -> str:
    checked = event_lines(f'{{"batch":[{event}]}}'.encode(), CALLER, MOMENT)
    assert not checked.rejected
    return checked.lines[0].decode()


@pytest.mark.parametrize(
    "event",
    [
        # the SDK's order: inserted right after sentAt
        f'{{{BASE},{SENT},"properties":{{"k":"v"}}}}',
        # the key also inside a nested object and as a string value: found at the top level
        f'{{{BASE},"properties":{{"sentAt":"x","note":"sentAt"}},{SENT}}}',
        # the key inside another string, after an escaped quote
        f'{{{BASE},"properties":{{"note":"a \\"sentAt\\" b"}},{SENT}}}',
        # spelled with an escape
        f'{{{BASE},"\\u0073entAt":"2026-11-25T10:15:29.000Z","properties":{{}}}}',
        # whitespace and line breaks between tokens
        f'{{\n  {BASE},\n  "sentAt" :\t"2026-11-25T10:15:29.000Z",\n  "properties": {{}}\n}}',
    ],
)
def test_received_at_follows_sent_at_and_the_rest_is_verbatim(event: str) -> None:
    line = _line(event)
    assert "\n" not in line
    assert orjson.loads(line)["receivedAt"] == SERVER
    assert line.replace(f',"receivedAt":"{SERVER}"', "", 1) == event.replace("\n", " ")
    start = line.index(f',"receivedAt":"{SERVER}"')
    assert line[:start].endswith('"2026-11-25T10:15:29.000Z"')  # right after sentAt's value


@pytest.mark.parametrize(
    "event",
    [
        f'{{{BASE},{SENT},"receivedAt":"2020-01-01T00:00:00.000Z"}}',
        # a forged second receivedAt, spelled with an escape so the key occurs once literally:
        # the value ingestion reads (the last) must still be the server's
        f'{{{BASE},"sentAt":"x","receivedAt":"2020-01-01T00:00:00.000Z",'
        '"\\u0072eceivedAt":"2020-01-02T00:00:00.000Z"}',
        f'{{{BASE},"receivedAt":"a","properties":{{"receivedAt":"b"}},"receivedAt":"c"}}',
    ],
)
def test_an_app_sent_received_at_is_replaced_where_ingestion_reads_it(event: str) -> None:
    assert orjson.loads(_line(event))["receivedAt"] == SERVER


def test_another_users_event_is_refused_and_the_last_user_id_counts() -> None:
    other = f'"userId":"{"0" * 8}-0000-0000-0000-{"0" * 12}"'
    events = [
        f'{{{BASE},"sentAt":"x"}}',
        f'{{{BASE},{other},"sentAt":"x"}}',  # a repeated userId: the last one is read
        f'{{{other},"messageId":"m2","userId":"{CALLER}","sentAt":"x"}}',
    ]
    checked = event_lines(f'{{"batch":[{",".join(events)}]}}'.encode(), CALLER, MOMENT)
    assert checked.rejected == {1: FORBIDDEN_USER}
    assert sorted(checked.lines) == [0, 2]


def test_the_batch_member_is_found_when_events_mention_it() -> None:
    body = b'{"meta":{"batch":[1]},"batch":[{"event":"batch"},[1],"batch"]}'
    assert [text for text, _ in batch_events(body)] == ['{"event":"batch"}', "[1]", '"batch"']
    repeated = b'{"batch":[{"a":1}],"\\u0062atch":[{"b":2},{"c":3}]}'
    assert [value for _, value in batch_events(repeated)] == [{"b": 2}, {"c": 3}]
