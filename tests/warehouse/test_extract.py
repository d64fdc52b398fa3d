"""The incremental operational extract against real PostgreSQL, on simulator data.

Every test gets its own operational database (migrated, filled by the simulator) and its own
warehouse, so the source can be changed freely: updates, late commits, deletes, crashes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Column, MetaData, Table, Text

from simulator.config import SimulationConfig
from simulator.runner import simulate
from transforms.pii import keyed_token, phone_token
from warehouse import urls
from warehouse.extract import (
    DEFAULT_OVERLAP,
    EXTRACT_TABLES,
    ExtractResult,
    extract_table,
    extract_table_named,
    pii_token,
    watermark_column,
)
from warehouse.migrate import upgrade
from warehouse.warehouse_ddl import (
    PII_COLUMNS,
    PII_SUFFIX,
    _column_type,
    copied_columns,
    ensure_warehouse,
    existing_columns,
    raw_columns,
    raw_key,
    source_key,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_OVERLAP = timedelta(0)
PAYMENTS = "premium_payments"
PII_KEY = b"test-pii-key"
OTHER_KEY = b"another-test-pii-key"
# Tables holding keyed tokens (a key change rewrites them); others only drop columns.
PII_TABLES = sorted(
    name for name, columns in PII_COLUMNS.items() if any(h != "drop" for h in columns.values())
)


def simulated_operational_db(make_database: Callable[[str], str], tmp_path: Path) -> str:
    """A fresh, migrated operational database filled by the simulator (MVP tier, two days)."""
    url = make_database("src")
    upgrade(url)
    config = SimulationConfig(
        tier="mvp", days=2, landing_root=tmp_path / "l", truth_root=tmp_path / "t"
    )
    simulate(config, url, app_secret=b"x", progress=False)
    return url


@pytest.fixture
def source(make_database: Callable[[str], str], tmp_path: Path) -> str:
    return simulated_operational_db(make_database, tmp_path)


@pytest.fixture
def target(make_database: Callable[[str], str]) -> str:
    url = make_database("wh")
    ensure_warehouse(url)
    return url


# --------------------------------------------------------------------------- helpers


def _run(source: str, target: str, **options: Any) -> dict[str, ExtractResult]:
    """Extract every table once (with `PII_KEY` unless told); results by table name."""
    options.setdefault("pii_key", PII_KEY)
    return {t.name: extract_table(t, source, target, **options) for t in EXTRACT_TABLES}


def _one(source: str, target: str, name: str = PAYMENTS, **options: Any) -> ExtractResult:
    options.setdefault("pii_key", PII_KEY)
    return extract_table(extract_table_named(name), source, target, **options)


def _execute(url: str, query: sql.Composable | str, params: tuple[Any, ...] = ()) -> int:
    """Run one statement in its own committed transaction; returns the rows it touched."""
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(query, params).rowcount


def _scalar(url: str, query: sql.Composable | str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _fingerprint(
    url: str, schema: str, table: Table, columns: list[str] | None = None, live_only: bool = False
) -> str:
    """An ordered checksum of a table: md5 of its rows (`columns`, or whole rows) in key order;
    with `live_only`, of the raw rows still present at the source."""
    row = sql.SQL("t.*")
    if columns is not None:
        row = sql.SQL("ROW({})").format(
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns)
        )
    where = sql.SQL("WHERE t._deleted_at IS NULL" if live_only else "")
    # Ordered by the row itself: a tokenised key orders raw and source rows differently.
    return _scalar(
        url,
        sql.SQL(
            "SELECT md5(coalesce(string_agg(({0})::text, '|' ORDER BY ({0})::text), '')) "
            "FROM {1} AS t {2}"
        ).format(row, sql.Identifier(schema, table.name), where),
    )


def _same_content(source: str, target: str, table: Table, key: bytes = PII_KEY) -> bool:
    """The raw copy's live rows are exactly the source's rows (copied columns, enums as text,
    personal values as their tokens under `key`)."""
    handling = PII_COLUMNS.get(table.name, {})
    plain = [c.name for c in copied_columns(table) if c.name not in handling]
    same_plain = _fingerprint(source, "public", table, plain) == _fingerprint(
        target, "raw", table, plain, live_only=True
    )
    return same_plain and _source_tokens(source, table, key) == _raw_tokens(target, table)


def _rows(url: str, query: sql.Composable | str, params: tuple[Any, ...] = ()) -> list[Any]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(query, params).fetchall()


def _tokenised(table: Table) -> list[tuple[str, str]]:
    """(source column, how) of the tokenised columns of `table`."""
    return [(c, how) for c, how in PII_COLUMNS.get(table.name, {}).items() if how != "drop"]


def _source_tokens(source: str, table: Table, key: bytes) -> dict[Any, tuple[Any, ...]]:
    """key -> the tokens the source's personal values should have in raw."""
    columns = _tokenised(table)
    if not columns:
        return {}
    key_column = source_key(table)[0]
    query = sql.SQL("SELECT {}, {} FROM {}").format(
        sql.Identifier(key_column),
        sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
        sql.Identifier("public", table.name),
    )
    key_kind = dict(columns).get(key_column)  # a tokenised key is compared as its token
    return {
        (row[0] if key_kind is None else pii_token(key_kind, row[0], key)): tuple(
            None if v is None else pii_token(how, v, key)
            for v, (_, how) in zip(row[1:], columns, strict=True)
        )
        for row in _rows(source, query)
    }


