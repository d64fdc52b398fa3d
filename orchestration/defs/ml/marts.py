"""Read the marts the models need into polars frames, only the columns they ask for.

The models declare their inputs (`INPUT_COLUMNS`: mart -> columns); this module is the only place
that turns that into SQL. Each mart is streamed with `COPY ... TO STDOUT` as CSV (a 1.5 M row
mart reads in about a second, where fetching Python tuples takes ten) and typed from the
catalogue's column types, so a frame has dates as dates and UUIDs as strings, whatever the CSV.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import polars as pl
import psycopg
from psycopg import sql

MARTS_SCHEMA = "marts"

_INTEGER_TYPES = {"smallint": pl.Int16, "integer": pl.Int32, "bigint": pl.Int64}
_FLOAT_TYPES = {"numeric", "double precision", "real"}


def _column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (MARTS_SCHEMA, table),
    ).fetchall()
    if not rows:
        raise LookupError(
            f"{MARTS_SCHEMA}.{table} does not exist: build the marts first (the daily_refresh "
            "job, or `mitra dbt build`)"
        )
    return dict(rows)


def _typed(frame: pl.DataFrame, types: Mapping[str, str]) -> pl.DataFrame:
    casts = []
    for name in frame.columns:
        pg_type = types[name]
        column = pl.col(name)
        if pg_type == "ARRAY":
            # A text[] as PostgreSQL writes it: {a,b} (our arrays hold plain identifiers).
            casts.append(
                pl.when(column.is_null())
                .then(None)
                .when(column == "{}")
                .then(pl.lit([], dtype=pl.List(pl.String)))
                .otherwise(column.str.strip_chars("{}").str.replace_all('"', "").str.split(","))
                .alias(name)
            )
        elif pg_type == "boolean":
            casts.append((column == "t").alias(name))
        elif pg_type == "date":
            casts.append(column.str.to_date("%Y-%m-%d").alias(name))
        elif pg_type.startswith("timestamp"):
            casts.append(
                column.str.to_datetime(time_zone="UTC", time_unit="us").alias(name)
                if "with time zone" in pg_type
                else column.str.to_datetime(time_unit="us").alias(name)
            )
        elif pg_type in _INTEGER_TYPES:
            casts.append(column.cast(_INTEGER_TYPES[pg_type]).alias(name))
        elif pg_type in _FLOAT_TYPES:
            casts.append(column.cast(pl.Float64).alias(name))
        else:
            casts.append(column)
    return frame.select(casts)


def read_mart(conn: psycopg.Connection, table: str, columns: Sequence[str]) -> pl.DataFrame:
    """`marts.<table>` restricted to `columns`, typed from the catalogue."""
    types = _column_types(conn, table)
    missing = [c for c in columns if c not in types]
    if missing:
        raise LookupError(f"{MARTS_SCHEMA}.{table} has no column(s) {', '.join(missing)}")
    # Timestamps as ISO 8601 with an offset whatever the session's DateStyle.
    conn.execute("SET LOCAL datestyle = 'ISO, YMD'")
    conn.execute("SET LOCAL timezone = 'UTC'")
    query = sql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT csv, HEADER true)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.Identifier(MARTS_SCHEMA),
        sql.Identifier(table),
    )
    buffer = io.BytesIO()
    with conn.cursor().copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    # An empty field is a NULL (PostgreSQL writes an empty string quoted; no mart column the
    # models read holds one).
    frame = pl.read_csv(buffer, schema={c: pl.String for c in columns})
    return _typed(frame, types)


def read_marts(warehouse_url: str, columns: Mapping[str, Sequence[str]]) -> dict[str, pl.DataFrame]:
    """Every mart of `columns` (mart -> columns) in one read-only transaction (one snapshot)."""
    from warehouse import urls

    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return {table: read_mart(conn, table, cols) for table, cols in columns.items()}
