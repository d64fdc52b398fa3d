"""The lapse model's assets: weekly training into the registry, daily scoring into
`ml.lapse_scores`, and the checks on both.

Training reads the marts, builds as-of snapshots (`ml.lapse`), fits the logistic baseline and
the calibrated gradient-boosted model, and registers the gradient-boosted one; it becomes
champion only when it beats the current champion on the same holdout (the champion is reloaded
and scored on the challenger's test rows). Scoring uses the champion for each day of its
partition: every regular premium due in the next 30 days, replaced per day in one transaction.

The first champion is the logistic baseline. The weekly training registers it before its
challenger when the registry has no lapse model; the daily job, which may run first on a new
install, trains and registers the baseline alone (no gradient boosting) inside `ml/lapse_scores`,
so its first run is green and scores with a model the weekly training must then beat.
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import psycopg

from ml.drift import PSI_ALERT, population_stability_index
from ml.figures import roc_and_calibration_png
from ml.lapse.features import (
    INPUT_COLUMNS,
    KEY_COLUMNS,
    LABEL,
    LapseInputs,
    features_for_days,
    training_examples,
)
from ml.lapse.metrics import auc, risk_bands
from ml.lapse.model import MODEL_KINDS, ModelKind, TrainingResult, train
from ml.registry import (
    ModelCard,
    baseline_decision,
    data_fingerprint,
    model_version,
    promotion_decision,
)
from orchestration.defs.ml.marts import read_marts
from orchestration.defs.ml.registry_store import (
    StoredModel,
    champion,
    latest_metrics,
    register,
    register_first_champion,
    replace_days,
    save_artifact,
    save_figure,
)
from orchestration.resources import DatabasesResource, LandingResource
from warehouse import urls
from warehouse.ml_tables import ensure_ml_tables

LAPSE_MODEL = dg.AssetKey(["ml", "lapse_model"])
LAPSE_SCORES = dg.AssetKey(["ml", "lapse_scores"])
MODEL_NAME = "lapse"
CHAMPION_KIND = "gradient_boosting"
BASELINE_KIND = "logistic"
HORIZON_DAYS = 30
# Below this test AUC a model is not promoted and the metric check fails: a model this weak
# ranks customers little better than chance (the simulator's oracle is ~0.8).
AUC_FLOOR = 0.65
MART_DEPS = [dg.AssetKey(["marts", name]) for name in INPUT_COLUMNS]


class LapseTrainingConfig(dg.Config):
    """Run config of the weekly training."""

    seed: int = 7
    history_days: int = 3 * 365
    snapshot_every_days: int = 30


def read_lapse_inputs(warehouse_url: str) -> LapseInputs:
    """The marts the lapse model reads, only the columns it needs, in one snapshot."""
    return LapseInputs(**read_marts(warehouse_url, INPUT_COLUMNS))


def data_as_of(inputs: LapseInputs) -> date:
    """The last day the premium marts know about."""
    last = inputs.fct_premium_dues["as_of_date"].max()
    if not isinstance(last, date):
        raise ValueError("marts.fct_premium_dues is empty: build the marts first")
    return last


def training_as_of_dates(last_day: date, history_days: int, every_days: int) -> list[date]:
    """Snapshot days, every `every_days`, ending early enough that every due of the last
    snapshot's horizon has its grace end (at most 30 days) before `last_day`."""
    newest = last_day - timedelta(days=HORIZON_DAYS + 31)
    count = history_days // every_days
    return sorted(newest - timedelta(days=every_days * i) for i in range(count + 1))


def train_lapse(
    inputs: LapseInputs, config: LapseTrainingConfig, kinds: tuple[ModelKind, ...] = MODEL_KINDS
) -> tuple[pl.DataFrame, TrainingResult]:
    """The labelled snapshots and the `kinds` of model trained on them."""
    last_day = data_as_of(inputs)
    dates = training_as_of_dates(last_day, config.history_days, config.snapshot_every_days)
    examples = training_examples(
        inputs, dates, label_known_before=last_day, horizon_days=HORIZON_DAYS
    )
    return examples, train(examples, seed=config.seed, kinds=kinds)


