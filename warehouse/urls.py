"""PostgreSQL URL forms: one URL per database, spelt the way each client wants it.

Users set ordinary `postgresql://` URLs (or `postgres://`). SQLAlchemy wants the psycopg 3 driver
named, psycopg wants a libpq URI, dagster-postgres wants `postgresql+psycopg2` (its NOTIFY-based
event watcher breaks under psycopg 3, DESIGN §9) and dbt wants the parts one by one.
"""

from __future__ import annotations

from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url

EMBEDDED_SUPERUSER = "postgres"


def parse(url: str | URL) -> URL:
    """Parse any accepted spelling into a SQLAlchemy `URL` (no driver chosen yet)."""
    if isinstance(url, URL):
        return url
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed


def sqlalchemy_url(url: str | URL) -> str:
    """URL for `sqlalchemy.create_engine`, with the psycopg 3 driver."""
    return parse(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def psycopg2_url(url: str | URL) -> str:
    """URL for dagster-postgres' SQLAlchemy engines (psycopg2 driver)."""
    return parse(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def libpq_url(url: str | URL) -> str:
    """A libpq URI for `psycopg.connect` (no SQLAlchemy driver suffix)."""
    return parse(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str | URL, database: str) -> str:
    """The same server and credentials, another database; returned as a plain URL."""
    return parse(url).set(database=database).render_as_string(hide_password=False)


def database_name(url: str | URL) -> str:
    """The database a URL names."""
    name = parse(url).database
    if not name:
        raise ValueError("the URL names no database")
    return name


def display(url: str | URL) -> str:
    """A URL safe to print: the password masked."""
    return unquote(parse(url).render_as_string(hide_password=True))


def dbt_env(url: str | URL) -> dict[str, str]:
    """The `MITRA_WH_*` variables that `dbt_project/profiles.yml` reads.

    A Unix-socket URL (`?host=/path`) becomes the socket directory as host, which both psycopg2
    and dbt-postgres accept.
    """
    parsed = parse(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    return {
        "MITRA_WH_HOST": str(host),
        "MITRA_WH_PORT": str(parsed.port or 5432),
        "MITRA_WH_USER": parsed.username or EMBEDDED_SUPERUSER,
        "MITRA_WH_PASSWORD": parsed.password or "",
        "MITRA_WH_DBNAME": parsed.database or "",
    }
