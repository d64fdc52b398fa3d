"""`GET /v1/marts/{model}` over HTTP, on the warehouse built through Dagster and dbt.

Every format of every allowed mart is compared, row by row and value by value, with the mart read
directly for the caller's tenant; then filters, projection, roles, errors, the audit row, and a
large export that must stream in bounded memory (and whose rows/s per format are printed).
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import Session

from api.main import create_app
from api.marts_export import MARTS, PARQUET_ROWS_PER_GROUP, Column, parquet_schema, read_catalog
from api.security.sessions import TENANT_ADMIN_PERMISSION
from tests.api.signin import access_token
from tests.built_world import BuiltWarehouse
from tests.live_server import live_server
from warehouse import urls
from warehouse.operational.enums import UserRole, UserStatus
from warehouse.operational.models import Agent, AuditLog, User, UserPermission
from warehouse.settings import Settings

FORMATS = ("csv", "ndjson", "json", "parquet")


# --------------------------------------------------------------------------- the callers


@dataclass
class Callers:
    """Users made for these tests in the simulated operational database (and removed after)."""

    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    admin_a: uuid.UUID
    admin_b: uuid.UUID
    super_admin: uuid.UUID
    agent: uuid.UUID  # a simulated agent of tenant A, no grant
    analyst_agent: uuid.UUID  # another agent of tenant A, granted `analyst`
    analyst_without_tenant: uuid.UUID  # an agent account with no agent record, granted `analyst`
    analyst_policyholder: uuid.UUID  # a policyholder account granted `analyst`
    policyholder: uuid.UUID


@dataclass
class Exports:
    base: str
    settings: Settings
    owner: Any  # SQLAlchemy engine on the operational database, as its owner
    warehouse_url: str
    callers: Callers

    def token(self, user_id: uuid.UUID) -> str:
        return access_token(self.owner, self.settings, user_id)

    def client(self, user_id: uuid.UUID | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user_id)}"} if user_id else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)


_phones = iter(range(10_000))


def _user(session: Session, role: UserRole, name: str) -> User:
    user = User(
        phone=f"+9169{next(_phones):08d}", role=role, status=UserStatus.ACTIVE, full_name=name
    )
    session.add(user)
    session.flush()
    return user


def _grant(session: Session, user: uuid.UUID, permission: str, tenant: uuid.UUID | None) -> None:
    session.add(
        UserPermission(
            user_id=user,
            permission=permission,
            resource_type="insurance_provider" if tenant else None,
            resource_id=tenant,
        )
    )


@pytest.fixture(scope="module")
def exports(built_warehouse: BuiltWarehouse, tmp_path_factory) -> Iterator[Exports]:
    owner = create_engine(urls.sqlalchemy_url(built_warehouse.operational_url))
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as wh:
        tenants = [
            r[0]
            for r in wh.execute(
                "SELECT provider_id FROM marts.dim_agent GROUP BY 1 ORDER BY count(*) DESC, 1"
            )
        ]
    assert len(tenants) >= 2, "the built world should have two insurers with agents"
    tenant_a, tenant_b = tenants[0], tenants[1]
    made: list[uuid.UUID] = []
    with Session(owner) as session, session.begin():
        agents = session.scalars(
            select(Agent).where(Agent.provider_id == tenant_a).order_by(Agent.agent_code).limit(2)
        ).all()
        admin_a = _user(session, UserRole.PROVIDER_ADMIN, "export admin A")
        admin_b = _user(session, UserRole.PROVIDER_ADMIN, "export admin B")
        superuser = _user(session, UserRole.SUPER_ADMIN, "export super admin")
        orphan = _user(session, UserRole.AGENT, "analyst without an agent record")
        holder = _user(session, UserRole.POLICYHOLDER, "analyst policyholder")
        plain_holder = _user(session, UserRole.POLICYHOLDER, "plain policyholder")
        made += [admin_a.id, admin_b.id, superuser.id, orphan.id, holder.id, plain_holder.id]
        _grant(session, admin_a.id, TENANT_ADMIN_PERMISSION, tenant_a)
        _grant(session, admin_b.id, TENANT_ADMIN_PERMISSION, tenant_b)
        _grant(session, agents[1].user_id, "analyst", None)
        _grant(session, orphan.id, "analyst", None)
        _grant(session, holder.id, "analyst", None)
        callers = Callers(
            tenant_a=tenant_a,
            tenant_b=tenant_b,
            admin_a=admin_a.id,
            admin_b=admin_b.id,
            super_admin=superuser.id,
            agent=agents[0].user_id,
            analyst_agent=agents[1].user_id,
            analyst_without_tenant=orphan.id,
            analyst_policyholder=holder.id,
            policyholder=plain_holder.id,
        )
    settings = Settings(
        operational_url=built_warehouse.operational_url,
        warehouse_url=built_warehouse.warehouse_url,
        dagster_url=built_warehouse.operational_url,
        landing_url=str(tmp_path_factory.mktemp("landing")),
        export_rate_limit_per_minute=100_000,  # these tests export far more than a person would
    )
    try:
        with live_server(create_app(settings)) as base:
            yield Exports(base, settings, owner, built_warehouse.warehouse_url, callers)
    finally:
        with Session(owner) as session, session.begin():
            session.execute(
                delete(UserPermission).where(
                    UserPermission.user_id == callers.analyst_agent,
                    UserPermission.permission == "analyst",
                )
            )
            session.execute(text("DELETE FROM user_sessions WHERE user_id = ANY(:u)"), {"u": made})
            session.execute(delete(UserPermission).where(UserPermission.user_id.in_(made)))
            session.execute(delete(User).where(User.id.in_(made)))
        owner.dispose()


# --------------------------------------------------------------------------- reading back


def catalog(warehouse_url: str, mart: str) -> list[Column]:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        return read_catalog(conn, MARTS[mart])


def reference(
    warehouse_url: str, mart: str, tenant: uuid.UUID | None, where: str = "", params=()
) -> list[dict[str, Any]]:
    """The mart's rows for `tenant` (all when None), read directly, in the export's order."""
    m = MARTS[mart]
    conditions = [sql.SQL("provider_id = %s")] if tenant else []
    if where:
        conditions.append(sql.SQL(where))
    query = sql.SQL("SELECT * FROM {}").format(m.table)
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(sql.Identifier(c) for c in m.order_by)
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(query, ([tenant] if tenant else []) + list(params)).fetchall()


def _pg_array(value: str) -> list[str]:
    inner = value[1:-1]
    return next(csv.reader([inner])) if inner else []


def norm(column: Column, value: Any, *, fmt: str) -> Any:
    """A value of any format (or of psycopg) as one canonical Python value, by catalog type."""
    kind = column.pg_type
    if fmt == "csv" and value == "":
        return "" if kind in ("text", "varchar") else None
    if value is None:
        return "" if fmt == "csv" and kind in ("text", "varchar") else None
    if column.element is not None:
        return _pg_array(value) if isinstance(value, str) else list(value)
    if kind == "uuid":
        return uuid.UUID(str(value))
    if kind == "date":
        return value if isinstance(value, date) else date.fromisoformat(value)
    if kind == "timestamptz":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return moment.astimezone(UTC)
    if kind == "numeric":
        return Decimal(str(value))
    if kind in ("float4", "float8"):
        return float(value)
    if kind in ("int2", "int4", "int8"):
        return int(value)
    if kind == "bool":
        return {"t": True, "f": False}.get(value, value) if isinstance(value, str) else value
    return value


def rows_of(fmt: str, body: bytes) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    if fmt == "ndjson":
        return [json.loads(line, parse_float=Decimal) for line in body.splitlines() if line]
    if fmt == "json":
        return json.loads(body, parse_float=Decimal)
    return pq.read_table(pa.BufferReader(body)).to_pylist()


def assert_same_rows(
    columns: list[Column], got: list[dict[str, Any]], want: list[dict[str, Any]], fmt: str
) -> None:
    assert len(got) == len(want), f"{fmt}: {len(got)} rows, the mart has {len(want)}"
    names = [c.name for c in columns]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert list(g) == names, f"{fmt}: columns {list(g)}"
        for c in columns:
            assert norm(c, g[c.name], fmt=fmt) == norm(c, w[c.name], fmt=fmt), (
                f"{fmt}: row {i} column {c.name}: {g[c.name]!r} != {w[c.name]!r}"
            )


def export(client: httpx.Client, mart: str, **params: Any) -> httpx.Response:
    return client.get(f"/v1/marts/{mart}", params=params)


# --------------------------------------------------------------------------- the allowed list


def test_every_allowed_mart_is_built_tenanted_and_keyed(exports: Exports) -> None:
    """The allowed list against the built catalog: the table exists with a uuid `provider_id`,
    its filters have their types, the date column is a date, the order is total (its columns
    are a key); and every mart table left out has no `provider_id`."""
    from api.marts_export import FILTERS

    with psycopg.connect(urls.libpq_url(exports.warehouse_url)) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            )
        }
        for mart in MARTS.values():
            columns = {c.name: c for c in read_catalog(conn, mart)}
            assert columns["provider_id"].pg_type == "uuid", mart.name
            for name in mart.filter_columns:
                assert columns[name].pg_type in FILTERS[name].pg_types, (mart.name, name)
            if mart.date_column:
                assert columns[mart.date_column].pg_type == "date", mart.name
            key = sql.SQL(", ").join(sql.Identifier(c) for c in mart.order_by)
            total, distinct = conn.execute(
                sql.SQL("SELECT count(*), count(DISTINCT ({})) FROM {}").format(key, mart.table)
            ).fetchone()
            assert total == distinct, f"{mart.name}: {mart.order_by} is not a key"
        for table in tables - set(MARTS):
            has_tenant = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'marts'"
                " AND table_name = %s AND column_name = 'provider_id'",
                (table,),
            ).fetchone()
            assert not has_tenant, f"marts.{table} has tenants: add it to the allowed list?"


# --------------------------------------------------------------------------- contents


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_each_format_is_the_mart_for_the_callers_tenant(exports: Exports, mart: str) -> None:
    c = exports.callers
    columns = catalog(exports.warehouse_url, mart)
    want = reference(exports.warehouse_url, mart, c.tenant_a)
    with exports.client(c.admin_a) as client:
        for fmt in FORMATS:
            response = export(client, mart, format=fmt, ordered="true")
            assert response.status_code == 200, response.text
            assert response.headers["content-disposition"].startswith(
                f'attachment; filename="{mart}-'
            )
            assert response.headers["content-disposition"].endswith(f'.{fmt}"')
            got = rows_of(fmt, response.content)
            assert_same_rows(columns, got, want, fmt)
            assert all(row["provider_id"] in (str(c.tenant_a), c.tenant_a) for row in got)


def test_csv_is_postgresql_text_byte_for_byte(exports: Exports) -> None:
    """CSV passes PostgreSQL's own CSV through: the same bytes as a COPY by hand (UTC)."""
    c = exports.callers
    mart = MARTS["fct_premium_dues"]
    with psycopg.connect(urls.libpq_url(exports.warehouse_url)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        statement = sql.SQL(
            "COPY (SELECT * FROM {} WHERE provider_id = {} ORDER BY {}) TO STDOUT WITH CSV HEADER"
        ).format(
            mart.table,
            sql.Literal(c.tenant_a),
            sql.SQL(", ").join(sql.Identifier(k) for k in mart.order_by),
        )
        with conn.cursor().copy(statement) as copy:
            direct = b"".join(bytes(chunk) for chunk in copy)
    with exports.client(c.admin_a) as client:
        response = export(client, "fct_premium_dues", ordered="true")
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert response.content == direct
    assert response.content.count(b"\n") > 1000


def test_parquet_schema_follows_the_catalog(exports: Exports) -> None:
    c = exports.callers
    with exports.client(c.admin_a) as client:
        body = export(client, "agent_performance_daily", format="parquet").content
        dues = export(client, "fct_premium_dues", format="parquet").content
        content = export(client, "dim_content", format="parquet").content
    schema = pq.read_schema(pa.BufferReader(body))
    assert schema == parquet_schema(catalog(exports.warehouse_url, "agent_performance_daily"))
    assert schema.field("activity_date").type == pa.date32()
    assert schema.field("new_business_ape").type == pa.decimal128(16, 2)
    assert schema.field("renewal_collection_rate").type == pa.float64()
    assert schema.field("new_policies").type == pa.int64()
    assert schema.field("agent_id").type == pa.string()
    dues_schema = pq.read_schema(pa.BufferReader(dues))
    assert dues_schema.field("paid_at").type == pa.timestamp("us", tz="UTC")
    assert dues_schema.field("is_renewal").type == pa.bool_()
    assert dues_schema.field("amount_paid").type == pa.float64()  # numeric without a scale
    meta = pq.ParquetFile(pa.BufferReader(dues)).metadata
    rows = len(reference(exports.warehouse_url, "fct_premium_dues", c.tenant_a))
    assert meta.num_rows == rows
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(groups) == rows and max(groups) <= PARQUET_ROWS_PER_GROUP
    content_schema = pq.read_schema(pa.BufferReader(content))
    assert content_schema.field("policy_types").type == pa.list_(pa.string())


def test_tenants_are_kept_apart(exports: Exports) -> None:
    """Admin A gets A's rows only, admin B B's, and only super admins get every row, including
    rows without a tenant (chat-export messages matched to no agent)."""
    c = exports.callers
    mart = "fct_whatsapp_messages"
    everything = reference(exports.warehouse_url, mart, None)
    assert any(r["provider_id"] is None for r in everything), "expected rows without a tenant"
    for user, tenant in ((c.admin_a, c.tenant_a), (c.admin_b, c.tenant_b)):
        with exports.client(user) as client:
            got = rows_of("ndjson", export(client, mart, format="ndjson").content)
        assert {r["provider_id"] for r in got} == {str(tenant)}
        assert len(got) == len(reference(exports.warehouse_url, mart, tenant))
        with exports.client(user) as client:
            other = c.tenant_b if tenant == c.tenant_a else c.tenant_a
            assert export(client, mart, provider_id=str(other)).content.count(b"\n") == 1
    with exports.client(c.super_admin) as client:
        got = rows_of("ndjson", export(client, mart, format="ndjson", ordered="true").content)
        only_b = rows_of(
            "json", export(client, mart, format="json", provider_id=c.tenant_b).content
        )
    assert_same_rows(catalog(exports.warehouse_url, mart), got, everything, "ndjson")
    assert {r["provider_id"] for r in only_b} == {str(c.tenant_b)}


def test_unordered_exports_hold_the_same_rows(exports: Exports) -> None:
    """Without `ordered` (the fast default) the rows are the same, in storage order."""
    c = exports.callers
    mart = MARTS["fct_premium_dues"]
    columns = catalog(exports.warehouse_url, mart.name)
    want = reference(exports.warehouse_url, mart.name, c.tenant_a)
    by_name = {col.name: col for col in columns}
    with exports.client(c.admin_a) as client:
        for fmt in FORMATS:
            got = rows_of(fmt, export(client, mart.name, format=fmt).content)

            def order(row: dict[str, Any], fmt: str = fmt) -> tuple:
                return tuple(str(norm(by_name[k], row[k], fmt=fmt)) for k in mart.order_by)

            assert_same_rows(columns, sorted(got, key=order), sorted(want, key=order), fmt)


# --------------------------------------------------------------------------- filters


def test_filters_range_projection_and_limit(exports: Exports) -> None:
    c = exports.callers
    url = exports.warehouse_url
    daily = reference(url, "agent_performance_daily", c.tenant_a)
    agents = sorted({str(r["agent_id"]) for r in daily})[:2]
    days = sorted({r["activity_date"] for r in daily})
    first, last = days[2], days[5]
    with exports.client(c.admin_a) as client:
        got = rows_of(
            "json",
            client.get(
                "/v1/marts/agent_performance_daily",
                params=[
                    ("format", "json"),
                    ("ordered", "true"),
                    ("agent_id", agents[0]),
                    ("agent_id", agents[1]),
                    ("from", first.isoformat()),
                    ("to", last.isoformat()),
                    ("columns", "activity_date, agent_id,new_business_ape"),
                ],
            ).content,
        )
        want = [
            r for r in daily if str(r["agent_id"]) in agents and first <= r["activity_date"] < last
        ]
        assert len(got) == len(want) == 2 * 3  # from inclusive, to exclusive
        assert [list(r) for r in got] == [["activity_date", "agent_id", "new_business_ape"]] * 6
        assert [(r["agent_id"], r["activity_date"]) for r in got] == [
            (str(r["agent_id"]), r["activity_date"].isoformat()) for r in want
        ]

        territory = daily[0]["territory"]
        rows = rows_of(
            "csv", export(client, "agent_performance_daily", territory=territory).content
        )
        assert rows and {r["territory"] for r in rows} == {territory}
        assert len(rows) == sum(r["territory"] == territory for r in daily)

        limited = rows_of(
            "csv", export(client, "fct_premium_dues", limit=7, columns="due_date").content
        )
        dues = reference(url, "fct_premium_dues", c.tenant_a)
        assert [r["due_date"] for r in limited] == [r["due_date"].isoformat() for r in dues[:7]]

        months = rows_of(
            "ndjson",
            export(client, "agent_persistency", format="ndjson", persistency_month=25).content,
        )
        assert months and {r["persistency_month"] for r in months} == {25}

        outcome = rows_of(
            "parquet",
            export(client, "fct_premium_dues", format="parquet", outcome="lapsed").content,
        )
        assert len(outcome) == sum(r["outcome"] == "lapsed" for r in dues) > 0

        nothing = export(client, "dim_agent", format="parquet", agent_id=str(uuid.uuid4()))
        assert nothing.status_code == 200
        assert pq.read_table(pa.BufferReader(nothing.content)).num_rows == 0
        assert export(client, "dim_agent", format="json", territory="nowhere").json() == []


# --------------------------------------------------------------------------- formats by Accept


@pytest.mark.parametrize(
    ("accept", "content_type", "extension"),
    [
        (None, "text/csv; charset=utf-8; header=present", "csv"),
        ("*/*", "text/csv; charset=utf-8; header=present", "csv"),
        ("application/x-ndjson", "application/x-ndjson", "ndjson"),
        ("application/json", "application/json", "json"),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet", "parquet"),
        ("application/octet-stream", "application/octet-stream", "parquet"),
        ("application/json;q=0.5, text/csv", "text/csv; charset=utf-8; header=present", "csv"),
        ("text/html, application/x-ndjson;q=0.9", "application/x-ndjson", "ndjson"),
    ],
)
def test_accept_chooses_the_format(
    exports: Exports, accept: str | None, content_type: str, extension: str
) -> None:
    with exports.client(exports.callers.admin_a) as client:
        headers = {"Accept": accept} if accept else {}
        response = client.get("/v1/marts/dim_agent", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"].endswith(f'.{extension}"')
    assert response.headers["cache-control"] == "no-store"


def test_format_parameter_wins_over_accept_and_406_when_nothing_fits(exports: Exports) -> None:
    with exports.client(exports.callers.admin_a) as client:
        both = client.get(
            "/v1/marts/dim_agent", params={"format": "json"}, headers={"Accept": "text/csv"}
        )
        refused = client.get("/v1/marts/dim_agent", headers={"Accept": "image/png"})
    assert both.headers["content-type"] == "application/json"
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------- who may export


def test_roles_and_grants(exports: Exports) -> None:
    c = exports.callers
    for user in (c.agent, c.policyholder, c.analyst_policyholder, c.analyst_without_tenant):
        with exports.client(user) as client:
            response = export(client, "dim_agent")
        assert response.status_code == 403, (user, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    with exports.client(None) as client:
        assert export(client, "dim_agent").status_code == 401
    with exports.client(c.analyst_agent) as client:
        got = rows_of("csv", export(client, "dim_agent").content)
    assert {r["provider_id"] for r in got} == {str(c.tenant_a)}
    assert len(got) == len(reference(exports.warehouse_url, "dim_agent", c.tenant_a))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/marts/dim_users", {}, 404),
        ("/v1/marts/dim_date", {}, 404),
        ("/v1/marts/dim_agent", {"agent_id": "not-a-uuid"}, 422),
        ("/v1/marts/dim_agent", {"from": "2026-13-01"}, 422),
        ("/v1/marts/dim_agent", {"format": "xlsx"}, 422),
        ("/v1/marts/dim_agent", {"limit": "0"}, 422),
        ("/v1/marts/dim_agent", {"limit": "99999999999999999999"}, 422),
        ("/v1/marts/dim_agent", {"agentid": "x"}, 422),  # unknown parameter
        ("/v1/marts/dim_agent", {"outcome": "lapsed"}, 422),  # not a column of the mart
        ("/v1/marts/customer_360", {"from": "2026-09-01"}, 422),  # no date column
        ("/v1/marts/dim_agent", {"from": "2026-09-02", "to": "2026-09-01"}, 422),
        ("/v1/marts/dim_agent", {"columns": "agent_id,password"}, 422),
        ("/v1/marts/dim_agent", {"columns": "agent_id;drop table x"}, 422),
        ("/v1/marts/dim_agent", {"territory": "a\x00b"}, 422),
        ("/v1/marts/dim_agent", {"territory": ""}, 422),
        ("/v1/marts/agent_persistency", {"persistency_month": "13.5"}, 422),
    ],
)
def test_bad_requests_are_problems(exports: Exports, path: str, params: dict, status: int) -> None:
    with exports.client(exports.callers.admin_a) as client:
        response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if path.endswith("dim_users"):
        assert "fct_premium_dues" in response.json()["allowed"]


# --------------------------------------------------------------------------- audit


def test_an_export_is_audited_before_it_streams(exports: Exports) -> None:
    c = exports.callers
    request_id = uuid.uuid4().hex
    with exports.client(c.admin_a) as client:
        response = client.get(
            "/v1/marts/agent_performance_daily",
            params={"format": "ndjson", "territory": "nowhere", "from": "2026-09-01"},
            headers={"X-Request-ID": request_id},
        )
    assert response.status_code == 200
    with Session(exports.owner) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.request_id == request_id)).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.entity_type, row.entity_id) == (
        "export",
        "mart",
        "agent_performance_daily",
    )
    assert row.actor_user_id == c.admin_a and row.provider_id == c.tenant_a
    assert row.new_values["format"] == "ndjson"
    assert row.new_values["filters"] == {"territory": ["nowhere"]}
    assert row.new_values["from"] == "2026-09-01" and row.new_values["to"] is None
    assert row.new_values["tenants"] == [str(c.tenant_a)]


