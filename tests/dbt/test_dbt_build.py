"""`dbt build` through Dagster on simulator data: every model built, every dbt test passed."""

from __future__ import annotations

import json

import dagster as dg
import psycopg
import pytest

from orchestration.defs.dbt.project import dbt_project
from tests.built_world import BuiltWarehouse
from warehouse import urls

pytestmark = pytest.mark.integration


# Sources the simulator does not write yet; their staging is tested on the webhook corpus.
NOT_SIMULATED = {"stg_whatsapp__calls", "stg_whatsapp__message_edits"}


def _models() -> dict[str, dict]:
    manifest = json.loads(dbt_project().manifest_path.read_text())
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "agent_mitra"
    }


def test_every_model_is_built_with_rows(built_warehouse: BuiltWarehouse) -> None:
    models = _models()
    assert len(models) >= 10
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as conn:
        empty = []
        for name, node in sorted(models.items()):
            relation = f'"{node["schema"]}"."{node["alias"]}"'
            count = conn.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]  # noqa: S608
            if count == 0 and name not in NOT_SIMULATED:
                empty.append(name)
    assert not empty, f"models without rows on simulator data: {empty}"


def test_the_run_passed_every_dbt_test(built_warehouse: BuiltWarehouse) -> None:
    results = built_warehouse.results
    checks = [check for result in results for check in result.get_asset_check_evaluations()]
    # Warnings (the volume band of a raw table on a small simulated tier) do not block.
    failed = [
        f"{c.asset_key.to_user_string()}:{c.check_name}"
        for c in checks
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert len(checks) >= 50
    assert not failed, failed
