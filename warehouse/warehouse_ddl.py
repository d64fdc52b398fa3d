"""The warehouse's schemas and the `raw` copies of operational tables.

The raw copy of an operational table is derived from its SQLAlchemy model, so the operational
schema stays the one definition: same column names, enums as text (the warehouse does not carry
the operational enum types), plus two bookkeeping columns: `_extracted_at`, when the extract last
wrote the row, and `_deleted_at`, when the row's key disappeared from the source (a hard delete;
the row is kept, with its last version, so history stays). When a model gains a column, the raw
table gains it too (`add_missing_columns`), before the next load.

Personal data is the exception (DESIGN §5, DPDP Act; `PII_COLUMNS`, the one list): a phone number,
e-mail or PAN reaches raw only as `<column>_token`, its keyed token, and names and addresses do not
reach it at all. A raw table still holding such a column in clear (written before the tokens) loses
it on the next `ensure_raw_table`, and the extract then re-reads the whole table to fill the tokens.

`raw._extract_watermarks` holds, per extracted table, how far the incremental extract has read;
it is written in the same transaction as the rows it describes.
"""

from __future__ import annotations

from typing import Literal

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

# What raw keeps of a personal column: `phone`, `email` and `exact` are tokenised (see
# `warehouse.extract.pii_token`: E.164 number, lower-cased address, value as stored), `drop` is not
# copied at all.
PiiHandling = Literal["phone", "email", "exact", "drop"]

# The personal data in the extracted operational tables: the one definition, for the DDL and the
# extract alike. A tokenised column is named `<column>_token` in raw and holds hex
# HMAC-SHA256(MITRA_PII_KEY, value), the `transforms.pii` token, so it joins the tokens of the
# landing sources (e.g. `raw.whatsapp_messages.customer_phone_token`). Renamed rather than kept
# under the clear name: a query written for the clear value fails instead of silently comparing a
# number with a token, and a raw column under the clear name is always a clear leftover that
# `ensure_raw_table` drops. Names and addresses are dropped: staging and marts carry none and no
# model needs one, and a token of a name joins nothing. Not listed, as not personal: the insurer's
# `support_phone` and Meta's `phone_number_id`.
PII_COLUMNS: dict[str, dict[str, PiiHandling]] = {
    "users": {"phone": "phone", "email": "email", "full_name": "drop"},
    "agents": {"whatsapp_business_number": "phone"},
    "policyholders": {
        "full_name": "drop",
        "phone": "phone",
        "email": "email",
        "pan": "exact",  # upper case by the source's CHECK
        "address_line": "drop",
    },
    # Nominees' names and relationships: personal data of third parties, needed by no mart.
    "insurance_policies": {"nominee_details": "drop"},
    # Meta's message ids are base64 of ids that embed the customer's phone number: the key is
    # tokenised like the landing sources' `wamid_token`, so the two join and neither decodes.
    "whatsapp_outbound": {"wamid": "exact"},
}

PII_SUFFIX = "_token"

WATERMARKS_TABLE = "_extract_watermarks"

# One row per extracted table. `columns` is the column list the watermark is valid for: when the
# model's columns change, rows the source did not touch since still lack the new column, so the
# extract reads the whole table once more instead of trusting the watermark. `pii_tokens` says how
# the raw tokens were computed (scheme version and key id, NULL for tables without tokens): when it
# changes (a new key, a new scheme) the extract re-reads the whole table too, so one table never
# mixes tokens of two keys.
WATERMARKS_DDL = sql.SQL(
    """CREATE TABLE IF NOT EXISTS {} (
    table_name text PRIMARY KEY,
    watermark_column text NOT NULL,
    watermark timestamptz,
    columns text[] NOT NULL,
    pii_tokens text,
    last_run_at timestamptz NOT NULL,
    rows_read bigint NOT NULL,
    rows_upserted bigint NOT NULL,
    rows_marked_deleted bigint NOT NULL
)"""
).format(sql.Identifier(RAW_SCHEMA, WATERMARKS_TABLE))

# Columns the watermark table gained after its first release, added to existing warehouses.
WATERMARKS_ADDED_COLUMNS: dict[str, str] = {"pii_tokens": "text"}


def _column_type(column: Column) -> str:
    """The warehouse type of an operational column."""
    col_type = column.type
    if isinstance(col_type, Enum):
        return "text"
    if isinstance(col_type, ARRAY) and isinstance(col_type.item_type, Enum):
        return "text[]"
    return col_type.compile(dialect=postgresql.dialect())


def pii_columns(table: Table) -> dict[str, PiiHandling]:
    """The personal columns of an operational table and what raw keeps of each (`PII_COLUMNS`).

    A listed column the model does not have is an error: after a rename, the stale entry would
    let the renamed column through in clear.
    """
    handling = PII_COLUMNS.get(table.name, {})
    unknown = sorted(set(handling) - set(table.columns.keys()))
    if unknown:
        raise ValueError(f"PII_COLUMNS lists {unknown} that {table.name} does not have")
    return handling


def copied_columns(table: Table) -> list[Column]:
    """The operational columns the extract reads, in table order: all but the dropped ones."""
    handling = pii_columns(table)
    return [column for column in table.columns if handling.get(column.name) != "drop"]