def _raw_tokens(target: str, table: Table) -> dict[Any, tuple[Any, ...]]:
    """key -> the token columns of the live raw rows."""
    columns = _tokenised(table)
    if not columns:
        return {}
    query = sql.SQL("SELECT {}, {} FROM {} WHERE _deleted_at IS NULL").format(
        sql.Identifier(raw_key(table)[0]),
        sql.SQL(", ").join(sql.Identifier(c + PII_SUFFIX) for c, _ in columns),
        sql.Identifier("raw", table.name),
    )
    return {row[0]: tuple(row[1:]) for row in _rows(target, query)}


def _count(url: str, schema: str, name: str) -> int:
    return _scalar(url, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name)))


def _source_max(source: str, table: Table) -> Any:
    return _scalar(
        source,
        sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(watermark_column(table)), sql.Identifier("public", table.name)
        ),
    )


def _stored_state(target: str, name: str) -> tuple[Any, ...]:
    with psycopg.connect(urls.libpq_url(target)) as conn:
        row = conn.execute(
            "SELECT watermark, columns, rows_read, rows_upserted, rows_marked_deleted"
            " FROM raw._extract_watermarks WHERE table_name = %s",
            (name,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def _payment_ids(source: str, n: int) -> list[Any]:
    with psycopg.connect(urls.libpq_url(source)) as conn:
        rows = conn.execute("SELECT id FROM premium_payments ORDER BY id LIMIT %s", (n,))
        return [r[0] for r in rows]


def _raw_reference(target: str, payment_id: Any) -> str | None:
    return _scalar(
        target,
        "SELECT transaction_reference FROM raw.premium_payments WHERE id = %s",
        (payment_id,),
    )


def _set_reference(conn_or_url: psycopg.Connection | str, payment_id: Any, value: str) -> None:
    statement = "UPDATE premium_payments SET transaction_reference = %s WHERE id = %s"
    if isinstance(conn_or_url, str):
        assert _execute(conn_or_url, statement, (value, payment_id)) == 1
    else:
        assert conn_or_url.execute(statement, (value, payment_id)).rowcount == 1


def _raw_row(target: str, name: str, key: Any) -> tuple[Any, ...] | None:
    """The model columns of one raw row, and its `_deleted_at`."""
    table = extract_table_named(name)
    columns = sql.SQL(", ").join(map(sql.Identifier, [*raw_columns(table), "_deleted_at"]))
    with psycopg.connect(urls.libpq_url(target)) as conn:
        row = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
                columns, sql.Identifier("raw", name), sql.Identifier(raw_key(table)[0])
            ),
            (key,),
        ).fetchone()
    return None if row is None else tuple(row)


# --------------------------------------------------------------------------- tests


def test_first_run_copies_every_table(source: str, target: str) -> None:
    results = _run(source, target)

    assert set(results) == {t.name for t in EXTRACT_TABLES}
    for table in EXTRACT_TABLES:
        result = results[table.name]
        rows = _count(source, "public", table.name)
        assert rows > 0, table.name
        assert result.rows_read == result.rows_upserted == result.raw_rows == rows, result
        assert result.rows_marked_deleted == 0
        assert result.full_read and result.reconciled_by == "full_read"
        assert result.watermark == _source_max(source, table)
        assert _same_content(source, target, table), table.name
        assert _stored_state(target, table.name) == (
            result.watermark, raw_columns(table), rows, rows, 0
        )  # fmt: skip
    assert _scalar(target, "SELECT count(*) FROM raw.users WHERE _deleted_at IS NOT NULL") == 0


