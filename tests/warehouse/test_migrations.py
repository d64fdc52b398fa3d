"""The operational schema's migrations, on a real PostgreSQL.

What must hold: the migrations build exactly what the models describe (so autogenerate stays
trustworthy), they can be undone completely, and the database-side behaviour the models rely on
(updated_at trigger, append-only audit log, partitioning, partial and GIN indexes) is really there.

Tests that write to the shared `operational_url` database remove their rows again, or roll back,
so other test modules see an empty schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from warehouse import urls
from warehouse.migrate import alembic_config, current, downgrade, include_name_hook, upgrade
from warehouse.operational.enums import PG_ENUM_NAMES, ProviderStatus, ProviderType
from warehouse.operational.models import APPEND_ONLY_TABLES, Base, InsuranceProvider

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARTITION = "customer_analytics_default"
MODEL_TABLES = frozenset(Base.metadata.tables)


# --------------------------------------------------------------------------- helpers and fixtures


def migration_module(url: str, revision_id: str = "0001") -> ModuleType:
    """A revision's module (the first, which freezes the enums and triggers, by default), loaded
    by Alembic (its file name is not importable)."""
    script = ScriptDirectory.from_config(alembic_config(url))
    revision = script.get_revision(revision_id)
    assert revision is not None
    return revision.module


def union_over_revisions(url: str, constant: str) -> set[str]:
    """A per-revision table list (`TABLES`, `MUTABLE_TABLES`) over every revision."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return {name for rev in script.walk_revisions() for name in getattr(rev.module, constant, ())}


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def rows(url: str, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """Run a read-only query on its own connection."""
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture
def engine(operational_url: str) -> Iterator[Engine]:
    engine = create_engine(urls.sqlalchemy_url(operational_url), poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def provider_id(operational_url: str) -> Iterator[uuid.UUID]:
    """A committed insurer to hang test rows on; deleted again afterwards."""
    code = f"T{uuid.uuid4().hex[:10].upper()}"
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        (new_id,) = conn.execute(
            "INSERT INTO insurance_providers (code, name, provider_type) "
            "VALUES (%s, 'Test Life', 'life') RETURNING id",
            (code,),
        ).fetchone()
    yield new_id
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        conn.execute("DELETE FROM customer_analytics WHERE provider_id = %s", (new_id,))
        conn.execute("DELETE FROM insurance_providers WHERE id = %s", (new_id,))


# --------------------------------------------------------------------------- configuration


def test_alembic_config_carries_the_url_and_an_absolute_script_location() -> None:
    url = "postgresql://mitra:p%40ss%25word@db.internal:6432/agent_mitra"
    config = alembic_config(url)
    expected = "postgresql+psycopg://mitra:p%40ss%25word@db.internal:6432/agent_mitra"
    assert config.attributes["url"] == expected
    assert config.get_main_option("sqlalchemy.url") == expected  # '%' survives ConfigParser
    script_location = Path(config.get_main_option("script_location") or "")
    assert script_location.is_absolute()
    assert (script_location / "env.py").is_file()


# --------------------------------------------------------------------------- upgrade and downgrade


def public_objects(url: str) -> dict[str, set[str]]:
    """Tables, enum types and functions of schema `public`, Alembic's version table aside."""
    return {
        "tables": {
            name
            for (name,) in rows(
                url,
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p') AND relname <> 'alembic_version'",
            )
        },
        "enums": {
            name
            for (name,) in rows(
                url,
                "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace "
                "AND typtype = 'e'",
            )
        },
        "functions": {
            name
            for (name,) in rows(
                url, "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            )
        },
    }


def test_upgrade_downgrade_upgrade_round_trip(empty_database: str) -> None:
    head = head_revision(empty_database)
    assert current(empty_database) is None

    upgrade(empty_database)
    built = public_objects(empty_database)
    assert current(empty_database) == head
    assert built["tables"] == MODEL_TABLES | {DEFAULT_PARTITION}
    assert built["enums"] == set(PG_ENUM_NAMES.values())
    assert built["functions"] == {
        "set_updated_at",
        "reject_audit_log_changes",
        "count_knowledge_base_use",
    }

    downgrade(empty_database, "base")
    assert current(empty_database) is None
    assert public_objects(empty_database) == {"tables": set(), "enums": set(), "functions": set()}

    upgrade(empty_database)
    assert current(empty_database) == head
    assert public_objects(empty_database) == built


def test_alembic_command_line_uses_the_environment_and_x_url(empty_database: str) -> None:
    """`alembic` from the repository root: MITRA_OPERATIONAL_URL, then `-x url=` (env.py)."""
    env = {**os.environ, "MITRA_OPERATIONAL_URL": empty_database}
    console_script = Path(sys.executable).with_name("alembic")
    alembic = (
        [str(console_script)] if console_script.exists() else [sys.executable, "-m", "alembic"]
    )

    def run(*args: str, run_env: dict[str, str]) -> str:
        done = subprocess.run(
            [*alembic, *args], cwd=REPO_ROOT, env=run_env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("upgrade", "head", run_env=env)
    # -x url must win over the environment, so point the environment nowhere.
    unreachable = {**os.environ, "MITRA_OPERATIONAL_URL": "postgresql://nobody@127.0.0.1:1/none"}
    shown = run("-x", f"url={empty_database}", "current", run_env=unreachable)
    assert f"{head_revision(empty_database)} (head)" in shown
    run("downgrade", "base", run_env=env)
    assert current(empty_database) is None


# --------------------------------------------------------------------------- models == migrations


def test_models_and_migrations_agree(operational_url: str, engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name_hook(conn)}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


CATALOG_QUERIES = {
    "columns": (
        "SELECT c.table_name, c.column_name, c.ordinal_position, c.udt_name, c.is_nullable, "
        "c.column_default, c.numeric_precision, c.numeric_scale, c.is_identity, "
        "col_description(cl.oid, c.ordinal_position::int) "
        "FROM information_schema.columns c "
        "JOIN pg_class cl ON cl.relname = c.table_name "
        "AND cl.relnamespace = 'public'::regnamespace "
        "WHERE c.table_schema = 'public' AND NOT cl.relispartition"
    ),
    "constraints": (
        "SELECT cl.relname, co.conname, pg_get_constraintdef(co.oid) FROM pg_constraint co "
        "JOIN pg_class cl ON cl.oid = co.conrelid "
        "WHERE cl.relnamespace = 'public'::regnamespace AND NOT cl.relispartition"
    ),
    "indexes": (
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class cl ON cl.relname = i.indexname "
        "AND cl.relnamespace = 'public'::regnamespace "
        "WHERE i.schemaname = 'public' AND NOT cl.relispartition"
    ),
    "partitioning": (
        "SELECT partrelid::regclass::text, pg_get_partkeydef(partrelid) FROM pg_partitioned_table"
    ),
    "enums": (
        "SELECT t.typname, e.enumsortorder, e.enumlabel FROM pg_enum e "
        "JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = 'public'::regnamespace"
    ),
}


def catalog(url: str) -> dict[str, set[tuple]]:
    """What PostgreSQL itself reports about the schema, normalised by the server, without
    Alembic's version table."""
    return {
        kind: {row for row in rows(url, query) if "alembic_version" not in str(row)}
        for kind, query in CATALOG_QUERIES.items()
    }


def test_migrations_build_exactly_what_the_models_create(
    operational_url: str, empty_database: str
) -> None:
    """Stricter than autogenerate, which ignores check constraints, index predicates, defaults
    and enum labels: `create_all` from the models and the migrations must give the same
    catalog, compared as PostgreSQL prints it."""
    engine = create_engine(urls.sqlalchemy_url(empty_database), poolclass=NullPool)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    from_models = catalog(empty_database)
    from_migrations = catalog(operational_url)
    for kind in CATALOG_QUERIES:
        assert from_migrations[kind] == from_models[kind], kind
        assert from_models[kind], kind


def test_enum_labels_agree(operational_url: str) -> None:
    """Alembic does not compare enum labels; the models, the migration and the DB must."""
    frozen = migration_module(operational_url).ENUM_TYPES
    for enum_cls, type_name in PG_ENUM_NAMES.items():
        labels = [
            label
            for (label,) in rows(
                operational_url,
                "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                "WHERE t.typname = %s ORDER BY e.enumsortorder",
                (type_name,),
            )
        ]
        assert labels == [member.value for member in enum_cls], type_name
        assert list(frozen[type_name]) == labels, type_name


def test_arrays_are_text_arrays(operational_url: str) -> None:
    """The warehouse copies these tables with COPY: arrays of enum types would not round-trip."""
    array_types = rows(
        operational_url,
        "SELECT table_name, column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'ARRAY'",
    )
    assert array_types
    assert {udt for _, _, udt in array_types} == {"_text"}


# --------------------------------------------------------------------------- updated_at trigger


def test_mutable_tables_constant_matches_models(operational_url: str) -> None:
    module = migration_module(operational_url)
    with_updated_at = {t.name for t in Base.metadata.tables.values() if "updated_at" in t.c}
    assert union_over_revisions(operational_url, "MUTABLE_TABLES") == with_updated_at
    assert len(module.MUTABLE_TABLES) == len(set(module.MUTABLE_TABLES))
    assert union_over_revisions(operational_url, "TABLES") == MODEL_TABLES
    assert MODEL_TABLES - with_updated_at == APPEND_ONLY_TABLES


def test_every_mutable_table_has_the_one_trigger(operational_url: str) -> None:
    triggers = rows(
        operational_url,
        "SELECT c.relname, p.proname FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE NOT t.tgisinternal AND p.proname = 'set_updated_at'",
    )
    mutable = union_over_revisions(operational_url, "MUTABLE_TABLES")
    assert {table for table, _ in triggers} == mutable
    assert len(triggers) == len(mutable)


def test_updated_at_trigger_sets_the_column_on_update(operational_url: str) -> None:
    code = f"T{uuid.uuid4().hex[:10].upper()}"
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        provider, created_at, updated_at = conn.execute(
            "INSERT INTO insurance_providers (code, name, provider_type) "
            "VALUES (%s, 'Before', 'life') RETURNING id, created_at, updated_at",
            (code,),
        ).fetchone()
    assert updated_at == created_at
    time.sleep(0.01)
    try:
        with psycopg.connect(urls.libpq_url(operational_url)) as conn:
            new_created, new_updated, tx_now = conn.execute(
                "UPDATE insurance_providers SET name = 'After' WHERE id = %s "
                "RETURNING created_at, updated_at, now()",
                (provider,),
            ).fetchone()
        assert new_created == created_at
        assert new_updated == tx_now
        assert new_updated > updated_at
    finally:
        with psycopg.connect(urls.libpq_url(operational_url)) as conn:
            conn.execute("DELETE FROM insurance_providers WHERE id = %s", (provider,))


def test_orm_sees_the_trigger_value_after_flush(engine: Engine) -> None:
    """`server_onupdate=FetchedValue()` makes the ORM reload updated_at instead of keeping it."""
    with Session(engine) as session:
        provider = InsuranceProvider(
            code=f"T{uuid.uuid4().hex[:10].upper()}",
            name="ORM Life",
            provider_type=ProviderType.LIFE,
        )
        session.add(provider)
        session.commit()
        assert provider.status is ProviderStatus.ACTIVE  # server default, stored as its label
        first = provider.updated_at
        time.sleep(0.01)
        provider.name = "ORM Life Renamed"
        session.commit()
        try:
            assert provider.updated_at > first
            assert provider.created_at == first
        finally:
            session.delete(provider)
            session.commit()


def test_audit_logs_are_append_only(operational_url: str) -> None:
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        (audit_id,) = conn.execute(
            "INSERT INTO audit_logs (action, entity_type, entity_id) "
            "VALUES ('update', 'insurance_policies', 'x') RETURNING id"
        ).fetchone()
        for statement in (
            "UPDATE audit_logs SET action = 'tampered' WHERE id = %s",
            "DELETE FROM audit_logs WHERE id = %s",
        ):
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
                conn.transaction(),
            ):
                conn.execute(statement, (audit_id,))
        conn.rollback()


# --------------------------------------------------------------------------- partitioning, indexes


def test_customer_analytics_is_range_partitioned_with_a_default(
    operational_url: str, provider_id: uuid.UUID
) -> None:
    [(strategy, key_columns)] = rows(
        operational_url,
        "SELECT p.partstrat, ARRAY(SELECT a.attname FROM unnest(p.partattrs) AS k(n) "
        "  JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.n) "
        "FROM pg_partitioned_table p WHERE p.partrelid = 'customer_analytics'::regclass",
    )
    assert strategy == "r"
    assert key_columns == ["timestamp"]

    [(pk_columns,)] = rows(
        operational_url,
        "SELECT ARRAY(SELECT a.attname FROM unnest(c.conkey) AS k(n) "
        "  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY a.attname) "
        "FROM pg_constraint c WHERE c.conrelid = 'customer_analytics'::regclass "
        "AND c.contype = 'p'",
    )
    assert pk_columns == ["id", "timestamp"]

    assert rows(
        operational_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'customer_analytics'::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'",
    ) == [(DEFAULT_PARTITION,)]

    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        (landed_in,) = conn.execute(
            "INSERT INTO customer_analytics (timestamp, provider_id, event_type) "
            "VALUES (%s, %s, 'screen_view') RETURNING tableoid::regclass::text",
            (datetime(2025, 3, 14, 9, 30, tzinfo=UTC), provider_id),
        ).fetchone()
    assert landed_in == DEFAULT_PARTITION


EXPECTED_PARTIAL_INDEXES = {
    "uq_users_phone_live": "WHERE (deleted_at IS NULL)",
    "uq_users_email_live": "WHERE ((deleted_at IS NULL) AND (email IS NOT NULL))",
    "ix_user_sessions_user_id_live": "WHERE (revoked_at IS NULL)",
    "ix_policyholders_agent_id_live": "WHERE (deleted_at IS NULL)",
    "ix_premium_payments_due_date_unpaid": "WHERE (status = 'due'::premium_payment_status)",
    "ix_chatbot_knowledge_base_active": "WHERE is_active",
}

EXPECTED_GIN_INDEXES = {
    "ix_video_content_tags": "video_content",
    "ix_video_content_policy_types": "video_content",
    "ix_chatbot_knowledge_base_keywords": "chatbot_knowledge_base",
    "ix_insurance_policies_nominee_details": "insurance_policies",
}

EXPECTED_COMPOSITE_INDEXES = {
    "ix_insurance_policies_agent_id_status": "(agent_id, status)",
    "ix_insurance_policies_provider_id_status": "(provider_id, status)",
    "uq_premium_payments_policy_id_due_date": "(policy_id, due_date)",
    "ix_agents_provider_id_status": "(provider_id, status)",
    "ix_audit_logs_entity_type_entity_id": "(entity_type, entity_id)",
    "ix_audit_logs_actor_user_id_occurred_at": "(actor_user_id, occurred_at)",
}


def index_definitions(url: str) -> dict[str, str]:
    return dict(rows(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))


@pytest.mark.parametrize(("name", "predicate"), sorted(EXPECTED_PARTIAL_INDEXES.items()))
def test_partial_indexes_exist(operational_url: str, name: str, predicate: str) -> None:
    definition = index_definitions(operational_url)[name]
    assert definition.endswith(predicate), definition


@pytest.mark.parametrize(("name", "table"), sorted(EXPECTED_GIN_INDEXES.items()))
def test_gin_indexes_exist(operational_url: str, name: str, table: str) -> None:
    definition = index_definitions(operational_url)[name]
    assert f"ON public.{table} USING gin " in definition, definition


@pytest.mark.parametrize(("name", "columns"), sorted(EXPECTED_COMPOSITE_INDEXES.items()))
def test_composite_indexes_exist(operational_url: str, name: str, columns: str) -> None:
    definition = index_definitions(operational_url)[name]
    assert definition.endswith(f"USING btree {columns}"), definition


def test_phone_is_unique_among_live_users_only(operational_url: str) -> None:
    """A recycled mobile number can sign up again once the old account is soft-deleted."""
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        insert = "INSERT INTO users (phone, role) VALUES ('+917000000001', 'agent') RETURNING id"
        (first,) = conn.execute(insert).fetchone()
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(insert)
        conn.execute("UPDATE users SET deleted_at = now() WHERE id = %s", (first,))
        conn.execute(insert)
        conn.rollback()


def test_whatsapp_template_names_are_checked(operational_url: str, provider_id: uuid.UUID) -> None:
    """Meta's rule: lower-case letters, digits and underscores (PostgreSQL regexes cap {m,n} at
    255, so the length is a separate condition)."""
    insert = (
        "INSERT INTO whatsapp_templates (provider_id, name, language, category, body)"
        " VALUES (%s, %s, 'en', 'utility', 'Your premium is due')"
    )
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        conn.execute(insert, (provider_id, "premium_due_reminder"))
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(insert, (provider_id, "Premium Due!"))
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(insert, (provider_id, "x" * 513))
        conn.rollback()
