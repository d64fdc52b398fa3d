"""The model assets and checks and the weekly training schedule, for `orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.ml.lapse_assets import (
    LAPSE_MODEL,
    LAPSE_SCORES,
    build_lapse_scores_asset,
    lapse_model,
    lapse_model_auc_floor,
    lapse_scores_stable,
)
from orchestration.defs.ml.recommender_assets import (
    CONTENT_RECOMMENDATIONS,
    RECOMMENDER_MODEL,
    build_content_recommendations_asset,
    recommender_model,
    recommender_model_beats_popularity,
)

# Trained by the weekly job; scored by the daily job with the champions.
TRAINING_ASSETS = (LAPSE_MODEL, RECOMMENDER_MODEL)
SCORING_ASSETS = (LAPSE_SCORES, CONTENT_RECOMMENDATIONS)
ML_ASSET_CHECKS = (lapse_model_auc_floor, lapse_scores_stable, recommender_model_beats_popularity)


def build_ml_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        lapse_model,
        build_lapse_scores_asset(partitions),
        recommender_model,
        build_content_recommendations_asset(partitions),
    ]


def build_training_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="weekly_model_training_sunday_0100_ist",
        job=job,
        cron_schedule="0 1 * * 0",
        execution_timezone="Asia/Kolkata",
        description="Sunday 01:00 Asia/Kolkata, before the daily refresh: retrain the lapse "
        "model and the recommender; a challenger is promoted only if it beats its champion "
        "on the same holdout.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
