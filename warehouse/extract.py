"""Copy operational tables into the warehouse's `raw` schema.

Data moves between the two databases as a COPY stream (text format: independent of server
versions and of enum types), never row by row. This first slice replaces the whole snapshot in one
transaction (TRUNCATE + COPY, so readers see the old copy until the commit and a failed copy
changes nothing); incremental extraction by `updated_at` comes with the ingestion issue.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy import Table

from warehouse import urls
from warehouse.operational.models import Agent, InsurancePolicy
from warehouse.warehouse_ddl import raw_columns, raw_table_ddl

# Operational tables copied whole into raw by the extract assets.
SNAPSHOT_TABLES: tuple[Table, ...] = (Agent.__table__, InsurancePolicy.__table__)


@dataclass(frozen=True)
class ExtractResult:
    table: str
    rows: int


def snapshot_table(name: str) -> Table:
    """The model table of an extracted operational table, by name."""
    for table in SNAPSHOT_TABLES:
        if table.name == name:
            return table
    raise KeyError(f"{name} is not an extracted table; known: {[t.name for t in SNAPSHOT_TABLES]}")


def copy_snapshot(operational_url: str, warehouse_url: str, table: Table) -> ExtractResult:
    """Replace `raw.<table>` with the operational table's current rows; returns the row count."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in raw_columns(table))
    source = sql.Identifier("public", table.name)
    target = sql.Identifier("raw", table.name)
    with (
        psycopg.connect(urls.libpq_url(operational_url)) as src,
        psycopg.connect(urls.libpq_url(warehouse_url)) as dst,
    ):
        # REPEATABLE READ: the copy is one consistent snapshot of the source table.
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with dst.transaction():
            dst.execute(raw_table_ddl(table))
            dst.execute(sql.SQL("TRUNCATE {}").format(target))
            read_sql = sql.SQL("COPY (SELECT {cols} FROM {src}) TO STDOUT").format(
                cols=columns, src=source
            )
            write_sql = sql.SQL("COPY {dst} ({cols}) FROM STDIN").format(dst=target, cols=columns)
            with src.cursor() as read_cur, dst.cursor() as write_cur:
                with read_cur.copy(read_sql) as out, write_cur.copy(write_sql) as into:
                    for block in out:
                        into.write(block)
                rows = write_cur.rowcount
    return ExtractResult(table=table.name, rows=rows)
