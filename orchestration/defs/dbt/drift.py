"""Incremental models whose table no longer has the model's columns: rebuilt in full, once.

An incremental model writes only its window. When a release changes its columns (a rename, a
new column), the table built by the previous release cannot take the new rows
(`on_schema_change='fail'`), and appending the new columns instead would leave every older row
without them. So before a windowed build, every incremental model whose table's columns differ
from the columns its yml declares (every column is declared: `docs_coverage` fails otherwise) is
rebuilt once over all history with `dbt run --full-refresh` and the project's wide default
window; the windowed build then goes on as usual, and later runs find nothing to rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from warehouse import urls


@dataclass(frozen=True)
class Drift:
    """An incremental model whose built table has other columns than the model declares."""

    model: str
    added: tuple[str, ...]  # declared by the model, missing from the table
    removed: tuple[str, ...]  # in the table, no longer declared


def incremental_models(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The manifest's incremental model nodes."""
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node.get("config", {}).get("materialized") == "incremental"
    ]


def _table_columns(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    return {name for (name,) in rows}


def find_drift(manifest: Mapping[str, Any], warehouse_url: str) -> list[Drift]:
    """The incremental models whose existing table's columns differ from their declared ones
    (a model not built yet has no table, and so no drift)."""
    drifts: list[Drift] = []
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        for node in incremental_models(manifest):
            present = _table_columns(conn, node["schema"], node.get("alias") or node["name"])
            declared = set(node.get("columns", {}))
            if present and declared and present != declared:
                drifts.append(
                    Drift(
                        node["name"],
                        tuple(sorted(declared - present)),
                        tuple(sorted(present - declared)),
                    )
                )
    return drifts


def load_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def full_refresh_args(drifts: list[Drift]) -> list[str]:
    """`dbt run` arguments rebuilding the drifted models over all history (no window vars: the
    project's defaults cover every day)."""
    return ["run", "--full-refresh", "--select", *(d.model for d in drifts)]