def test_a_run_that_changed_rows_leaves_planner_statistics(source: str, target: str) -> None:
    """The upserted raw tables are ANALYZEd: dbt's joins over them plan on real row counts even
    where autovacuum is off or has not caught up."""
    _run(source, target)
    for table in EXTRACT_TABLES:
        analysed = _scalar(
            target,
            "SELECT count(*) FROM pg_stats WHERE schemaname = 'raw' AND tablename = %s",
            (table.name,),
        )
        assert analysed > 0, table.name


def test_only_changed_rows_are_read_on_the_next_run(source: str, target: str) -> None:
    _run(source, target, overlap=NO_OVERLAP)
    changed = _payment_ids(source, 3)
    for payment_id in changed:
        _set_reference(source, payment_id, f"UTR-{payment_id}")  # the trigger bumps updated_at
    # An append-only table advances on created_at (the column's default, now()).
    _execute(
        source,
        "INSERT INTO whatsapp_outbound (wamid, provider_id, agent_id, phone_number_id, sent_at)"
        " SELECT 'wamid.extract-test', provider_id, agent_id, phone_number_id, now()"
        " FROM whatsapp_outbound LIMIT 1",
    )

    second = _run(source, target, overlap=NO_OVERLAP)

    payments, outbound = second[PAYMENTS], second["whatsapp_outbound"]
    assert (payments.rows_read, payments.rows_upserted) == (3, 3)
    assert (outbound.rows_read, outbound.rows_upserted) == (1, 1)
    assert {name: r.rows_read for name, r in second.items() if r.rows_read} == {
        PAYMENTS: 3,
        "whatsapp_outbound": 1,
    }
    assert not any(r.full_read for r in second.values())
    for payment_id in changed:
        assert _raw_reference(target, payment_id) == f"UTR-{payment_id}"
    assert payments.watermark == _source_max(source, extract_table_named(PAYMENTS))
    assert _same_content(source, target, extract_table_named(PAYMENTS))
    assert _same_content(source, target, extract_table_named("whatsapp_outbound"))


def test_a_late_commit_within_the_overlap_is_still_picked_up(source: str, target: str) -> None:
    _one(source, target)
    slow_id, fast_id = _payment_ids(source, 2)

    # A transaction that starts first (so its updated_at is older) but commits after a faster
    # one and after an extract has moved the watermark past its updated_at.
    with psycopg.connect(urls.libpq_url(source)) as slow:
        _set_reference(slow, slow_id, "slow")
        _set_reference(source, fast_id, "fast")
        during = _one(source, target)
        slow.commit()

    assert _raw_reference(target, fast_id) == "fast"
    assert _raw_reference(target, slow_id) != "slow"
    slow_updated_at = _scalar(
        source, "SELECT updated_at FROM premium_payments WHERE id = %s", (slow_id,)
    )
    assert slow_updated_at < during.watermark  # older than the watermark ...
    assert during.watermark - slow_updated_at < DEFAULT_OVERLAP  # ... but within the overlap

    # Without the overlap the row would be lost for good; with it, the next run catches it.
    assert _one(source, target, overlap=NO_OVERLAP).rows_read == 0
    assert _raw_reference(target, slow_id) != "slow"
    caught = _one(source, target)
    assert caught.rows_upserted == 1
    assert _raw_reference(target, slow_id) == "slow"
    assert _same_content(source, target, extract_table_named(PAYMENTS))


@pytest.mark.parametrize("key_max_rows", [1_000_000, 0], ids=["small-table", "big-table"])
def test_a_hard_delete_marks_the_raw_row(source: str, target: str, key_max_rows: int) -> None:
    _run(source, target)
    (gone,) = _payment_ids(source, 1)
    kb_gone = _scalar(source, "SELECT id FROM chatbot_knowledge_base ORDER BY id LIMIT 1")
    before = _raw_row(target, PAYMENTS, gone)
    assert before is not None and before[-1] is None
    assert _execute(source, "DELETE FROM premium_payments WHERE id = %s", (gone,)) == 1
    assert _execute(source, "DELETE FROM chatbot_knowledge_base WHERE id = %s", (kb_gone,)) == 1

    after = _run(source, target, key_reconciliation_max_rows=key_max_rows)

    marked = {name: r.rows_marked_deleted for name, r in after.items() if r.rows_marked_deleted}
    assert marked == {PAYMENTS: 1, "chatbot_knowledge_base": 1}
    assert after[PAYMENTS].reconciled_by == "keys"  # big tables: the counts differed
    # The row stays, with its last version, and says when it disappeared.
    assert after[PAYMENTS].raw_rows == _count(source, "public", PAYMENTS) + 1
    now_row = _raw_row(target, PAYMENTS, gone)
    assert now_row is not None and now_row[:-1] == before[:-1] and now_row[-1] is not None
    kb_row = _raw_row(target, "chatbot_knowledge_base", kb_gone)
    assert kb_row is not None and kb_row[-1] is not None

    # Marked once: the next run marks nothing more (big tables: equal counts, no key stream).
    again = _run(source, target, key_reconciliation_max_rows=key_max_rows)
    assert sum(r.rows_marked_deleted for r in again.values()) == 0
    assert {r.reconciled_by for r in again.values()} == {"keys" if key_max_rows else "counts"}
    assert _raw_row(target, PAYMENTS, gone) == now_row


