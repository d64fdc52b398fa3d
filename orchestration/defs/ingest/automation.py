"""When the landing sources load: a daily schedule, and a sensor for files that land late.

- The schedule runs at 02:00 IST and loads the previous day (the last complete partition).
- The sensor watches the landing folders. A file written after its day's partition was loaded
  (an offline batch, a re-delivered webhook, an uploaded chat export) re-materialises that
  partition; chat exports also load a day that was never loaded. Its cursor is the time of the
  last scan, so each tick looks only at folders changed since.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg

from orchestration.resources import LandingResource

INGEST_JOB = "ingest_landing_daily"


@dataclass(frozen=True)
class LandingSource:
    folder: str  # under the landing root
    assets: tuple[dg.AssetKey, ...]  # what a new file of this source re-materialises
    load_unloaded_days: bool = False  # also load a day no run has loaded yet


def build_ingest_job(
    partitions: dg.PartitionsDefinition, assets: list[dg.AssetKey]
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=partitions,
        description="Load one receipt day of every landing source into raw (and quarantine).",
        tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"},
    )


def build_daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job,
        hour_of_day=2,
        minute_of_hour=0,
        name="daily_refresh_0200_ist",
        description="02:00 Asia/Kolkata: extract, load the previous day of every landing "
        "source, build dbt for it.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def _changed_days(root: Path, folder: str, since: float) -> dict[str, float]:
    """Days (partition keys) of `folder` holding a file modified after `since`: newest mtime."""
    changed: dict[str, float] = {}
    base = root / folder
    if not base.exists():
        return changed
    for day_dir in base.glob("dt=*"):
        newest = max((f.stat().st_mtime for f in day_dir.iterdir()), default=0.0)
        if newest > since:
            changed[day_dir.name.removeprefix("dt=")] = newest
    return changed


def _last_loaded(instance: dg.DagsterInstance, key: dg.AssetKey, day: str) -> float | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


def build_late_files_sensor(
    job: dg.UnresolvedAssetJobDefinition,
    partitions: dg.PartitionsDefinition,
    sources: list[LandingSource],
) -> dg.SensorDefinition:
    @dg.sensor(
        name="late_landing_files",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-materialises a day whose landing files changed after it was loaded.",
    )
    def late_landing_files(
        context: dg.SensorEvaluationContext, landing: LandingResource
    ) -> Iterator[dg.RunRequest]:
        since = float(context.cursor or 0.0)
        scan_started = since
        valid = set(partitions.get_partition_keys(dynamic_partitions_store=context.instance))
        requests: dict[str, set[dg.AssetKey]] = {}
        for source in sources:
            for day, newest in _changed_days(landing.path, source.folder, since).items():
                scan_started = max(scan_started, newest)
                if day not in valid:
                    continue  # today's partition does not exist until the day is over
                loaded_at = _last_loaded(context.instance, source.assets[0], day)
                if (loaded_at is None and source.load_unloaded_days) or (
                    loaded_at is not None and newest > loaded_at
                ):
                    requests.setdefault(day, set()).update(source.assets)
        for day, assets in sorted(requests.items()):
            yield dg.RunRequest(
                run_key=f"late:{day}:{scan_started}",
                partition_key=day,
                asset_selection=sorted(assets, key=lambda k: k.to_user_string()),
                tags={"mitra/trigger": "late_landing_files"},
            )
        context.update_cursor(str(scan_started))

    return late_landing_files


def days_between(start: date, end: date) -> list[str]:
    """Partition keys from `start` to `end` inclusive (for backfills and tests)."""
    return [date.fromordinal(d).isoformat() for d in range(start.toordinal(), end.toordinal() + 1)]
