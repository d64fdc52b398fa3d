"""Extract assets: operational tables copied into the warehouse's `raw` schema, one asset each."""

from collections.abc import Iterator

import dagster as dg

from orchestration.resources import DatabasesResource
from warehouse.extract import SNAPSHOT_TABLES, copy_snapshot, snapshot_table
from warehouse.warehouse_ddl import ensure_warehouse

# Transient database errors (a restart, a dropped connection) are retried; the copy is atomic,
# so a retry starts from a clean state.
DATABASE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def raw_asset_key(table_name: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table_name])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            raw_asset_key(table.name),
            description=f"Snapshot of the operational `{table.name}` table "
            "(all columns, enums as text).",
            group_name="raw_operational",
            kinds={"postgres"},
            metadata={"dagster/table_name": f"raw.{table.name}"},
        )
        for table in SNAPSHOT_TABLES
    ],
    can_subset=True,
    retry_policy=DATABASE_RETRY,
)
def operational_snapshots(
    context: dg.AssetExecutionContext, databases: DatabasesResource
) -> Iterator[dg.MaterializeResult]:
    """Copy each selected operational table into `raw`, replacing the previous copy atomically."""
    ensure_warehouse(databases.warehouse)
    for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
        table = snapshot_table(key.path[-1])
        result = copy_snapshot(databases.operational, databases.warehouse, table)
        context.log.info("copied %s rows of %s into raw", result.rows, result.table)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={"dagster/row_count": result.rows, "rows": result.rows},
        )
