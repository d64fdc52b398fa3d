"""Lapse models on generated examples with a planted driver: split, determinism, reasons."""

from __future__ import annotations

import json
import pickle
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from ml.lapse.features import CATEGORICAL_FEATURES, FEATURE_NAMES, LABEL, NUMERIC_FEATURES
from ml.lapse.model import LapseModel, TrainingResult, split_by_time, train

START = date(2023, 1, 1)


def make_examples(seed: int = 0, days: int = 24, per_day: int = 250) -> pl.DataFrame:
    """`training_examples`-shaped rows, 30 days apart, whose lapse risk is planted in
    `late_payments` (logit +0.9 a late payment, up to 4); every other feature is noise, and
    app engagement is missing before the last third (as before an app launched)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    as_of = [START + timedelta(days=30 * (i // per_day)) for i in range(n)]
    due = [d + timedelta(days=int(x)) for d, x in zip(as_of, rng.integers(0, 30, n), strict=True)]
    late = rng.poisson(1.0, n).astype(float)
    logit = -4.0 + 0.9 * np.minimum(late, 4)
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pl.DataFrame(
        {
            "as_of": as_of,
            "policy_id": [f"P{i}" for i in range(n)],
            "installment_number": rng.integers(2, 40, n),
            "due_date": due,
            "policyholder_id": [f"H{i % 500}" for i in range(n)],
            "agent_id": [f"A{i % 20}" for i in range(n)],
            "provider_id": "LIC",
            "grace_end_date": [d + timedelta(days=30) for d in due],
            "premium_mode": rng.choice(["monthly", "quarterly", "annual"], n),
            "persistency_year": rng.choice(["1", "2", "3", "4", "5", "6+"], n),
            "policy_type": rng.choice(["term", "endowment"], n),
            "income_band": rng.choice(["2.5-5 lakh", "5-10 lakh"], n),
            "age_band": rng.choice(["25-34", "35-44"], n),
        }
    )
    numeric = {name: rng.random(n) for name in NUMERIC_FEATURES}
    numeric["late_payments"] = late
    early = np.arange(n) < n * 2 // 3
    for name in ("app_sessions_90d", "app_actions_per_session", "content_views_90d"):
        numeric[name] = np.where(early, np.nan, numeric[name])
    return frame.with_columns(
        *(pl.Series(k, v).fill_nan(None) for k, v in numeric.items()),
        pl.Series(LABEL, label),
    ).select(*frame.columns[:8], *FEATURE_NAMES, LABEL)


@pytest.fixture(scope="module")
def examples() -> pl.DataFrame:
    return make_examples()


@pytest.fixture(scope="module")
def result(examples: pl.DataFrame) -> TrainingResult:
    return train(examples, seed=0)


def test_split_is_by_time_and_drops_labels_not_yet_known(examples: pl.DataFrame) -> None:
    split = split_by_time(examples, validation_share=0.2, test_share=0.2)
    assert split.first_as_of < split.validation_from < split.test_from <= split.last_as_of
    periods = examples.with_columns(period=split.periods(examples))
    train_rows = periods.filter(pl.col("period") == "train")
    validation = periods.filter(pl.col("period") == "validation")
    test = periods.filter(pl.col("period") == "test")
    assert train_rows["as_of"].max() < split.validation_from
    assert (train_rows["grace_end_date"] < split.validation_from).all()
    assert (validation["grace_end_date"] < split.test_from).all()
    assert test["as_of"].min() == split.test_from
    assert test.height == pytest.approx(0.2 * examples.height, rel=0.25)
    # The last as-of day before each cut loses the dues whose grace had not ended.
    assert periods["period"].null_count() > 0


def test_training_result(result: TrainingResult, examples: pl.DataFrame) -> None:
    assert set(result.models) == {"logistic", "gradient_boosting"}
    for kind, model in result.models.items():
        assert model.kind == kind
        test = result.metrics[kind]["test"]
        assert test.auc > 0.7  # the planted driver is found
        assert result.metrics[kind]["validation"].rows == result.rows["validation"]
        assert result.test_predictions[f"p_{kind}"].min() > 0.0
        assert result.test_predictions[f"p_{kind}"].max() < 1.0
    assert result.test_predictions.height == result.rows["test"]
    json.dumps(result.metrics_dict())  # plain values for metadata


def test_a_feature_never_seen_in_training_is_left_out(result: TrainingResult) -> None:
    model = result.models["gradient_boosting"]
    assert set(model.unused_features) == {
        "app_sessions_90d", "app_actions_per_session", "content_views_90d"
    }  # fmt: skip
    assert set(model.feature_names) | set(model.unused_features) == set(FEATURE_NAMES)


def test_training_is_deterministic_with_a_seed(examples: pl.DataFrame) -> None:
    first, again = train(examples, seed=7), train(examples, seed=7)
    other = train(examples, seed=8)
    test = examples.filter(pl.col("as_of") >= first.split.test_from)
    for kind in first.models:
        p = first.models[kind].predict_proba(test)
        assert np.array_equal(p, again.models[kind].predict_proba(test))
    # The seed picks the features each tree sees: another seed, another forest.
    assert not np.array_equal(
        first.models["gradient_boosting"].predict_proba(test),
        other.models["gradient_boosting"].predict_proba(test),
    )


def test_models_pickle(result: TrainingResult, examples: pl.DataFrame) -> None:
    for model in result.models.values():
        restored: LapseModel = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own
        assert np.array_equal(restored.predict_proba(examples), model.predict_proba(examples))


@pytest.mark.parametrize("kind", ["logistic", "gradient_boosting"])
def test_the_planted_driver_is_the_first_reason(
    result: TrainingResult, examples: pl.DataFrame, kind: str
) -> None:
    model = result.models[kind]
    risky = examples.filter(pl.col("late_payments") >= 4).head(40)
    reasons = model.reasons(risky, top_k=3)
    assert len(reasons) == risky.height
    for count, said in zip(risky["late_payments"], reasons, strict=True):
        assert said[0] == f"{int(count)} late payments so far"
        assert len(said) <= 3
    # A premium typical on the driver gets no reason from it.
    typical = examples.filter(pl.col("late_payments") == 1).head(40)
    assert not any("so far" in r for said in model.reasons(typical) for r in said)


def test_empty_frames(result: TrainingResult, examples: pl.DataFrame) -> None:
    model = result.models["gradient_boosting"]
    assert model.predict_proba(examples.head(0)).shape == (0,)
    assert model.reasons(examples.head(0)) == []


def test_unknown_categories_are_scored(result: TrainingResult, examples: pl.DataFrame) -> None:
    odd = examples.head(5).with_columns(
        *(pl.lit("never seen").alias(name) for name in CATEGORICAL_FEATURES)
    )
    for model in result.models.values():
        p = model.predict_proba(odd)
        assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