def test_a_key_that_comes_back_is_live_again(source: str, target: str) -> None:
    _one(source, target, "chatbot_knowledge_base")
    kb_id = _scalar(source, "SELECT id FROM chatbot_knowledge_base ORDER BY id LIMIT 1")
    with psycopg.connect(urls.libpq_url(source)) as conn:
        saved = conn.execute(
            "SELECT provider_id, category, question, answer FROM chatbot_knowledge_base"
            " WHERE id = %s",
            (kb_id,),
        ).fetchone()
        conn.execute("DELETE FROM chatbot_knowledge_base WHERE id = %s", (kb_id,))
    assert _one(source, target, "chatbot_knowledge_base").rows_marked_deleted == 1

    _execute(
        source,
        "INSERT INTO chatbot_knowledge_base (id, provider_id, category, question, answer)"
        " VALUES (%s, %s, %s, %s, %s)",
        (kb_id, *saved),
    )
    back = _one(source, target, "chatbot_knowledge_base")

    assert back.rows_upserted == 1
    row = _raw_row(target, "chatbot_knowledge_base", kb_id)
    assert row is not None and row[-1] is None
    assert _same_content(source, target, extract_table_named("chatbot_knowledge_base"))


def test_a_soft_delete_travels_with_the_row(source: str, target: str) -> None:
    _run(source, target)
    holder = _scalar(source, "SELECT id FROM policyholders ORDER BY id LIMIT 1")
    _execute(source, "UPDATE policyholders SET deleted_at = now() WHERE id = %s", (holder,))

    after = _run(source, target)

    assert after["policyholders"].rows_upserted == 1
    assert after["policyholders"].rows_marked_deleted == 0
    with psycopg.connect(urls.libpq_url(target)) as conn:
        deleted_at, raw_deleted_at = conn.execute(
            "SELECT deleted_at, _deleted_at FROM raw.policyholders WHERE id = %s", (holder,)
        ).fetchone()
    assert deleted_at is not None  # the app's soft delete arrived ...
    assert raw_deleted_at is None  # ... and the row is not gone from the source
    assert _same_content(source, target, extract_table_named("policyholders"))


def test_a_second_run_without_changes_reads_the_overlap_and_changes_nothing(
    source: str, target: str
) -> None:
    first = _run(source, target)
    checksums = {t.name: _fingerprint(target, "raw", t) for t in EXTRACT_TABLES}

    second = _run(source, target)

    for table in EXTRACT_TABLES:
        result, previous = second[table.name], first[table.name]
        in_overlap = _scalar(
            source,
            sql.SQL("SELECT count(*) FROM {} WHERE {} > %s").format(
                sql.Identifier("public", table.name), sql.Identifier(watermark_column(table))
            ),
            (previous.watermark - DEFAULT_OVERLAP,),
        )
        assert result.rows_read == in_overlap, table.name
        assert (result.rows_upserted, result.rows_marked_deleted) == (0, 0), table.name
        assert result.watermark == previous.watermark
        assert result.raw_rows == previous.raw_rows
        # Whole rows, bookkeeping columns included: nothing was rewritten.
        assert _fingerprint(target, "raw", table) == checksums[table.name], table.name
    assert second[PAYMENTS].rows_read < first[PAYMENTS].rows_read / 100


def test_a_future_dated_row_does_not_hide_later_updates(source: str, target: str) -> None:
    """A source row dated ahead of the clock must not push the watermark past real updates."""
    _one(source, target)
    future_id, later_id = _payment_ids(source, 2)
    with psycopg.connect(urls.libpq_url(source)) as conn:
        conn.execute("ALTER TABLE premium_payments DISABLE TRIGGER set_updated_at")
        conn.execute(
            "UPDATE premium_payments SET updated_at = now() + interval '1 day' WHERE id = %s",
            (future_id,),
        )
        conn.execute("ALTER TABLE premium_payments ENABLE TRIGGER set_updated_at")
    capped = _one(source, target, overlap=NO_OVERLAP)
    assert capped.rows_read == 1
    assert capped.watermark < _source_max(source, extract_table_named(PAYMENTS))

    _set_reference(source, later_id, "later")
    after = _one(source, target, overlap=NO_OVERLAP)

    assert _raw_reference(target, later_id) == "later"
    assert after.rows_upserted == 1  # the future row is re-read but not rewritten


