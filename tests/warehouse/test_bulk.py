"""Binary COPY of frames: every supported type, NULLs, non-ASCII text, many blocks, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import psycopg
import pytest

from warehouse import urls
from warehouse.bulk import (
    copy_frames_binary,
    encode_binary_tuples,
)

FRAME = pl.DataFrame(
    {
        "t": ["plain", "", None, "नमस्ते, ₹1,00,000", 'quote " back\\slash\nnewline'],
        "i8": [1, -2, None, 2**62, 0],
        "i4": pl.Series([1, None, -3, 2**30, 0], dtype=pl.Int32),
        "i2": pl.Series([1, 2, None, -(2**14), 0], dtype=pl.Int16),
        "f8": [1.5, None, -0.0, 1e300, 3.25],
        "f4": pl.Series([1.5, 2.5, None, -4.0, 0.0], dtype=pl.Float32),
        "b": [True, False, None, True, False],
        "d": [date(2026, 11, 25), date(1999, 12, 31), None, date(2000, 1, 1), date(1, 1, 1)],
        "ts": [
            datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC),
            None,
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(9999, 12, 31, tzinfo=UTC),
        ],
        "bytes": [b"\x00\xff", None, b"", b"abc", b"\x01"],
    }
)
TABLE = (
    "CREATE TABLE loaded (t text, i8 bigint, i4 integer, i2 smallint, f8 float8, f4 float4,"
    " b boolean, d date, ts timestamptz, bytes bytea)"
)


@pytest.fixture
def conn(empty_database: str):
    with psycopg.connect(urls.libpq_url(empty_database)) as connection:
        connection.execute("SET timezone = 'UTC'")
        connection.execute(TABLE)
        yield connection


def _loaded(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM loaded ORDER BY ctid").fetchall()


def test_every_type_round_trips(conn: psycopg.Connection) -> None:
    assert copy_frames_binary(conn, "public.loaded", [FRAME]) == FRAME.height
    assert _loaded(conn) == FRAME.rows()


def test_many_blocks_and_empty_ones_in_one_copy(conn: psycopg.Connection) -> None:
    blocks = [FRAME.head(2), FRAME.clear(), FRAME.tail(3), FRAME]
    assert copy_frames_binary(conn, "public.loaded", blocks) == 2 * FRAME.height
    assert _loaded(conn) == FRAME.rows() * 2


def test_the_wire_layout_of_a_tuple() -> None:
    """A field count, then per field its length (-1 for NULL) and its bytes, big-endian."""
    frame = pl.DataFrame({"t": ["ab", None], "i": pl.Series([7, None], dtype=pl.Int32)})
    tuples = bytes(encode_binary_tuples(frame))
    first = b"\x00\x02" + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x04\x00\x00\x00\x07"
    second = b"\x00\x02" + b"\xff\xff\xff\xff" * 2
    assert tuples == first + second


def test_an_error_on_the_server_reaches_the_caller(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE loaded ADD CHECK (i8 < 100)")
    with pytest.raises(psycopg.errors.CheckViolation):
        copy_frames_binary(conn, "public.loaded", [FRAME] * 50)
    conn.rollback()
    conn.execute(TABLE.replace("loaded", "again"))  # the connection is usable afterwards


def test_an_unsupported_column_is_refused() -> None:
    with pytest.raises(TypeError, match="no binary COPY encoding"):
        encode_binary_tuples(pl.DataFrame({"l": [[1, 2]]}))
