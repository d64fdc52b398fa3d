"""Run the operational database's Alembic migrations from Python (API start-up, CLI, tests).

The Alembic `Config` is built here rather than read from `alembic.ini`, and the script location
is resolved from this file, so migrating works from any working directory and from an installed
package. `alembic.ini` at the repository root serves the `alembic` command line and points at the
same scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from warehouse import urls

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

IncludeName = Callable[[str | None, str, dict[str, str | None]], bool]


def alembic_config(url: str) -> Config:
    """An Alembic config for the database at `url` (a plain `postgresql://` URL).

    The URL travels in `config.attributes["url"]` (read first by env.py) and in the
    `sqlalchemy.url` option for tools that look there; `%` is doubled for ConfigParser, which
    would otherwise treat URL-encoded password characters as interpolation.
    """
    engine_url = urls.sqlalchemy_url(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", engine_url.replace("%", "%%"))
    config.attributes["url"] = engine_url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (idempotent at head)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`; `base` removes the whole schema."""
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None when it was never migrated."""
    engine = create_engine(urls.sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def partition_tables(connection: Connection) -> frozenset[str]:
    """Names of the partitions (children of partitioned tables) in the current schema.

    Partitions are created at run time (the DEFAULT partition by the migration, monthly ones by
    partition management), so they are not in the models and must not count as schema drift.
    """
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c "
            "WHERE c.relispartition AND c.relkind IN ('r', 'p', 'f') "
            "AND c.relnamespace = current_schema()::regnamespace"
        )
    )
    return frozenset(row[0] for row in rows)


def include_name_hook(connection: Connection) -> IncludeName:
    """An Alembic `include_name` hook that hides partitions (see `partition_tables`).

    The partition list is read lazily, on the first table the comparison asks about: a query
    run before `context.begin_transaction()` would autobegin a transaction that Alembic then
    treats as the caller's, and the migration would be rolled back when the connection closes.
    Plain upgrades never compare, so they never run the query at all.
    """
    excluded: list[frozenset[str]] = []

    def include_name(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
        if type_ != "table":
            return True
        if not excluded:
            excluded.append(partition_tables(connection))
        return name not in excluded[0]

    return include_name
