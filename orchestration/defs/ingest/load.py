"""Replace one day of several raw and quarantine tables together, atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl
import psycopg
from psycopg import sql

from warehouse.partitions import CSV_NULL, replace_partition
from warehouse.raw_tables import TableSpec, ensure_tables

CSV_CHUNK_ROWS = 200_000
# Free text and JSON payloads: most of ANALYZE's time goes into their statistics (long values,
# mostly distinct), and no join or filter of the marts uses them.
PAYLOAD_COLUMNS = frozenset({"properties", "context", "raw", "text_body"})
CopyWriter = Callable[[psycopg.Copy], None]


@dataclass(frozen=True)
class BinaryStream:
    """A writer that sends rows in PostgreSQL's binary COPY format (see warehouse/bulk.py)."""

    write: CopyWriter


def write_csv(copy: psycopg.Copy, frame: pl.DataFrame) -> None:
    """Send a frame (already in the table's column order) through COPY as CSV."""
    copy.write(frame.write_csv(include_header=False, null_value=CSV_NULL))


def _csv_writer(frame: pl.DataFrame):
    """A COPY callback sending the frame as CSV, in chunks so memory stays bounded."""

    def write(copy: psycopg.Copy) -> None:
        for start in range(0, frame.height, CSV_CHUNK_ROWS):
            write_csv(copy, frame.slice(start, CSV_CHUNK_ROWS))

    return write


def replace_day(
    conn: psycopg.Connection,
    day: date,
    frames: dict[TableSpec, pl.DataFrame | CopyWriter | BinaryStream],
    also: Callable[[psycopg.Connection], None] | None = None,
) -> dict[str, int]:
    """Replace the `day` partition of every table with its frame, in one transaction.

    Readers see either all of the old day or all of the new one, across the tables: a crash in
    the middle leaves every table as it was. A value may be a frame, a `CopyWriter` that
    streams CSV rows in the table's column order, or a `BinaryStream` (large days in bounded
    memory, binary COPY). `also(conn)`
    runs inside the same transaction (e.g. folding the day into a running state table). Returns
    the rows loaded per table.
    """
    ensure_tables(conn, list(frames), day)
    loaded: dict[str, int] = {}
    with conn.transaction():
        for spec, source in frames.items():
            copy_format = "binary" if isinstance(source, BinaryStream) else "csv"
            if isinstance(source, pl.DataFrame):
                writer = _csv_writer(source.select(spec.column_names))
            else:
                writer = source.write if isinstance(source, BinaryStream) else source
            loaded[spec.qualified] = replace_partition(
                conn, spec.partitioned, day, spec.column_names, writer, copy_format=copy_format
            )
        if also is not None:
            also(conn)
    # Statistics for the planner on the new partitions (a swapped-in partition has none, and
    # autovacuum may be off or late): dbt's joins over raw would otherwise run on guesses.
    for spec in frames:
        conn.execute(analyze_statement(spec, day))
    conn.commit()
    return loaded


def analyzed_columns(spec: TableSpec) -> list[str]:
    """The columns a loaded partition gets statistics on: all but the payloads."""
    return [c for c in spec.column_names if c not in PAYLOAD_COLUMNS]


def analyze_statement(spec: TableSpec, day: date) -> sql.Composed:
    """`ANALYZE` of the `day` partition of `spec` on `analyzed_columns(spec)` only."""
    return sql.SQL("ANALYZE {} ({})").format(
        spec.partitioned.partition(day),
        sql.SQL(", ").join(sql.Identifier(c) for c in analyzed_columns(spec)),
    )
