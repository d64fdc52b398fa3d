"""The warehouse's schemas and the `raw` copies of operational tables.

The raw copy of an operational table is derived from its SQLAlchemy model, so the operational
schema stays the one definition: same column names, enums as text (the warehouse does not carry
the operational enum types), plus `_extracted_at`, when the row was copied.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy import ARRAY, Column, Enum, Table
from sqlalchemy.dialects import postgresql

from warehouse import urls

# Layers of the warehouse (DESIGN §2): dbt builds staging → intermediate → marts; ml holds scores.
WAREHOUSE_SCHEMAS: tuple[str, ...] = ("raw", "quarantine", "staging", "intermediate", "marts", "ml")

EXTRACTED_AT = "_extracted_at"


def _column_type(column: Column) -> str:
    """The warehouse type of an operational column."""
    col_type = column.type
    if isinstance(col_type, Enum):
        return "text"
    if isinstance(col_type, ARRAY) and isinstance(col_type.item_type, Enum):
        return "text[]"
    return col_type.compile(dialect=postgresql.dialect())


def raw_columns(table: Table) -> list[str]:
    """The columns copied from the operational table, in table order."""
    return [column.name for column in table.columns]


def raw_table_ddl(table: Table, schema: str = "raw") -> sql.Composed:
    """`CREATE TABLE IF NOT EXISTS raw.<table>` mirroring the operational model."""
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(_column_type(column)))
        for column in table.columns
    ]
    columns.append(
        sql.SQL("{} timestamptz NOT NULL DEFAULT now()").format(sql.Identifier(EXTRACTED_AT))
    )
    key = [sql.Identifier(column.name) for column in table.primary_key.columns]
    if key:
        columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(key)))
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier(schema, table.name), sql.SQL(", ").join(columns)
    )


def ensure_warehouse(url: str) -> None:
    """Create the warehouse schemas and the raw copies of the extracted operational tables."""
    from warehouse.extract import SNAPSHOT_TABLES

    with psycopg.connect(urls.libpq_url(url)) as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for table in SNAPSHOT_TABLES:
            conn.execute(raw_table_ddl(table))
