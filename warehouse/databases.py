"""Which PostgreSQL databases the platform talks to, and the engines for them.

Operational, warehouse and Dagster storage are three databases (DESIGN §2), even when one local
server holds all three. A URL that is set always wins; an unset one means the embedded server,
started on first use and reused afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from sqlalchemy import Engine, create_engine

from warehouse import urls
from warehouse.embedded import EmbeddedPostgres
from warehouse.settings import Settings

# Database names on the embedded server (DESIGN §4).
EMBEDDED_DATABASES = {
    "operational": "agent_mitra",
    "warehouse": "agent_mitra_wh",
    "dagster": "agent_mitra_dagster",
}


@dataclass(frozen=True)
class DatabaseUrls:
    """The three databases, as plain `postgresql://` URLs."""

    operational: str
    warehouse: str
    dagster: str

    def as_dict(self) -> dict[str, str]:
        return {
            "operational": self.operational,
            "warehouse": self.warehouse,
            "dagster": self.dagster,
        }


def ensure_database(admin_url: str, name: str) -> bool:
    """Create database `name` on the server of `admin_url` if it is missing. True if created."""
    with psycopg.connect(urls.libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, ending its other sessions first (tests and `mitra db` use this)."""
    with psycopg.connect(urls.libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


Role = Literal["operational", "warehouse", "dagster"]


def resolve_database_url(settings: Settings, role: Role) -> str:
    """The URL of one database: the configured one, else the embedded server's (started if needed).

    Embedded databases are created on first use, so `make demo` needs no set-up step.
    """
    configured = getattr(settings, f"{role}_url")
    if configured:
        return urls.libpq_url(configured)
    server = EmbeddedPostgres(settings.pg_root)
    ensure_database(server.up(), EMBEDDED_DATABASES[role])
    return server.url(EMBEDDED_DATABASES[role])


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    """The URLs of all three databases (see `resolve_database_url`)."""
    return DatabaseUrls(
        operational=resolve_database_url(settings, "operational"),
        warehouse=resolve_database_url(settings, "warehouse"),
        dagster=resolve_database_url(settings, "dagster"),
    )


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, connect_timeout: int = 5
) -> Engine:
    """A SQLAlchemy engine on psycopg 3, with a connect timeout so outages fail fast.

    `max_overflow` connections beyond the pool are closed when returned: a server whose worker
    threads outnumber the pool pays a new PostgreSQL session per overflow checkout, so a
    long-running server sizes the pool to its concurrency and sets no overflow (api/main.py).
    """
    return create_engine(
        urls.sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args={"connect_timeout": connect_timeout, "application_name": "agent_mitra"},
    )
