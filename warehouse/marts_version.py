"""The marts version: one number that goes up whenever what the API serves from may have changed.

Why it exists: the API caches insight answers (DESIGN §2), and an answer must never be older than
the marts. Rather than deleting cache entries, every cache key carries the version, and the
pipeline bumps it after each step that wrote `marts` or `ml` (see
`orchestration.defs.marts_version`). Entries of an older version are then never read again and
expire on their own.

The one definition is a single-row table, `ops.marts_version`, created by `ensure_warehouse`:

- `version`: bumped with `UPDATE ... RETURNING` after the data has committed, so whoever reads
  the new number sees the new data;
- `warehouse_id`: a random id drawn when the table is created. Redis keys are prefixed with it
  (`redis_prefix`), so two warehouses (environments, test sessions) sharing one Redis never read
  each other's versions or answers, whatever URLs they are reached by;
- `refreshed_at`, `run_id`: which Dagster run bumped it last, for operators.

With `REDIS_URL` set, each bump is mirrored into Redis (`publish_version`), where the API reads it
in the same round trip as the answer. The mirror only ever moves forward (`SET_IF_NEWER`), so two
steps bumping at once cannot leave Redis on the older number, and it expires after
`REDIS_VERSION_TTL_MS`: if a mirror write is lost (Redis unreachable during a bump), the API
re-reads the warehouse at the latest that long after.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
import redis
from sqlalchemy import Connection, text

from warehouse import urls

DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS ops",
    """
    CREATE TABLE IF NOT EXISTS ops.marts_version (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        warehouse_id uuid NOT NULL DEFAULT gen_random_uuid(),
        version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
        refreshed_at timestamptz NOT NULL DEFAULT now(),
        run_id text
    )
    """,
    "INSERT INTO ops.marts_version (singleton) VALUES (true) ON CONFLICT DO NOTHING",
)

_BUMP = (
    "UPDATE ops.marts_version SET version = version + 1, refreshed_at = now(), run_id = %s"
    " RETURNING version, warehouse_id, refreshed_at, run_id"
)
READ_VERSION_SQL = "SELECT version FROM ops.marts_version"  # the version alone, for any driver
_READ = text("SELECT version, warehouse_id, refreshed_at, run_id FROM ops.marts_version")

# The Redis mirror of the version expires (and is re-read from the warehouse) after this long.
REDIS_VERSION_TTL_MS = 10 * 60 * 1000

# KEYS[1] the version key; ARGV[1] the version, ARGV[2] the expiry in ms. Sets the key only when
# it is absent or lower, and returns the version now stored.
SET_IF_NEWER = """
local current = tonumber(redis.call('GET', KEYS[1]))
local proposed = tonumber(ARGV[1])
if current == nil or current < proposed then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return proposed
end
return current
"""


@dataclass(frozen=True)
class MartsVersion:
    """The row of `ops.marts_version`."""

    version: int
    warehouse_id: uuid.UUID
    refreshed_at: datetime
    run_id: str | None


def redis_prefix(warehouse_id: uuid.UUID) -> str:
    """The prefix of every Redis key that belongs to this warehouse's answers."""
    return f"mitra:{warehouse_id.hex}"


def redis_version_key(warehouse_id: uuid.UUID) -> str:
    return f"{redis_prefix(warehouse_id)}:marts_version"


def ensure_marts_version_table(conn: psycopg.Connection) -> None:
    """Create `ops.marts_version` with its one row if missing (idempotent)."""
    for statement in DDL:
        conn.execute(statement)


def read_marts_version(conn: Connection) -> MartsVersion:
    """The current row, read through the API's SQLAlchemy engine."""
    row = conn.execute(_READ).one()
    return MartsVersion(row.version, row.warehouse_id, row.refreshed_at, row.run_id)


def publish_version(client: redis.Redis, marts: MartsVersion) -> int:
    """Mirror `marts` into Redis unless Redis already holds a newer version; returns Redis's."""
    stored = client.eval(
        SET_IF_NEWER,
        1,
        redis_version_key(marts.warehouse_id),
        marts.version,
        REDIS_VERSION_TTL_MS,
    )
    return int(stored)  # type: ignore[arg-type]


def bump_marts_version(
    warehouse_url: str, *, run_id: str | None = None, redis_url: str | None = None
) -> MartsVersion:
    """Add one to the version (committed before returning), then mirror it into Redis.

    Call it after the data it covers has committed. A Redis error propagates after the
    warehouse row has moved on: the caller decides whether to log or fail, and the API catches
    up when the mirror expires.
    """
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_marts_version_table(conn)
        row = conn.execute(_BUMP, (run_id,)).fetchone()
    assert row is not None  # the DDL inserts the single row
    marts = MartsVersion(int(row[0]), row[1], row[2], row[3])
    if redis_url:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2) as client:
            publish_version(client, marts)
    return marts