def test_a_column_the_model_gained_is_added_and_filled(source: str, target: str) -> None:
    _one(source, target, "chatbot_knowledge_base")
    # The operational migration adds a column with a default: existing rows get the value
    # without their updated_at moving, so only a full read can bring it over.
    _execute(
        source,
        "ALTER TABLE chatbot_knowledge_base ADD COLUMN audience text NOT NULL DEFAULT 'all'",
    )
    grown = extract_table_named("chatbot_knowledge_base").to_metadata(MetaData())
    grown.append_column(Column("audience", Text(), nullable=False))

    first = extract_table(grown, source, target, pii_key=PII_KEY)
    second = extract_table(grown, source, target, pii_key=PII_KEY, overlap=NO_OVERLAP)

    rows = _count(source, "public", "chatbot_knowledge_base")
    assert first.full_read and first.rows_read == first.rows_upserted == rows
    assert not second.full_read and second.rows_read == 0
    assert _scalar(
        target, "SELECT array_agg(DISTINCT audience) FROM raw.chatbot_knowledge_base"
    ) == ["all"]
    assert _same_content(source, target, grown)


# --------------------------------------------------------------------------- personal data


def _plant_personal_data(source: str) -> None:
    """The simulator leaves e-mails, PANs and addresses empty: give some rows each, mixed case."""
    _execute(
        source,
        "UPDATE policyholders AS p SET email = 'Holder.' || n || '@Example.COM',"
        " pan = 'ABCDE' || lpad(n::text, 4, '0') || 'F', address_line = n || ', MG Road'"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM policyholders) AS o"
        " WHERE o.id = p.id AND o.n <= 40",
    )
    _execute(
        source,
        "UPDATE users AS u SET email = 'User.' || n || '@Example.com'"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) AS o"
        " WHERE o.id = u.id AND o.n <= 40",
    )


def _clear_values(source: str) -> dict[str, set[str]]:
    """Every personal value of the source, by `PII_COLUMNS` kind (e-mails also lower-cased)."""
    values: dict[str, set[str]] = {}
    for name, handling in PII_COLUMNS.items():
        for column, how in handling.items():
            rows = _rows(
                source,
                sql.SQL("SELECT DISTINCT {0}::text FROM {1} WHERE {0} IS NOT NULL").format(
                    sql.Identifier(column), sql.Identifier("public", name)
                ),
            )
            found = values.setdefault(how if how != "drop" else column, set())
            found.update(v for (v,) in rows)
            if how == "email":
                found.update(v.lower() for (v,) in rows)
    return values


def _raw_values(target: str) -> set[str]:
    """Every value of every column of every raw copy, as text."""
    values: set[str] = set()
    for table in EXTRACT_TABLES:
        rows = _rows(
            target,
            sql.SQL(
                "SELECT DISTINCT v.value FROM {} AS t, jsonb_each_text(to_jsonb(t)) AS v"
            ).format(sql.Identifier("raw", table.name)),
        )
        values.update(v for (v,) in rows if v is not None)
    return values


def _assert_no_clear_personal_data(source: str, target: str) -> None:
    clear = _clear_values(source)
    # The simulator fills every kind, so the comparison below proves something.
    assert all(clear.values()), {kind: len(v) for kind, v in clear.items()}
    in_raw = _raw_values(target)
    for kind, values in clear.items():
        assert not values & in_raw, kind
    for name, handling in PII_COLUMNS.items():
        assert not set(handling) & _existing_columns(target, name), name


def _existing_columns(target: str, name: str) -> set[str]:
    with psycopg.connect(urls.libpq_url(target)) as conn:
        return existing_columns(conn, name)


def _filenode(target: str, name: str) -> int:
    return _scalar(target, "SELECT pg_relation_filenode(%s)", (f"raw.{name}",))


def test_no_personal_value_reaches_raw_in_clear(source: str, target: str) -> None:
    _plant_personal_data(source)
    results = _run(source, target)

    _assert_no_clear_personal_data(source, target)
    for name in PII_TABLES:
        assert results[name].rows_upserted == _count(source, "public", name) > 0
        assert _same_content(source, target, extract_table_named(name)), name


