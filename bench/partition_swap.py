"""Replacing one day of an indexed, partitioned table: swap (ours) against DELETE + COPY.

Both methods are atomic (one transaction) and end with the same rows; they run alternately on the
same server, so the ratio holds whatever the machine's speed.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta

import psycopg

from bench.database import scratch_database
from warehouse import urls
from warehouse.partitions import PartitionedTable, ensure_partition, replace_partition

TABLE = PartitionedTable(schema="public", table="events", column="received_day")
DAY = date(2026, 11, 24)
COLUMNS = ["message_id", "received_day", "user_id", "event", "ts", "props"]
TYPES = ["uuid", "date", "text", "text", "timestamptz", "text"]


def _rows(n: int):
    import uuid as uuidlib
    from datetime import UTC, datetime

    base = datetime(2026, 11, 24, tzinfo=UTC)
    return [
        (
            uuidlib.uuid4(),
            DAY,
            f"user-{i % 5000}",
            f"event_{i % 40}",
            base + timedelta(seconds=i % 86400),
            '{"k": 1}',
        )
        for i in range(n)
    ]


def _create(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE events (message_id uuid NOT NULL, received_day date NOT NULL, user_id text,"
        " event text, ts timestamptz, props text, PRIMARY KEY (message_id, received_day))"
        " PARTITION BY RANGE (received_day)"
    )
    conn.execute("CREATE INDEX ON events (user_id, ts)")
    conn.execute("CREATE INDEX ON events (event)")
    conn.commit()
    for offset in range(-1, 2):
        ensure_partition(conn, TABLE, DAY + timedelta(days=offset))


def _swap(conn: psycopg.Connection, rows) -> None:
    def write(copy: psycopg.Copy) -> None:
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)

    replace_partition(conn, TABLE, DAY, COLUMNS, write, copy_format="binary")


def _delete_insert(conn: psycopg.Connection, rows) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM events WHERE received_day = %s", (DAY,))
        with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)


def run(rows: int = 300_000, repeat: int = 3) -> dict[str, float]:
    data = _rows(rows)
    timings: dict[str, list[float]] = {"swap": [], "delete_insert": []}
    with scratch_database() as url, psycopg.connect(urls.libpq_url(url)) as conn:
        _create(conn)
        _swap(conn, data)  # both methods then always replace an existing, full day
        for _ in range(repeat):
            for name, method in (("swap", _swap), ("delete_insert", _delete_insert)):
                started = time.perf_counter()
                method(conn, data)
                timings[name].append(time.perf_counter() - started)
        count = conn.execute(
            "SELECT count(*) FROM events WHERE received_day = %s", (DAY,)
        ).fetchone()[0]
    assert count == rows, count
    swap, delete_insert = (statistics.median(timings[k]) for k in ("swap", "delete_insert"))
    print(f"partition replace, {rows:,} rows into an indexed daily partition (median of {repeat})")
    print(f"  swap (load, index, DETACH/ATTACH): {swap:6.2f} s  {rows / swap:>10,.0f} rows/s")
    rate = rows / delete_insert
    print(f"  DELETE + COPY into the partition:  {delete_insert:6.2f} s  {rate:>10,.0f} rows/s")
    print(f"  ratio: swap is {delete_insert / swap:.2f}x faster")
    return {"swap_s": swap, "delete_insert_s": delete_insert, "ratio": delete_insert / swap}