def raw_column_name(table: Table, column: str) -> str:
    """The name of an operational column in raw: `<column>_token` for a tokenised one."""
    return column + PII_SUFFIX if column in pii_columns(table) else column


def raw_columns(table: Table) -> list[str]:
    """The raw columns the extract writes, in table order; the n-th is filled from the n-th of
    `copied_columns` (under its own name, or as its token)."""
    return [raw_column_name(table, column.name) for column in copied_columns(table)]


def source_key(table: Table) -> list[str]:
    """The operational primary-key columns."""
    return [column.name for column in table.primary_key.columns]


def raw_key(table: Table) -> list[str]:
    """The primary key in raw, the key the extract upserts and reconciles on: the source key,
    a tokenised column under its token's name."""
    return [raw_column_name(table, name) for name in source_key(table)]


def raw_column_definitions(table: Table) -> dict[str, sql.Composable]:
    """Every column of `raw.<table>` with its type: the model's, then the bookkeeping ones."""
    tokenised = pii_columns(table)
    definitions: dict[str, sql.Composable] = {
        raw_column_name(table, column.name): sql.SQL(
            "text" if column.name in tokenised else _column_type(column)
        )
        for column in copied_columns(table)
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


def drop_clear_pii_columns(
    conn: psycopg.Connection, table: Table, schema: str = RAW_SCHEMA
) -> list[str]:
    """Drop from `raw.<table>` the personal columns still held in clear; returns them.

    Raw tables written before the tokens copied `phone`, `full_name`, ... as they are. Their
    token columns are added empty by `add_missing_columns`, and the extract, seeing the stored
    column list change, re-reads every source row to fill them; rows already gone from the
    source keep no token (their clear values are not kept either). `DROP COLUMN` only hides the
    values, so the table is then rewritten (`CLUSTER` on its key, allowed in a transaction): the
    live rows are copied into a new file without them and the old file is removed at commit.
    WAL archives and backups still hold them until they expire.

    A clear column that is part of the key cannot be kept beside its token: the raw rows could
    no longer be matched to the source's. The table is emptied instead and its watermark
    forgotten, so the next extract re-reads every row the source still has; it is re-keyed on
    the token.
    """
    present = existing_columns(conn, table.name, schema)
    clear = [name for name in pii_columns(table) if name in present]
    if not clear:
        return []
    target = sql.Identifier(schema, table.name)
    if set(clear) & set(source_key(table)):
        conn.execute(sql.SQL("TRUNCATE {}").format(target))
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE table_name = %s").format(
                sql.Identifier(RAW_SCHEMA, WATERMARKS_TABLE)
            ),
            (table.name,),
        )
    conn.execute(
        sql.SQL("ALTER TABLE {} {}").format(
            target,
            sql.SQL(", ").join(
                # CASCADE: dbt's staging views select `*` from raw and so depend on every
                # column; they are views dbt rebuilds on its next run, which follows the extract.
                sql.SQL("DROP COLUMN {} CASCADE").format(sql.Identifier(name))
                for name in clear
            ),
        )
    )
    key = _primary_key_index(conn, target)
    if key is None:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                target, sql.SQL(", ").join(map(sql.Identifier, raw_key(table)))
            )
        )
    else:
        conn.execute(sql.SQL("CLUSTER {} USING {}").format(target, sql.Identifier(key)))
    return clear


def _primary_key_index(conn: psycopg.Connection, target: sql.Identifier) -> str | None:
    row = conn.execute(
        "SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (target.as_string(conn),),
    ).fetchone()
    return None if row is None else row[0]


def ensure_raw_table(conn: psycopg.Connection, table: Table, schema: str = RAW_SCHEMA) -> list[str]:
    """Create `raw.<table>` if absent, bring its columns up to the model and drop personal
    columns left in clear; returns the added columns."""
    conn.execute(raw_table_ddl(table, schema))
    added = add_missing_columns(conn, table, schema)
    drop_clear_pii_columns(conn, table, schema)
    return added


def ensure_watermarks_table(conn: psycopg.Connection) -> None:
    """Create `raw._extract_watermarks`, or add the columns it gained since it was created."""
    conn.execute(WATERMARKS_DDL)
    present = existing_columns(conn, WATERMARKS_TABLE)
    for name, col_type in WATERMARKS_ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(RAW_SCHEMA, WATERMARKS_TABLE),
                    sql.Identifier(name),
                    sql.SQL(col_type),
                )
            )


def ensure_warehouse(url: str) -> None:
    """Create the warehouse schemas, the watermark table, the raw copies of extracted tables,
    the `ml` tables and the marts version (`ops.marts_version`)."""
    from warehouse.extract import EXTRACT_TABLES
    from warehouse.marts_version import ensure_marts_version_table
    from warehouse.ml_tables import ensure_ml_tables

    with psycopg.connect(urls.libpq_url(url)) as conn:
        for schema in WAREHOUSE_SCHEMAS:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        ensure_watermarks_table(conn)
        for table in EXTRACT_TABLES:
            ensure_raw_table(conn, table)
        ensure_ml_tables(conn)
        ensure_marts_version_table(conn)