def test_tokens_are_the_transforms_pii_tokens(source: str, target: str) -> None:
    """The tokens join other sources: a raw phone token is `transforms.pii.phone_token`."""
    _plant_personal_data(source)
    _run(source, target)
    checked = 0
    for name, number in [
        ("users", "phone"),
        ("policyholders", "phone"),
        ("agents", "whatsapp_business_number"),
    ]:
        source_rows = dict(
            _rows(
                source,
                sql.SQL(
                    "SELECT id, {0} FROM {1} WHERE {0} IS NOT NULL ORDER BY id LIMIT 25"
                ).format(sql.Identifier(number), sql.Identifier("public", name)),
            )
        )
        raw_rows = dict(
            _rows(
                target,
                sql.SQL("SELECT id, {} FROM {} WHERE id = ANY(%s)").format(
                    sql.Identifier(number + PII_SUFFIX), sql.Identifier("raw", name)
                ),
                (list(source_rows),),
            )
        )
        assert raw_rows == {i: phone_token(p, PII_KEY) for i, p in source_rows.items()}, name
        checked += len(source_rows)
    assert checked > 25

    holder = _rows(
        source,
        "SELECT id, email, pan FROM policyholders WHERE email IS NOT NULL AND pan IS NOT NULL"
        " ORDER BY id LIMIT 1",
    )[0]
    raw = _rows(
        target, "SELECT email_token, pan_token FROM raw.policyholders WHERE id = %s", (holder[0],)
    )[0]
    assert raw == (keyed_token(holder[1].lower(), PII_KEY), keyed_token(holder[2], PII_KEY))


def test_another_key_rewrites_every_token(source: str, target: str) -> None:
    _run(source, target)
    before = {name: _raw_tokens(target, extract_table_named(name)) for name in PII_TABLES}

    rotated = _run(source, target, pii_key=OTHER_KEY)

    # Tables with tokens are read and rewritten whole, so none mixes two keys; others are not.
    assert {name for name, r in rotated.items() if r.full_read} == set(PII_TABLES)
    for name in PII_TABLES:
        table = extract_table_named(name)
        assert rotated[name].rows_upserted == _count(source, "public", name)
        assert _same_content(source, target, table, key=OTHER_KEY), name
        old = {t for row in before[name].values() for t in row if t}
        new = {t for row in _raw_tokens(target, table).values() for t in row if t}
        assert old and new and not old & new, name
    # The next run with the same key is incremental again.
    assert not any(r.full_read for r in _run(source, target, pii_key=OTHER_KEY).values())


def test_an_empty_key_is_refused(source: str, target: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        _one(source, target, "users", pii_key=b"")


def _write_legacy_raw(source: str, target: str, table: Table) -> int:
    """`raw.<table>` as the extract wrote it before tokens (every model column, in clear), with
    its watermark row; plus one row already gone from the source. Returns the source's rows."""
    model_columns = [c.name for c in table.columns]
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(_column_type(c)))
        for c in table.columns
    )
    raw, cols = (
        sql.Identifier("raw", table.name),
        sql.SQL(", ").join(map(sql.Identifier, model_columns)),
    )
    with (
        psycopg.connect(urls.libpq_url(source)) as src,
        psycopg.connect(urls.libpq_url(target)) as dst,
    ):
        dst.execute(sql.SQL("DROP TABLE {}").format(raw))
        dst.execute(
            sql.SQL(
                "CREATE TABLE {} ({}, _extracted_at timestamptz NOT NULL DEFAULT now(),"
                " _deleted_at timestamptz, PRIMARY KEY (id))"
            ).format(raw, definitions)
        )
        read = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
            cols, sql.Identifier("public", table.name)
        )
        write = sql.SQL("COPY {} ({}) FROM STDIN").format(raw, cols)
        with src.cursor().copy(read) as out, dst.cursor().copy(write) as into:
            for block in out:
                into.write(block)
        phone = next(c for c, how in PII_COLUMNS[table.name].items() if how == "phone")
        dst.execute(
            sql.SQL(
                "INSERT INTO {} (id, {}, created_at, updated_at) VALUES (gen_random_uuid(),"
                " %s, now(), now())"
            ).format(raw, sql.Identifier(phone)),
            ("+919999900000",),
        )
        rows, newest = src.execute(
            sql.SQL("SELECT count(*), max(updated_at) FROM {}").format(
                sql.Identifier("public", table.name)
            )
        ).fetchone()
        dst.execute(
            "INSERT INTO raw._extract_watermarks (table_name, watermark_column, watermark,"
            " columns, last_run_at, rows_read, rows_upserted, rows_marked_deleted)"
            " VALUES (%s, 'updated_at', %s, %s, now(), %s, %s, 0)",
            (table.name, newest, model_columns, rows, rows),
        )
    return rows