# --------------------------------------------------------------------------- a large export


BIG_MART = "fct_premium_dues"
BIG_COPIES = 60  # about 60 x 10k rows: 200 MB of CSV, 500 MB of JSON


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


@pytest.fixture(scope="module")
def big_warehouse(
    built_warehouse: BuiltWarehouse, make_database: Callable[[str], str]
) -> tuple[str, int]:
    """A warehouse whose `fct_premium_dues` is the built one's, BIG_COPIES times over."""
    url = make_database("marts_big")
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as source:
        definition = source.execute(
            "SELECT string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', '"
            " ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = 'marts.fct_premium_dues'::regclass"
            " AND attnum > 0 AND NOT attisdropped"
        ).fetchone()[0]
        with source.cursor().copy(
            "COPY marts.fct_premium_dues TO STDOUT WITH (FORMAT binary)"
        ) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
    with psycopg.connect(urls.libpq_url(url)) as target:
        target.execute("CREATE SCHEMA marts")
        target.execute(f"CREATE TABLE marts.fct_premium_dues ({definition})")
        with target.cursor().copy(
            "COPY marts.fct_premium_dues FROM STDIN WITH (FORMAT binary)"
        ) as c:
            c.write(data)
        target.execute(
            "INSERT INTO marts.fct_premium_dues SELECT d.* FROM marts.fct_premium_dues d,"
            " generate_series(2, %s)",
            (BIG_COPIES,),
        )
        target.execute("ANALYZE marts.fct_premium_dues")
        rows = target.execute("SELECT count(*) FROM marts.fct_premium_dues").fetchone()[0]
    return url, rows


