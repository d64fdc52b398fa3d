"""dbt models as Dagster assets, downstream of the raw assets; dbt tests become asset checks."""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration.defs.dbt.project import dbt_project
from orchestration.resources import DatabasesResource


class MitraDbtTranslator(DagsterDbtTranslator):
    """Asset keys follow the warehouse layout: `raw/<table>` for sources, `<schema>/<model>` else.

    Sources then line up with the extract assets' keys, so the UI shows one lineage from the
    operational copy to the marts.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return f"dbt_{schema}" if schema else "dbt"


def build_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=MitraDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
        ),
        name="dbt_models",
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, databases: DatabasesResource
    ) -> Iterator[Any]:
        """`dbt build` of the selected models: runs them and their tests, in dependency order."""
        with databases.dbt_environment():
            yield from dbt.cli(["build"], context=context).stream()

    return dbt_models
