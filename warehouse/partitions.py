"""Range partitions by day or month: create them, and replace one atomically from a COPY stream.

Why swap instead of DELETE + INSERT: loading into a bare table and indexing it afterwards is about
three times faster than COPY into an indexed partition (DESIGN §9), and the swap (DETACH, DROP,
ATTACH) happens in the same transaction as the load, so readers see the old rows or the new rows,
never a mix, and a load that dies half-way leaves the old partition untouched.

Every function takes an open psycopg 3 connection and works inside its current transaction;
`replace_partition` commits only through the `with conn.transaction()` block it opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from warehouse.bulk import QueuedWriter

Grain = Literal["day", "month"]
KeyType = Literal["date", "timestamptz"]

# IST: a daily partition holds one Indian calendar day (DESIGN §2).
DEFAULT_TIMEZONE = "Asia/Kolkata"


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned by range on one column, one partition per day or per month."""

    schema: str
    table: str
    column: str
    grain: Grain = "day"
    key_type: KeyType = "date"
    timezone: str = DEFAULT_TIMEZONE

    @property
    def parent(self) -> sql.Composed:
        return sql.Identifier(self.schema, self.table)

    def bounds(self, key: date) -> tuple[date, date]:
        """The half-open range [start, end) of the partition that holds `key`."""
        if self.grain == "day":
            start = key
            end = date.fromordinal(key.toordinal() + 1)
        else:
            start = key.replace(day=1)
            end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return start, end

    def partition_name(self, key: date) -> str:
        start, _ = self.bounds(key)
        suffix = start.strftime("%Y%m%d" if self.grain == "day" else "%Y%m")
        return f"{self.table}_p{suffix}"

    def bound_literal(self, day: date) -> sql.Literal:
        """A bound as a literal: a date, or midnight in the table's timezone for timestamptz.

        Bounds are spelt with their offset so the session's TimeZone can never shift them.
        """
        if self.key_type == "date":
            return sql.Literal(day.isoformat())
        midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))
        return sql.Literal(midnight.isoformat())

    def partition(self, key: date) -> sql.Composed:
        return sql.Identifier(self.schema, self.partition_name(key))


def partition_exists(conn: psycopg.Connection, table: PartitionedTable, key: date) -> bool:
    qualified = f"{table.schema}.{table.partition_name(key)}"
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    return bool(row and row[0])


def list_partitions(conn: psycopg.Connection, table: PartitionedTable) -> list[str]:
    """Names of the parent's partitions (the default one included), sorted."""
    rows = conn.execute(
        """
        SELECT child.relname
        FROM pg_inherits
        JOIN pg_class child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = to_regclass(%s)
        ORDER BY child.relname
        """,
        (f"{table.schema}.{table.table}",),
    ).fetchall()
    return [r[0] for r in rows]


def _default_partition(conn: psycopg.Connection, table: PartitionedTable) -> str | None:
    row = conn.execute(
        """
        SELECT child.relname
        FROM pg_inherits
        JOIN pg_class child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = to_regclass(%s)
          AND pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
        """,
        (f"{table.schema}.{table.table}",),
    ).fetchone()
    return row[0] if row else None


def _range_condition(table: PartitionedTable, key: date) -> sql.Composed:
    start, end = table.bounds(key)
    return sql.SQL("{col} >= {lo} AND {col} < {hi}").format(
        col=sql.Identifier(table.column),
        lo=table.bound_literal(start),
        hi=table.bound_literal(end),
    )


def _for_values(table: PartitionedTable, key: date) -> sql.Composed:
    start, end = table.bounds(key)
    return sql.SQL("FOR VALUES FROM ({lo}) TO ({hi})").format(
        lo=table.bound_literal(start), hi=table.bound_literal(end)
    )


def ensure_partition(conn: psycopg.Connection, table: PartitionedTable, key: date) -> bool:
    """Create the partition holding `key` if it is missing. Returns True when it was created.

    If the parent has a DEFAULT partition, rows of the new range already sitting there are moved
    into the new partition in the same transaction (PostgreSQL would refuse the new partition
    otherwise).
    """
    with conn.transaction():
        _lock(conn, table, key)
        if partition_exists(conn, table, key):
            return False
        default = _default_partition(conn, table)
        partition = table.partition(key)
        if default is None:
            conn.execute(
                sql.SQL("CREATE TABLE {part} PARTITION OF {parent} {values}").format(
                    part=partition, parent=table.parent, values=_for_values(table, key)
                )
            )
            return True
        conn.execute(
            sql.SQL("CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS)").format(
                part=partition, parent=table.parent
            )
        )
        conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {default} WHERE {cond} RETURNING *) "
                "INSERT INTO {part} SELECT * FROM moved"
            ).format(
                default=sql.Identifier(table.schema, default),
                cond=_range_condition(table, key),
                part=partition,
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {part} {values}").format(
                parent=table.parent, part=partition, values=_for_values(table, key)
            )
        )
        return True