def model_card(
    kind: ModelKind, inputs: LapseInputs, result: TrainingResult, seed: int, **extra: float
) -> ModelCard:
    """The registry card of `result`'s `kind` model: its window, holdout, test metrics, the
    baseline's test AUC and `extra` metrics (the champion's AUC on the same holdout)."""
    fingerprint = data_fingerprint({name: getattr(inputs, name) for name in INPUT_COLUMNS})
    split = result.split
    test_metrics = result.metrics[kind]["test"]
    return ModelCard(
        model_name=MODEL_NAME,
        version=model_version(MODEL_NAME, datetime.now(UTC), fingerprint, seed),
        kind=kind,
        training_window_start=split.first_as_of,
        training_window_end=split.validation_from - timedelta(days=1),
        holdout_start=split.test_from,
        holdout_end=split.last_as_of,
        feature_names=tuple(result.models[kind].feature_names),
        metrics={
            **{f"test_{k}": v for k, v in test_metrics.as_dict().items() if isinstance(v, float)},
            "baseline_test_auc": result.metrics[BASELINE_KIND]["test"].auc,
            **extra,
        },
        data_fingerprint=fingerprint,
        seed=seed,
    )


def register_baseline(
    warehouse_url: str, landing_root: Path, inputs: LapseInputs, result: TrainingResult, seed: int
) -> StoredModel:
    """Register `result`'s logistic model as the first lapse champion (or return the champion
    another run registered meanwhile)."""
    card = model_card(BASELINE_KIND, inputs, result, seed)
    decision = baseline_decision(BASELINE_KIND, "test_auc", card.metrics["test_auc"])
    path, sha = save_artifact(landing_root, MODEL_NAME, card.version, result.models[BASELINE_KIND])
    return register_first_champion(warehouse_url, card, path, sha, decision)


def test_rows(examples: pl.DataFrame, result: TrainingResult) -> pl.DataFrame:
    """The examples of the result's test period (its holdout)."""
    return examples.filter(result.split.periods(examples) == "test")


def champion_test_auc(warehouse_url: str, holdout: pl.DataFrame) -> tuple[float | None, str | None]:
    """The current champion's AUC on the challenger's holdout rows, and its version."""
    stored = champion(warehouse_url, MODEL_NAME)
    if stored is None:
        return None, None
    probability = stored.load().predict_proba(holdout)
    return auc(holdout[LABEL].to_numpy(), probability), stored.version


def _image_markdown(png: bytes) -> str:
    import base64

    return f"![ROC and calibration](data:image/png;base64,{base64.b64encode(png).decode()})"


