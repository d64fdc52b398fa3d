"""Bulk loading with PostgreSQL's binary COPY, from frames encoded a block at a time.

Why binary: the server copies typed values instead of parsing text, so a wide row with
timestamps and JSON text loads about twice as fast as the same row in CSV (bench/
app_events_ingest.py), and nothing needs quoting or escaping.

Why a whole frame is encoded at once: the COPY tuples are built column-wise in Arrow (each
field's length prefix computed as an array, a row's pieces joined by one Arrow kernel), which
costs about a third of writing the rows one by one through psycopg, whose per-row Python work
was the largest single cost of loading a day of app events after parsing. The bytes are exactly
the format's tuples: a field count, then per field its length (-1 for NULL) and its bytes.
Arrow is the frame library's own memory format, so no value becomes a Python object.

Why dates and timestamps travel as integers: in the binary format a `date` is an int4 count of
days and a `timestamp`/`timestamptz` an int8 count of microseconds, both since 2000-01-01 (UTC
for timestamptz); the frame library computes them column-wise. It relies on integer timestamps,
the only kind PostgreSQL has built since version 10 (checked once per COPY).

Why a writer thread with a short queue (`QueuedWriter`): the bytes go to the server from a
worker thread while the caller parses its next block, so the server's work overlaps the
client's; the queue holds at most QUEUE_BYTES, so memory stays bounded whatever the input size.

Frames are duck-typed (polars' `columns`, `schema`, `height`, `get_column`, `with_columns`,
and its columns' `to_arrow`). DESIGN §3 gives this layer SQLAlchemy and psycopg; the wire
encoding also uses pyarrow and numpy, the array libraries the frames are built on.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from queue import Queue
from typing import Any, Protocol

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.copy import LibpqWriter

PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400 * 1_000_000
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no extension
BINARY_TRAILER = b"\xff\xff"
QUEUE_BYTES = 16 << 20  # at most this much encoded data waits for the writer thread
CHUNK_BYTES = 128 << 10  # bytes per queue item and per libpq call, psycopg's own size

# Big-endian numpy type of each fixed-width column kind (polars dtype class names); dates and
# datetimes are first replaced by their PostgreSQL integers.
_FIXED: dict[str, str] = {
    "Int64": ">i8",
    "Int32": ">i4",
    "Int16": ">i2",
    "Float64": ">f8",
    "Float32": ">f4",
    "Boolean": "u1",
    "Date": ">i4",
    "Datetime": ">i8",
}
_VARIABLE = ("String", "Binary")
_BYTES = pa.large_binary()
_NOTHING = pa.scalar(b"", _BYTES)


class Frame(Protocol):
    """What a frame must offer (polars.DataFrame does)."""

    @property
    def columns(self) -> list[str]: ...

    @property
    def schema(self) -> Mapping[str, Any]: ...

    @property
    def height(self) -> int: ...

    def get_column(self, name: str) -> Any: ...

    def with_columns(self, *columns: Any) -> Frame: ...


def encode_binary_tuples(frame: Frame) -> memoryview:
    """The frame's rows as COPY BINARY tuples, columns in the frame's order (no signature or
    trailer: see `binary_frames`)."""
    count = frame.height
    if count == 0:
        return memoryview(b"")
    _check_types(frame.schema)
    pieces = [_constant(struct.pack("!h", len(frame.columns)), count)]
    wired = _wire_frame(frame)
    for name, dtype in frame.schema.items():
        pieces += _field(wired.get_column(name).to_arrow(), type(dtype).__name__)
    joined = pc.binary_join_element_wise(
        *pieces, _NOTHING, null_handling="replace", null_replacement=b""
    )
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)
    start, end = offsets[joined.offset], offsets[joined.offset + count]
    return memoryview(joined.buffers()[2])[start:end]


def _field(values: pa.Array, kind: str) -> list[pa.Array]:
    """A column's two pieces of every tuple: the length prefix and the value's bytes (empty
    for NULL, whose prefix is -1)."""
    nulls = values.is_null().to_numpy(zero_copy_only=False)
    if kind in _VARIABLE:
        lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
        prefix = np.where(nulls, -1, np.nan_to_num(lengths)).astype(">i4")
        data = values.cast(_BYTES)
    else:
        big_endian = np.dtype(_FIXED[kind])
        filled = pc.fill_null(values, False if kind == "Boolean" else 0)
        raw = filled.to_numpy(zero_copy_only=False).astype(big_endian)
        data = _fixed_width(raw.tobytes(), big_endian.itemsize, len(values), nulls)
        prefix = np.where(nulls, -1, big_endian.itemsize).astype(">i4")
    return [_fixed_width(prefix.tobytes(), 4, len(values)), data]


def _fixed_width(data: bytes, width: int, count: int, nulls: np.ndarray | None = None) -> pa.Array:
    """`count` values of `width` bytes each (NULL where `nulls`), as variable-width bytes."""
    validity = None
    if nulls is not None and nulls.any():
        validity = pa.py_buffer(np.packbits(~nulls, bitorder="little").tobytes())
    array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), count, [validity, pa.py_buffer(data)]
    )
    return array.cast(_BYTES)


def _constant(value: bytes, count: int) -> pa.Array:
    return _fixed_width(value * count, len(value), count)


def _check_types(schema: Mapping[str, Any]) -> None:
    for name, dtype in schema.items():
        kind = type(dtype).__name__
        if kind not in _FIXED and kind not in _VARIABLE:
            raise TypeError(f"column {name!r}: no binary COPY encoding for {dtype}")


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


@contextmanager
def binary_frames(copy: psycopg.Copy) -> Iterator[Callable[[Frame], int]]:
    """Inside an open `COPY ... FROM STDIN (FORMAT BINARY)`: yields `write(frame)`, which hands a
    frame (its columns the COPY's, in order) to an encoding thread and returns its row count.
    The thread encodes and sends one frame while the caller prepares the next (Arrow lets go of
    the GIL); at most one frame waits. The signature goes first and the trailer last, whatever
    the number of frames; an encoding or sending error is raised in the caller."""
    copy.write(BINARY_SIGNATURE)
    frames: Queue[Frame | None] = Queue(maxsize=1)
    errors: list[BaseException] = []

    def encode_and_send() -> None:
        while (frame := frames.get()) is not None:
            if errors:
                continue  # drain, so the caller never blocks on a full queue
            try:
                copy.write(encode_binary_tuples(frame))
            except BaseException as error:  # handed to the caller's thread
                errors.append(error)

    worker = threading.Thread(target=encode_and_send, name="copy-encoder", daemon=True)
    worker.start()

    def write(frame: Frame) -> int:
        if errors:
            raise errors[0]
        frames.put(frame)
        return frame.height

    try:
        yield write
    finally:
        frames.put(None)
        worker.join()
    if errors:
        raise errors[0]
    copy.write(BINARY_TRAILER)


def copy_frames_binary(
    conn: psycopg.Connection, table: str | sql.Composable, frames: Iterable[Frame]
) -> int:
    """COPY frames of one schema (say, the blocks of one day) in a single COPY statement, so the
    rows of a large input load in one go while only one block is in memory. Returns the rows;
    the caller owns the transaction."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return 0
    require_integer_datetimes(conn)
    columns = list(first.columns)
    count = 0
    statement = _copy_statement(table, columns)
    with (
        conn.cursor() as cursor,
        cursor.copy(statement, writer=QueuedWriter(cursor)) as copy,
        binary_frames(copy) as write,
    ):
        for frame in _chain(first, frames):
            count += write(frame)
    return count


def copy_frame_binary(conn: psycopg.Connection, table: str | sql.Composable, frame: Frame) -> int:
    """COPY a frame's rows into the table's columns of the same names, in binary format."""
    return copy_frames_binary(conn, table, [frame])


class QueuedWriter(LibpqWriter):
    """A COPY writer that hands data to libpq from a worker thread through a queue of at most
    QUEUE_BYTES, so the caller prepares the next block while the server takes this one.

    psycopg's own `QueuedLibpqWriter` queues up to 1024 buffers whatever their size; blocks of
    megabytes would let the queue hold gigabytes. Here a block is cut into CHUNK_BYTES views
    (no copy) and the queue counts them. An error in the worker is raised in the caller at its
    next write or at the end, as psycopg does."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        super().__init__(cursor)
        self._queue: Queue[memoryview | None] = Queue(maxsize=max(1, QUEUE_BYTES // CHUNK_BYTES))
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, data: Any) -> None:
        if self._error is not None:
            raise self._error
        if self._worker is None:
            self._worker = threading.Thread(target=self._send, name="copy-writer", daemon=True)
            self._worker.start()
        view = memoryview(data).cast("B")
        for start in range(0, len(view), CHUNK_BYTES):
            self._queue.put(view[start : start + CHUNK_BYTES])

    def finish(self, exc: BaseException | None = None) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if self._error is not None and exc is None:
            raise self._error
        super().finish(exc)

    def _send(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                super().write(chunk)
        except BaseException as error:  # handed to the caller's thread
            self._error = error
            while self._queue.get() is not None:  # keep draining so write() never blocks
                pass


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    for frame in rest:
        if list(frame.columns) != list(first.columns):
            raise ValueError(f"frame columns {frame.columns} differ from {first.columns}")
        yield frame


def _copy_statement(table: str | sql.Composable, columns: list[str]) -> sql.Composed:
    target = sql.Identifier(*table.split(".")) if isinstance(table, str) else table
    names = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, names)


def require_integer_datetimes(conn: psycopg.Connection) -> None:
    """Refuse a server whose timestamps are not the integers the encoding sends."""
    if conn.info.parameter_status("integer_datetimes") != "on":
        raise RuntimeError("binary COPY of dates and timestamps needs integer_datetimes = on")
