"""Tables of the `raw` and `quarantine` schemas that ingestion loads, described once.

A `TableSpec` is what ingestion needs to know of a table: its columns with their PostgreSQL
types, its key and, for a table loaded by day, the column it is range-partitioned on. The column
lists come from the transforms' schemas (the one definition of each source's shape); this module
only turns them into DDL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

from warehouse.partitions import PartitionedTable, ensure_partition


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    primary_key: tuple[str, ...] = ()
    partition_column: str | None = None  # range-partitioned by day on this column

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def partitioned(self) -> PartitionedTable:
        if self.partition_column is None:
            raise ValueError(f"{self.qualified} is not partitioned")
        return PartitionedTable(self.schema, self.name, self.partition_column)


def create_table_sql(spec: TableSpec) -> sql.Composed:
    """`CREATE TABLE IF NOT EXISTS`, partitioned by range when the spec says so."""
    parts = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))  # types are constants
        for name, pg_type in spec.columns
    ]
    if spec.primary_key:
        key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.primary_key)
        parts.append(sql.SQL("PRIMARY KEY ({})").format(key))
    partition = (
        sql.SQL(" PARTITION BY RANGE ({})").format(sql.Identifier(spec.partition_column))
        if spec.partition_column
        else sql.SQL("")
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}){}").format(
        sql.Identifier(spec.schema, spec.name), sql.SQL(", ").join(parts), partition
    )


def _columns(conn: psycopg.Connection, spec: TableSpec) -> set[str] | None:
    """The table's column names, or None when it does not exist."""
    if conn.execute("SELECT to_regclass(%s)", (spec.qualified,)).fetchone()[0] is None:
        return None
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (spec.schema, spec.name),
    ).fetchall()
    return {name for (name,) in rows}


def _primary_key(conn: psycopg.Connection, spec: TableSpec) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (spec.qualified,),
    ).fetchall()
    return tuple(name for (name,) in rows)


def _migrate(
    conn: psycopg.Connection,
    spec: TableSpec,
    existing: set[str],
    rebuild: Callable[[psycopg.Connection], None] | None,
) -> bool:
    """Bring a table created by an earlier version to `spec`; True when it was rebuilt.

    New columns are added (null in the rows already there). A non-partitioned table whose key
    changed is dropped, created anew and refilled by `rebuild` (e.g. a running state folded
    again from the rows it is derived from); a partitioned table's key never changes in place.
    """
    if spec.partition_column is None and _primary_key(conn, spec) != spec.primary_key:
        if rebuild is None:
            raise ValueError(f"{spec.qualified}: key changed and no rebuild was given")
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(spec.schema, spec.name)))
        conn.execute(create_table_sql(spec))
        rebuild(conn)
        return True
    for name, pg_type in spec.columns:
        if name not in existing:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(spec.schema, spec.name),
                    sql.Identifier(name),
                    sql.SQL(pg_type),  # types are constants of the spec
                )
            )
    return False


def ensure_tables(
    conn: psycopg.Connection,
    specs: list[TableSpec],
    day: date | None = None,
    rebuild: Mapping[str, Callable[[psycopg.Connection], None]] | None = None,
) -> list[str]:
    """Create the tables (and, for partitioned ones, the partition of `day`) if missing, and
    migrate those an earlier version created (see `_migrate`; `rebuild` by qualified name), in
    one transaction. Returns the tables rebuilt."""
    rebuilt = []
    with conn.transaction():
        for spec in specs:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema))
            )
            existing = _columns(conn, spec)
            if existing is None:
                conn.execute(create_table_sql(spec))
            elif _migrate(conn, spec, existing, (rebuild or {}).get(spec.qualified)):
                rebuilt.append(spec.qualified)
    conn.commit()
    if day is not None:
        for spec in specs:
            if spec.partition_column:
                ensure_partition(conn, spec.partitioned, day)
    return rebuilt
