"""Extract assets: operational tables copied incrementally into the warehouse's `raw` schema.

One asset per table (`raw/<table>`), all computed by one multi-asset so a run opens the
databases once; `can_subset` lets a run (or a retry, or the UI) materialise any of them alone.
The assets are not partitioned: what a run reads is decided by each table's stored watermark
(`raw._extract_watermarks`), not by a day, so a run is never "for" a date and a missed run is
simply caught up by the next one. The logic lives in `warehouse.extract`.

Personal data is tokenised with the key of the `landing` resource (`LandingResource.pii_key_bytes`,
MITRA_PII_KEY), the key the landing sources use, so a phone token in `raw.policyholders` joins
the same number's token in `raw.whatsapp_messages`.
"""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
from pydantic import Field

from orchestration.resources import DatabasesResource, LandingResource
from warehouse.extract import DEFAULT_OVERLAP, EXTRACT_TABLES, ExtractResult, extract_table
from warehouse.warehouse_ddl import PII_COLUMNS, PII_SUFFIX, ensure_warehouse

# Transient database errors (a restart, a dropped connection) are retried; each table's extract
# is one warehouse transaction, so a retry starts from a clean state.
DATABASE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


class OperationalExtractConfig(dg.Config):
    """Run config of the extract (the defaults suit the daily schedule)."""

    overlap_minutes: float = Field(
        default=DEFAULT_OVERLAP.total_seconds() / 60,
        ge=0,
        description="Re-read rows changed up to this long before the stored watermark: "
        "`updated_at` is a transaction's start time, and longer transactions commit late.",
    )
    full_refresh: bool = Field(
        default=False,
        description="Ignore the stored watermarks and read every row (only differing rows "
        "are written).",
    )


def raw_asset_key(table_name: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table_name])


def _personal_data(table_name: str) -> str:
    handling = PII_COLUMNS.get(table_name, {})
    tokens = [f"`{name}{PII_SUFFIX}`" for name, how in handling.items() if how != "drop"]
    dropped = [f"`{name}`" for name, how in handling.items() if how == "drop"]
    parts = []
    if tokens:
        parts.append(f"; keyed tokens in {', '.join(tokens)}")
    if dropped:
        parts.append(f"; {', '.join(dropped)} not copied")
    return "".join(parts)


def _description(table_name: str) -> str:
    return (
        f"Incremental copy of the operational `{table_name}` table (enums as text"
        f"{_personal_data(table_name)}): rows changed since the stored watermark, minus a "
        "safety overlap, are upserted by key; rows deleted at the source keep their last "
        "version with `_deleted_at` set. Not partitioned: each run reads from the watermark, "
        "whatever the date."
    )


def _metadata(result: ExtractResult) -> dict[str, dg.MetadataValue]:
    watermark = (
        dg.MetadataValue.null()
        if result.watermark is None
        else dg.MetadataValue.timestamp(result.watermark)
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(result.raw_rows),
        "rows_read": dg.MetadataValue.int(result.rows_read),
        "rows_upserted": dg.MetadataValue.int(result.rows_upserted),
        "rows_marked_deleted": dg.MetadataValue.int(result.rows_marked_deleted),
        "watermark": watermark,
        "full_read": dg.MetadataValue.bool(result.full_read),
        "reconciled_by": dg.MetadataValue.text(result.reconciled_by),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            raw_asset_key(table.name),
            description=_description(table.name),
            group_name="raw_operational",
            kinds={"postgres"},
            metadata={"dagster/table_name": f"raw.{table.name}"},
        )
        for table in EXTRACT_TABLES
    ],
    can_subset=True,
    retry_policy=DATABASE_RETRY,
)
def operational_extract(
    context: dg.AssetExecutionContext,
    config: OperationalExtractConfig,
    databases: DatabasesResource,
    landing: LandingResource,
) -> Iterator[dg.MaterializeResult]:
    """Bring each selected `raw.<table>` up to date with the operational database."""
    ensure_warehouse(databases.warehouse)
    pii_key = landing.pii_key_bytes
    overlap = timedelta(minutes=config.overlap_minutes)
    selected = context.selected_asset_keys
    for table in EXTRACT_TABLES:
        key = raw_asset_key(table.name)
        if key not in selected:
            continue
        result = extract_table(
            table,
            databases.operational,
            databases.warehouse,
            pii_key=pii_key,
            overlap=overlap,
            full_refresh=config.full_refresh,
        )
        context.log.info(
            "%s: read %s, upserted %s, marked deleted %s (%s), watermark %s",
            table.name,
            result.rows_read,
            result.rows_upserted,
            result.rows_marked_deleted,
            result.reconciled_by,
            result.watermark,
        )
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(result))


# The name `orchestration.definitions` imports; the asset is no longer a snapshot.
operational_snapshots = operational_extract
