"""Lapse models: a logistic-regression baseline and gradient boosting, both calibrated.

- **Split by time** (`split_by_time`): the as-of days are cut into train, validation and test
  periods (by default the latest 20% of rows are the test, the 20% before them the validation).
  A model used on day `d` can only have learnt from premiums whose grace had ended before `d`,
  so train rows are kept only if their grace ended before the validation period starts, and
  validation rows only if theirs ended before the test starts: no label leaks back in time.
- **Fit on train, tune and calibrate on validation**: gradient boosting adds trees while the
  validation period's log loss improves (20 trees of patience). Each model is then frozen and a
  sigmoid (Platt) map from its score to a probability is fitted on the validation period
  (`CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid")`). Sigmoid rather than
  isotonic: it keeps the ranking (AUC unchanged) and is stable with the few dozen lapses of an
  MVP validation period. Validation metrics are therefore a little optimistic; the test period
  is touched by nothing but the final measurement.
- **Judged on test**: metrics per model on validation and test (`TrainingResult.metrics`), and
  the test predictions for comparisons on the same premiums (`TrainingResult.test_predictions`).
- **Deterministic**: `seed` is the only source of randomness (which features each boosting tree
  may use); the same examples and seed give the same probabilities, bit for bit.

The logistic baseline scales numeric features (missing values: median plus an indicator) and
one-hot encodes categorical ones. Gradient boosting (`HistGradientBoostingClassifier`, small
trees) takes categorical features natively, missing values as such ("no app data" is not "no
sessions") and the business's known directions as monotonic constraints (`RISK_DIRECTION`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from ml.lapse.features import CATEGORICAL_FEATURES, FEATURE_NAMES, KEY_COLUMNS, LABEL
from ml.lapse.metrics import LapseMetrics
from ml.lapse.reasons import top_reasons

ModelKind = Literal["logistic", "gradient_boosting"]
MODEL_KINDS: tuple[ModelKind, ...] = ("logistic", "gradient_boosting")
PERIODS = ("train", "validation", "test")
# OpenMP threads for fitting and scoring (gradient boosting and BLAS); None lets the libraries
# use every core. One by default: on a 2-core machine shared with other work, OpenMP threads
# waiting for each other made the test suite's small fits 9x slower (114 s against 13 s,
# measured here), while one thread trains the scale tier in about 15 s.
DEFAULT_THREADS: int | None = 1


@dataclass(frozen=True)
class TimeSplit:
    """Train before `validation_from`, validation before `test_from`, test from it (as-of days)."""

    first_as_of: date
    validation_from: date
    test_from: date
    last_as_of: date

    def periods(self, examples: pl.DataFrame) -> pl.Series:
        """'train' / 'validation' / 'test' per row, null for a row left out because its label
        was not yet known when the next period starts."""
        as_of, grace_end = pl.col("as_of"), pl.col("grace_end_date")
        period = (
            pl.when(as_of >= self.test_from)
            .then(pl.lit("test"))
            .when(as_of >= self.validation_from)
            .then(pl.when(grace_end < self.test_from).then(pl.lit("validation")))
            .otherwise(pl.when(grace_end < self.validation_from).then(pl.lit("train")))
        )
        return examples.select(period.alias("period"))["period"]

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in self.__dict__.items()}


def split_by_time(
    examples: pl.DataFrame, validation_share: float = 0.2, test_share: float = 0.2
) -> TimeSplit:
    """Cut the as-of days so that about `test_share` of the rows (the latest) are the test and
    `validation_share` the validation; every period gets at least one as-of day."""
    counts = examples.group_by("as_of").len().sort("as_of")
    days = counts["as_of"].to_list()
    if len(days) < 3:
        raise ValueError("a time split needs examples from at least three as-of days")
    share_after = 1.0 - counts["len"].cum_sum().to_numpy() / examples.height
    share_from = np.concatenate([[1.0], share_after[:-1]])  # rows on or after each day
    test_index = int(np.clip(np.searchsorted(-share_from, -test_share), 2, len(days) - 1))
    validation_index = int(
        np.clip(np.searchsorted(-share_from, -(test_share + validation_share)), 1, test_index - 1)
    )
    return TimeSplit(days[0], days[validation_index], days[test_index], days[-1])


@dataclass(frozen=True)
class _Encoder:
    """Feature frame -> float matrix: numerics as they are (NaN for missing), categoricals as
    the index of their value among those seen in training (NaN when missing or unseen)."""

    feature_names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pl.DataFrame, feature_names: Sequence[str]) -> _Encoder:
        categories = {
            name: tuple(sorted(frame[name].drop_nulls().cast(pl.String).unique().to_list()))
            for name in feature_names
            if name in CATEGORICAL_FEATURES
        }
        return cls(tuple(feature_names), categories)

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([name in self.categories for name in self.feature_names])

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        columns = []
        for name in self.feature_names:
            if name in self.categories:
                codes = {value: float(i) for i, value in enumerate(self.categories[name])}
                column = (
                    frame[name]
                    .cast(pl.String)
                    .replace_strict(codes, default=None, return_dtype=pl.Float64)
                )
            else:
                column = frame[name].cast(pl.Float64)
            columns.append(column.fill_null(np.nan).to_numpy())
        return np.column_stack(columns) if columns else np.empty((frame.height, 0))


def _logistic(mask: np.ndarray, seed: int) -> Pipeline:
    numeric = np.flatnonzero(~mask)
    categorical = np.flatnonzero(mask)
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                      StandardScaler()), numeric),
            ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value=-1.0),
                                          OneHotEncoder(handle_unknown="ignore")), categorical),
        ]
    )  # fmt: skip
    return make_pipeline(columns, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


# Directions gradient boosting must respect (+1: more means riskier, -1: safer), where the
# business knows them: it keeps the model from learning noise (say, a lower risk for a third
# late payment than for a second) and keeps every reason explainable.
RISK_DIRECTION: dict[str, int] = {
    "premium_to_income": 1,
    "late_payments": 1,
    "late_payments_12m": 1,
    "late_share": 1,
    "prior_lapses": 1,
    "overdue_now": 1,
    "app_sessions_90d": -1,
    "app_actions_per_session": -1,
    "content_views_90d": -1,
    "agent_persistency_13m": -1,
    "agent_lapse_ratio": 1,
}


def _gradient_boosting(
    mask: np.ndarray, seed: int, rows: int, directions: Sequence[int]
) -> HistGradientBoostingClassifier:
    # Small trees (7 leaves): lapse risk is mostly a sum of separate effects, and deeper trees
    # only fitted noise in trials; leaves of at least 0.5% of the rows (20 to 500); each tree
    # sees a random 80% of the features (the seed's role), which also regularises. Trees are
    # added until the validation period's log loss has not improved for 20 of them (the
    # validation period, not sklearn's random hold-out: with as-of days closer than the
    # horizon the same premium sits in several rows, and a random hold-out would hold copies
    # of training rows and never stop the fit).
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=300,
        max_leaf_nodes=7,
        min_samples_leaf=int(np.clip(rows // 200, 20, 500)),
        l2_regularization=1.0,
        max_features=0.8,
        categorical_features=mask,
        monotonic_cst=list(directions),
        early_stopping=True,
        scoring="loss",
        n_iter_no_change=20,
        random_state=seed,
    )


@dataclass
class LapseModel:
    """A trained, calibrated lapse model. Picklable; `predict_proba` takes a feature frame
    (`features_as_of` or `training_examples` rows) and returns P(unpaid at grace end)."""

    kind: ModelKind
    feature_names: tuple[str, ...]
    encoder: _Encoder = field(repr=False)
    estimator: CalibratedClassifierCV = field(repr=False)
    # Training population's median (numeric) or most frequent value (categorical), as encoded.
    reference: np.ndarray = field(repr=False)
    # Features asked for but without any value in training, so not in the model.
    unused_features: tuple[str, ...] = ()
    threads: int | None = DEFAULT_THREADS

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Probability, per row, that the premium is still unpaid when its grace ends."""
        if features.height == 0:
            return np.empty(0)
        with threadpool_limits(limits=self.threads):
            return self.estimator.predict_proba(self.encoder.matrix(features))[:, 1]

    def reasons(self, features: pl.DataFrame, top_k: int = 3) -> list[list[str]]:
        """Up to `top_k` reasons per row, in words, largest first (see `ml.lapse.reasons`):
        the features whose replacement by the training population's median (numeric) or most
        frequent value (categorical) lowers this row's calibrated probability the most."""
        if features.height == 0:
            return []
        matrix = self.encoder.matrix(features)
        counterfactual = np.empty((matrix.shape[0], len(self.feature_names)))
        with threadpool_limits(limits=self.threads):
            base = self.estimator.predict_proba(matrix)[:, 1]
            for j in range(len(self.feature_names)):
                changed = matrix.copy()
                changed[:, j] = self.reference[j]
                counterfactual[:, j] = self.estimator.predict_proba(changed)[:, 1]
        values = features.select(self.feature_names).to_dicts()
        return top_reasons(base, counterfactual, self.feature_names, values, top_k)


