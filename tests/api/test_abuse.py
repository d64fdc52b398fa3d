"""Findings of a security test of the running API, each as the outcome it must now have: input
that cannot be stored or recursed over answers 422 problem+json, never 500."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import redis
import uvicorn
from sqlalchemy import make_url, text
from uvicorn.main import main as uvicorn_main

from api.insights.periods import FIRST_DAY, LAST_DAY, PERIODS
from api.main import create_app, uvicorn_proxy_flags
from tests.api.conftest import Api, World, new_phone
from tests.api.test_chat import fake_llm, llm_settings
from tests.live_server import free_port, live_server
from warehouse import urls
from warehouse.operational.rls import API_ROLE

REDIS_URL = "redis://127.0.0.1:6379/0"

POLICY = {
    "policy_type": "term",
    "plan_name": "Tech Term",
    "sum_assured": "10000000.00",
    "premium_amount": "1250.50",
    "premium_mode": "monthly",
    "policy_term_years": 30,
    "premium_paying_term_years": 30,
    "issue_date": "2026-01-15",
}


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _deep_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _is_problem(response, status: int = 422) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_nul_character_in_a_body_string_is_422(api: Api, world: World) -> None:
    with api.client(world.a.agent_user) as client:
        created = client.post(
            "/v1/policyholders", json={"customer_code": "NUL-1", "full_name": "Meera\x00 Iyer"}
        )
        nested = client.post(
            "/v1/policies",
            json={
                **POLICY,
                "policy_number": "NUL-2",
                "policyholder_id": str(world.a.holder_id),
                "nominee_details": [{"name": "Ravi\x00"}],
            },
        )
    _is_problem(created)
    assert "NUL" in created.text
    _is_problem(nested)


def test_a_nul_character_in_a_query_parameter_is_422(api: Api, world: World) -> None:
    with api.client(world.a.admin_user) as client:
        listed = client.get("/v1/agents?territory=north%00")
    _is_problem(listed)


@pytest.mark.parametrize("depth", [40, 1200])
def test_a_body_nested_too_deep_is_422(api: Api, world: World, depth: int) -> None:
    body = (
        b'{"policy_type":"term","plan_name":"T","sum_assured":"1","premium_amount":"1",'
        b'"premium_mode":"monthly","policy_term_years":1,"premium_paying_term_years":1,'
        b'"issue_date":"2026-01-15","policy_number":"DEEP-' + str(depth).encode() + b'",'
        b'"policyholder_id":"' + str(world.a.holder_id).encode() + b'",'
        b'"nominee_details":[' + _deep_json(depth) + b"]}"
    )
    with api.client(world.a.agent_user) as client:
        response = client.post(
            "/v1/policies", content=body, headers={"Content-Type": "application/json"}
        )
    _is_problem(response)
    assert "32 levels" in response.text


def test_an_event_batch_nested_1000_deep_is_422(api: Api, world: World) -> None:
    body = b'{"batch":[{"context":' + _deep_json(1000) + b"}]}"
    with api.client(world.a.agent_user) as client:
        response = client.post(
            "/v1/events", content=body, headers={"Content-Type": "application/json"}
        )
    _is_problem(response)


@pytest.mark.parametrize("period", ["day", "month", "year"])
@pytest.mark.parametrize("on", ["0001-01-01", "9999-12-31"])
def test_a_day_at_the_ends_of_the_calendar_is_422(
    api: Api, world: World, period: str, on: str
) -> None:
    with api.client(world.a.agent_user) as client:
        response = client.get(
            f"/v1/agents/{world.a.agent_id}/performance",
            params={"period": period, "on": on},
        )
    _is_problem(response)


def test_every_period_of_the_first_and_last_day_allowed_stays_in_the_calendar() -> None:
    for spec in PERIODS.values():
        for day in (FIRST_DAY, LAST_DAY):
            start = spec.start_of(day)
            assert spec.previous(start) < start <= day


def _phone_of(api: Api, user_id: uuid.UUID) -> str:
    with api.engine.connect() as conn:
        return conn.execute(
            text("SELECT phone FROM users WHERE id = :i"), {"i": user_id}
        ).scalar_one()


def test_every_conflict_of_a_new_agent_gets_one_answer(api: Api, world: World) -> None:
    """A provider admin cannot tell a phone at another insurer from a customer's phone or from
    a clash in their own tenant."""
    a, b = world.a, world.b
    clashes = {
        "agent at another insurer": {"phone": _phone_of(api, a.agent_user), "code": "B-NEW-1"},
        "policyholder's phone": {"phone": _phone_of(api, a.holder_user), "code": "B-NEW-2"},
        "own agent's phone": {"phone": _phone_of(api, b.agent_user), "code": "B-NEW-3"},
        "own agent code": {"phone": new_phone(), "code": "TENB-000001"},
    }
    answers = {}
    with api.client(b.admin_user) as client:
        for what, clash in clashes.items():
            response = client.post(
                "/v1/agents",
                json={
                    "phone": clash["phone"],
                    "full_name": "New Agent",
                    "agent_code": clash["code"],
                },
            )
            _is_problem(response, 409)
            body = response.json()
            answers[what] = (body["title"], body["detail"])
    assert len(set(answers.values())) == 1, answers


# --------------------------------------------------------------------------- rate limits


@contextmanager
def _app_with(api: Api, **overrides: Any) -> Iterator[str]:
    """The app on the session's databases with some settings changed; yields its base URL."""
    with live_server(create_app(api.settings.model_copy(update=overrides))) as base:
        yield base


