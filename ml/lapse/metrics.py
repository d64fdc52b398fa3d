"""How good lapse probabilities are: ranking (AUC, PR-AUC, lift), accuracy (Brier) and
calibration, plus the risk bands agents see.

Labels are `True` for a premium unpaid at grace end. A metric that needs both classes is NaN
when only one is present (a tiny or one-sided period), rather than an exception.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

RiskBand = Literal["high", "medium", "low"]
# A premium is high risk from a 20% chance of lapsing (about four times the usual 4-6% base
# rate: the short list an agent should call this week), medium from 8% (above the base rate by
# enough to deserve a reminder), low below that.
HIGH_RISK_FROM = 0.20
MEDIUM_RISK_FROM = 0.08


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y, dtype=bool).ravel()
    scores = np.asarray(p, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.shape[0]} labels but {scores.shape[0]} predictions")
    return labels, scores


def _both_classes(labels: np.ndarray) -> bool:
    return 0 < labels.sum() < labels.size


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve: the chance a lapsing premium is ranked above a paid one."""
    labels, scores = _arrays(y, p)
    return float(roc_auc_score(labels, scores)) if _both_classes(labels) else math.nan


def pr_auc(y: Any, p: Any) -> float:
    """Average precision: area under the precision-recall curve, sensitive to the rare class."""
    labels, scores = _arrays(y, p)
    return float(average_precision_score(labels, scores)) if labels.any() else math.nan


def brier(y: Any, p: Any) -> float:
    """Mean squared error of the probabilities: rewards both ranking and calibration."""
    labels, scores = _arrays(y, p)
    return float(brier_score_loss(labels, scores)) if labels.size else math.nan


def top_decile_lift(y: Any, p: Any) -> float:
    """Lapse rate among the 10% highest predictions (ceil(n / 10) rows; ties broken by order)
    over the overall lapse rate: how much better than calling customers at random."""
    labels, scores = _arrays(y, p)
    if not labels.any():
        return math.nan
    top = math.ceil(labels.size / 10)
    order = np.argsort(-scores, kind="stable")[:top]
    return float(labels[order].mean() / labels.mean())


def calibration_table(y: Any, p: Any, bins: int = 10) -> pl.DataFrame:
    """Predictions against outcomes in `bins` groups of (nearly) equal size by prediction.

    Equal-count groups rather than fixed-width ones, because lapse probabilities crowd below
    10%: fixed tenths would put almost every premium in the first. Rows are assigned by rank
    (`bin = rank * bins // n`), so the counts differ by at most one, ties included. Columns:
    bin, count, p_min, p_max, mean_predicted, observed_rate, positives.
    """
    labels, scores = _arrays(y, p)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    n = labels.size
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(scores, kind="stable")] = np.arange(n)
    group = ranks * bins // max(n, 1)
    frame = pl.DataFrame({"bin": group, "p": scores, "y": labels.astype(np.int64)})
    return (
        frame.group_by("bin")
        .agg(
            pl.len().alias("count"),
            pl.col("p").min().alias("p_min"),
            pl.col("p").max().alias("p_max"),
            pl.col("p").mean().alias("mean_predicted"),
            pl.col("y").mean().alias("observed_rate"),
            pl.col("y").sum().alias("positives"),
        )
        .sort("bin")
        .with_columns(pl.col("bin").cast(pl.Int64), pl.col("count").cast(pl.Int64))
    )


@dataclass(frozen=True)
class LapseMetrics:
    """Every metric of one model on one period, with its calibration table."""

    rows: int
    positives: int
    base_rate: float
    auc: float
    pr_auc: float
    brier: float
    top_decile_lift: float
    calibration: pl.DataFrame = field(repr=False)

    @classmethod
    def compute(cls, y: Any, p: Any, bins: int = 10) -> LapseMetrics:
        labels, scores = _arrays(y, p)
        return cls(
            rows=int(labels.size),
            positives=int(labels.sum()),
            base_rate=float(labels.mean()) if labels.size else math.nan,
            auc=auc(labels, scores),
            pr_auc=pr_auc(labels, scores),
            brier=brier(labels, scores),
            top_decile_lift=top_decile_lift(labels, scores),
            calibration=calibration_table(labels, scores, bins),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values for metadata (JSON-ready; NaN becomes None, the table a list of rows)."""
        values = {k: v for k, v in asdict(self).items() if k != "calibration"}
        clean = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()
        }
        clean["calibration"] = self.calibration.to_dicts()
        return clean


def risk_band(p: float) -> RiskBand:
    """'high' from `HIGH_RISK_FROM` (20%), 'medium' from `MEDIUM_RISK_FROM` (8%), else 'low'."""
    if p >= HIGH_RISK_FROM:
        return "high"
    if p >= MEDIUM_RISK_FROM:
        return "medium"
    return "low"


def risk_bands(p: Any) -> np.ndarray:
    """`risk_band` of every probability in an array."""
    scores = np.asarray(p, dtype=float)
    return np.where(
        scores >= HIGH_RISK_FROM, "high", np.where(scores >= MEDIUM_RISK_FROM, "medium", "low")
    )
