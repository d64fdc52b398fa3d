"""The Dagster code location: assembles the asset groups and resources, nothing else.

Loaded lazily through `@dg.definitions`, so importing this module starts no server, opens no
connection and reads no manifest.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt.assets import build_dbt_assets
from orchestration.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from orchestration.defs.operational.assets import operational_snapshots
from orchestration.resources import DatabasesResource

# Everything, in dependency order: what `mitra demo` materialises.
ALL_ASSETS_JOB = "all_assets"


def build_definitions(databases: DatabasesResource | None = None) -> dg.Definitions:
    """Definitions with the given database resource (tests pass explicit URLs)."""
    assets = [operational_snapshots, build_dbt_assets()]
    return dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job(ALL_ASSETS_JOB, selection=dg.AssetSelection.all())],
        resources={
            "databases": databases or DatabasesResource(),
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
