"""Lapse (churn) model: will a premium due soon still be unpaid when its grace period ends?

DESIGN §7. Plain Python on polars and scikit-learn, no Dagster and no I/O: the caller reads
`INPUT_COLUMNS` from the marts into `LapseInputs`, then

- `training_examples(inputs, as_of_dates, label_known_before)` -> features and labels,
- `train(examples, seed)` -> `TrainingResult` (logistic baseline and gradient boosting, both
  calibrated, split by time, with metrics),
- `features_as_of(inputs, as_of)` -> the dues of the next 30 days to score with
  `LapseModel.predict_proba` and explain with `LapseModel.reasons`; `risk_bands` for the app.
"""

from ml.lapse.features import (
    CATEGORICAL_FEATURES,
    FEATURE_NAMES,
    ID_COLUMNS,
    INPUT_COLUMNS,
    KEY_COLUMNS,
    LABEL,
    NUMERIC_FEATURES,
    LapseInputs,
    as_of_schedule,
    features_as_of,
    training_examples,
)
from ml.lapse.metrics import (
    HIGH_RISK_FROM,
    MEDIUM_RISK_FROM,
    LapseMetrics,
    auc,
    brier,
    calibration_table,
    pr_auc,
    risk_band,
    risk_bands,
    top_decile_lift,
)
from ml.lapse.model import (
    MODEL_KINDS,
    LapseModel,
    TimeSplit,
    TrainingResult,
    fit_model,
    split_by_time,
    train,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_NAMES",
    "HIGH_RISK_FROM",
    "ID_COLUMNS",
    "INPUT_COLUMNS",
    "KEY_COLUMNS",
    "LABEL",
    "MEDIUM_RISK_FROM",
    "MODEL_KINDS",
    "NUMERIC_FEATURES",
    "LapseInputs",
    "LapseMetrics",
    "LapseModel",
    "TimeSplit",
    "TrainingResult",
    "as_of_schedule",
    "auc",
    "brier",
    "calibration_table",
    "features_as_of",
    "fit_model",
    "pr_auc",
    "risk_band",
    "risk_bands",
    "split_by_time",
    "top_decile_lift",
    "train",
    "training_examples",
]
