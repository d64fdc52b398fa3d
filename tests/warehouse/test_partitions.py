"""The partition module against a real PostgreSQL: creation, atomic replacement, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import psycopg
import pytest

from warehouse import urls
from warehouse.partitions import (
    PartitionedTable,
    drop_partitions_before,
    ensure_partition,
    list_partitions,
    replace_partition,
)

DAILY = PartitionedTable(schema="raw", table="events", column="received_day")
MONTHLY = PartitionedTable(
    schema="public", table="analytics", column="ts", grain="month", key_type="timestamptz"
)
DAY = date(2026, 11, 24)


@pytest.fixture
def conn(empty_database: str):
    with psycopg.connect(urls.libpq_url(empty_database)) as connection:
        connection.execute("CREATE SCHEMA raw")
        connection.execute(
            "CREATE TABLE raw.events (id bigint NOT NULL, received_day date NOT NULL, body text,"
            " PRIMARY KEY (id, received_day)) PARTITION BY RANGE (received_day)"
        )
        connection.execute("CREATE INDEX ON raw.events (body)")
        connection.execute(
            "CREATE TABLE public.analytics (id bigint, ts timestamptz NOT NULL)"
            " PARTITION BY RANGE (ts)"
        )
        connection.execute(
            "CREATE TABLE public.analytics_default PARTITION OF public.analytics DEFAULT"
        )
        connection.commit()
        yield connection


def _rows(conn: psycopg.Connection, day: date = DAY) -> list[tuple]:
    return conn.execute(
        "SELECT id, received_day, body FROM raw.events WHERE received_day = %s ORDER BY id", (day,)
    ).fetchall()


def _writer(ids: range, day: date = DAY):
    def write(copy: psycopg.Copy) -> None:
        for i in ids:
            copy.write_row((i, day, f"row {i}"))

    return write


COLUMNS = ["id", "received_day", "body"]


def test_bounds_and_names() -> None:
    assert DAILY.bounds(DAY) == (DAY, date(2026, 11, 25))
    assert DAILY.partition_name(DAY) == "events_p20261124"
    assert MONTHLY.bounds(date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert MONTHLY.partition_name(date(2026, 12, 31)) == "analytics_p202612"
    assert MONTHLY.bound_literal(date(2026, 12, 1)).as_string() == "'2026-12-01T00:00:00+05:30'"


def test_ensure_partition_is_idempotent(conn: psycopg.Connection) -> None:
    assert ensure_partition(conn, DAILY, DAY) is True
    assert ensure_partition(conn, DAILY, DAY) is False
    assert list_partitions(conn, DAILY) == ["events_p20261124"]


def test_ensure_partition_moves_rows_out_of_the_default(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO public.analytics VALUES (1, '2026-11-05 10:00+05:30'),"
        " (2, '2026-10-31 23:59+05:30'), (3, '2026-11-30 23:30+05:30')"
    )
    conn.commit()
    assert ensure_partition(conn, MONTHLY, date(2026, 11, 1))
    in_new = conn.execute("SELECT id FROM public.analytics_p202611 ORDER BY id").fetchall()
    in_default = conn.execute("SELECT id FROM public.analytics_default ORDER BY id").fetchall()
    assert in_new == [(1,), (3,)]  # IST month bounds: 23:30 IST on the 30th is still November
    assert in_default == [(2,)]


def test_replace_partition_replaces_only_its_day(conn: psycopg.Connection) -> None:
    other = date(2026, 11, 23)
    assert replace_partition(conn, DAILY, other, COLUMNS, _writer(range(5), other)) == 5
    assert replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(10))) == 10
    assert replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(100, 103))) == 3
    assert [r[0] for r in _rows(conn)] == [100, 101, 102]
    assert len(_rows(conn, other)) == 5
    # The new partition carries the parent's indexes and no leftover load table or CHECK.
    indexes = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p20261124'"
    ).fetchone()[0]
    assert indexes == 2
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname LIKE '%%__loading'"
    ).fetchone()[0]
    assert leftovers == 0


def test_replace_twice_gives_the_same_table(conn: psycopg.Connection) -> None:
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(50)))
    first = _rows(conn)
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(50)))
    assert _rows(conn) == first


def test_failure_half_way_keeps_the_old_rows(conn: psycopg.Connection) -> None:
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(10)))
    before = _rows(conn)

    def crash(copy: psycopg.Copy) -> None:
        for i in range(1000, 1500):
            copy.write_row((i, DAY, "new"))
        raise RuntimeError("source broke half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        replace_partition(conn, DAILY, DAY, COLUMNS, crash)
    assert _rows(conn) == before


def test_row_outside_the_partition_fails_and_keeps_the_old_rows(conn: psycopg.Connection) -> None:
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(3)))
    before = _rows(conn)
    wrong_day = _writer(range(3), date(2026, 11, 25))
    with pytest.raises(psycopg.errors.CheckViolation):
        replace_partition(conn, DAILY, DAY, COLUMNS, wrong_day)
    assert _rows(conn) == before


def test_binary_copy(conn: psycopg.Connection) -> None:
    def write(copy: psycopg.Copy) -> None:
        copy.set_types(["bigint", "date", "text"])
        for i in range(20):
            copy.write_row((i, DAY, None))

    assert replace_partition(conn, DAILY, DAY, COLUMNS, write, copy_format="binary") == 20


_KILLED_LOADER = """
import sys, time, psycopg
from datetime import date
from warehouse.partitions import PartitionedTable, replace_partition
table = PartitionedTable(schema="raw", table="events", column="received_day")
day = date(2026, 11, 24)
def write(copy):
    for i in range(5000):
        copy.write_row((i, day, "doomed"))
    print("half-way", flush=True)
    time.sleep(60)
with psycopg.connect(sys.argv[1]) as conn:
    replace_partition(conn, table, day, ["id", "received_day", "body"], write)
"""


def test_sigkill_mid_load_leaves_the_previous_rows(
    conn: psycopg.Connection, empty_database: str
) -> None:
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(7)))
    before = _rows(conn)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_LOADER, urls.libpq_url(empty_database)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "half-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The server notices the dead client and rolls its transaction back.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        conn.commit()
        if busy == 0:
            break
        time.sleep(0.1)
    assert _rows(conn) == before
    replace_partition(conn, DAILY, DAY, COLUMNS, _writer(range(2)))  # and the next load works
    assert len(_rows(conn)) == 2


def test_drop_partitions_before(conn: psycopg.Connection) -> None:
    for day in (date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)):
        ensure_partition(conn, DAILY, day)
    assert drop_partitions_before(conn, DAILY, date(2026, 11, 22)) == [
        "events_p20261120",
        "events_p20261121",
    ]
    assert list_partitions(conn, DAILY) == ["events_p20261122"]


def test_csv_copy_keeps_empty_strings_apart_from_null(conn: psycopg.Connection) -> None:
    from warehouse.partitions import CSV_NULL

    def write(copy: psycopg.Copy) -> None:
        copy.write(f'1,2026-11-24,""\n2,2026-11-24,{CSV_NULL}\n3,2026-11-24,"a,b"\n'.encode())

    assert replace_partition(conn, DAILY, DAY, COLUMNS, write, copy_format="csv") == 3
    assert [r[2] for r in _rows(conn)] == ["", None, "a,b"]
