"""Sign-in over HTTP against the real app and PostgreSQL: the OTP flow and its limits, refresh
rotation with reuse detection, sign-out."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import text

from api.security.otp import MAX_ATTEMPTS, MAX_CODES_PER_IP
from tests.api.conftest import Api, World, new_phone


def _request(client: httpx.Client, phone: str) -> httpx.Response:
    return client.post("/v1/auth/otp/request", json={"phone": phone})


def _sign_in(api: Api, phone: str) -> dict:
    with api.client() as client:
        assert _request(client, phone).status_code == 202
        answer = client.post(
            "/v1/auth/otp/verify", json={"phone": phone, "code": api.sender.sent[phone]}
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _age_challenges(api: Api, phone: str, by: timedelta) -> None:
    """Move a phone's challenges into the past (what waiting would do)."""
    with api.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE otp_challenges SET created_at = created_at - :by,"
                " expires_at = expires_at - :by WHERE phone = :phone"
            ),
            {"by": by, "phone": phone},
        )


def test_first_sign_in_creates_a_policyholder_and_returns_tokens(api: Api) -> None:
    phone = new_phone()
    tokens = _sign_in(api, phone)
    assert tokens["role"] == "policyholder"
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    with api.client() as client:
        me = client.get(
            "/v1/policies", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert me.status_code == 200
    assert me.json() == {"items": [], "next_cursor": None}  # no policies yet, none of others
    with api.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT code_hash, consumed_at IS NOT NULL FROM otp_challenges WHERE phone = :p"),
            {"p": phone},
        ).one()
        audit = conn.execute(
            text(
                "SELECT count(*) FROM audit_logs WHERE action = 'login'"
                " AND actor_user_id = CAST(:u AS uuid)"
            ),
            {"u": tokens["user_id"]},
        ).scalar_one()
    code = api.sender.sent[phone]
    assert stored[1] is True
    assert code not in stored[0]
    assert stored[0] != hashlib.sha256(code.encode()).hexdigest()  # keyed, not a plain hash
    assert audit == 1


