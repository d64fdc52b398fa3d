"""Every dbt model and every column of its built relation has a description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.defs.dbt.docs_coverage import Undocumented, main, undocumented
from tests.built_world import run_dbt


def _model(name: str, description: str, columns: dict[str, str], package: str = "agent_mitra"):
    return {
        "resource_type": "model",
        "package_name": package,
        "name": name,
        "description": description,
        "columns": {col: {"name": col, "description": text} for col, text in columns.items()},
    }


def _built(*columns: str) -> dict:
    return {
        "columns": {col: {"name": col, "type": "text", "index": i} for i, col in enumerate(columns)}
    }


MANIFEST = {
    "nodes": {
        "model.agent_mitra.documented": _model("documented", "All good.", {"id": "The key."}),
        "model.agent_mitra.bare": _model("bare", "  ", {"id": "The key.", "note": ""}),
        "model.agent_mitra.partly": _model(
            "partly", "Some columns only.", {"ID": "The key.", "gone": "Not built any more."}
        ),
        "model.agent_mitra.ephemeral": _model("ephemeral", "Never built.", {}),
        "model.other_package.theirs": _model("theirs", "", {}, package="other_package"),
        "test.agent_mitra.unique_bare_id": {
            "resource_type": "test",
            "package_name": "agent_mitra",
            "name": "unique_bare_id",
            "description": "",
            "columns": {},
        },
    }
}
CATALOG = {
    "nodes": {
        "model.agent_mitra.documented": _built("id"),
        "model.agent_mitra.bare": _built("id", "note", "extra"),
        "model.agent_mitra.partly": _built("id", "added_later"),
        "model.other_package.theirs": _built("x"),
    }
}


def test_undocumented_models_and_columns() -> None:
    assert undocumented(MANIFEST, CATALOG) == [
        Undocumented("bare"),
        Undocumented("bare", "extra"),
        Undocumented("bare", "note"),
        Undocumented("partly", "added_later"),
    ]
    assert str(Undocumented("bare")) == "model bare"
    assert str(Undocumented("bare", "note")) == "column bare.note"


def test_cli_lists_the_gaps_and_fails(tmp_path: Path, capsys) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "catalog.json").write_text(json.dumps(CATALOG))
    assert main(["--target-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "undocumented column bare.extra" in out and "4 undocumented" in out

    key = "model.agent_mitra.documented"
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": {key: MANIFEST["nodes"][key]}}))
    assert main(["--target-dir", str(tmp_path)]) == 0
    assert main(["--target-dir", str(tmp_path / "nowhere")]) == 2


@pytest.mark.integration
def test_every_model_and_column_is_documented(built_warehouse, tmp_path: Path) -> None:
    """`dbt docs generate` on the built warehouse: no model or built column lacks a description."""
    target = tmp_path / "target"
    run_dbt(built_warehouse.warehouse_url, target, "docs", "generate")
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = [
        uid
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node["package_name"] == "agent_mitra"
        and node["config"]["materialized"] != "ephemeral"
    ]
    # The catalog saw every built relation (else their columns would go unchecked).
    assert models and all(uid in catalog["nodes"] for uid in models), set(models) - set(
        catalog["nodes"]
    )
    gaps = undocumented(manifest, catalog)
    assert not gaps, f"{len(gaps)} undocumented models and columns:\n" + "\n".join(map(str, gaps))
