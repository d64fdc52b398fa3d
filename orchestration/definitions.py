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
from orchestration.defs.ingest.whatsapp import WHATSAPP_KEYS, build_whatsapp_assets
from orchestration.defs.marts_version import MARTS_VERSION_HOOKS, RedisResource
from orchestration.defs.ml.definitions import (
    ML_ASSET_CHECKS,
    SCORING_ASSETS,
    TRAINING_ASSETS,
    build_ml_assets,
    build_training_schedule,
)
from orchestration.defs.operational.assets import operational_snapshots
from orchestration.defs.operational.checks import operational_raw_checks
from orchestration.resources import DatabasesResource, LandingResource
from warehouse.settings import get_settings

# Every asset but model training, daily partitioned: the operational extract and the unpartitioned
# dbt models run once per run, the landing sources, the incremental dbt models and the model
# scores for the run's days. The 02:00 schedule runs it for the previous day; `mitra demo` runs it
# over every landing day as one run. Training is its own weekly job (Sunday 01:00 IST).
DAILY_JOB = "daily_refresh"
TRAINING_JOB = "weekly_model_training"
INGEST_ASSETS = [APP_EVENTS_KEY, *WHATSAPP_KEYS]
LANDING_SOURCES = [
    LandingSource("app_events", (APP_EVENTS_KEY,)),
    LandingSource("whatsapp", WHATSAPP_KEYS),
    LandingSource("whatsapp_exports", WHATSAPP_KEYS, load_unloaded_days=True),
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
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*TRAINING_ASSETS),
        partitions_def=partitions,
        description="Extract the operational tables, load the day's landing files, build dbt, "
        "score with the champion models.",
        tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"},
        hooks=MARTS_VERSION_HOOKS,
    )
    training_job = dg.define_asset_job(
        TRAINING_JOB,
        selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
        description="Train the lapse model and the recommender on the marts, register them, "
        "promote a challenger that beats its champion on the same holdout.",
        hooks=MARTS_VERSION_HOOKS,
    )
    return dg.Definitions(
        assets=[
            operational_snapshots,
            *build_dbt_assets(partitions),
            build_app_events_asset(partitions),
            build_whatsapp_assets(partitions),
            *build_ml_assets(partitions),
        ],
        asset_checks=[operational_raw_checks, *ML_ASSET_CHECKS],
        jobs=[daily_job, ingest_job, training_job],
        schedules=[build_daily_schedule(daily_job), build_training_schedule(training_job)],
        sensors=[build_late_files_sensor(ingest_job, partitions, LANDING_SOURCES)],
        resources={
            "databases": databases or DatabasesResource(),
            "landing": landing or LandingResource(),
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
            "redis": RedisResource(),
        },
    )


def materialize_days(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: date,
    last: date,
    run_config: dict | None = None,
    with_models: bool = False,
) -> list[dg.ExecuteInProcessResult]:
    """Run the daily job over the days `first`..`last` (inclusive) as one run: the backfill of
    a range the way Dagster runs it for assets with a single-run backfill policy.

    `with_models`: also train the models (the weekly job) after the data, then score the days
    with them; without it the daily job runs without its scoring assets."""
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    daily = defs.resolve_job_def(DAILY_JOB)
    data_assets = [
        key for key in daily.asset_layer.executable_asset_keys if key not in SCORING_ASSETS
    ]
    results = [
        daily.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config or {},
            tags=tags,
            asset_selection=data_assets,
        )
    ]
    if not with_models or not results[-1].success:
        return results
    results.append(
        defs.resolve_job_def(TRAINING_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config or {}
        )
    )
    if results[-1].success:
        results.append(
            daily.execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config=run_config or {},
                tags=tags,
                asset_selection=list(SCORING_ASSETS),
            )
        )
    return results


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
