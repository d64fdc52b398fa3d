"""dbt models as Dagster assets, downstream of the raw assets; dbt tests become asset checks.

The models are split in three `@dbt_assets` (as dagster-open-platform does), by where they stand
relative to the incremental models, so that no group depends on a later one:

1. `dbt_models`: everything not downstream of an incremental model (staging and intermediate
   views, dimensions, tables rebuilt whole): unpartitioned.
2. `dbt_incremental_models`: the incremental models and any model between two of them, daily
   partitioned like the landing sources. A run (one day, or a range backfilled as a single run)
   passes its window to dbt as `--vars {min_date, max_date}` (half-open), and each model
   rewrites exactly the rows of that window (see macros/partition_window.sql).
3. `dbt_downstream_models`: the rest of the incremental models' descendants (tables that read a
   whole incremental fact, such as customer_360): unpartitioned, run after 2.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.defs.dbt.drift import find_drift, full_refresh_args, load_manifest
from orchestration.defs.dbt.project import dbt_project
from orchestration.resources import DatabasesResource

INCREMENTAL = "config.materialized:incremental"
DOWNSTREAM_OF_INCREMENTAL = f"{INCREMENTAL}+"
# Downstream of an incremental model and upstream of one: built with the partition's window.
BETWEEN_INCREMENTAL = f"{INCREMENTAL}+,+{INCREMENTAL}"


class MitraDbtTranslator(DagsterDbtTranslator):
    """Asset keys follow the warehouse layout: `raw/<table>` for sources, `<schema>/<model>` else.

    Sources then line up with the extract and ingest assets' keys, so the UI shows one lineage
    from the operational copy and the landing zone to the marts.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return f"dbt_{schema}" if schema else "dbt"


def _translator() -> MitraDbtTranslator:
    return MitraDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
    )


def window_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The run's partition window as dbt vars: IST days, `max_date` exclusive."""
    window = context.partition_time_window
    start, end = (moment.date() for moment in (window.start, window.end))
    return {"min_date": start.isoformat(), "max_date": end.isoformat()}


def build_dbt_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The three groups; `partitions` is the landing sources' daily partitioning."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=_translator(),
        exclude=DOWNSTREAM_OF_INCREMENTAL,
        name="dbt_models",
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, databases: DatabasesResource
    ) -> Iterator[Any]:
        """`dbt build` of the selected models: runs them and their tests, in dependency order."""
        with databases.dbt_environment():
            yield from dbt.cli(["build"], context=context).stream()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=_translator(),
        select=BETWEEN_INCREMENTAL,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="dbt_incremental_models",
    )
    def dbt_incremental_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, databases: DatabasesResource
    ) -> Iterator[Any]:
        """`dbt build` of the incremental models for the run's days (one or a backfill range)."""
        dbt_vars = window_vars(context)
        context.log.info("dbt window: %s", dbt_vars)
        with databases.dbt_environment():
            drifts = find_drift(load_manifest(project.manifest_path), databases.warehouse)
            if drifts:
                for drift in drifts:
                    context.log.warning(
                        "%s: the table's columns differ from the model's (missing %s, no longer "
                        "declared %s): rebuilding it over all history once",
                        drift.model, list(drift.added), list(drift.removed),
                    )  # fmt: skip
                dbt.cli(full_refresh_args(drifts), manifest=project.manifest_path).wait()
            args = ["build", "--vars", json.dumps(dbt_vars)]
            yield from dbt.cli(args, context=context).stream()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=_translator(),
        select=DOWNSTREAM_OF_INCREMENTAL,
        exclude=BETWEEN_INCREMENTAL,
        name="dbt_downstream_models",
    )
    def dbt_downstream_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, databases: DatabasesResource
    ) -> Iterator[Any]:
        """`dbt build` of the tables that read whole incremental facts, after those."""
        with databases.dbt_environment():
            yield from dbt.cli(["build"], context=context).stream()

    return [dbt_models, dbt_incremental_models, dbt_downstream_models]
