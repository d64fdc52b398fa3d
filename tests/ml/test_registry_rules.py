"""The registry's pure rules: promotion only on a better holdout score, stable fingerprints,
and the drift measure the scoring checks use."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from ml.drift import population_stability_index
from ml.registry import baseline_decision, data_fingerprint, model_version, promotion_decision


def test_first_model_above_the_floor_becomes_champion() -> None:
    decision = promotion_decision("test_auc", 0.74, None, floor=0.6)
    assert decision.promote
    assert "first champion" in decision.note


def test_a_model_below_the_floor_is_never_promoted() -> None:
    assert not promotion_decision("test_auc", 0.55, None, floor=0.6).promote
    assert not promotion_decision("test_auc", float("nan"), None, floor=0.6).promote


def test_the_baseline_is_the_first_champion_whatever_its_score() -> None:
    decision = baseline_decision("logistic", "test_auc", 0.55)
    assert decision.promote
    assert decision.note == "first champion: the logistic baseline (test_auc 0.5500)"
    unmeasured = baseline_decision("language_popularity", "ndcg_at_10", float("nan"))
    assert unmeasured.promote and "not measured" in unmeasured.note


def test_a_challenger_must_beat_the_champion_on_the_same_holdout() -> None:
    assert promotion_decision("test_auc", 0.76, 0.75, floor=0.6).promote
    assert not promotion_decision("test_auc", 0.75, 0.75, floor=0.6).promote
    assert not promotion_decision("test_auc", 0.74, 0.75, floor=0.6).promote
    assert not promotion_decision("test_auc", 0.755, 0.75, floor=0.6, min_improvement=0.01).promote


def test_fingerprint_ignores_row_order_and_sees_any_change() -> None:
    frame = pl.DataFrame({"policy_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0]})
    same = data_fingerprint({"dues": frame})
    assert data_fingerprint({"dues": frame.reverse()}) == same
    changed = frame.with_columns(
        pl.when(pl.col("policy_id") == "b").then(2.5).otherwise(pl.col("amount")).alias("amount")
    )
    assert data_fingerprint({"dues": changed}) != same
    assert data_fingerprint({"dues": frame.head(2)}) != same
    assert data_fingerprint({"other": frame}) != same


def test_versions_are_readable_and_distinguish_data_and_seed() -> None:
    at = datetime(2026, 11, 25, 2, 0, 0)
    version = model_version("lapse", at, "f" * 64, seed=7)
    assert version.startswith("lapse-20261125T020000000000-")
    assert model_version("lapse", at, "f" * 64, seed=8) != version
    assert model_version("lapse", at, "e" * 64, seed=7) != version
    # The same data and seed trained again within the same second: still another version.
    later = at + timedelta(milliseconds=400)
    assert model_version("lapse", later, "f" * 64, seed=7) != version


def test_population_stability_index() -> None:
    rng = np.random.default_rng(3)
    before = rng.beta(2, 20, 20_000)
    assert population_stability_index(before, rng.beta(2, 20, 20_000)) < 0.02
    assert population_stability_index(before, rng.beta(6, 20, 20_000)) > 0.25
    assert np.isnan(population_stability_index(before, np.array([])))
