"""Bulk loading with PostgreSQL's binary COPY, from frames or plain rows.

Why binary: the server copies typed values instead of parsing text, so a wide row with
timestamps and JSON text loads about twice as fast as the same row in CSV (bench/
app_events_ingest.py), and nothing needs quoting or escaping.

Why dates and timestamps travel as integers: in the binary format a `date` is an int4 count of
days and a `timestamp`/`timestamptz` an int8 count of microseconds, both since 2000-01-01 (UTC for
timestamptz). Sending a frame's date and datetime columns as those integers, computed column-wise
by the frame library, skips building a Python `date`/`datetime` per value, which costs more than
the rest of the row; the server receives exactly the bytes it would have got from psycopg's own
dumpers. It relies on integer timestamps, the only kind PostgreSQL has built since version 10
(checked once per COPY).

Frames are duck-typed (polars' `columns`, `schema`, `get_column`, `with_columns`,
`iter_rows`): the warehouse layer imports only SQLAlchemy and psycopg (DESIGN §3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400 * 1_000_000

# psycopg binary types for the frame's column kinds (polars dtype class names).
_WIRE_TYPES: dict[str, str] = {
    "String": "text",
    "Int64": "int8",
    "Int32": "int4",
    "Int16": "int2",
    "Float64": "float8",
    "Float32": "float4",
    "Boolean": "bool",
    "Binary": "bytea",
    "Date": "int4",  # days since 2000-01-01: the binary form of date
    "Datetime": "int8",  # microseconds since 2000-01-01: the binary form of timestamp(tz)
}


class Frame(Protocol):
    """What a frame must offer (polars.DataFrame does)."""

    @property
    def columns(self) -> list[str]: ...

    @property
    def schema(self) -> Mapping[str, Any]: ...

    def get_column(self, name: str) -> Any: ...

    def with_columns(self, *columns: Any) -> Frame: ...

    def iter_rows(self) -> Iterator[tuple[Any, ...]]: ...


def copy_rows_binary(
    conn: psycopg.Connection,
    table: str | sql.Composable,
    columns: Sequence[str],
    pg_types: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """COPY `rows` (tuples in `columns` order, values as psycopg dumps `pg_types`) into `table`
    ("schema.name" or a composed identifier) in binary format. Returns the rows written; the
    caller owns the transaction."""
    count = 0
    with conn.cursor() as cursor, cursor.copy(_copy_statement(table, columns)) as copy:
        copy.set_types(list(pg_types))
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_frame_binary(conn: psycopg.Connection, table: str | sql.Composable, frame: Frame) -> int:
    """COPY a frame's rows into the table's columns of the same names, in binary format."""
    return copy_frames_binary(conn, table, [frame])


def copy_frames_binary(
    conn: psycopg.Connection, table: str | sql.Composable, frames: Iterable[Frame]
) -> int:
    """COPY frames of one schema (say, the blocks of one day) in a single COPY statement, so the
    rows of a large input load in one go while only one block is in memory. Returns the rows."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return 0
    _require_integer_datetimes(conn)
    columns, pg_types = list(first.columns), wire_types(first.schema)
    rows = (row for frame in _chain(first, frames) for row in _wire_frame(frame).iter_rows())
    return copy_rows_binary(conn, table, columns, pg_types, rows)


def write_frame_binary(copy: psycopg.Copy, frame: Frame) -> int:
    """Write a frame into an open binary COPY (one a caller opened, e.g. to replace a partition
    atomically); its columns must be the COPY's, in order. Returns the rows written."""
    copy.set_types(wire_types(frame.schema))
    count = 0
    for row in _wire_frame(frame).iter_rows():
        copy.write_row(row)
        count += 1
    return count


def wire_types(schema: Mapping[str, Any]) -> list[str]:
    """The psycopg binary type each column is sent as (dates and datetimes as integers)."""
    types = []
    for name, dtype in schema.items():
        kind = type(dtype).__name__
        if kind not in _WIRE_TYPES:
            raise TypeError(f"column {name!r}: no binary COPY type for {dtype}")
        types.append(_WIRE_TYPES[kind])
    return types


def _wire_frame(frame: Frame) -> Frame:
    """The frame with dates and datetimes replaced by their PostgreSQL binary integers."""
    replaced = []
    for name, dtype in frame.schema.items():
        kind = type(dtype).__name__
        column = frame.get_column(name)
        if kind == "Date":
            replaced.append(column.to_physical() - PG_EPOCH_DAYS)
        elif kind == "Datetime":
            replaced.append(column.dt.epoch("us") - PG_EPOCH_US)
    return frame.with_columns(replaced) if replaced else frame


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    for frame in rest:
        if list(frame.columns) != list(first.columns):
            raise ValueError(f"frame columns {frame.columns} differ from {first.columns}")
        yield frame


def _copy_statement(table: str | sql.Composable, columns: Sequence[str]) -> sql.Composed:
    target = sql.Identifier(*table.split(".")) if isinstance(table, str) else table
    names = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, names)


def _require_integer_datetimes(conn: psycopg.Connection) -> None:
    if conn.info.parameter_status("integer_datetimes") != "on":
        raise RuntimeError("binary COPY of dates and timestamps needs integer_datetimes = on")
