"""Throw-away databases for benchmarks, on the test server, the local one or the embedded one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from warehouse import urls
from warehouse.databases import drop_database, ensure_database
from warehouse.embedded import EmbeddedPostgres
from warehouse.settings import get_settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url(explicit: str | None = None) -> str:
    """The server to create scratch databases on: `explicit`, else `BENCH_DATABASE_URL`,
    `TEST_DATABASE_URL`, PostgreSQL on 127.0.0.1:5432, or the embedded server."""
    configured = (
        explicit or os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    )
    if configured:
        return urls.libpq_url(configured)
    try:
        with psycopg.connect(DEFAULT_ADMIN_URL, connect_timeout=3):
            return DEFAULT_ADMIN_URL
    except psycopg.OperationalError:
        return EmbeddedPostgres(get_settings().pg_root).up()


@contextmanager
def scratch_database(admin: str | None = None, label: str = "") -> Iterator[str]:
    """A new database on `admin`'s server (`admin_url()` when not given), dropped at the end."""
    admin = admin or admin_url()
    name = f"mitra_bench_{label}{uuid.uuid4().hex[:8]}"
    ensure_database(admin, name)
    try:
        yield urls.with_database(admin, name)
    finally:
        drop_database(admin, name)