def test_a_known_agent_signs_in_with_role_and_tenant(api: Api, world: World) -> None:
    with api.engine.connect() as conn:
        phone = conn.execute(
            text("SELECT phone FROM users WHERE id = :u"), {"u": world.a.agent_user}
        ).scalar_one()
    tokens = _sign_in(api, phone)
    assert tokens["role"] == "agent"
    with api.client() as client:
        mine = client.get(
            f"/v1/policies/{world.a.policy_id}",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert mine.status_code == 200


def test_wrong_codes_count_and_the_fifth_ends_the_challenge(api: Api) -> None:
    phone = new_phone()
    with api.client() as client:
        assert _request(client, phone).status_code == 202
        right = api.sender.sent[phone]
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        answers = [
            client.post("/v1/auth/otp/verify", json={"phone": phone, "code": wrong})
            for _ in range(MAX_ATTEMPTS)
        ]
        after = client.post("/v1/auth/otp/verify", json={"phone": phone, "code": right})
    assert [a.status_code for a in answers] == [401] * (MAX_ATTEMPTS - 1) + [429]
    assert "4 attempts left" in answers[0].json()["detail"]
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert after.status_code == 429  # even the right code: the challenge is spent


def test_resend_waits_double_per_phone_and_address_with_no_lockout(api: Api) -> None:
    phone = new_phone()
    expected = [30, 60, 120, 240, 480, 900]  # doubling, capped at 15 minutes; never an hour
    with api.client() as client:
        assert _request(client, phone).status_code == 202
        for wait in expected:
            again = _request(client, phone)
            assert again.status_code == 429
            assert "recently" in again.json()["detail"]
            # Retry-After counts from the latest code: the time since it was sent is deducted.
            assert wait - 1 <= int(again.headers["Retry-After"]) <= wait
            _age_challenges(api, phone, timedelta(seconds=wait))
            assert _request(client, phone).status_code == 202, wait
    _age_challenges(api, phone, timedelta(hours=1))
    with api.client() as client:  # an hour without codes: the first wait again
        assert _request(client, phone).status_code == 202
        assert 29 <= int(_request(client, phone).headers["Retry-After"]) <= 30


def test_a_stranger_asking_codes_for_a_phone_does_not_stop_its_owner(api: Api) -> None:
    phone = new_phone()
    stranger = httpx.Client(
        base_url=api.base, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30
    )
    with stranger:
        assert _request(stranger, phone).status_code == 202
        refused = [_request(stranger, phone).status_code for _ in range(3)]
    assert refused == [429, 429, 429]  # the stranger's budget for this phone is spent
    with api.client() as owner:
        assert _request(owner, phone).status_code == 202
        signed_in = owner.post(
            "/v1/auth/otp/verify", json={"phone": phone, "code": api.sender.sent[phone]}
        )
    assert signed_in.status_code == 200, signed_in.text
    with api.engine.connect() as conn:
        addresses = (
            conn.execute(
                text(
                    "SELECT host(ip_address) FROM otp_challenges WHERE phone = :p"
                    " ORDER BY created_at"
                ),
                {"p": phone},
            )
            .scalars()
            .all()
        )
    assert addresses == ["127.0.0.2", "127.0.0.1"]


def test_hourly_limit_per_client_address(api: Api) -> None:
    # Earlier tests in this session asked from 127.0.0.1 too: fill up to the limit, then over.
    with api.engine.begin() as conn:
        conn.execute(text("DELETE FROM otp_challenges WHERE ip_address = '127.0.0.1'"))
    with api.client() as client:
        statuses = [_request(client, new_phone()).status_code for _ in range(MAX_CODES_PER_IP)]
        over = _request(client, new_phone())
    assert statuses == [202] * MAX_CODES_PER_IP
    assert over.status_code == 429
    assert "from one address" in over.json()["detail"]
    with api.engine.begin() as conn:
        conn.execute(text("DELETE FROM otp_challenges WHERE ip_address = '127.0.0.1'"))


def test_an_expired_code_is_refused(api: Api) -> None:
    phone = new_phone()
    with api.client() as client:
        assert _request(client, phone).status_code == 202
        _age_challenges(api, phone, timedelta(minutes=5, seconds=1))
        answer = client.post(
            "/v1/auth/otp/verify", json={"phone": phone, "code": api.sender.sent[phone]}
        )
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_phone_formats_are_validated(api: Api) -> None:
    with api.client() as client:
        for phone in ("9812345678", "+91 98123 45678", "+915812345678", "+14155550100"):
            assert _request(client, phone).status_code == 422, phone


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    first = _sign_in(api, new_phone())
    with api.client() as client:
        second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        new = second.json()
        assert new["refresh_token"] != first["refresh_token"]
        assert new["access_token"] != first["access_token"]
        # The old token again: theft assumed, the whole family is revoked...
        reused = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401
        assert "reused" in reused.json()["detail"]
        # ...so the legitimate holder's newer token is dead too.
        victim = client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert victim.status_code == 401
    with api.engine.connect() as conn:
        reasons = conn.execute(
            text(
                "SELECT revoked_reason, count(*) FROM user_sessions"
                " WHERE user_id = CAST(:u AS uuid) GROUP BY 1 ORDER BY 1"
            ),
            {"u": first["user_id"]},
        ).all()
    assert reasons == [("reuse_detected", 1), ("rotated", 1)]


def test_logout_ends_the_refresh_token(api: Api) -> None:
    tokens = _sign_in(api, new_phone())
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    with api.client() as client:
        assert client.post("/v1/auth/logout", headers=auth).status_code == 204
        after = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert after.status_code == 401


def test_missing_or_forged_tokens_are_401(api: Api) -> None:
    with api.client() as client:
        missing = client.get("/v1/policies")
        forged = client.get("/v1/policies", headers={"Authorization": "Bearer not.a.jwt"})
        unknown = client.post("/v1/auth/refresh", json={"refresh_token": "x" * 43})
    assert missing.status_code == forged.status_code == unknown.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