def _reference(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    reference = np.empty(matrix.shape[1])
    for j in range(matrix.shape[1]):
        column = matrix[:, j][~np.isnan(matrix[:, j])]
        if column.size == 0:
            reference[j] = np.nan
        elif mask[j]:
            values, counts = np.unique(column, return_counts=True)
            reference[j] = values[np.argmax(counts)]
        else:
            reference[j] = float(np.median(column))
    return reference


def fit_model(
    kind: ModelKind,
    train: pl.DataFrame,
    validation: pl.DataFrame,
    seed: int = 0,
    feature_names: Sequence[str] = FEATURE_NAMES,
    threads: int | None = DEFAULT_THREADS,
) -> LapseModel:
    """Fit one model on `train` and calibrate it on `validation` (both with `LABEL`).

    A feature with no value at all in `train` (e.g. app engagement before the app had data)
    cannot be learnt: it is left out of the model (`LapseModel.unused_features`).
    """
    with threadpool_limits(limits=threads):
        return _fit(kind, train, validation, seed, feature_names, threads)


def _fit(
    kind: ModelKind,
    train: pl.DataFrame,
    validation: pl.DataFrame,
    seed: int,
    feature_names: Sequence[str],
    threads: int | None,
) -> LapseModel:
    unused = tuple(name for name in feature_names if train[name].null_count() == train.height)
    used = tuple(name for name in feature_names if name not in unused)
    if not used:
        raise ValueError("no feature has any value in the training period")
    encoder = _Encoder.fit(train, used)
    mask = encoder.categorical_mask
    x_train = encoder.matrix(train)
    y_train = train[LABEL].to_numpy().astype(int)
    x_validation = encoder.matrix(validation)
    y_validation = validation[LABEL].to_numpy().astype(int)
    if kind == "logistic":
        estimator = _logistic(mask, seed).fit(x_train, y_train)
    elif kind == "gradient_boosting":
        directions = [RISK_DIRECTION.get(name, 0) for name in used]
        estimator = _gradient_boosting(mask, seed, len(y_train), directions).fit(
            x_train, y_train, X_val=x_validation, y_val=y_validation
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method="sigmoid")
    calibrated.fit(x_validation, y_validation)
    reference = _reference(x_train, mask)
    return LapseModel(kind, used, encoder, calibrated, reference, unused, threads)


@dataclass(frozen=True)
class TrainingResult:
    """Both models, the split, metrics per model and period, and the test predictions."""

    models: dict[str, LapseModel]
    split: TimeSplit
    rows: dict[str, int]
    metrics: dict[str, dict[str, LapseMetrics]]
    # The test rows' keys, as_of and label, with `p_<kind>` per model: for comparisons on the
    # same held-out premiums (e.g. with the simulator's true probabilities).
    test_predictions: pl.DataFrame = field(repr=False)

    def metrics_dict(self) -> dict[str, Any]:
        """Metrics, split and row counts as plain values, for asset or registry metadata."""
        return {
            "split": self.split.as_dict(),
            "rows": dict(self.rows),
            "metrics": {
                kind: {period: m.as_dict() for period, m in by_period.items()}
                for kind, by_period in self.metrics.items()
            },
        }


def train(
    examples: pl.DataFrame,
    seed: int = 0,
    validation_share: float = 0.2,
    test_share: float = 0.2,
    feature_names: Sequence[str] = FEATURE_NAMES,
    threads: int | None = DEFAULT_THREADS,
    kinds: Sequence[ModelKind] = MODEL_KINDS,
) -> TrainingResult:
    """Split `examples` (`training_examples` rows) by time, fit and calibrate the `kinds` of
    model (default both), and measure them on the validation and test periods."""
    split = split_by_time(examples, validation_share, test_share)
    parts = examples.with_columns(split.periods(examples).alias("_period"))
    frames = {p: parts.filter(pl.col("_period") == p).drop("_period") for p in PERIODS}
    for period, frame in frames.items():
        labels = frame[LABEL]
        if frame.height == 0 or labels.all() or not labels.any():
            raise ValueError(f"the {period} period needs both paid and unpaid premiums")
    models = {
        kind: fit_model(kind, frames["train"], frames["validation"], seed, feature_names, threads)
        for kind in kinds
    }
    metrics: dict[str, dict[str, LapseMetrics]] = {}
    predictions = frames["test"].select("as_of", *KEY_COLUMNS, LABEL)
    for kind, model in models.items():
        metrics[kind] = {
            period: LapseMetrics.compute(frames[period][LABEL], model.predict_proba(frames[period]))
            for period in ("validation", "test")
        }
        predictions = predictions.with_columns(
            pl.Series(f"p_{kind}", model.predict_proba(frames["test"]))
        )
    rows = {p: frames[p].height for p in PERIODS}
    return TrainingResult(models, split, rows, metrics, predictions)
