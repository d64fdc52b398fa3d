"""The Dagster code location: assembles the asset groups, jobs, automation and resources.

Loaded lazily through `@dg.definitions`, so importing this module starts no server, opens no
connection and reads no manifest.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt.assets import build_dbt_assets
from orchestration.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from orchestration.defs.ingest.app_events import ASSET_KEY as APP_EVENTS_KEY
from orchestration.defs.ingest.app_events import build_app_events_asset
from orchestration.defs.ingest.automation import (
    LandingSource,
    build_daily_schedule,
    build_ingest_job,
    build_late_files_sensor,
)
from orchestration.defs.ingest.partitions import daily_partitions
from orchestration.defs.ingest.whatsapp import MESSAGES_KEY, STATUSES_KEY, build_whatsapp_assets
from orchestration.defs.operational.assets import operational_snapshots
from orchestration.defs.operational.checks import operational_raw_checks
from orchestration.resources import DatabasesResource, LandingResource
from warehouse.settings import get_settings

# Every asset, daily partitioned: the operational extract and the unpartitioned dbt models run once
# per run, the landing sources and the incremental dbt models for the run's days. The 02:00
# schedule runs it for the previous day; `mitra demo` runs it over every landing day as one run.
DAILY_JOB = "daily_refresh"
INGEST_ASSETS = [APP_EVENTS_KEY, MESSAGES_KEY, STATUSES_KEY]
LANDING_SOURCES = [
    LandingSource("app_events", (APP_EVENTS_KEY,)),
    LandingSource("whatsapp", (MESSAGES_KEY, STATUSES_KEY)),
    LandingSource("whatsapp_exports", (MESSAGES_KEY, STATUSES_KEY), load_unloaded_days=True),
]


def build_definitions(
    databases: DatabasesResource | None = None,
    landing: LandingResource | None = None,
    partitions_start: date | None = None,
) -> dg.Definitions:
    """Definitions with the given resources (tests pass explicit URLs and folders)."""
    partitions = daily_partitions(partitions_start or get_settings().partitions_start)
    ingest_job = build_ingest_job(partitions, INGEST_ASSETS)
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Extract the operational tables, load the day's landing files, build dbt.",
        tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"},
    )
    return dg.Definitions(
        assets=[
            operational_snapshots,
            *build_dbt_assets(partitions),
            build_app_events_asset(partitions),
            build_whatsapp_assets(partitions),
        ],
        asset_checks=[operational_raw_checks],
        jobs=[daily_job, ingest_job],
        schedules=[build_daily_schedule(daily_job)],
        sensors=[build_late_files_sensor(ingest_job, partitions, LANDING_SOURCES)],
        resources={
            "databases": databases or DatabasesResource(),
            "landing": landing or LandingResource(),
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
        },
    )


def materialize_days(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: date,
    last: date,
    run_config: dict | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Run the daily job over the days `first`..`last` (inclusive) as one run: the backfill of
    a range the way Dagster runs it for assets with a single-run backfill policy."""
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    job = defs.resolve_job_def(DAILY_JOB)
    return [
        job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config or {}, tags=tags
        )
    ]


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
