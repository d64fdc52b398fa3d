"""Shared fixtures: a real PostgreSQL for every test session, with databases of its own.

`TEST_DATABASE_URL` (an admin URL, e.g. `postgresql://postgres@127.0.0.1:5432/postgres`) points
the tests at a running server; without it the embedded server is started in a temporary folder.
Each session creates fresh databases named `mitra_test_<random>_<role>` and drops exactly those.
Under CI (`CI=true`) a missing server is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from warehouse import urls
from warehouse.databases import drop_database, ensure_database
from warehouse.embedded import EmbeddedPostgres

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL on a running PostgreSQL: the configured test server or a fresh embedded one."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        try:
            with psycopg.connect(urls.libpq_url(configured), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}")
        yield urls.libpq_url(configured)
        return
    data_root = Path(tempfile.mkdtemp(prefix="mitra-pg-"))
    server = EmbeddedPostgres(data_root / "data")
    try:
        yield server.up()
    finally:
        server.down()
        shutil.rmtree(data_root, ignore_errors=True)


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: `make_database("op")` creates an empty database and returns its URL."""
    prefix = f"mitra_test_{uuid.uuid4().hex[:8]}_"
    created: list[str] = []

    def factory(role: str) -> str:
        name = f"{prefix}{role}_{len(created)}"
        ensure_database(pg_admin_url, name)
        created.append(name)
        return urls.with_database(pg_admin_url, name)

    yield factory
    for name in created:
        drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database(make_database: Callable[[str], str]) -> str:
    """A new, empty database for one test."""
    return make_database("empty")


@pytest.fixture(scope="session")
def operational_url(make_database: Callable[[str], str]) -> str:
    """The session's operational database, migrated to the newest revision."""
    from warehouse.migrate import upgrade

    url = make_database("op")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def warehouse_url(make_database: Callable[[str], str]) -> str:
    """The session's warehouse database with its schemas created."""
    from warehouse.warehouse_ddl import ensure_warehouse

    url = make_database("wh")
    ensure_warehouse(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis to test against: `REDIS_URL`, else the local default; an error in CI if absent."""
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI or "REDIS_URL" in os.environ:
            pytest.fail(f"Redis at {url} is unreachable: {exc}")
        pytest.skip(f"no Redis at {url} (set REDIS_URL)")
    return url


# The simulated world built through Dagster and dbt, shared by every package's tests that need
# marts (built at most once per session, on first use).
from tests.built_world import (  # noqa: E402, F401
    BuiltWarehouse,
    built_warehouse,
    trained_models,
)