def _forget_counts(api: Api, *users: uuid.UUID) -> None:
    """Start the users' rate-limit windows afresh: with Redis configured, every app of the
    session counts in the same keys, and earlier tests spent some of this minute's budget."""
    if not api.settings.redis_url:
        return
    client = redis.Redis.from_url(api.settings.redis_url)
    for user in users:
        for key in client.scan_iter(match=f"mitra:rl:*{user}*"):
            client.delete(key)


def _signed_in(api: Api, base: str, user: uuid.UUID) -> httpx.Client:
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {api.token(user)}"}, timeout=30
    )


def _event_body(user: uuid.UUID) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "batch": [
            {
                "messageId": str(uuid.uuid4()),
                "type": "track",
                "event": "app_opened",
                "userId": str(user),
                "anonymousId": "a",
                "sessionId": "s",
                "originalTimestamp": now,
                "sentAt": now,
                "properties": {},
                "context": {},
            }
        ]
    }


def _over_the_limit(response: httpx.Response, name: str) -> None:
    _is_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    assert name in response.json()["detail"]


def test_event_batches_are_limited_per_caller(api: Api, world: World) -> None:
    _forget_counts(api, world.a.agent_user, world.b.agent_user)
    with _app_with(api, events_rate_limit_per_minute=2) as base:
        with _signed_in(api, base, world.a.agent_user) as client:
            sent = [
                client.post("/v1/events", json=_event_body(world.a.agent_user)) for _ in range(3)
            ]
        with _signed_in(api, base, world.b.agent_user) as other:
            theirs = other.post("/v1/events", json=_event_body(world.b.agent_user))
    assert [r.status_code for r in sent[:2]] == [202, 202]
    _over_the_limit(sent[2], "events")
    assert theirs.status_code == 202  # another caller's budget is their own


def test_chat_and_summaries_are_limited_per_caller(api: Api, world: World) -> None:
    limits = {"chat_rate_limit_per_minute": 1, "summary_rate_limit_per_minute": 1}
    _forget_counts(api, world.a.agent_user)
    with _app_with(api, **limits) as base, _signed_in(api, base, world.a.agent_user) as client:
        asked = [client.post("/v1/chat", json={"question": "How do I sign in?"}) for _ in "12"]
        summaries = [client.get(f"/v1/agents/{world.a.agent_id}/summary") for _ in "12"]
    assert asked[0].status_code == 200
    _over_the_limit(asked[1], "chat")
    assert summaries[0].status_code == 503  # no marts in this warehouse: counted all the same
    _over_the_limit(summaries[1], "summary")


def test_language_model_calls_are_capped_per_insurer_and_day(api: Api, world: World) -> None:
    with (
        fake_llm() as llm,
        _app_with(
            api, **llm_settings(llm.base_url), llm_calls_per_tenant_per_day=2, redis_url=REDIS_URL
        ) as base,
    ):
        with _signed_in(api, base, world.a.agent_user) as agent:
            mine = [agent.post("/v1/chat", json={"question": "How do I sign in?"}) for _ in "123"]
        with _signed_in(api, base, world.b.agent_user) as other:
            theirs = other.post("/v1/chat", json={"question": "How do I sign in?"})
    assert [r.json()["source"] for r in mine[:2]] == ["llm", "llm"]
    _over_the_limit(mine[2], "language-model")
    assert int(mine[2].headers["Retry-After"]) <= 24 * 3600  # until midnight IST
    assert theirs.status_code == 200 and theirs.json()["source"] == "llm"
    assert len(llm.requests) == 3  # the refused question never reached the model


