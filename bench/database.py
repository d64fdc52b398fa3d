"""A throw-away database for a benchmark, on the test server or the embedded one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from warehouse import urls
from warehouse.databases import drop_database, ensure_database
from warehouse.embedded import EmbeddedPostgres
from warehouse.settings import get_settings


@contextmanager
def scratch_database() -> Iterator[str]:
    """`BENCH_DATABASE_URL` / `TEST_DATABASE_URL` (admin URLs) if set, else the embedded server."""
    admin = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    admin = urls.libpq_url(admin) if admin else EmbeddedPostgres(get_settings().pg_root).up()
    name = f"mitra_bench_{uuid.uuid4().hex[:8]}"
    ensure_database(admin, name)
    try:
        yield urls.with_database(admin, name)
    finally:
        drop_database(admin, name)