def test_raw_tables_written_in_clear_are_upgraded(source: str, target: str) -> None:
    """A warehouse loaded before the tokens: its clear columns go and a full read fills tokens."""
    _plant_personal_data(source)
    _execute(target, "ALTER TABLE raw._extract_watermarks DROP COLUMN pii_tokens")
    legacy = [name for name in PII_TABLES if name not in TOKENISED_KEY_TABLES]
    rows = {name: _write_legacy_raw(source, target, extract_table_named(name)) for name in legacy}
    assert "+919999900000" in _raw_values(target)
    files = {name: _filenode(target, name) for name in legacy}
    # dbt's staging views select `*`, so they depend on every column, the clear ones included.
    _execute(target, "CREATE VIEW public.stg_users_like_dbt AS SELECT * FROM raw.users")

    ensure_warehouse(target)  # what the asset runs first
    upgraded = {name: _one(source, target, name, overlap=NO_OVERLAP) for name in legacy}

    for name in legacy:
        result, table = upgraded[name], extract_table_named(name)
        assert result.full_read, name  # the stored column list changed: every row re-read
        assert result.rows_read == result.rows_upserted == rows[name], name
        assert result.rows_marked_deleted == 1  # the row gone from the source ...
        gone = _rows(
            target,
            sql.SQL("SELECT {} FROM {} WHERE _deleted_at IS NOT NULL").format(
                sql.SQL(", ").join(map(sql.Identifier, raw_columns(table))),
                sql.Identifier("raw", name),
            ),
        )
        assert len(gone) == 1
        # ... keeps no token: it cannot be re-read, and its clear value is not kept.
        tokens = [i for i, c in enumerate(raw_columns(table)) if c.endswith(PII_SUFFIX)]
        assert all(gone[0][i] is None for i in tokens)
        assert _same_content(source, target, table), name
        assert _stored_state(target, name)[1] == raw_columns(table)
        # The table was rewritten, so the dropped values are not left in its file either.
        assert _filenode(target, name) != files[name]
    _assert_no_clear_personal_data(source, target)
    assert "+919999900000" not in _raw_values(target)


def test_a_key_written_in_clear_is_rekeyed_on_its_token(source: str, target: str) -> None:
    """A raw copy keyed by a clear id that is now tokenised (the outbound messages' `wamid`):
    emptied, re-keyed on the token and filled again by a full read, no clear id left."""
    name = "whatsapp_outbound"
    table = extract_table_named(name)
    _one(source, target, name)
    with psycopg.connect(urls.libpq_url(target)) as conn:
        conn.execute("DROP TABLE raw.whatsapp_outbound CASCADE")
        conn.execute(
            "CREATE TABLE raw.whatsapp_outbound (wamid text PRIMARY KEY, provider_id uuid,"
            " agent_id uuid, policyholder_id uuid, template_id uuid, phone_number_id text,"
            " sent_at timestamptz, created_at timestamptz,"
            " _extracted_at timestamptz NOT NULL DEFAULT now(), _deleted_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO raw.whatsapp_outbound (wamid, sent_at) VALUES ('wamid.legacy', now())"
        )
    ensure_warehouse(target)
    result = _one(source, target, name, overlap=NO_OVERLAP)

    rows = _count(source, "public", name)
    assert result.full_read and result.rows_read == result.rows_upserted == rows
    with psycopg.connect(urls.libpq_url(target)) as conn:
        assert "wamid" not in existing_columns(conn, name)
    assert _count(target, "raw", name) == rows  # the legacy row went with its clear key
    assert _same_content(source, target, table)
    assert raw_key(table) == ["wamid_token"]


# Outbound WhatsApp messages: their key itself is tokenised (see the test above).
TOKENISED_KEY_TABLES = {"whatsapp_outbound"}


# Columns whose names look personal but are not copied as personal data, and why. Any other
# such column of an extracted table must be classified in `PII_COLUMNS` first.
NOT_PERSONAL = {
    ("insurance_providers", "name"): "the insurer's name",
    ("insurance_providers", "support_phone"): "the insurer's public support line",
    ("users", "phone_verified_at"): "a time",
    ("users", "email_verified_at"): "a time",
    ("agents", "whatsapp_phone_number_id"): "Meta's id of the business number, not a number",
    ("policyholders", "date_of_birth"): "kept for age bands (personal: see DESIGN §5)",
    ("insurance_policies", "plan_name"): "a product name",
    ("whatsapp_templates", "name"): "a template name",
    ("whatsapp_outbound", "phone_number_id"): "Meta's id of the sending business number",
}
PERSONAL_LOOKING = re.compile(r"phone|mobile|mail|pan$|name|address|birth|aadhaar|nominee")


