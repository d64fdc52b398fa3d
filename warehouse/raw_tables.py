"""Tables of the `raw` and `quarantine` schemas that ingestion loads, described once.

A `TableSpec` is what ingestion needs to know of a table: its columns with their PostgreSQL
types, its key and, for a table loaded by day, the column it is range-partitioned on. The column
lists come from the transforms' schemas (the one definition of each source's shape); this module
only turns them into DDL.
"""

from __future__ import annotations

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


def ensure_tables(
    conn: psycopg.Connection, specs: list[TableSpec], day: date | None = None
) -> None:
    """Create the tables (and, for partitioned ones, the partition of `day`) if missing."""
    for spec in specs:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
        conn.execute(create_table_sql(spec))
    conn.commit()
    if day is not None:
        for spec in specs:
            if spec.partition_column:
                ensure_partition(conn, spec.partitioned, day)
