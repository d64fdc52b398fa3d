"""The read-only `analyst` role that dbt creates and grants (macros/analyst_role.sql).

A person logs in as their own role, a member of `analyst`: they read every marts relation and
nothing else, and can change nothing. Roles are cluster-wide and other test sessions may use
`analyst` at the same time: it is created if missing, never dropped; the roles made here have
unique names and are dropped at the end.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from tests.built_world import run_dbt
from warehouse import urls

pytestmark = pytest.mark.integration

ANALYST = "analyst"  # the default of the var analyst_role
# Schemas a role may use without a grant (PostgreSQL's defaults for PUBLIC).
OPEN_SCHEMAS = {"public", "pg_catalog", "information_schema"}


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(urls.libpq_url(url), autocommit=True)


def _as_role(url: str, role: str) -> psycopg.Connection:
    """A connection to the same server and database as `role` (trust authentication)."""
    return psycopg.connect(
        urls.libpq_url(urls.parse(url).set(username=role, password=None)), autocommit=True
    )


def _drop_role(conn: psycopg.Connection, role: str) -> None:
    """Drop a role made here, with what it owns and was granted in this database."""
    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def analyst_member(built_warehouse) -> Iterator[str]:
    """A LOGIN role, member of `analyst` and of nothing else, dropped afterwards."""
    role = f"mitra_test_reader_{uuid.uuid4().hex[:8]}"
    with _admin(built_warehouse.warehouse_url) as conn:
        # dbt created it, or another session did; if not, as dbt would.
        with contextlib.suppress(errors.DuplicateObject, errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(ANALYST)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(*map(sql.Identifier, (ANALYST, role))))
    try:
        yield role
    finally:
        with _admin(built_warehouse.warehouse_url) as conn:
            _drop_role(conn, role)


def _relations(conn: psycopg.Connection, schema: str) -> list[sql.Composable]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
        " ORDER BY table_name",
        (schema,),
    ).fetchall()
    return [sql.Identifier(schema, name) for (name,) in rows]


def test_analyst_reads_every_mart_and_nothing_else(built_warehouse, analyst_member) -> None:
    url = built_warehouse.warehouse_url
    with _admin(url) as admin:
        marts = _relations(admin, "marts")
        hidden = {schema: _relations(admin, schema) for schema in ("raw", "staging")}
        schemas = [
            name
            for (name,) in admin.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
            ).fetchall()
        ]
        usable = {
            schema
            for schema in schemas
            if admin.execute(
                "SELECT has_schema_privilege(%s, %s, 'USAGE')", (analyst_member, schema)
            ).fetchone()[0]
        }
        creatable = [
            schema
            for schema in schemas
            if admin.execute(
                "SELECT has_schema_privilege(%s, %s, 'CREATE')", (analyst_member, schema)
            ).fetchone()[0]
        ]
    assert marts and all(hidden.values()), (marts, hidden)
    # raw, quarantine, staging, intermediate, ml...: no usage; nowhere may it create.
    assert usable - OPEN_SCHEMAS == {"marts"}
    assert creatable == []

    with _as_role(url, analyst_member) as conn:
        for relation in marts:  # `+grants` covers every marts relation
            conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(relation)).fetchall()
        summary = conn.execute("SELECT count(*) FROM marts.agent_policy_summary").fetchone()[0]
        assert summary > 0

        for schema, relations in hidden.items():
            for relation in relations:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(relation))
            assert relations, schema

        writes = [
            "INSERT INTO marts.agent_policy_summary SELECT * FROM marts.agent_policy_summary",
            "UPDATE marts.agent_policy_summary SET agent_code = agent_code",
            "DELETE FROM marts.agent_policy_summary",
            "TRUNCATE marts.agent_policy_summary",
            "CREATE TABLE marts.analyst_scratch (id int)",
            "CREATE TABLE public.analyst_scratch (id int)",
            "CREATE VIEW public.analyst_scratch AS SELECT 1 AS one",
        ]
        for statement in writes:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
    with _admin(url) as admin:
        assert admin.execute("SELECT count(*) FROM marts.agent_policy_summary").fetchone()[0] == (
            summary
        )


def test_the_role_is_created_when_missing_and_needs_createrole(
    built_warehouse, analyst_member, tmp_path: Path
) -> None:
    """The on-run-start hook creates a missing role; a dbt user without CREATEROLE gets a clear
    error when the role is missing and nothing to do when it exists."""
    url = built_warehouse.warehouse_url
    role = f"mitra_test_analyst_{uuid.uuid4().hex[:8]}"
    role_vars = json.dumps({"analyst_role": role})
    target = tmp_path / "target"
    compiled = json.loads(
        run_dbt(
            url,
            target,
            "compile",
            "--quiet",
            "--output",
            "json",
            "--inline",
            "{{ create_analyst_role() }}",
            "--vars",
            role_vars,
        )
    )["compiled"]
    try:
        # `analyst_member` has no CREATEROLE: it cannot create the missing role.
        with _as_role(url, analyst_member) as conn, pytest.raises(errors.RaiseException) as raised:
            conn.execute(compiled)
        assert f"role {role} does not exist" in str(raised.value)
        assert "CREATEROLE" in (raised.value.diag.message_hint or "")

        # dbt as the owner, who may create roles (every other dbt run finds `analyst` there).
        run_dbt(url, target, "run", "--select", "stg_operational__providers", "--vars", role_vars)
        with _admin(url) as admin:
            login, superuser = admin.execute(
                "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            usage = admin.execute(
                "SELECT has_schema_privilege(%s, 'marts', 'USAGE')", (role,)
            ).fetchone()[0]
        assert (login, superuser, usage) == (False, False, True)

        # Now it exists, the hook needs no privilege.
        with _as_role(url, analyst_member) as conn:
            conn.execute(compiled)
    finally:
        with _admin(url) as admin:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists:
                _drop_role(admin, role)
