"""`api.event_intake`, the group commit, on a real landing folder: requests that arrive together
land as one durable file, and each still gets exactly its own answer or its own error."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi import HTTPException

from api import event_intake
from api.event_batches import FORBIDDEN_USER, Checked
from api.event_intake import EventIntake

USERS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(6)]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event(user: str, message_id: str, sent: str | None = None) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "messageId": message_id,
        "type": "track",
        "event": "video_started",
        "userId": user,
        "anonymousId": "a",
        "sessionId": "s",
        "originalTimestamp": _iso(now - timedelta(seconds=5)),
        "sentAt": sent or _iso(now),
        "properties": {"video_id": "v1"},
        "context": {"app": {"version": "3.4.0"}},
    }


def _body(*events: dict[str, object]) -> bytes:
    return orjson.dumps({"batch": list(events)})


async def _together(intake: EventIntake, calls: list[tuple[bytes, str]]) -> list[object]:
    """Every call made in the same turn of the event loop: all wait before the first group."""
    return await asyncio.gather(
        *(intake.land(body, user) for body, user in calls), return_exceptions=True
    )


def _landed(root: Path) -> list[Path]:
    return sorted(root.glob("app_events/dt=*/*.ndjson"))


def test_requests_that_arrive_together_land_as_one_file_each_with_its_own_answer(
    tmp_path: Path,
) -> None:
    intake = EventIntake(tmp_path)
    calls = [
        (_body(_event(USERS[0], "a1"), _event(USERS[0], "a2")), USERS[0]),
        (_body(_event(USERS[1], "b1"), _event(USERS[0], "b2")), USERS[1]),  # b2: not the caller
        (b"not json", USERS[2]),  # its own 400, nobody else's
        (_body(_event(USERS[3], "d1", sent="yesterday"), _event(USERS[3], "d2")), USERS[3]),
        (_body({"batch": "no"}), USERS[4]),
    ]
    outcomes = asyncio.run(_together(intake, calls))

    first, second, malformed, third, nothing = outcomes
    assert isinstance(first, Checked) and (sorted(first.lines), first.rejected) == ([0, 1], {})
    assert isinstance(second, Checked) and second.rejected == {1: FORBIDDEN_USER}
    assert isinstance(third, Checked) and third.rejected == {0: "invalid_value:sentAt"}
    assert isinstance(malformed, HTTPException) and malformed.status_code == 400
    assert isinstance(nothing, Checked) and nothing.rejected == {0: "missing_field:messageId"}

    files = _landed(tmp_path)
    assert len(files) == 1  # one parser call and one fsync for the whole group
    landed = [orjson.loads(line) for line in files[0].read_bytes().splitlines()]
    assert [event["messageId"] for event in landed] == ["a1", "a2", "b1", "d2"]  # arrival order
    assert all(event["receivedAt"] for event in landed)


def test_a_request_arriving_while_a_group_is_written_goes_in_the_next_group(
    tmp_path: Path,
) -> None:
    intake = EventIntake(tmp_path)

    async def scenario() -> list[Checked]:
        first = asyncio.create_task(intake.land(_body(_event(USERS[0], "x1")), USERS[0]))
        await asyncio.sleep(0)  # the first group is taken: it holds the first request only
        later = [intake.land(_body(_event(USERS[1], f"y{n}")), USERS[1]) for n in range(3)]
        return [await first, *await asyncio.gather(*later)]

    outcomes = asyncio.run(scenario())
    assert [len(outcome.lines) for outcome in outcomes] == [1, 1, 1, 1]
    assert [len(path.read_bytes().splitlines()) for path in _landed(tmp_path)] == [1, 3]


def test_a_group_is_capped_in_bytes(tmp_path: Path) -> None:
    calls = [(_body(_event(USERS[0], f"z{n}")), USERS[0]) for n in range(5)]
    intake = EventIntake(tmp_path, group_max_bytes=2 * len(calls[0][0]))
    outcomes = asyncio.run(_together(intake, calls))
    assert all(isinstance(outcome, Checked) and outcome.lines for outcome in outcomes)
    assert [len(path.read_bytes().splitlines()) for path in _landed(tmp_path)] == [2, 2, 1]


def test_a_failed_write_fails_every_request_of_its_group_and_acknowledges_none(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "landing"
    blocked.write_text("a file where the landing folder should be")
    intake = EventIntake(blocked)
    calls = [(_body(_event(user, f"w{n}")), user) for n, user in enumerate(USERS[:3])]
    outcomes = asyncio.run(_together(intake, calls))
    assert all(isinstance(outcome, OSError) for outcome in outcomes)

    # The intake is not stuck: once the folder can be made, the next group lands.
    blocked.unlink()
    again = asyncio.run(_together(intake, calls[:1]))
    assert isinstance(again[0], Checked) and len(_landed(blocked)) == 1


@pytest.mark.parametrize("size", [1, 500])
def test_a_lone_request_is_not_held_back(tmp_path: Path, size: int) -> None:
    intake = EventIntake(tmp_path)
    body = _body(*(_event(USERS[0], f"l{n}") for n in range(size)))
    (outcome,) = asyncio.run(_together(intake, [(body, USERS[0])]))
    assert isinstance(outcome, Checked) and len(outcome.lines) == size
    assert len(_landed(tmp_path)) == 1


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_a_batch_that_breaks_the_groups_parser_call_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever makes the shared parser call fail (here a line the wrapped real parser refuses
    to read), the other requests of the group still land and get their own answers."""
    real = event_intake.apply_parser

    def parser_that_breaks_on_poison(batches: list[Checked], day: date) -> None:
        if any(b"poison" in line for batch in batches for line in batch.lines.values()):
            raise RecursionError("maximum recursion depth exceeded")
        real(batches, day)

    monkeypatch.setattr(event_intake, "apply_parser", parser_that_breaks_on_poison)
    intake = EventIntake(tmp_path)
    calls = [
        (_body(_event(USERS[0], "a1")), USERS[0]),
        (_body(_event(USERS[1], "poison")), USERS[1]),
        (_body(_event(USERS[2], "c1"), _event(USERS[2], "c2")), USERS[2]),
    ]
    first, poisoned, third = asyncio.run(_together(intake, calls))

    assert isinstance(poisoned, RecursionError)
    assert isinstance(first, Checked) and sorted(first.lines) == [0]
    assert isinstance(third, Checked) and sorted(third.lines) == [0, 1]
    landed = [orjson.loads(line) for f in _landed(tmp_path) for line in f.read_bytes().splitlines()]
    assert [event["messageId"] for event in landed] == ["a1", "c1", "c2"]