@dg.asset(
    key=LAPSE_MODEL,
    deps=MART_DEPS,
    group_name="ml",
    description="Weekly: trains the lapse models on as-of snapshots of the marts, registers the "
    "calibrated gradient-boosted model in ml.model_registry with its artifact, and promotes it "
    "when it beats the champion on the same holdout.",
)
def lapse_model(
    context: dg.AssetExecutionContext,
    config: LapseTrainingConfig,
    databases: DatabasesResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    inputs = read_lapse_inputs(databases.warehouse)
    examples, result = train_lapse(inputs, config)
    baseline = None
    if champion(databases.warehouse, MODEL_NAME) is None:
        baseline = register_baseline(
            databases.warehouse, landing.path, inputs, result, config.seed
        ).version
        context.log.info(f"{baseline}: the logistic baseline registered as the first champion")
    model = result.models[CHAMPION_KIND]
    test_metrics = result.metrics[CHAMPION_KIND]["test"]
    baseline_metrics = result.metrics[BASELINE_KIND]["test"]
    champion_auc, champion_version = champion_test_auc(
        databases.warehouse, test_rows(examples, result)
    )
    decision = promotion_decision("test_auc", test_metrics.auc, champion_auc, floor=AUC_FLOOR)
    card = model_card(
        CHAMPION_KIND,
        inputs,
        result,
        config.seed,
        champion_test_auc=champion_auc if champion_auc is not None else float("nan"),
    )
    version = card.version
    split = result.split
    path, sha = save_artifact(landing.path, MODEL_NAME, version, model)
    register(databases.warehouse, card, path, sha, decision)
    test = result.test_predictions
    png = roc_and_calibration_png(
        test[LABEL].to_numpy(),
        {kind: test[f"p_{kind}"].to_numpy() for kind in result.models},
        title=f"{version}: test snapshots {split.test_from} to {split.last_as_of}",
    )
    figure = save_figure(landing.path, MODEL_NAME, version, "roc_calibration", png)
    context.log.info(f"{version}: test AUC {test_metrics.auc:.4f}; {decision.note}")
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "promoted": decision.promote,
            "promotion": decision.note,
            "champion_compared": champion_version or "none (first model)",
            "baseline_registered_as_first_champion": baseline or "no (a champion existed)",
            "test_auc": test_metrics.auc,
            "test_pr_auc": test_metrics.pr_auc,
            "test_brier": test_metrics.brier,
            "test_top_decile_lift": test_metrics.top_decile_lift,
            "baseline_test_auc": baseline_metrics.auc,
            "rows": dg.MetadataValue.json(result.rows),
            "split": dg.MetadataValue.json(split.as_dict()),
            "metrics": dg.MetadataValue.json(
                json.loads(json.dumps(result.metrics_dict(), default=str))
            ),
            "calibration": dg.MetadataValue.md(
                test_metrics.calibration.to_pandas().to_markdown(index=False)
                if hasattr(test_metrics, "calibration")
                else ""
            ),
            "roc_and_calibration": dg.MetadataValue.md(_image_markdown(png)),
            "figure_path": dg.MetadataValue.path(str(figure)),
            "artifact": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset_check(
    asset=LAPSE_MODEL, description=f"The latest lapse model's test AUC is at least {AUC_FLOOR}."
)
def lapse_model_auc_floor(databases: DatabasesResource) -> dg.AssetCheckResult:
    latest = latest_metrics(databases.warehouse, MODEL_NAME)
    if latest is None:
        return dg.AssetCheckResult(passed=False, description="no lapse model registered")
    version, metrics = latest
    value = float(metrics.get("test_auc", float("nan")))
    return dg.AssetCheckResult(
        passed=bool(value >= AUC_FLOOR),
        metadata={"model_version": version, "test_auc": value, "floor": AUC_FLOOR},
    )


def scoring_days(context: dg.AssetExecutionContext) -> list[date]:
    """The IST days of the run's partition range."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def score_days(inputs: LapseInputs, model: object, days: list[date]) -> pl.DataFrame:
    """Every regular premium due in the next 30 days of each day, scored by `model`:
    probability, risk band and its top reasons."""
    features = features_for_days(inputs, days, horizon_days=HORIZON_DAYS)
    if features.height == 0:
        return features
    probability = model.predict_proba(features)
    reasons = model.reasons(features, top_k=3)
    return features.select(
        pl.col("as_of").alias("scored_for"),
        *KEY_COLUMNS,
        "grace_end_date",
        "policyholder_id",
        "agent_id",
        "provider_id",
    ).with_columns(
        pl.Series("lapse_probability", probability, dtype=pl.Float64),
        pl.Series("risk_band", risk_bands(probability), dtype=pl.String),
        pl.Series("reasons", [json.dumps(r) for r in reasons], dtype=pl.String),
    )


SCORE_COLUMNS = (
    "scored_for",
    "policy_id",
    "installment_number",
    "due_date",
    "grace_end_date",
    "policyholder_id",
    "agent_id",
    "provider_id",
    "lapse_probability",
    "risk_band",
    "reasons",
    "model_version",
)


def bootstrap_champion(
    context: dg.AssetExecutionContext, warehouse_url: str, landing_root: Path, inputs: LapseInputs
) -> StoredModel:
    """No lapse champion yet (a new install whose daily job runs before the weekly training):
    train the logistic baseline alone, with the weekly training's defaults, and register it as
    the first champion, so the day is scored instead of the run failing."""
    config = LapseTrainingConfig()
    _, result = train_lapse(inputs, config, kinds=(BASELINE_KIND,))
    stored = register_baseline(warehouse_url, landing_root, inputs, result, config.seed)
    context.log.info(
        f"No lapse champion yet: {stored.version} ({stored.card['kind']}, test AUC "
        f"{stored.card['metrics'].get('test_auc')}) is the first; the weekly training's "
        "challengers must beat it on the same holdout."
    )
    return stored


def build_lapse_scores_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=LAPSE_SCORES,
        deps=[LAPSE_MODEL, *MART_DEPS],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ml",
        description="Daily: the champion lapse model's probability that each regular premium "
        "due in the next 30 days is still unpaid at grace end, with risk band and reasons, "
        "into ml.lapse_scores (a day's rows replaced whole). With no champion yet, it first "
        "trains the logistic baseline and registers it as the first champion.",
    )
    def lapse_scores(
        context: dg.AssetExecutionContext, databases: DatabasesResource, landing: LandingResource
    ) -> dg.MaterializeResult:
        days = scoring_days(context)
        inputs = read_lapse_inputs(databases.warehouse)
        stored = champion(databases.warehouse, MODEL_NAME)
        bootstrapped = stored is None
        if stored is None:
            stored = bootstrap_champion(context, databases.warehouse, landing.path, inputs)
        model = stored.load()
        scores = score_days(inputs, model, days).with_columns(
            pl.lit(stored.version).alias("model_version")
        )
        written = replace_days(
            databases.warehouse, "lapse_scores", days, scores.select(SCORE_COLUMNS)
        )
        bands = scores.group_by("risk_band").len()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "model_version": stored.version,
                "champion_bootstrapped": bootstrapped,
                "days": len(days),
                "mean_probability": float(scores["lapse_probability"].mean() or 0.0),
                "risk_bands": dg.MetadataValue.json(
                    {r["risk_band"]: r["len"] for r in bands.iter_rows(named=True)}
                ),
            }
        )

    return lapse_scores


def _latest_two_days(conn: psycopg.Connection) -> list[date]:
    rows = conn.execute(
        "SELECT DISTINCT scored_for FROM ml.lapse_scores ORDER BY scored_for DESC LIMIT 2"
    ).fetchall()
    return [r[0] for r in rows]


@dg.asset_check(
    asset=LAPSE_SCORES,
    description="The newest day's score distribution has not moved far from the day before "
    f"(population stability index under {PSI_ALERT}).",
)
def lapse_scores_stable(databases: DatabasesResource) -> dg.AssetCheckResult:
    with psycopg.connect(urls.libpq_url(databases.warehouse)) as conn:
        ensure_ml_tables(conn)
        days = _latest_two_days(conn)
        if len(days) < 2:
            return dg.AssetCheckResult(
                passed=True, description="fewer than two scored days: nothing to compare"
            )
        newest, previous = (
            np.array(
                [
                    r[0]
                    for r in conn.execute(
                        "SELECT lapse_probability FROM ml.lapse_scores WHERE scored_for = %s",
                        (day,),
                    )
                ]
            )
            for day in days
        )
    psi = population_stability_index(previous, newest)
    return dg.AssetCheckResult(
        passed=bool(psi < PSI_ALERT),
        metadata={"psi": psi, "day": str(days[0]), "compared_with": str(days[1])},
    )