# --------------------------------------------------------------------------- mart exports

EXPORT_MART = "agent_performance_monthly"


@pytest.fixture(scope="module")
def wide_warehouse(make_database: Callable[[str], str]) -> str:
    """A warehouse with one mart of ~20 MB of CSV: more than a socket's buffers hold."""
    url = make_database("marts_wide")
    with psycopg.connect(urls.libpq_url(url)) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.agent_performance_monthly (provider_id uuid, agent_id uuid,"
            " month_start date, territory text, note text)"
        )
        conn.execute(
            "INSERT INTO marts.agent_performance_monthly SELECT gen_random_uuid(),"
            " gen_random_uuid(), date '2025-01-01', 'north', repeat('x', 1000)"
            " FROM generate_series(1, 20000)"
        )
    return url


def _exports_running(warehouse_url: str) -> int:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'agent_mitra_export' AND datname = current_database()"
        ).fetchone()[0]


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Whether `condition` holds within `seconds` (polled; the deadline is generous)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def _stalled_export(base: str, token: str) -> Iterator[socket.socket]:
    """An export whose client reads the status line, then nothing more (a tiny receive buffer,
    so the server's sends block as soon as the kernel's buffers are full)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect((host, int(port)))
    try:
        sock.sendall(
            f"GET /v1/marts/{EXPORT_MART}?format=csv HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        yield sock
    finally:
        sock.close()


def _drain(sock: socket.socket) -> int:
    """Bytes left to read until the server closes the connection."""
    size = 0
    while chunk := sock.recv(1 << 16):
        size += len(chunk)
    return size


def test_a_client_that_stops_reading_an_export_is_cut_off(
    api: Api, world: World, wide_warehouse: str
) -> None:
    settings = {"warehouse_url": wide_warehouse, "export_send_timeout_seconds": 1}
    with _app_with(api, **settings) as base:
        with _stalled_export(base, api.token(world.super_user)) as stalled:
            assert _wait_for(lambda: _exports_running(wide_warehouse) == 1)
            # The server gives up on the stalled client: the warehouse connection is returned
            # (long before the 15-minute statement timeout) and the transfer cut short.
            assert _wait_for(lambda: _exports_running(wide_warehouse) == 0)
            assert _drain(stalled) < 20_000 * 1000
        with _signed_in(api, base, world.super_user) as client:  # the slot was given back
            whole = client.get(f"/v1/marts/{EXPORT_MART}", params={"format": "csv", "limit": 5})
    assert whole.status_code == 200 and len(whole.text.splitlines()) == 6


def test_exports_running_at_once_are_capped_per_caller(
    api: Api, world: World, wide_warehouse: str
) -> None:
    settings = {"warehouse_url": wide_warehouse, "exports_per_caller": 1}
    path, small = f"/v1/marts/{EXPORT_MART}", {"format": "csv", "limit": 5}
    with _app_with(api, **settings) as base:
        with (
            _stalled_export(base, api.token(world.super_user)),
            _signed_in(api, base, world.super_user) as same,
            _signed_in(api, base, world.a.admin_user) as other,
        ):
            second = same.get(path, params=small)
            others = other.get(path, params=small)
        with _signed_in(api, base, world.super_user) as same:  # the stalled one hung up
            assert _wait_for(lambda: same.get(path, params=small).status_code == 200)
    _over_the_limit(second, "exports at once")
    assert others.status_code == 200


# --------------------------------------------------------------------------- proxies


@contextmanager
def _served_as_on_the_command_line(api: Api, **overrides: Any) -> Iterator[str]:
    """The app under uvicorn configured from the flags `mitra api` passes (parsed by uvicorn's
    own command line), so what is tested is what runs."""
    settings = api.settings.model_copy(update=overrides)
    flags = ["api.main:create_app", "--factory", *uvicorn_proxy_flags(settings)]
    params = uvicorn_main.make_context("uvicorn", flags).params
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, otp_sender=api.sender),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=params["proxy_headers"],
        forwarded_allow_ips=params["forwarded_allow_ips"],
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert _wait_for(lambda: server.started or not thread.is_alive())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _address_recorded(api: Api, base: str) -> str:
    """The client address an OTP request from here, claiming 203.0.113.9, is recorded with."""
    phone = new_phone()
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post(
            "/v1/auth/otp/request",
            json={"phone": phone},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    assert answer.status_code == 202, answer.text
    with api.engine.connect() as conn:
        return conn.execute(
            text("SELECT host(ip_address) FROM otp_challenges WHERE phone = :p"), {"p": phone}
        ).scalar_one()


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(api: Api) -> None:
    with _served_as_on_the_command_line(api) as base:
        assert _address_recorded(api, base) == "127.0.0.1"  # a local peer is not a proxy
    with _served_as_on_the_command_line(api, forwarded_allow_ips="127.0.0.1") as base:
        assert _address_recorded(api, base) == "203.0.113.9"


# --------------------------------------------------------------------------- idempotency keys


def _expire_key(api: Api, key: str) -> None:
    with api.engine.begin() as conn:
        conn.execute(
            text("UPDATE idempotency_keys SET expires_at = now() - interval '1 s' WHERE key = :k"),
            {"k": key},
        )


@pytest.fixture
def expiring_policies(api: Api) -> Iterator[list[str]]:
    """Policy numbers a test creates, deleted afterwards: the session's world stays as the
    other tests of the session expect it."""
    numbers: list[str] = []
    yield numbers
    with api.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM insurance_policies WHERE policy_number = ANY(:n)"), {"n": numbers}
        )


def test_an_expired_idempotency_key_is_not_replayed_and_expired_keys_are_purged(
    api: Api, world: World, expiring_policies: list[str]
) -> None:
    a = world.a
    key = f"expiring-{uuid.uuid4()}"
    expiring_policies.extend(["EXP-1", "EXP-2"])
    body = {**POLICY, "policy_number": "EXP-1", "policyholder_id": str(a.holder_id)}
    with api.client(a.agent_user) as client:
        first = client.post("/v1/policies", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        # Someone else's keys that expired long ago, and the caller's own now expired.
        with api.engine.begin() as conn:
            for n in range(3):
                conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (user_id, key, method, path, request_hash,"
                        " status_code, response_body, expires_at) VALUES (:u, :k, 'POST',"
                        " '/v1/policies', 'x', 201, '{}', now() - interval '2 days')"
                    ),
                    {"u": world.b.agent_user, "k": f"old-{uuid.uuid4()}-{n}"},
                )
        _expire_key(api, key)
        again = client.post(
            "/v1/policies",
            json={**body, "policy_number": "EXP-2"},
            headers={"Idempotency-Key": key},
        )
    assert again.status_code == 201, again.text  # a new request, not a replay or a 422
    assert "idempotency-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    with api.engine.connect() as conn:
        expired = conn.execute(
            text("SELECT count(*) FROM idempotency_keys WHERE expires_at <= now()")
        ).scalar_one()
        stored = conn.execute(
            text("SELECT response_body->>'policy_number' FROM idempotency_keys WHERE key = :k"),
            {"k": key},
        ).scalar_one()
    assert expired == 0 and stored == "EXP-2"


def test_a_login_without_delete_on_the_keys_still_creates_with_a_key(
    api: Api, world: World, expiring_policies: list[str]
) -> None:
    """Production's login is only a member of the API role: the purge is then skipped (an
    owner's job does it), never a failed create."""
    role = f"mitra_test_login_{uuid.uuid4().hex[:8]}"
    with api.engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN IN ROLE {API_ROLE}"))
    try:
        login_url = make_url(api.settings.operational_url).set(username=role, password=None)
        body = {**POLICY, "policy_number": "EXP-3", "policyholder_id": str(world.a.holder_id)}
        expiring_policies.append("EXP-3")
        with (
            _app_with(api, operational_url=login_url.render_as_string(hide_password=False)) as base,
            _signed_in(api, base, world.a.agent_user) as client,
        ):
            key = {"Idempotency-Key": f"login-{uuid.uuid4()}"}
            created = client.post("/v1/policies", json=body, headers=key)
            replayed = client.post("/v1/policies", json=body, headers=key)
        assert created.status_code == 201, created.text
        assert replayed.headers["idempotency-replayed"] == "true"
    finally:
        with api.engine.begin() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
