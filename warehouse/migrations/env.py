"""Alembic environment of the operational database.

Where the database URL comes from, first match wins:

1. `config.attributes["url"]` or the `sqlalchemy.url` option, set by `warehouse.migrate`;
2. `-x url=postgresql://...` on the alembic command line;
3. `MITRA_OPERATIONAL_URL` (settings), or, when it is unset, the embedded server's operational
   database, started on demand (DESIGN §4).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from warehouse import urls
from warehouse.migrate import include_name_hook
from warehouse.operational.models import Base

config = context.config
target_metadata = Base.metadata

# Only the command line has an ini file; programmatic runs keep the caller's logging alone.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Offline (`--sql`) runs only need the dialect when no database is configured.
DIALECT_ONLY_URL = "postgresql+psycopg://"


def configured_url() -> str | None:
    """The URL given explicitly by the caller or the command line, as a SQLAlchemy URL."""
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return urls.sqlalchemy_url(url)
    from_cli = context.get_x_argument(as_dictionary=True).get("url")
    if from_cli:
        return urls.sqlalchemy_url(from_cli)
    return None


def settings_url() -> str:
    """The operational URL from settings, or the embedded server's when it is unset.

    A configured MITRA_OPERATIONAL_URL is used as is: resolving all three databases would start
    the embedded server just to name warehouse and Dagster databases this command never uses.
    """
    from warehouse.databases import resolve_database_urls
    from warehouse.settings import get_settings

    settings = get_settings()
    if settings.operational_url:
        return urls.sqlalchemy_url(settings.operational_url)
    return urls.sqlalchemy_url(resolve_database_urls(settings).operational)


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=configured_url() or DIALECT_ONLY_URL,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection, all of them in one transaction."""
    engine = create_engine(configured_url() or settings_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                include_name=include_name_hook(connection),
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
