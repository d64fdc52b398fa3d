"""`POST /v1/events` over HTTP against a real uvicorn server: what lands is what the app sent
(plus the server's receivedAt), ingestion's own parser and asset read it, and limits hold."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.security.tokens import Principal, issue_access_token
from transforms.app_events import parse_app_events
from warehouse.operational.enums import UserRole
from warehouse.settings import Settings

USER = uuid.uuid4()
RECEIVED_AT = re.compile(r',"receivedAt":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"')


def _auth(settings: Settings, user: uuid.UUID = USER) -> dict[str, str]:
    principal = Principal(
        user_id=user,
        role=UserRole.AGENT,
        session_id=uuid.uuid4(),
        tenant_ids=(uuid.uuid4(),),
        agent_id=uuid.uuid4(),
    )
    return {"Authorization": f"Bearer {issue_access_token(settings, principal)}"}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event(kind: str = "track", user: uuid.UUID = USER, **changes: Any) -> dict[str, Any]:
    """An event as the SDK writes it (member order included), without receivedAt."""
    now = datetime.now(UTC)
    name = {"track": {"event": "video_started"}, "screen": {"name": "Home"}}.get(kind, {})
    payload = {"traits": {"language": "hi"}} if kind == "identify" else {"properties": {}}
    if kind == "track":
        payload = {"properties": {"video_id": "v1", "title": "कर बचत 80C 🎬"}}
    event = {
        "messageId": str(uuid.uuid4()),
        "type": kind,
        **name,
        "userId": str(user),
        "anonymousId": str(uuid.uuid4()),
        "sessionId": str(uuid.uuid4()),
        "originalTimestamp": _iso(now - timedelta(seconds=20)),
        "sentAt": _iso(now - timedelta(seconds=1)),
        **payload,
        "context": {"app": {"version": "3.4.0"}, "os": {"name": "Android", "version": "14"}},
    }
    for key, value in changes.items():
        if value is None:
            del event[key]
        else:
            event[key] = value
    return event


def _batch(events: list[bytes]) -> bytes:
    return b'{"batch":[' + b",".join(events) + b"]}"


def _landed(settings: Settings) -> list[Path]:
    return sorted((settings.landing_root / "app_events").glob("dt=*/*"))


def _day(path: Path) -> date:
    return date.fromisoformat(path.parent.name.removeprefix("dt="))


def test_good_events_land_verbatim_and_bad_ones_are_listed(settings: Settings, base: str) -> None:
    good = [orjson.dumps(_event("track")), orjson.dumps(_event("screen"))]
    good.append(orjson.dumps(_event("identify")))
    pretty = _event("track")
    client_clock = _event("screen", receivedAt="1999-01-01T00:00:00Z")
    sent = [
        good[0],
        orjson.dumps(_event(sentAt=None)),
        good[1],
        b"42",
        orjson.dumps(_event(user=uuid.uuid4())),
        orjson.dumps(_event(originalTimestamp="yesterday")),
        good[2],
        orjson.dumps(pretty, option=orjson.OPT_INDENT_2),
        orjson.dumps(_event(sessionId=7)),
        orjson.dumps(client_clock),
    ]
    response = httpx.post(f"{base}/v1/events", content=_batch(sent), headers=_auth(settings))

    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": 5,
        "rejected": [
            {"index": 1, "reason": "missing_field:sentAt"},
            {"index": 3, "reason": "not_an_object"},
            {"index": 4, "reason": "forbidden:userId"},
            {"index": 5, "reason": "invalid_value:originalTimestamp"},
            {"index": 8, "reason": "wrong_type:sessionId"},
        ],
    }
    [path] = _landed(settings)  # one file, no temporary left behind
    assert path.name.endswith(".ndjson")
    data = path.read_bytes()
    lines = data.removesuffix(b"\n").split(b"\n")
    assert len(lines) == 5
    stamps = {RECEIVED_AT.search(line.decode()).group(1) for line in lines}
    assert len(stamps) == 1  # one server clock reading per request
    [stamp] = stamps
    # The compact events are the app's bytes exactly, receivedAt inserted after sentAt.
    for line, original in zip(lines[:3], good, strict=True):
        assert RECEIVED_AT.sub("", line.decode(), count=1).encode() == original
        assert line.index(b'"receivedAt"') > line.index(b'"sentAt"')
    assert b"\n" not in lines[3]
    assert orjson.loads(lines[3]) == {**pretty, "receivedAt": stamp}
    assert lines[4] == orjson.dumps(client_clock).replace(b"1999-01-01T00:00:00Z", stamp.encode())

    parsed = parse_app_events(data, _day(path))
    assert (parsed.clean.height, parsed.rejected.height, parsed.duplicates) == (5, 0, 0)
    assert set(parsed.clean["user_id"]) == {str(USER)}
    assert parsed.clean["properties"][0] == '{"video_id":"v1","title":"कर बचत 80C 🎬"}'


def test_concurrent_batches_each_get_their_own_answer_and_land_once(
    settings: Settings, base: str
) -> None:
    """Concurrent requests are checked and landed in groups (`api.event_intake`): each answer
    is still its own, and the landing zone holds exactly the accepted events."""
    users = [uuid.uuid4() for _ in range(4)]
    sent: list[tuple[uuid.UUID, list[dict[str, Any]]]] = [
        (user, [_event(user=user), _event(user=user, sentAt="soon"), _event(user=user)])
        for _ in range(10)
        for user in users
    ]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/events",
                        content=_batch([orjson.dumps(event) for event in events]),
                        headers=_auth(settings, user),
                    )
                    for user, events in sent
                )
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [202] * len(sent)
    assert all(
        r.json() == {"accepted": 2, "rejected": [{"index": 1, "reason": "invalid_value:sentAt"}]}
        for r in responses
    )
    landed = [
        orjson.loads(line) for path in _landed(settings) for line in path.read_bytes().splitlines()
    ]
    expected = {(str(user), e["messageId"]) for user, events in sent for e in events[::2]}
    assert sorted((e["userId"], e["messageId"]) for e in landed) == sorted(expected)
    assert len(_landed(settings)) <= len(sent)


def test_a_batch_without_any_good_event_is_422_and_stores_nothing(
    settings: Settings, base: str
) -> None:
    sent = [orjson.dumps(_event(messageId=None)), orjson.dumps(_event(type="page"))]
    response = httpx.post(f"{base}/v1/events", content=_batch(sent), headers=_auth(settings))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["accepted"] == 0
    assert body["rejected"] == [
        {"index": 0, "reason": "missing_field:messageId"},
        {"index": 1, "reason": "invalid_value:type"},
    ]
    assert _landed(settings) == []


def test_limits_501_events_and_over_1_mb(settings: Settings, base: str) -> None:
    headers = _auth(settings)
    too_many = _batch([orjson.dumps(_event()) for _ in range(501)])
    assert len(too_many) < 1 << 20
    response = httpx.post(f"{base}/v1/events", content=too_many, headers=headers)
    assert response.status_code == 413
    assert "501 events" in response.json()["detail"]

    big = _event(properties={"padding": "x" * (1 << 20)})
    oversized = _batch([orjson.dumps(big)])
    response = httpx.post(f"{base}/v1/events", content=oversized, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for start in range(0, len(oversized), 64 << 10):
            yield oversized[start : start + (64 << 10)]

    response = httpx.post(f"{base}/v1/events", content=chunks(), headers=headers)
    assert response.status_code == 413

    exactly_500 = _batch([orjson.dumps(_event()) for _ in range(500)])
    response = httpx.post(f"{base}/v1/events", content=exactly_500, headers=headers)
    assert response.json() == {"accepted": 500, "rejected": []}
    [path] = _landed(settings)
    assert parse_app_events(path.read_bytes(), _day(path)).clean.height == 500


def test_authentication_and_malformed_bodies(settings: Settings, base: str) -> None:
    body = _batch([orjson.dumps(_event())])
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = httpx.post(f"{base}/v1/events", content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    headers = _auth(settings)
    cases = {
        b'{"batch":[{"messageId":': 400,
        b'{"batch":[{"a":"\xff"}]}': 400,
        b'{"batch":[NaN]}': 400,
        b'{"events":[]}': 422,
        b'{"batch":[]}': 422,
        b'{"batch":{"messageId":"x"}}': 422,
        b"[]": 422,
    }
    for content, expected in cases.items():
        response = httpx.post(f"{base}/v1/events", content=content, headers=headers)
        assert response.status_code == expected, (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert _landed(settings) == []


def test_openapi_documents_the_endpoint(base: str) -> None:
    operation = httpx.get(f"{base}/openapi.json").json()["paths"]["/v1/events"]["post"]
    assert operation["summary"]
    assert "example" in operation["requestBody"]["content"]["application/json"]
    for code in ("400", "401", "413", "422"):
        assert "application/problem+json" in operation["responses"][code]["content"]


def test_the_ingestion_asset_loads_what_the_api_wrote(
    settings: Settings, base: str, own_warehouse: str
) -> None:
    from orchestration.defs.ingest.app_events import load_app_events_day
    from orchestration.resources import LandingResource

    events = [orjson.dumps(_event(kind)) for kind in ("track", "screen", "identify") * 4]
    response = httpx.post(f"{base}/v1/events", content=_batch(events), headers=_auth(settings))
    assert response.json()["accepted"] == 12
    day = _day(_landed(settings)[0])
    landing = LandingResource(root=str(settings.landing_root))
    counts, checks = load_app_events_day(day, landing, own_warehouse)
    assert counts["files"] == 1
    assert (counts["read"], counts["loaded"], counts["quarantined"]) == (12, 12, 0)
    assert all(check.passed for check in checks if check.name == "reconciliation")
