"""Incremental models built by an older release are found and rebuilt whole, once."""

from __future__ import annotations

import psycopg

from orchestration.defs.dbt.drift import Drift, find_drift, full_refresh_args, load_manifest
from orchestration.defs.dbt.project import dbt_project
from warehouse import urls


def _manifest(*nodes: tuple[str, str, list[str]]) -> dict:
    return {
        "nodes": {
            f"model.mitra.{name}": {
                "resource_type": "model",
                "name": name,
                "schema": "marts",
                "alias": name,
                "config": {"materialized": materialized},
                "columns": {c: {} for c in columns},
            }
            for name, materialized, columns in nodes
        }
    }


def test_a_table_with_other_columns_than_its_model_is_drift(empty_database: str) -> None:
    with psycopg.connect(urls.libpq_url(empty_database)) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.fct_old (wamid text, sent_at timestamptz)")
        conn.execute("CREATE TABLE marts.fct_same (message_key text, sent_at timestamptz)")
        conn.execute("CREATE TABLE marts.dim_table (a text)")
    manifest = _manifest(
        ("fct_old", "incremental", ["message_key", "sent_at"]),
        ("fct_same", "incremental", ["message_key", "sent_at"]),
        ("fct_not_built_yet", "incremental", ["x"]),
        ("dim_table", "table", ["b"]),  # rebuilt whole on every run anyway
    )

    drifts = find_drift(manifest, empty_database)

    assert drifts == [Drift("fct_old", added=("message_key",), removed=("wamid",))]
    assert full_refresh_args(drifts) == ["run", "--full-refresh", "--select", "fct_old"]


def test_every_incremental_model_declares_its_columns() -> None:
    """Drift is judged on the declared columns: a model without them would never be rebuilt."""
    manifest = load_manifest(dbt_project().manifest_path)
    incremental = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    ]
    assert incremental
    assert all(node["columns"] for node in incremental)
