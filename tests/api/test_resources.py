"""Operational resources over HTTP: roles, tenant isolation (in the API and in PostgreSQL), audit
rows, idempotent creates, optimistic concurrency, pagination and Indian formats."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from api.db import scoped_session
from api.security.tokens import Principal
from tests.api.conftest import Api, World
from warehouse.operational.enums import UserRole
from warehouse.operational.models import InsurancePolicy, Policyholder

POLICY_BODY = {
    "policy_type": "term",
    "plan_name": "Tech Term",
    "sum_assured": "10000000.00",
    "premium_amount": "1250.50",
    "premium_mode": "monthly",
    "policy_term_years": 30,
    "premium_paying_term_years": 30,
    "issue_date": "2026-01-15",
}


def _audit_rows(api: Api, entity_id: str) -> list[tuple]:
    with api.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT action, actor_user_id, actor_role::text, provider_id, old_values,"
                " new_values, host(ip_address), user_agent FROM audit_logs"
                " WHERE entity_id = :e ORDER BY id"
            ),
            {"e": entity_id},
        ).all()


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("who", "path", "expected"),
    [
        ("agent", "/v1/agents", 200),
        ("agent", "/v1/whatsapp-templates", 200),
        ("holder", "/v1/agents", 403),
        ("holder", "/v1/whatsapp-templates", 403),
        ("holder", "/v1/policies", 200),
        ("holder", "/v1/videos", 200),
        ("holder", "/v1/knowledge-base", 200),
        ("admin", "/v1/agents", 200),
        ("super", "/v1/agents", 200),
    ],
)
def test_each_role_reads_what_it_may(
    api: Api, world: World, who: str, path: str, expected: int
) -> None:
    users = {
        "agent": world.a.agent_user,
        "holder": world.a.holder_user,
        "admin": world.a.admin_user,
        "super": world.super_user,
    }
    with api.client(users[who]) as client:
        answer = client.get(path)
    assert answer.status_code == expected, answer.text
    if expected == 403:
        assert answer.headers["content-type"] == "application/problem+json"


def test_writes_refused_to_roles_without_them(api: Api, world: World) -> None:
    with api.client(world.a.holder_user) as holder, api.client(world.a.agent_user) as agent:
        assert (
            holder.post(
                "/v1/policyholders", json={"customer_code": "X", "full_name": "X"}
            ).status_code
            == 403
        )
        assert agent.post("/v1/whatsapp-templates", json={}).status_code == 403
        assert agent.post("/v1/agents", json={}).status_code == 403
        assert agent.post("/v1/knowledge-base", json={}).status_code == 403


def test_what_each_role_sees_of_policies(api: Api, world: World) -> None:
    def ids(user: uuid.UUID) -> set[str]:
        with api.client(user) as client:
            return {p["id"] for p in client.get("/v1/policies").json()["items"]}

    a = world.a
    mine, theirs = str(a.policy_id), str(a.other_agents_policy_id)
    assert ids(a.agent_user) == {mine}  # an agent: own customers only
    assert ids(a.holder_user) == {mine}  # a policyholder: own policies only
    assert {mine, theirs} <= ids(a.admin_user)  # the tenant's admin: all of the tenant
    assert str(world.b.policy_id) not in ids(a.admin_user)
    assert {mine, str(world.b.policy_id)} <= ids(world.super_user)


# --------------------------------------------------------------------------- tenant isolation


def test_another_tenants_rows_are_404_even_with_their_ids(api: Api, world: World) -> None:
    a, b = world.a, world.b
    with api.client(a.admin_user) as client:
        read = client.get(f"/v1/policies/{b.policy_id}")
        payments = client.get(f"/v1/policies/{b.policy_id}/premium-payments")
        change = client.patch(
            f"/v1/policies/{b.policy_id}", json={"plan_name": "stolen"}, headers={"If-Match": "*"}
        )
        delete = client.delete(f"/v1/videos/{b.video_id}")
        template = client.get(f"/v1/whatsapp-templates/{b.template_id}")
        create = client.post(
            "/v1/policies",
            json={**POLICY_BODY, "policyholder_id": str(b.holder_id), "policy_number": "STEAL-1"},
        )
        foreign_agent = client.post(
            "/v1/policyholders",
            json={"customer_code": "X-1", "full_name": "X", "agent_id": str(b.agent_id)},
        )
        foreign_tenant = client.post(
            "/v1/videos",
            json={
                "title": "t",
                "category": "c",
                "url": "https://v.example/x",
                "provider_id": str(b.provider_id),
            },
        )
    assert [r.status_code for r in (read, payments, change, delete, template)] == [404] * 5
    assert create.status_code == 422 and foreign_agent.status_code == 422
    assert foreign_tenant.status_code == 403
    with api.engine.connect() as conn:
        plan = conn.execute(
            text("SELECT plan_name FROM insurance_policies WHERE id = :i"), {"i": b.policy_id}
        ).scalar_one()
        video = conn.execute(
            text("SELECT status::text FROM video_content WHERE id = :i"), {"i": b.video_id}
        ).scalar_one()
    assert plan == "Jeevan" and video == "published"


def test_the_database_refuses_another_tenant_when_the_query_forgets(api: Api, world: World) -> None:
    """Row-level security beneath the API: queries with no tenant filter at all."""
    a, b = world.a, world.b
    agent = Principal(
        user_id=a.agent_user,
        role=UserRole.AGENT,
        session_id=uuid.uuid4(),
        tenant_ids=(a.provider_id,),
        agent_id=a.agent_id,
    )
    with scoped_session(api.engine, agent) as session:
        tenants = set(session.scalars(text("SELECT DISTINCT provider_id FROM insurance_policies")))
        payments = set(session.scalars(text("SELECT DISTINCT provider_id FROM premium_payments")))
        changed = session.execute(
            text("UPDATE insurance_policies SET plan_name = 'x' WHERE id = :i"),
            {"i": b.policy_id},
        ).rowcount
        foreign = session.get(InsurancePolicy, b.policy_id)
        role = session.scalar(text("SELECT current_user"))
    assert tenants == {a.provider_id} and payments == {a.provider_id}
    assert changed == 0 and foreign is None
    assert role == "mitra_api"
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        scoped_session(api.engine, agent) as session,
    ):
        session.add(
            Policyholder(
                provider_id=b.provider_id,
                agent_id=b.agent_id,
                customer_code="RLS-1",
                full_name="Nobody",
            )
        )
        session.flush()
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        scoped_session(api.engine, agent) as session,  # no DELETE grant at all
    ):
        session.execute(text("DELETE FROM insurance_policies WHERE id = :i"), {"i": a.policy_id})
    nobody = None
    with scoped_session(api.engine, nobody) as session:  # no tenant set: nothing visible
        assert session.scalar(text("SELECT count(*) FROM insurance_policies")) == 0


# --------------------------------------------------------------------------- writes and audit


def test_create_update_delete_each_write_audited(api: Api, world: World) -> None:
    a = world.a
    with api.client(a.agent_user) as client:
        created = client.post(
            "/v1/policyholders",
            headers={"User-Agent": "mitra-app/3.2"},
            json={
                "customer_code": "A-NEW-1",
                "full_name": "Meera Iyer",
                "phone": "+919876543210",
                "pan": "ABCDE1234F",
                "pincode": "560001",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["agent_id"] == str(a.agent_id) and body["provider_id"] == str(a.provider_id)
        assert created.headers["location"] == f"/v1/policyholders/{body['id']}"
        etag = created.headers["etag"]
        changed = client.patch(
            f"/v1/policyholders/{body['id']}",
            json={"city": "Mysuru"},
            headers={"If-Match": etag, "User-Agent": "mitra-app/3.2"},
        )
        assert changed.status_code == 200 and changed.json()["city"] == "Mysuru"
        assert changed.headers["etag"] != etag
        gone = client.delete(f"/v1/policyholders/{body['id']}")
        assert gone.status_code == 204
        assert client.get(f"/v1/policyholders/{body['id']}").status_code == 404
    rows = _audit_rows(api, body["id"])
    assert [r[0] for r in rows] == ["create", "update", "delete"]
    assert {r[1] for r in rows} == {a.agent_user} and {r[2] for r in rows} == {"agent"}
    assert {r[3] for r in rows} == {a.provider_id}
    assert rows[0][4] is None and rows[0][5]["full_name"] == "Meera Iyer"
    assert rows[1][4] == {"city": None} and rows[1][5] == {"city": "Mysuru"}
    assert rows[2][4] == {"deleted_at": None} and rows[2][5]["deleted_at"]
    assert rows[0][6] == "127.0.0.1" and rows[0][7] == "mitra-app/3.2"
    with api.engine.connect() as conn:  # soft: the row is still there
        assert conn.execute(
            text("SELECT deleted_at IS NOT NULL FROM policyholders WHERE id = :i"),
            {"i": body["id"]},
        ).scalar_one()


def test_a_failed_write_leaves_no_audit_row(api: Api, world: World) -> None:
    with api.client(world.a.agent_user) as client:
        first = client.post(
            "/v1/policies",
            json={
                **POLICY_BODY,
                "policy_number": "DUP-1",
                "policyholder_id": str(world.a.holder_id),
            },
        )
        dup = client.post(
            "/v1/policies",
            json={
                **POLICY_BODY,
                "policy_number": "DUP-1",
                "policyholder_id": str(world.a.holder_id),
            },
        )
    assert first.status_code == 201 and dup.status_code == 409
    with api.engine.connect() as conn:
        creates = conn.execute(
            text(
                "SELECT count(*) FROM audit_logs WHERE entity_type = 'insurance_policy'"
                " AND action = 'create' AND new_values->>'policy_number' = 'DUP-1'"
            )
        ).scalar_one()
    assert creates == 1


def test_idempotent_create_replays_and_refuses_a_changed_body(api: Api, world: World) -> None:
    key = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    body = {**POLICY_BODY, "policy_number": "IDEM-1", "policyholder_id": str(world.a.holder_id)}
    with api.client(world.a.agent_user) as client:
        first = client.post("/v1/policies", json=body, headers=key)
        again = client.post("/v1/policies", json=body, headers=key)
        other = client.post("/v1/policies", json={**body, "plan_name": "Other"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 422
    with api.engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM insurance_policies WHERE policy_number = 'IDEM-1'")
        ).scalar_one()
        audits = conn.execute(
            text("SELECT count(*) FROM audit_logs WHERE entity_id = :i"), {"i": first.json()["id"]}
        ).scalar_one()
    assert count == 1 and audits == 1


def test_concurrent_creates_with_one_key_make_one_row(api: Api, world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = {**POLICY_BODY, "policy_number": "RACE-1", "policyholder_id": str(world.a.holder_id)}
    token = api.token(world.a.agent_user)

    def send(_: int) -> tuple[int, str]:
        import httpx

        answer = httpx.post(
            f"{api.base}/v1/policies",
            json=body,
            timeout=30,
            headers={**key, "Authorization": f"Bearer {token}"},
        )
        return answer.status_code, answer.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert {status for status, _ in results} == {201}
    assert len({row_id for _, row_id in results}) == 1


def test_stale_etag_is_412_and_missing_if_match_428(api: Api, world: World) -> None:
    path = f"/v1/videos/{world.a.video_id}"
    with api.client(world.a.admin_user) as client:
        etag = client.get(path).headers["etag"]
        first = client.patch(path, json={"title": "New title"}, headers={"If-Match": etag})
        stale = client.patch(path, json={"title": "Lost update"}, headers={"If-Match": etag})
        missing = client.patch(path, json={"title": "No precondition"})
        current = client.get(path)
    assert first.status_code == 200
    assert stale.status_code == 412 and stale.headers["etag"] == first.headers["etag"]
    assert missing.status_code == 428
    assert current.json()["title"] == "New title"


# --------------------------------------------------------------------------- lists and formats


def test_cursor_pagination_walks_every_row_once(api: Api, world: World) -> None:
    with api.client(world.super_user) as client:
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/policies", params=params).json()
            seen += [p["id"] for p in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = client.get("/v1/policies", params={"limit": 200}).json()["items"]
        filtered = client.get(
            "/v1/policies", params={"status": "active", "agent_id": str(world.b.agent_id)}
        )
        bad_cursor = client.get("/v1/policies", params={"cursor": "garbage"})
        unknown_filter = client.get("/v1/policies", params={"colour": "red"})
    assert seen == [p["id"] for p in everything] and len(seen) == len(set(seen))
    assert pages == (len(seen) + 1) // 2 or pages == len(seen) // 2 + 1
    assert {p["id"] for p in filtered.json()["items"]} == {str(world.b.policy_id)}
    assert bad_cursor.status_code == 400 and unknown_filter.status_code == 422


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "9876543210"),
        ("phone", "+14155550100"),
        ("pan", "abcde1234f"),
        ("pan", "ABCDE12345"),
        ("pincode", "060001"),
    ],
)
def test_indian_formats_are_validated(api: Api, world: World, field: str, value: str) -> None:
    with api.client(world.a.agent_user) as client:
        answer = client.post(
            "/v1/policyholders",
            json={"customer_code": f"F-{uuid.uuid4()}", "full_name": "F", field: value},
        )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["location"][-1] == field


def test_irdai_licence_is_validated(api: Api, world: World) -> None:
    with api.client(world.a.admin_user) as client:
        bad = client.post(
            "/v1/agents",
            json={
                "phone": "+919800000001",
                "full_name": "New",
                "agent_code": "TENA-9",
                "irdai_license_number": "12345",
            },
        )
        good = client.post(
            "/v1/agents",
            json={
                "phone": "+919800000001",
                "full_name": "New",
                "agent_code": "TENA-9",
                "irdai_license_number": "IRDAI/TENA-000009",
            },
        )
    assert bad.status_code == 422
    assert good.status_code == 201, good.text
    assert good.json()["provider_id"] == str(world.a.provider_id)


def test_every_tenant_table_has_row_level_security(api: Api) -> None:
    """A new table with a `provider_id` must come with its policies (see migration 0002)."""
    with api.engine.connect() as conn:
        unprotected = (
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
                    " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
                    " AND a.attname = 'provider_id' AND NOT c.relispartition"
                    " AND (NOT c.relrowsecurity OR NOT EXISTS"
                    "  (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))"
                    " AND c.relname <> 'insurance_providers'"
                )
            )
            .scalars()
            .all()
        )
        owns_nothing = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relowner = 'mitra_api'::regrole")
        ).scalar_one()
    assert unprotected == []
    assert owns_nothing == 0
