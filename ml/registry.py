"""What the model registry records about a trained model, and when a challenger replaces the
champion. Pure: the database and artifact store are in `orchestration/defs/ml/registry_store.py`.

The promotion rule: a challenger becomes champion only if it beats the champion **on the same
holdout**, i.e. both scored on the challenger's held-out period (the champion is reloaded and
re-scored there, not compared by the number it reported on its own, older holdout). With no
champion yet, the baseline (popularity within language, the logistic lapse model) is registered
as the first champion whatever its score: scoring always has a model, and a learnt model must
then beat the baseline on the same holdout to replace it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import metadata

import polars as pl

# The libraries whose versions decide whether a stored artifact can be reloaded and gives the
# same scores.
TRACKED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "polars")


@dataclass(frozen=True)
class ModelCard:
    """One trained model, as `ml.model_registry` stores it."""

    model_name: str  # 'lapse' or 'recommender'
    version: str
    kind: str  # e.g. 'hist_gradient_boosting', 'item_item'
    training_window_start: date
    training_window_end: date
    holdout_start: date
    holdout_end: date
    feature_names: tuple[str, ...]
    metrics: dict[str, float]
    data_fingerprint: str
    seed: int
    library_versions: dict[str, str] = field(default_factory=lambda: library_versions())


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    note: str


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries a pickled model depends on."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(frames: dict[str, pl.DataFrame]) -> str:
    """SHA-256 over every frame's name, shape, schema and an order-independent row hash sum.

    Two trainings on the same rows (in any order) get the same fingerprint, so a registry row
    says whether two models saw the same data.
    """
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(f"{frame.height}x{frame.width}".encode())
        digest.update(repr(sorted(frame.schema.items())).encode())
        if frame.height:
            ordered = frame.select(sorted(frame.columns))
            row_hashes = ordered.hash_rows(seed=0)  # stable within a polars version
            # Wrapping sum: independent of row order.
            digest.update(str(int(row_hashes.cast(pl.UInt64).sum()) % (1 << 64)).encode())
    return digest.hexdigest()


def model_version(model_name: str, trained_at: datetime, fingerprint: str, seed: int) -> str:
    """A readable, unique version: name, UTC training time to the microsecond, and a hash of
    data and seed. Microseconds because two trainings on the same data and seed can end within
    one second (a re-run, or a test training twice): with whole seconds their versions were
    equal and the second registration failed on the registry's key."""
    suffix = hashlib.sha256(f"{fingerprint}:{seed}".encode()).hexdigest()[:8]
    return f"{model_name}-{trained_at:%Y%m%dT%H%M%S%f}-{suffix}"


def promotion_decision(
    metric: str,
    challenger: float,
    champion: float | None,
    floor: float,
    min_improvement: float = 0.0,
) -> PromotionDecision:
    """Promote when the challenger clears the floor and beats the champion by more than
    `min_improvement` on the same holdout (higher is better for every metric used here)."""
    if not challenger >= floor:  # also refuses NaN
        return PromotionDecision(False, f"{metric} {challenger:.4f} is below the floor {floor}")
    if champion is None:
        return PromotionDecision(True, f"first champion: {metric} {challenger:.4f}")
    if challenger > champion + min_improvement:
        return PromotionDecision(
            True,
            f"{metric} {challenger:.4f} beats the champion's {champion:.4f} on the same holdout",
        )
    return PromotionDecision(
        False,
        f"{metric} {challenger:.4f} does not beat the champion's {champion:.4f} "
        "on the same holdout",
    )


def baseline_decision(kind: str, metric: str, value: float) -> PromotionDecision:
    """The baseline registered while no champion exists becomes the first champion, with no
    floor: a weak baseline still scores, and the floor applies to the challengers after it."""
    shown = "not measured" if value != value else f"{value:.4f}"  # NaN: no holdout to measure
    return PromotionDecision(True, f"first champion: the {kind} baseline ({metric} {shown})")