def _lock(conn: psycopg.Connection, table: PartitionedTable, key: date) -> None:
    """Serialise work on one partition across sessions (a transaction-scoped advisory lock)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))",
        (f"{table.schema}.{table.partition_name(key)}",),
    )


# CSV uses \N for NULL so an empty string stays an empty string.
CSV_NULL = r"\N"
COPY_OPTIONS = {
    "text": sql.SQL("TEXT"),
    "binary": sql.SQL("BINARY"),
    "csv": sql.SQL("CSV, NULL {}").format(sql.Literal(CSV_NULL)),
}

_INDEXDEF = re.compile(
    r"^CREATE (?P<unique>UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (?P<rest>USING .+)$"
)


def _build_parent_indexes(conn: psycopg.Connection, table: PartitionedTable, target: str) -> None:
    """Give `target` the parent's keys and indexes, so ATTACH adopts them instead of building
    them under the parent's lock. Keys (primary, unique) must be constraints to be adopted."""
    parent = f"{table.schema}.{table.table}"
    target_id = sql.Identifier(table.schema, target)
    keys = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u')",
        (parent,),
    ).fetchall()
    for (definition,) in keys:  # e.g. "PRIMARY KEY (id, received_day)", from the catalog
        conn.execute(sql.SQL("ALTER TABLE {} ADD {}").format(target_id, sql.SQL(definition)))
    indexes = conn.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = to_regclass(%s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (parent,),
    ).fetchall()
    for (definition,) in indexes:
        match = _INDEXDEF.match(definition)
        if match is None:  # pragma: no cover - pg_get_indexdef has one shape
            raise ValueError(f"unexpected index definition: {definition}")
        conn.execute(
            sql.SQL("CREATE {unique}INDEX ON {target} {rest}").format(
                unique=sql.SQL(match["unique"] or ""),
                target=target_id,
                rest=sql.SQL(match["rest"]),  # from the catalog, not from input
            )
        )


def replace_partition(
    conn: psycopg.Connection,
    table: PartitionedTable,
    key: date,
    columns: list[str],
    write: Callable[[psycopg.Copy], None],
    *,
    copy_format: Literal["text", "binary", "csv"] = "text",
) -> int:
    """Replace every row of the partition holding `key` with what `write` sends through COPY.

    `write(copy)` receives an open `COPY ... FROM STDIN` on a fresh load table and writes rows
    (`copy.write_row(...)`) or raw data (`copy.write(...)`; in "csv", NULL is `CSV_NULL`).
    All of it happens in one transaction:
    if `write` raises, the connection drops or a row falls outside the partition's range, nothing
    changes. Returns the number of rows now in the partition.
    """
    loading = f"{table.partition_name(key)}__loading"
    loading_id = sql.Identifier(table.schema, loading)
    bounds_check = sql.Identifier(f"{loading}_bounds")
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    fmt = COPY_OPTIONS[copy_format]
    with conn.transaction():
        _lock(conn, table, key)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(loading_id))
        conn.execute(
            sql.SQL("CREATE TABLE {load} (LIKE {parent} INCLUDING DEFAULTS)").format(
                load=loading_id, parent=table.parent
            )
        )
        with conn.cursor() as cur:
            copy_sql = sql.SQL("COPY {load} ({cols}) FROM STDIN (FORMAT {fmt})").format(
                load=loading_id, cols=column_list, fmt=fmt
            )
            with cur.copy(copy_sql, writer=QueuedWriter(cur)) as copy:
                write(copy)
            loaded = cur.rowcount
        # Validate the range and build indexes while readers still use the old partition; the
        # CHECK lets ATTACH skip its own scan under the parent's lock.
        conn.execute(
            sql.SQL("ALTER TABLE {load} ADD CONSTRAINT {check} CHECK ({cond})").format(
                load=loading_id, check=bounds_check, cond=_range_condition(table, key)
            )
        )
        _build_parent_indexes(conn, table, loading)
        if partition_exists(conn, table, key):
            conn.execute(
                sql.SQL("ALTER TABLE {parent} DETACH PARTITION {part}").format(
                    parent=table.parent, part=table.partition(key)
                )
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(table.partition(key)))
        conn.execute(
            sql.SQL("ALTER TABLE {load} RENAME TO {name}").format(
                load=loading_id, name=sql.Identifier(table.partition_name(key))
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {part} {values}").format(
                parent=table.parent, part=table.partition(key), values=_for_values(table, key)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {part} DROP CONSTRAINT {check}").format(
                part=table.partition(key), check=bounds_check
            )
        )
    return loaded


def drop_partitions_before(
    conn: psycopg.Connection, table: PartitionedTable, key: date
) -> list[str]:
    """Drop every partition whose range ends on or before the start of `key`'s partition.

    The retention window for raw message bodies (DESIGN §5) is enforced with this.
    """
    cutoff = table.partition_name(key)
    dropped = []
    with conn.transaction():
        for name in list_partitions(conn, table):
            if not name.startswith(f"{table.table}_p") or name >= cutoff:
                continue
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table.schema, name)))
            dropped.append(name)
    return dropped