@pytest.fixture(scope="module")
def big_client(exports: Exports, big_warehouse: tuple[str, int]) -> Iterator[httpx.Client]:
    """A super admin's client of the app serving the large warehouse."""
    url, _ = big_warehouse
    settings = exports.settings.model_copy(update={"warehouse_url": url})
    token = exports.token(exports.callers.super_admin)
    with (
        live_server(create_app(settings)) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as client,
    ):
        yield client


def _exports_running(warehouse_url: str) -> int:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'agent_mitra_export' AND datname = current_database()"
        ).fetchone()[0]


def test_a_large_export_streams_in_bounded_memory(
    big_client: httpx.Client, big_warehouse: tuple[str, int], tmp_path: Path
) -> None:
    """Each format of a mart of 600k rows, read by a client that keeps no body in memory: the
    first bytes come long before the last, the process' peak memory grows by a small part of
    the data, and every row arrives (Parquet readable). Prints rows/s per format."""
    _, rows = big_warehouse
    client = big_client
    report: list[str] = []
    sizes: dict[str, float] = {}
    for fmt in FORMATS:  # csv first: the others' memory is measured against its size
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to now
        before = _vm_kib("VmHWM")
        target = tmp_path / f"export.{fmt}"
        size = 0
        started = time.perf_counter()
        first_byte = None
        with client.stream("GET", f"/v1/marts/{BIG_MART}", params={"format": fmt}) as r:
            assert r.status_code == 200
            with target.open("wb") as out:
                for chunk in r.iter_bytes():
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    size += len(chunk)
                    out.write(chunk)
        total = time.perf_counter() - started
        grown_mb = (_vm_kib("VmHWM") - before) / 1024
        if fmt == "parquet":
            assert pq.ParquetFile(target).metadata.num_rows == rows
        else:
            lines = sum(1 for _ in target.open("rb"))
            assert lines == rows + {"csv": 1, "json": 2}.get(fmt, 0)
        report.append(
            f"{fmt:8} {rows} rows {size / 1e6:7.1f} MB {total:6.2f} s"
            f" {rows / total:9.0f} rows/s first byte {first_byte:5.2f} s"
            f" peak +{grown_mb:5.1f} MB"
        )
        assert first_byte is not None and first_byte < total / 2, report[-1]
        sizes[fmt] = size / 1e6
        # The peak grows by a small part of the data (its CSV is the smallest plain text).
        assert grown_mb < sizes["csv"] / 3, report[-1]
    print("\n" + "\n".join(report))


