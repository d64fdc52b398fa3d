"""`raw/app_events`: one receipt day of app events per partition, replaced atomically."""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import psycopg

from orchestration.defs.ingest.checks import (
    DayCheck,
    check_specs,
    partition_rows,
    partition_suite_checks,
    reconciliation_check,
    results,
    volume_check,
)
from orchestration.defs.ingest.expectations import CheckSuite
from orchestration.defs.ingest.landing import day_files, read_ahead, read_blocks
from orchestration.defs.ingest.load import BinaryStream, replace_day, write_csv
from orchestration.defs.ingest.partitions import TIMEZONE, partition_days
from orchestration.defs.ingest.tables import APP_EVENTS, APP_EVENTS_QUARANTINE
from orchestration.defs.operational.assets import DATABASE_RETRY
from orchestration.resources import DatabasesResource, LandingResource
from transforms.app_events import AppEventsParser, AppEventsResult
from warehouse import urls
from warehouse.bulk import binary_frames, require_integer_datetimes

ASSET_KEY = dg.AssetKey(["raw", "app_events"])
SOURCE = "app_events"
EVENT_TYPES = ["track", "screen", "identify"]
# Events queued offline arrive days late (DESIGN §5): older than this is suspicious, not invalid.
LATE_TOLERANCE = timedelta(days=30)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), ZoneInfo(TIMEZONE)).astimezone(UTC)
    return start, start + timedelta(days=1)


def _keys(day: date) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="message_id"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="message_id"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="user_id"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="session_id"),
    ]


def _accepted(day: date) -> list:
    import great_expectations as gx

    return [gx.expectations.ExpectColumnValuesToBeInSet(column="type", value_set=EVENT_TYPES)]


def _timestamps(day: date) -> list:
    import great_expectations as gx

    start, end = _day_bounds(day)
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="received_at", min_value=start, max_value=end
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="event_timestamp", min_value=start - LATE_TOLERANCE, max_value=end
        ),
    ]


SUITES = [
    CheckSuite(
        "keys_valid", "message_id present and unique; user and session present", True, _keys
    ),
    CheckSuite("accepted_values", "type is track, screen or identify", True, _accepted),
    CheckSuite(
        "timestamps_in_window",
        "received in the partition's IST day; event time within 30 days before it",
        False,
        _timestamps,
    ),
]
CHECK_SPECS = check_specs(ASSET_KEY, SUITES)


def load_app_events_partition(day: date, files: list[Path], warehouse_url: str) -> dict[str, int]:
    """Stream the day's landing files through the parser into the day's raw partition, then
    its quarantine, in one transaction; memory holds one block of rows at a time."""
    parser = AppEventsParser(day)
    counts = {"files": len(files), "read": 0, "loaded": 0, "quarantined": 0, "duplicates": 0}
    rejected: list[pl.DataFrame] = []

    def account(part: AppEventsResult, write: Callable[[pl.DataFrame], int]) -> None:
        write(part.clean.select(APP_EVENTS.column_names))
        rejected.append(part.rejected)
        counts["read"] += part.read
        counts["loaded"] += part.clean.height
        counts["quarantined"] += part.rejected.height
        counts["duplicates"] += part.duplicates

    def write_clean(copy: psycopg.Copy) -> None:
        with binary_frames(copy) as write:
            for block in read_ahead(read_blocks(files)):
                account(parser.feed(block), write)
            account(parser.finish(), write)

    def write_rejected(copy: psycopg.Copy) -> None:
        write_csv(copy, pl.concat(rejected).select(APP_EVENTS_QUARANTINE.column_names))

    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        require_integer_datetimes(conn)
        replace_day(
            conn,
            day,
            {APP_EVENTS: BinaryStream(write_clean), APP_EVENTS_QUARANTINE: write_rejected},
        )
    return counts


def load_app_events_day(
    day: date, landing: LandingResource, warehouse_url: str
) -> tuple[dict[str, int], list[DayCheck]]:
    """Load the day, then check it: reconciliation, volume and the suites (inside PostgreSQL)."""
    files = day_files(landing.path, SOURCE, day, "*.ndjson*")
    counts = load_app_events_partition(day, files, warehouse_url)
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        checks = [
            reconciliation_check(
                day,
                read=counts["read"],
                loaded=counts["loaded"],
                quarantined=counts["quarantined"],
                duplicates=counts["duplicates"],
                in_table=partition_rows(conn, APP_EVENTS, day),
            ),
            volume_check(conn, APP_EVENTS, day, counts["loaded"]),
        ]
    checks += partition_suite_checks(warehouse_url, APP_EVENTS, SUITES, day)
    return counts, checks


def build_app_events_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=ASSET_KEY,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="raw_app_events",
        kinds={"polars", "postgres"},
        check_specs=CHECK_SPECS,
        retry_policy=DATABASE_RETRY,
        metadata={"dagster/table_name": "raw.app_events"},
        description="App events received on the partition's day (IST), parsed and validated in "
        "polars, deduplicated on messageId, event time derived from the device and server "
        "clocks; invalid lines go to quarantine.app_events. The day is replaced atomically.",
    )
    def app_events(
        context: dg.AssetExecutionContext, databases: DatabasesResource, landing: LandingResource
    ) -> Iterator:
        totals: dict[str, int] = {}
        checks: list[DayCheck] = []
        for day in partition_days(context):
            counts, day_checks = load_app_events_day(day, landing, databases.warehouse)
            context.log.info("app events %s: %s", day, counts)
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
            checks += day_checks
        yield dg.MaterializeResult(
            metadata={**totals, "dagster/row_count": totals.get("loaded", 0)},
            check_results=results(ASSET_KEY, checks, CHECK_SPECS),
        )

    return app_events
