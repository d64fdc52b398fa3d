"""Lapse metrics on cases small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.lapse.metrics import (
    LapseMetrics,
    auc,
    brier,
    calibration_table,
    pr_auc,
    risk_band,
    risk_bands,
    top_decile_lift,
)


def test_auc_of_a_perfect_and_a_reversed_ranking() -> None:
    y = [False, False, True, True]
    assert auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(auc([False, False], [0.1, 0.2]))


def test_pr_auc_and_brier() -> None:
    assert pr_auc([False, True, True], [0.1, 0.8, 0.9]) == pytest.approx(1.0)
    assert brier([False, True], [0.0, 1.0]) == 0.0
    assert brier([False, True], [0.5, 0.5]) == pytest.approx(0.25)


def test_top_decile_lift() -> None:
    # 20 premiums, 4 lapse (20%); the top 2 predictions hold 2 lapses (100%): lift 5.
    y = np.array([True, True] + [False] * 16 + [True, True])
    p = np.array([0.9, 0.8] + [0.1] * 16 + [0.05, 0.05])
    assert top_decile_lift(y, p) == pytest.approx(5.0)
    # One lapse in the top 2: 50% / 20% = 2.5.
    p[1] = 0.01
    assert top_decile_lift(y, p) == pytest.approx(2.5)
    assert math.isnan(top_decile_lift([False] * 5, [0.1] * 5))


def test_calibration_table_counts_and_rates() -> None:
    p = np.linspace(0.0, 0.99, 100)
    y = np.arange(100) >= 90  # the top tenth lapses
    table = calibration_table(y, p, bins=10)
    assert table["count"].to_list() == [10] * 10
    assert table["positives"].to_list() == [0] * 9 + [10]
    assert table["observed_rate"][-1] == 1.0
    assert table["mean_predicted"][0] == pytest.approx(np.mean(p[:10]))
    # Ties still give near-equal counts; 7 rows in 3 bins: 3, 2, 2 or similar.
    uneven = calibration_table([True, False] * 3 + [True], [0.5] * 7, bins=3)
    assert sorted(uneven["count"].to_list()) == [2, 2, 3]
    assert uneven["count"].sum() == 7


def test_lapse_metrics_bundle_and_metadata() -> None:
    y = [False, False, True, True]
    metrics = LapseMetrics.compute(y, [0.1, 0.2, 0.8, 0.9], bins=2)
    assert (metrics.rows, metrics.positives, metrics.auc, metrics.base_rate) == (4, 2, 1.0, 0.5)
    meta = metrics.as_dict()
    assert meta["auc"] == 1.0 and len(meta["calibration"]) == 2
    one_sided = LapseMetrics.compute([False, False], [0.1, 0.2]).as_dict()
    assert one_sided["auc"] is None and one_sided["top_decile_lift"] is None


def test_risk_bands() -> None:
    assert [risk_band(p) for p in (0.5, 0.2, 0.19, 0.08, 0.079, 0.0)] == [
        "high", "high", "medium", "medium", "low", "low"
    ]  # fmt: skip
    assert risk_bands(np.array([0.3, 0.1, 0.01])).tolist() == ["high", "medium", "low"]
