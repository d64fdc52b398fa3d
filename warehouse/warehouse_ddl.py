"""The warehouse's schemas and the `raw` copies of operational tables.

The raw copy of an operational table is derived from its SQLAlchemy model, so the operational
schema stays the one definition: same column names, enums as text (the warehouse does not carry
the operational enum types), plus two bookkeeping columns: `_extracted_at`, when the extract last
wrote the row, and `_deleted_at`, when the row's key disappeared from the source (a hard delete;
the row is kept, with its last version, so history stays). When a model gains a column, the raw
table gains it too (`add_missing_columns`), before the next load.

`raw._extract_watermarks` holds, per extracted table, how far the incremental extract has read;
it is written in the same transaction as the rows it describes.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy import ARRAY, Column, Enum, Table
from sqlalchemy.dialects import postgresql

from warehouse import urls

# Layers of the warehouse (DESIGN §2): dbt builds staging → intermediate → marts; ml holds scores.
WAREHOUSE_SCHEMAS: tuple[str, ...] = ("raw", "quarantine", "staging", "intermediate", "marts", "ml")

RAW_SCHEMA = "raw"
EXTRACTED_AT = "_extracted_at"
DELETED_AT = "_deleted_at"

# Appended to every raw copy, after the model's columns. A NULL `_deleted_at` means the row
# still exists in the source.
BOOKKEEPING_COLUMNS: dict[str, str] = {
    EXTRACTED_AT: "timestamptz NOT NULL DEFAULT now()",
    DELETED_AT: "timestamptz",
}

WATERMARKS_TABLE = "_extract_watermarks"

# One row per extracted table. `columns` is the column list the watermark is valid for: when the
# model's columns change, rows the source did not touch since still lack the new column, so the
# extract reads the whole table once more instead of trusting the watermark.
WATERMARKS_DDL = sql.SQL(
    """CREATE TABLE IF NOT EXISTS {} (
    table_name text PRIMARY KEY,
    watermark_column text NOT NULL,
    watermark timestamptz,
    columns text[] NOT NULL,
    last_run_at timestamptz NOT NULL,
    rows_read bigint NOT NULL,
    rows_upserted bigint NOT NULL,
    rows_marked_deleted bigint NOT NULL
)"""
).format(sql.Identifier(RAW_SCHEMA, WATERMARKS_TABLE))


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


def raw_key(table: Table) -> list[str]:
    """The primary-key columns, the key the extract upserts and reconciles on."""
    return [column.name for column in table.primary_key.columns]


def raw_column_definitions(table: Table) -> dict[str, sql.Composable]:
    """Every column of `raw.<table>` with its type: the model's, then the bookkeeping ones."""
    definitions: dict[str, sql.Composable] = {
        column.name: sql.SQL(_column_type(column)) for column in table.columns
    }
    definitions.update({name: sql.SQL(ddl) for name, ddl in BOOKKEEPING_COLUMNS.items()})
    return definitions


def raw_table_ddl(table: Table, schema: str = RAW_SCHEMA) -> sql.Composed:
    """`CREATE TABLE IF NOT EXISTS raw.<table>` mirroring the operational model."""
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(name), col_type)
        for name, col_type in raw_column_definitions(table).items()
    ]
    key = raw_key(table)
    if key:
        columns.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))
        )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier(schema, table.name), sql.SQL(", ").join(columns)
    )


def existing_columns(
    conn: psycopg.Connection, table_name: str, schema: str = RAW_SCHEMA
) -> set[str]:
    """The columns a warehouse table has now."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, table_name),
    ).fetchall()
    return {name for (name,) in rows}


def add_missing_columns(
    conn: psycopg.Connection, table: Table, schema: str = RAW_SCHEMA
) -> list[str]:
    """Add to `raw.<table>` the columns the model (or the bookkeeping) gained; returns them.

    Schema drift handled forward only: a column the model dropped stays in raw (its history is
    data), and type changes are left to a migration of the warehouse.
    """
    present = existing_columns(conn, table.name, schema)
    missing = [
        (name, col_type)
        for name, col_type in raw_column_definitions(table).items()
        if name not in present
    ]
    for name, col_type in missing:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                sql.Identifier(schema, table.name), sql.Identifier(name), col_type
            )
        )
    return [name for name, _ in missing]


def ensure_raw_table(conn: psycopg.Connection, table: Table, schema: str = RAW_SCHEMA) -> list[str]:
    """Create `raw.<table>` if absent and bring its columns up to the model; returns the added."""
    conn.execute(raw_table_ddl(table, schema))
    return add_missing_columns(conn, table, schema)


def ensure_warehouse(url: str) -> None:
    """Create the warehouse schemas, the watermark table and the raw copies of extracted tables."""
    from warehouse.extract import EXTRACT_TABLES

    with psycopg.connect(urls.libpq_url(url)) as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(WATERMARKS_DDL)
        for table in EXTRACT_TABLES:
            ensure_raw_table(conn, table)