def test_a_deeply_nested_event_is_refused_on_its_own_and_the_others_land(tmp_path: Path) -> None:
    deep = _event(USERS[1], "b1")
    deep["context"] = "DEEP"
    deep_body = _body(deep).replace(b'"DEEP"', _nested(300))
    calls = [(_body(_event(USERS[0], "a1")), USERS[0]), (deep_body, USERS[1])]
    first, refused = asyncio.run(_together(EventIntake(tmp_path), calls))

    assert isinstance(refused, HTTPException) and refused.status_code == 422
    assert "32 levels" in refused.detail
    assert isinstance(first, Checked) and sorted(first.lines) == [0]
    landed = [orjson.loads(line) for f in _landed(tmp_path) for line in f.read_bytes().splitlines()]
    assert [event["messageId"] for event in landed] == ["a1"]


def test_nesting_up_to_the_limit_is_taken(tmp_path: Path) -> None:
    """The body is level 1, `batch` 2, the event 3, `context` 4: 28 more levels fit."""
    event = _event(USERS[0], "a1")
    event["context"] = "DEEP"
    body = _body(event).replace(b'"DEEP"', _nested(28))
    (checked,) = asyncio.run(_together(EventIntake(tmp_path), [(body, USERS[0])]))
    assert isinstance(checked, Checked) and sorted(checked.lines) == [0]
