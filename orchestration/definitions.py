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

# The unpartitioned assets (operational extract, dbt), in dependency order: what `mitra demo`
# materialises after loading the landing days.
ALL_ASSETS_JOB = "all_assets"
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
    return dg.Definitions(
        assets=[
            operational_snapshots,
            build_dbt_assets(),
            build_app_events_asset(partitions),
            build_whatsapp_assets(partitions),
        ],
        asset_checks=[operational_raw_checks],
        jobs=[
            dg.define_asset_job(
                ALL_ASSETS_JOB,
                selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*INGEST_ASSETS),
            ),
            ingest_job,
        ],
        schedules=[build_daily_schedule(ingest_job)],
        sensors=[build_late_files_sensor(ingest_job, partitions, LANDING_SOURCES)],
        resources={
            "databases": databases or DatabasesResource(),
            "landing": landing or LandingResource(),
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
