"""The volume band and the reconciliation of the landing sources' checks."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from psycopg import sql

from orchestration.defs.ingest.checks import reconciliation_check, volume_check
from warehouse import urls
from warehouse.raw_tables import TableSpec, ensure_tables

SPEC = TableSpec(
    "raw",
    "messages",
    (("id", "bigint"), ("received_day", "date"), ("source", "text")),
    partition_column="received_day",
)
DAY = date(2026, 9, 10)


@pytest.fixture
def conn(empty_database: str):
    with psycopg.connect(urls.libpq_url(empty_database)) as connection:
        for offset in range(1, 8):  # a trailing week: 30 webhook and 200 chat-export rows a day
            day = DAY - timedelta(days=offset)
            ensure_tables(connection, [SPEC], day)
            connection.execute(
                "INSERT INTO raw.messages SELECT g, %s, CASE WHEN g <= 30 THEN 'webhook'"
                " ELSE 'chat_export' END FROM generate_series(1, 230) g",
                (day,),
            )
        connection.commit()
        yield connection


def test_a_day_far_outside_the_trailing_week_fails(conn: psycopg.Connection) -> None:
    assert volume_check(conn, SPEC, DAY, 230).passed
    assert not volume_check(conn, SPEC, DAY, 1000).passed
    assert not volume_check(conn, SPEC, DAY, 50).passed


def test_small_days_get_poisson_slack(conn: psycopg.Connection) -> None:
    webhook = sql.SQL("source = 'webhook'")
    # Median 30: half is 15, but four Poisson standard deviations (21.9) below is allowed too.
    assert volume_check(conn, SPEC, DAY, 9, only=webhook).passed
    assert not volume_check(conn, SPEC, DAY, 7, only=webhook).passed
    assert volume_check(conn, SPEC, DAY, 60, only=webhook).passed
    assert not volume_check(conn, SPEC, DAY, 70, only=webhook).passed
    # Without the filter the same 70 rows compare against 230 a day and fail low.
    assert not volume_check(conn, SPEC, DAY, 70).passed


def test_no_history_passes(conn: psycopg.Connection) -> None:
    assert volume_check(conn, SPEC, DAY - timedelta(days=30), 5).passed


def test_reconciliation_balances_records_and_rows() -> None:
    assert reconciliation_check(
        DAY, read=10, loaded=7, quarantined=2, duplicates=1, in_table=7
    ).passed
    assert not reconciliation_check(
        DAY, read=10, loaded=7, quarantined=2, duplicates=0, in_table=7
    ).passed
    assert not reconciliation_check(
        DAY, read=10, loaded=7, quarantined=2, duplicates=1, in_table=6
    ).passed
    # Webhook lines carry several records: rows are checked against their own expectation.
    assert reconciliation_check(
        DAY, read=10, loaded=8, quarantined=1, duplicates=0, skipped=1, in_table=15,
        expected_in_table=15,
    ).passed  # fmt: skip
