"""The embedded PostgreSQL default, started for real in a temporary folder."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from warehouse import urls
from warehouse.databases import EMBEDDED_DATABASES, resolve_database_urls
from warehouse.embedded import EmbeddedPostgres, EmbeddedPostgresError
from warehouse.settings import Settings


@pytest.fixture
def home() -> Iterator[Path]:
    # A short path under /tmp: the server's Unix socket path must stay under ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="mitra-home-"))
    try:
        yield root
    finally:
        EmbeddedPostgres(root / "pg").down()
        shutil.rmtree(root, ignore_errors=True)


def test_up_creates_the_three_databases_and_is_reused(home: Path) -> None:
    settings = Settings(home=home, operational_url=None, warehouse_url=None, dagster_url=None)
    server = EmbeddedPostgres(settings.pg_root)
    assert not server.status().running

    first = resolve_database_urls(settings)
    pid = server.status().pid
    assert server.status().running
    for role, url in first.as_dict().items():
        with psycopg.connect(urls.libpq_url(url)) as conn:
            name, version = conn.execute(
                "SELECT current_database(), current_setting('server_version_num')"
            ).fetchone()
        assert name == EMBEDDED_DATABASES[role]
        assert int(version) >= 180000

    second = resolve_database_urls(settings)  # reuses the running server
    assert second == first
    assert server.status().pid == pid

    assert server.down() is True
    assert not server.status().running
    assert server.down() is False
    with pytest.raises(EmbeddedPostgresError, match="mitra db up"):
        server.url("agent_mitra")


def test_a_configured_url_wins(home: Path) -> None:
    settings = Settings(
        home=home,
        operational_url="postgresql://someone@db.example:5432/ops",
        warehouse_url="postgresql://someone@db.example:5432/wh",
        dagster_url="postgresql://someone@db.example:5432/dagster",
    )
    resolved = resolve_database_urls(settings)
    assert resolved.operational == "postgresql://someone@db.example:5432/ops"
    assert not EmbeddedPostgres(settings.pg_root).status().running  # nothing was started


def test_a_server_that_cannot_start_gives_a_clear_error(home: Path) -> None:
    blocker = home / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be")
    with pytest.raises(EmbeddedPostgresError, match="could not start the embedded PostgreSQL"):
        EmbeddedPostgres(blocker / "pg").up()
