"""The recommender's assets: weekly training into the registry, daily recommendations into
`ml.content_recommendations`, and the check that it beats popularity.

Training fits on the content views before the last week and measures NDCG@10 / recall@10 on
that week (the holdout), beside popularity; the registered model is then refitted on all views
for serving. It becomes champion only when it beats the champion's NDCG@10 on the same holdout
(the champion's own fit is re-evaluated there). Scoring writes each policyholder's top 10
(`for_you`) and, for the customers with a high-risk premium in the day's lapse scores, the one
video their agent should send next (`send_next`).
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import psycopg

from ml.recommend import (
    INPUT_COLUMNS,
    ContentRecommender,
    Recommender,
    evaluate_holdout,
    implicit_feedback,
    policyholder_profiles,
    video_catalogue,
)
from ml.registry import ModelCard, data_fingerprint, model_version, promotion_decision
from orchestration.defs.ml.lapse_assets import LAPSE_SCORES, scoring_days
from orchestration.defs.ml.marts import read_marts
from orchestration.defs.ml.registry_store import (
    champion,
    latest_metrics,
    register,
    replace_days,
    require_champion,
    save_artifact,
)
from orchestration.resources import DatabasesResource, LandingResource
from warehouse import urls
from warehouse.ml_tables import ensure_ml_tables

RECOMMENDER_MODEL = dg.AssetKey(["ml", "recommender_model"])
CONTENT_RECOMMENDATIONS = dg.AssetKey(["ml", "content_recommendations"])
MODEL_NAME = "recommender"
HOLDOUT_DAYS = 7
TOP_K = 10
# The model must beat popularity on the holdout by this factor to be promoted (issue 6 asks for
# 1.5x on the scale tier; a small world's holdout is noisy, so the floor is lower).
NDCG_FLOOR_RATIO = 1.0


def _mart_deps() -> list[dg.AssetKey]:
    return [dg.AssetKey(["marts", name]) for name in INPUT_COLUMNS]


class RecommenderTrainingConfig(dg.Config):
    """Run config of the weekly training."""

    seed: int = 7


def read_recommender_inputs(warehouse_url: str) -> dict[str, pl.DataFrame]:
    """The marts the recommender reads, only the columns it needs, in one snapshot."""
    return read_marts(warehouse_url, INPUT_COLUMNS)


def views_end(frames: dict[str, pl.DataFrame]) -> date:
    """The day after the last content view: the end of the holdout week."""
    last = frames["fct_content_views"]["view_day"].max()
    if not isinstance(last, date):
        raise ValueError("marts.fct_content_views is empty: no views to learn from")
    return last + timedelta(days=1)


def holdout_report(
    frames: dict[str, pl.DataFrame],
    seed: int,
    model: Recommender | None = None,
    truth: pl.DataFrame | None = None,
) -> dict[str, float]:
    """`model` (default a new ContentRecommender) fitted before the last week and measured on
    it, beside popularity (and `truth`, a ranking to score the same way)."""
    return evaluate_holdout(
        frames["fct_content_views"],
        video_catalogue(frames["dim_content"]),
        policyholder_profiles(frames["dim_policyholder"], frames["dim_policy"]),
        views_end(frames) - timedelta(days=HOLDOUT_DAYS),
        k=TOP_K,
        seed=seed,
        truth=truth,
        model=model,
    )


def fit_for_serving(frames: dict[str, pl.DataFrame], seed: int) -> ContentRecommender:
    """The model refitted on every view, as served."""
    return ContentRecommender().fit(
        implicit_feedback(frames["fct_content_views"], before=views_end(frames)),
        video_catalogue(frames["dim_content"]),
        policyholder_profiles(frames["dim_policyholder"], frames["dim_policy"]),
        seed=seed,
    )


@dg.asset(
    key=RECOMMENDER_MODEL,
    deps=_mart_deps(),
    group_name="ml",
    description="Weekly: fits the content recommender, measures it on the last week held out "
    "beside popularity, registers it in ml.model_registry and promotes it when it beats the "
    "champion on the same holdout.",
)
def recommender_model(
    context: dg.AssetExecutionContext,
    config: RecommenderTrainingConfig,
    databases: DatabasesResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    frames = read_recommender_inputs(databases.warehouse)
    report = holdout_report(frames, config.seed)
    ndcg = report[f"model_ndcg_at_{TOP_K}"]
    stored = champion(databases.warehouse, MODEL_NAME)
    champion_ndcg = None
    if stored is not None:
        # The champion's method and settings, refitted on the same history and measured on the
        # same week: a comparison on equal terms.
        champion_report = holdout_report(frames, config.seed, model=stored.load().unfitted())
        champion_ndcg = champion_report[f"model_ndcg_at_{TOP_K}"]
    popularity = report[f"popularity_ndcg_at_{TOP_K}"]
    decision = promotion_decision(
        f"ndcg_at_{TOP_K}", ndcg, champion_ndcg, floor=popularity * NDCG_FLOOR_RATIO
    )
    model = fit_for_serving(frames, config.seed)
    fingerprint = data_fingerprint(frames)
    version = model_version(MODEL_NAME, datetime.now(UTC), fingerprint, config.seed)
    end = views_end(frames)
    first_view = frames["fct_content_views"]["view_day"].min()
    card = ModelCard(
        model_name=MODEL_NAME,
        version=version,
        kind=model.method,
        training_window_start=first_view,
        training_window_end=end - timedelta(days=HOLDOUT_DAYS + 1),
        holdout_start=end - timedelta(days=HOLDOUT_DAYS),
        holdout_end=end - timedelta(days=1),
        feature_names=("implicit_feedback", "language", "policy_types"),
        metrics={
            "ndcg_at_10": ndcg,
            "recall_at_10": report[f"model_recall_at_{TOP_K}"],
            "popularity_ndcg_at_10": popularity,
            "popularity_recall_at_10": report[f"popularity_recall_at_{TOP_K}"],
            "ndcg_ratio": report["ndcg_ratio"],
            "champion_ndcg_at_10": champion_ndcg if champion_ndcg is not None else float("nan"),
            "users": float(report["users"]),
        },
        data_fingerprint=fingerprint,
        seed=config.seed,
    )
    path, sha = save_artifact(landing.path, MODEL_NAME, version, model)
    register(databases.warehouse, card, path, sha, decision)
    context.log.info(
        f"{version}: NDCG@10 {ndcg:.4f} (popularity {popularity:.4f}); {decision.note}"
    )
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "promoted": decision.promote,
            "promotion": decision.note,
            "ndcg_at_10": ndcg,
            "popularity_ndcg_at_10": popularity,
            "recall_at_10": report[f"model_recall_at_{TOP_K}"],
            "ndcg_ratio_to_popularity": report["ndcg_ratio"],
            "holdout_users": int(report["users"]),
            "artifact": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset_check(
    asset=RECOMMENDER_MODEL,
    description="The latest recommender's NDCG@10 on its holdout is at least popularity's.",
)
def recommender_model_beats_popularity(databases: DatabasesResource) -> dg.AssetCheckResult:
    latest = latest_metrics(databases.warehouse, MODEL_NAME)
    if latest is None:
        return dg.AssetCheckResult(passed=False, description="no recommender registered")
    version, metrics = latest
    model, popular = metrics.get("ndcg_at_10"), metrics.get("popularity_ndcg_at_10")
    ratio = model / popular if model is not None and popular else float("nan")
    return dg.AssetCheckResult(
        passed=bool(ratio >= NDCG_FLOOR_RATIO),
        metadata={"model_version": version, "ndcg_ratio_to_popularity": ratio},
    )


RECOMMENDATION_COLUMNS = (
    "scored_for",
    "list_name",
    "policyholder_id",
    "rank",
    "video_id",
    "score",
    "source",
    "model_version",
)


def at_risk_customers(conn: psycopg.Connection, day: date) -> pl.DataFrame:
    """Policyholders with a high-risk premium in the day's lapse scores, with the policy type
    at risk (so the video sent is about that policy)."""
    rows = conn.execute(
        """
        SELECT DISTINCT s.policyholder_id::text, p.policy_type
        FROM ml.lapse_scores AS s
        LEFT JOIN marts.dim_policy AS p ON p.policy_id = s.policy_id
        WHERE s.scored_for = %s AND s.risk_band = 'high'
        ORDER BY 1, 2
        """,
        (day,),
    ).fetchall()
    return pl.DataFrame(
        rows, schema={"policyholder_id": pl.String, "policy_type": pl.String}, orient="row"
    )


def build_content_recommendations_asset(
    partitions: dg.PartitionsDefinition,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=CONTENT_RECOMMENDATIONS,
        deps=[RECOMMENDER_MODEL, LAPSE_SCORES, *_mart_deps()],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ml",
        description="Daily: each policyholder's top 10 videos (`for_you`) and one video to send "
        "next to each customer with a high-risk premium (`send_next`), from the champion "
        "recommender, into ml.content_recommendations (a day's rows replaced whole).",
    )
    def content_recommendations(
        context: dg.AssetExecutionContext, databases: DatabasesResource
    ) -> dg.MaterializeResult:
        stored = require_champion(databases.warehouse, MODEL_NAME)
        model = stored.load()
        frames = read_recommender_inputs(databases.warehouse)
        holders = policyholder_profiles(frames["dim_policyholder"], frames["dim_policy"])
        days = scoring_days(context)
        for_you = model.recommend(holders.select("policyholder_id"), k=TOP_K).select(
            pl.lit("for_you").alias("list_name"),
            "policyholder_id",
            "rank",
            "video_id",
            "score",
            "source",
        )
        per_day = []
        with psycopg.connect(urls.libpq_url(databases.warehouse)) as conn:
            ensure_ml_tables(conn)
            for day in days:
                send_next = (
                    model.send_next(at_risk_customers(conn, day))
                    .filter(pl.col("video_id").is_not_null())
                    .select(
                        pl.lit("send_next").alias("list_name"),
                        "policyholder_id",
                        pl.lit(1, dtype=pl.Int32).alias("rank"),
                        "video_id",
                        "score",
                        "source",
                    )
                )
                per_day.append(
                    pl.concat([for_you, send_next]).with_columns(pl.lit(day).alias("scored_for"))
                )
        rows = pl.concat(per_day).with_columns(pl.lit(stored.version).alias("model_version"))
        written = replace_days(
            databases.warehouse,
            "content_recommendations",
            days,
            rows.select(RECOMMENDATION_COLUMNS),
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "model_version": stored.version,
                "days": len(days),
                "policyholders": for_you["policyholder_id"].n_unique(),
                "send_next_last_day": send_next.height,
            }
        )

    return content_recommendations
