"""The extract multi-asset through Dagster (`dagster.materialize`) against real databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from orchestration.defs.operational.assets import (
    DATABASE_RETRY,
    OperationalExtractConfig,
    operational_extract,
    raw_asset_key,
)
from orchestration.resources import DatabasesResource, LandingResource
from tests.warehouse.test_extract import simulated_operational_db
from transforms.pii import phone_token
from warehouse import urls
from warehouse.extract import EXTRACT_TABLES, watermark_column

PII_KEY = "asset-test-pii-key"

PAYMENTS_KEY = raw_asset_key("premium_payments")


def _source_facts(url: str) -> dict[str, tuple[int, float]]:
    """table -> (rows, newest watermark value as a POSIX timestamp), read from the source."""
    facts: dict[str, tuple[int, float]] = {}
    with psycopg.connect(urls.libpq_url(url)) as conn:
        for table in EXTRACT_TABLES:
            row = conn.execute(
                sql.SQL("SELECT count(*), max({}) FROM {}").format(
                    sql.Identifier(watermark_column(table)), sql.Identifier(table.name)
                )
            ).fetchone()
            assert row is not None
            facts[table.name] = (row[0], row[1].timestamp())
    return facts


def _metadata(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dict[str, Any]]:
    return {
        event.asset_key: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def test_specs_one_unpartitioned_asset_per_table() -> None:
    specs = list(operational_extract.specs)
    assert [spec.key for spec in specs] == [raw_asset_key(t.name) for t in EXTRACT_TABLES]
    assert {spec.group_name for spec in specs} == {"raw_operational"}
    assert all("Not partitioned" in (spec.description or "") for spec in specs)
    descriptions = {spec.key: spec.description or "" for spec in specs}
    assert "`phone_token`" in descriptions[raw_asset_key("policyholders")]
    assert "`full_name`, `address_line` not copied" in descriptions[raw_asset_key("policyholders")]
    assert operational_extract.partitions_def is None
    assert operational_extract.can_subset
    assert operational_extract.op.retry_policy == DATABASE_RETRY


def test_materialize_extracts_every_table_then_only_what_changed(
    make_database: Callable[[str], str], tmp_path: Path
) -> None:
    source = simulated_operational_db(make_database, tmp_path)
    warehouse = make_database("wh")
    resources = {
        # The asset creates the warehouse schemas itself.
        "databases": DatabasesResource(operational_url=source, warehouse_url=warehouse),
        # The key every source's tokens use.
        "landing": LandingResource(pii_key=PII_KEY),
    }
    facts = _source_facts(source)

    with dg.instance_for_test() as instance:
        first = dg.materialize([operational_extract], resources=resources, instance=instance)
        assert first.success
        metadata = _metadata(first)
        assert set(metadata) == {raw_asset_key(name) for name in facts}
        for name, (rows, newest) in facts.items():
            meta = metadata[raw_asset_key(name)]
            assert meta["dagster/row_count"] == meta["rows_read"] == meta["rows_upserted"] == rows
            assert meta["rows_marked_deleted"] == 0
            assert meta["watermark"] == newest
            assert meta["full_read"] is True
        # Phone numbers arrive as tokens under the landing resource's key.
        with psycopg.connect(urls.libpq_url(source)) as conn:
            holder_id, phone = conn.execute(
                "SELECT id, phone FROM policyholders WHERE phone IS NOT NULL ORDER BY id LIMIT 1"
            ).fetchone()
        with psycopg.connect(urls.libpq_url(warehouse)) as conn:
            (token,) = conn.execute(
                "SELECT phone_token FROM raw.policyholders WHERE id = %s", (holder_id,)
            ).fetchone()
        assert token == phone_token(phone, PII_KEY.encode())

        with psycopg.connect(urls.libpq_url(source)) as conn:
            conn.execute(
                "UPDATE premium_payments SET transaction_reference = 'UTR-1'"
                " WHERE id = (SELECT id FROM premium_payments ORDER BY id LIMIT 1)"
            )
            conn.execute(
                "DELETE FROM premium_payments"
                " WHERE id = (SELECT id FROM premium_payments ORDER BY id DESC LIMIT 1)"
            )
        second = dg.materialize(
            [operational_extract],
            selection=[PAYMENTS_KEY],
            resources=resources,
            instance=instance,
            run_config=dg.RunConfig(
                ops={"operational_extract": OperationalExtractConfig(overlap_minutes=0)}
            ),
        )

    assert second.success
    meta = _metadata(second)
    assert list(meta) == [PAYMENTS_KEY]  # the subset: one table extracted
    payments = meta[PAYMENTS_KEY]
    rows, newest = facts["premium_payments"]
    assert (payments["rows_read"], payments["rows_upserted"]) == (1, 1)
    assert payments["rows_marked_deleted"] == 1
    assert payments["dagster/row_count"] == rows  # the deleted row stays in raw, marked
    assert payments["watermark"] > newest
    assert payments["full_read"] is False
    assert payments["reconciled_by"] == "keys"