def test_every_personal_looking_column_is_classified() -> None:
    looking = {
        (t.name, c.name)
        for t in EXTRACT_TABLES
        for c in t.columns
        if PERSONAL_LOOKING.search(c.name)
    }
    classified = {(t, c) for t, handling in PII_COLUMNS.items() for c in handling}
    assert looking - classified == set(NOT_PERSONAL)
    assert {t for t, _ in classified} <= {t.name for t in EXTRACT_TABLES}


# --------------------------------------------------------------------------- crashes

CHILD = (
    "import sys\n"
    "from warehouse.extract import extract_table, extract_table_named\n"
    "extract_table(extract_table_named('premium_payments'), sys.argv[1], sys.argv[2],"
    " pii_key=b'test-pii-key')\n"
)


def _blocked_session(target: str, timeout: float = 30.0) -> tuple[int, str]:
    """Wait for another session of the warehouse to wait on a lock; its (pid, query)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(urls.libpq_url(target), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None:
                return row[0], row[1]
            time.sleep(0.02)
    raise AssertionError("the extract never reached the locked row")


def _wait_gone(target: str, pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _scalar(target, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)):
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} still alive")


# Where the load is stopped: a raw row it must update (half-way through the upsert, staging
# filled and earlier rows written), or its watermark row (every row written, deletions marked,
# only the watermark and the commit left). The test holds that row's lock, the load waits on it.
STOP_AT = {
    "mid-upsert": (
        "SELECT 1 FROM raw.premium_payments WHERE id = %s FOR UPDATE",
        '"raw"."premium_payments"',
    ),
    "at-watermark": (
        "SELECT 1 FROM raw._extract_watermarks WHERE table_name = 'premium_payments'"
        " AND %s IS NOT NULL FOR UPDATE",
        '"raw"."_extract_watermarks"',
    ),
}


def _crash(source: str, target: str, how: str) -> tuple[int, str]:
    """Start an extract of premium_payments and kill it once it waits on a lock; (pid, query)."""
    if how == "sigkill":
        child = subprocess.Popen([sys.executable, "-c", CHILD, source, target], cwd=REPO_ROOT)
        try:
            blocked = _blocked_session(target)
        finally:
            child.kill()
            child.wait(timeout=30)
        return blocked
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(_one, source, target)
        blocked = _blocked_session(target)
        _execute(target, "SELECT pg_terminate_backend(%s)", (blocked[0],))
        with pytest.raises(psycopg.OperationalError):
            running.result(timeout=30)
    return blocked


@pytest.mark.parametrize("stop_at", sorted(STOP_AT))
@pytest.mark.parametrize("how", ["sigkill", "connection-lost"])
def test_a_crash_mid_load_keeps_the_previous_rows_and_watermark(
    source: str, target: str, how: str, stop_at: str
) -> None:
    payments = extract_table_named(PAYMENTS)
    _one(source, target)
    checksum, state = _fingerprint(target, "raw", payments), _stored_state(target, PAYMENTS)
    changed = _execute(
        source,
        "UPDATE premium_payments SET transaction_reference = 'changed'"
        " WHERE installment_number = 1",
    )
    assert (
        _execute(
            source,
            "DELETE FROM premium_payments WHERE id = (SELECT id FROM premium_payments"
            " WHERE installment_number > 1 ORDER BY id LIMIT 1)",
        )
        == 1
    )
    locked = _scalar(
        source,
        "SELECT id FROM premium_payments WHERE installment_number = 1"
        " ORDER BY id OFFSET %s LIMIT 1",
        (changed // 2,),
    )
    lock_statement, waiting_on = STOP_AT[stop_at]

    with psycopg.connect(urls.libpq_url(target)) as blocker:
        assert blocker.execute(lock_statement, (locked,)).rowcount == 1
        pid, query = _crash(source, target, how)
        blocker.rollback()
    _wait_gone(target, pid)

    assert query.startswith(f"INSERT INTO {waiting_on}"), query
    assert _fingerprint(target, "raw", payments) == checksum
    assert _stored_state(target, PAYMENTS) == state
    recovered = _one(source, target)
    assert (recovered.rows_upserted, recovered.rows_marked_deleted) == (changed, 1)
    assert _same_content(source, target, payments)
