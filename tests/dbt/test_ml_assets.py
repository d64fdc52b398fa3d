"""The model assets on the simulated warehouse: the weekly training job registers and promotes,
the daily scoring writes a score for every due in its window, and the checks run.

Real Dagster runs against the session's built warehouse (tests/built_world.py); the artifact
store is the world's landing root.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from ml.lapse.features import KEY_COLUMNS
from orchestration.defs.ml.lapse_assets import (
    HORIZON_DAYS,
    LAPSE_SCORES,
    read_lapse_inputs,
    score_days,
)
from orchestration.defs.ml.registry_store import champion
from warehouse import urls

pytestmark = pytest.mark.integration


def _registry(url: str) -> list[dict]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        conn.row_factory = psycopg.rows.dict_row
        return conn.execute(
            "SELECT * FROM ml.model_registry ORDER BY trained_at, version"
        ).fetchall()


def test_training_registers_a_champion_with_its_card_and_artifact(built_warehouse, trained_models):
    """From an empty registry the first training registers the logistic baseline as the first
    champion, then its gradient-boosted challenger, compared on the same holdout."""
    first, second, _ = trained_models
    assert first.success, first.all_events
    assert second.success
    rows = _registry(built_warehouse.warehouse_url)
    lapse = [r for r in rows if r["model_name"] == "lapse"]
    assert [r["kind"] for r in lapse] == ["logistic", "gradient_boosting", "gradient_boosting"]
    baseline, head = lapse[0], lapse[1]
    assert baseline["promoted_at"] is not None
    assert baseline["promotion_note"].startswith("first champion: the logistic baseline")
    assert baseline["holdout_start"] == head["holdout_start"]
    assert head["metrics"]["champion_test_auc"] == pytest.approx(baseline["metrics"]["test_auc"])
    assert head["metrics"]["baseline_test_auc"] == pytest.approx(baseline["metrics"]["test_auc"])
    beats = head["metrics"]["test_auc"] > baseline["metrics"]["test_auc"]
    assert head["is_champion"] == beats and (head["promoted_at"] is not None) == beats
    assert baseline["is_champion"] != beats
    assert 0.5 < head["metrics"]["test_auc"] <= 1.0
    assert head["training_window_start"] < head["holdout_start"] <= head["holdout_end"]
    assert len(head["feature_names"]) > 5
    assert {"scikit-learn", "numpy", "polars"} <= set(head["library_versions"])
    assert len(head["data_fingerprint"]) == 64
    artifact = Path(head["artifact_path"])
    assert artifact.is_file()
    assert artifact.is_relative_to(built_warehouse.config.landing_root)
    assert Path(str(artifact).removesuffix(".pkl") + ".roc_calibration.png").is_file()
    recommender = [r for r in rows if r["model_name"] == "recommender"]
    assert recommender[0]["kind"] == "language_popularity" and len(recommender) == 3


def test_a_challenger_that_does_not_beat_the_champion_stays_a_challenger(
    built_warehouse, trained_models
):
    """Same data, same seed: the same AUC on the same holdout is not better, so the champion
    stays and the second model is registered but not promoted."""
    lapse = [r for r in _registry(built_warehouse.warehouse_url) if r["model_name"] == "lapse"]
    baseline, first, second = lapse
    holder = first if first["promoted_at"] is not None else baseline
    assert second["data_fingerprint"] == first["data_fingerprint"]
    assert second["metrics"]["test_auc"] == pytest.approx(first["metrics"]["test_auc"])
    assert second["metrics"]["champion_test_auc"] == pytest.approx(holder["metrics"]["test_auc"])
    assert not second["is_champion"] and second["promoted_at"] is None
    assert "does not beat" in second["promotion_note"]
    stored = champion(built_warehouse.warehouse_url, "lapse")
    assert stored is not None and stored.version == holder["version"]


def test_scoring_writes_a_score_for_every_due_in_its_window(built_warehouse, trained_models):
    _, _, scoring = trained_models
    assert scoring.success
    day = built_warehouse.last_day
    inputs = read_lapse_inputs(built_warehouse.warehouse_url)
    model = champion(built_warehouse.warehouse_url, "lapse").load()
    expected = score_days(inputs, model, [day])
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as conn:
        rows = conn.execute(
            "SELECT policy_id::text, installment_number, due_date, lapse_probability, "
            "risk_band, reasons, model_version FROM ml.lapse_scores WHERE scored_for = %s",
            (day,),
        ).fetchall()
    assert len(rows) == expected.height > 0
    keys = {(r[0], r[1], r[2]) for r in rows}
    assert keys == set(expected.select(KEY_COLUMNS).iter_rows())
    assert all(day <= r[2] < day + timedelta(days=HORIZON_DAYS) for r in rows)
    assert all(0.0 <= r[3] <= 1.0 for r in rows)
    assert {r[4] for r in rows} <= {"high", "medium", "low"}
    reasons = [json.loads(r[5]) if isinstance(r[5], str) else r[5] for r in rows]
    # Up to three, each a sentence; none only where no feature raises the risk above the
    # training population's reference.
    assert all(len(r) <= 3 and all(isinstance(x, str) and x for x in r) for r in reasons)
    assert sum(bool(r) for r in reasons) > len(rows) / 2
    assert {r[6] for r in rows} == {champion(built_warehouse.warehouse_url, "lapse").version}
    checks = {c.check_name: c.passed for c in scoring.get_asset_check_evaluations()}
    assert checks.get("lapse_scores_stable") is True
    materialised = [e.asset_key for e in scoring.all_events if e.is_step_materialization]
    assert LAPSE_SCORES in materialised