def test_a_client_that_leaves_ends_the_query(
    big_client: httpx.Client, big_warehouse: tuple[str, int]
) -> None:
    """Closing the response halfway cancels the COPY and closes its connection."""
    url, _ = big_warehouse
    for fmt in FORMATS:
        with big_client.stream("GET", f"/v1/marts/{BIG_MART}", params={"format": fmt}) as r:
            chunks = r.iter_raw()
            next(chunks)
            assert _exports_running(url) == 1
        deadline = time.monotonic() + 10
        while _exports_running(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _exports_running(url) == 0, fmt


def test_a_failure_midway_truncates_the_transfer(
    big_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once 200 is sent an error cannot be a problem+json any more: the transfer is cut (no
    last chunk), so the client knows the file is incomplete. Here the statement times out."""
    import api.marts_export

    monkeypatch.setattr(api.marts_export, "STATEMENT_TIMEOUT_MS", 300)
    received = 0
    with (
        pytest.raises(httpx.RemoteProtocolError),
        big_client.stream("GET", f"/v1/marts/{BIG_MART}", params={"format": "csv"}) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_raw():
            received += len(chunk)
    assert received > 0


# --------------------------------------------------------------------------- fuzzing


def test_no_input_breaks_the_contract_on_built_marts(exports: Exports) -> None:
    """schemathesis on this operation with real marts behind it (tests/api/test_openapi_fuzz.py
    runs every operation on an empty warehouse, where every export is a 404): no 5xx, and every
    answer as documented, for a tenant admin, whose token always wins over generated ones."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    from tests.api.test_openapi_fuzz import CHECKS, EXAMPLES

    schema = schemathesis.openapi.from_url(f"{exports.base}/openapi.json")
    operation = schema["/v1/marts/{model}"]["GET"]
    token = exports.token(exports.callers.admin_a)
    statuses: dict[int, int] = {}

    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    )
    @settings(
        max_examples=EXAMPLES * 4,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case) -> None:  # case: schemathesis' Case
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call(base_url=exports.base)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()
    assert statuses.get(200), statuses


def test_exports_are_rate_limited_per_caller(exports: Exports) -> None:
    limited = exports.settings.model_copy(update={"export_rate_limit_per_minute": 2})
    with Session(exports.owner) as session, session.begin():  # a caller with a fresh budget
        admin_id = _user(session, UserRole.PROVIDER_ADMIN, "rate-limited admin").id
        session.add(
            UserPermission(
                user_id=admin_id,
                permission=TENANT_ADMIN_PERMISSION,
                resource_type="insurance_provider",
                resource_id=exports.callers.tenant_a,
            )
        )
    token = exports.token(admin_id)
    try:
        with live_server(create_app(limited)) as base:
            answers = [
                httpx.get(
                    f"{base}/v1/marts/dim_agent",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                for _ in range(3)
            ]
    finally:
        with Session(exports.owner) as session, session.begin():
            session.execute(text("DELETE FROM user_sessions WHERE user_id = :u"), {"u": admin_id})
            session.execute(delete(UserPermission).where(UserPermission.user_id == admin_id))
            session.execute(delete(User).where(User.id == admin_id))
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    assert answers[2].headers["content-type"] == "application/problem+json"
