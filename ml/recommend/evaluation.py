"""Holdout evaluation of the recommender: NDCG@k and recall@k on the last week's views.

The definitions follow the simulator's oracle (`simulator/truth.py`, `ranking_oracle`), so the
model, popularity and the true affinities are scored the same way:

- **users**: every policyholder with a view in the holdout, whether or not they had history
  (those without get popularity);
- **relevance**: binary, the videos the policyholder started (or completed) in the holdout,
  including videos they had watched before: the oracle ranks every video by true affinity and
  a re-watched favourite counts as a hit, so the model is evaluated with `exclude_seen=False`;
- **NDCG@k** = DCG of the top k (a hit at rank r counts 1 / log2(r + 1)) over the ideal DCG of
  min(|relevant|, k) hits; **recall@k** = hits / min(|relevant|, k) (capped, as the oracle
  does, so a user with 12 relevant videos can reach 1); both averaged over users.

What differs from the oracle, slightly: the oracle reads the raw app events of the window's last
7 days *as received*, while the marts date a view by the IST day of its first event
(`view_day`). Views of the holdout that arrived after the window's end are in neither; views
from before the holdout that arrived during it (offline queues, about 3% of sessions) count for
the oracle only. Views known only from progress events (their start lost) are not relevant
here either, as the oracle only reads `video_started` / `video_completed`.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import polars as pl

from ml.recommend.base import Recommender
from ml.recommend.interactions import as_text, implicit_feedback
from ml.recommend.model import ContentRecommender, PopularityRecommender


def relevant_views(views: pl.DataFrame, start: date, end: date | None = None) -> pl.DataFrame:
    """Distinct (policyholder_id, video_id) viewed on `start` <= view_day (< `end`), counting
    views that started or completed (as the oracle's events do)."""
    frame = as_text(views, "policyholder_id", "video_id").filter(pl.col("view_day") >= start)
    if end is not None:
        frame = frame.filter(pl.col("view_day") < end)
    counted = [c for c in ("is_started", "is_completed") if c in frame.columns]
    if counted:
        frame = frame.filter(pl.any_horizontal(pl.col(c).fill_null(False) for c in counted))
    return (
        frame.filter(pl.col("policyholder_id").is_not_null(), pl.col("video_id").is_not_null())
        .select("policyholder_id", "video_id")
        .unique()
        .sort("policyholder_id", "video_id")
    )


def ranking_metrics(
    recommendations: pl.DataFrame, relevant: pl.DataFrame, k: int = 10
) -> dict[str, float]:
    """NDCG@k, recall@k and the number of users, over the users of `relevant`.

    `recommendations`: policyholder_id, rank (1 = best), video_id; `relevant`: policyholder_id,
    video_id. A user with no recommendation scores 0; ranks beyond k are ignored.
    """
    relevant = as_text(relevant, "policyholder_id", "video_id").unique()
    per_user = relevant.group_by("policyholder_id").agg(relevant=pl.len())
    if per_user.is_empty():
        return {"ndcg": float("nan"), "recall": float("nan"), "users": 0}
    hits = (
        as_text(recommendations, "policyholder_id", "video_id")
        .filter(pl.col("rank") <= k)
        .join(relevant, on=["policyholder_id", "video_id"], how="inner")
        .group_by("policyholder_id")
        .agg(
            hits=pl.len(),
            dcg=(1.0 / (pl.col("rank").cast(pl.Float64) + 1.0).log(2)).sum(),
        )
    )
    ideal_dcg = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    scored = per_user.join(hits, on="policyholder_id", how="left").with_columns(
        pl.col("hits").fill_null(0),
        pl.col("dcg").fill_null(0.0),
        cap=pl.min_horizontal(pl.col("relevant"), pl.lit(k)),
    )
    ideal = ideal_dcg[scored["cap"].to_numpy()]
    return {
        "ndcg": float(np.mean(scored["dcg"].to_numpy() / ideal)),
        "recall": float(np.mean(scored["hits"].to_numpy() / scored["cap"].to_numpy())),
        "users": scored.height,
    }


def ndcg_at_k(recommendations: pl.DataFrame, relevant: pl.DataFrame, k: int = 10) -> float:
    """Mean NDCG@k with binary relevance over the users of `relevant` (see `ranking_metrics`)."""
    return ranking_metrics(recommendations, relevant, k)["ndcg"]


def recall_at_k(recommendations: pl.DataFrame, relevant: pl.DataFrame, k: int = 10) -> float:
    """Mean recall@k, hits over min(|relevant|, k), over the users of `relevant`."""
    return ranking_metrics(recommendations, relevant, k)["recall"]


def rank_scores(scores: pl.DataFrame, k: int = 10) -> pl.DataFrame:
    """Any per-pair scores (policyholder_id, video_id, score), e.g. the simulator's true
    affinities, as a top-k ranking (policyholder_id, rank, video_id, score): higher first, ties
    by video_id, nothing filtered (the oracle ranks every video)."""
    return (
        as_text(scores, "policyholder_id", "video_id")
        .sort(["policyholder_id", "score", "video_id"], descending=[False, True, False])
        .with_columns(rank=(pl.int_range(pl.len()).over("policyholder_id") + 1).cast(pl.Int32))
        .filter(pl.col("rank") <= k)
        .select("policyholder_id", "rank", "video_id", "score")
    )


def evaluate_holdout(
    views: pl.DataFrame,
    videos: pl.DataFrame,
    policyholders: pl.DataFrame,
    holdout_start: date,
    k: int = 10,
    seed: int = 0,
    truth: pl.DataFrame | None = None,
    model: Recommender | None = None,
) -> dict[str, float]:
    """Fit on the views before `holdout_start`, score the views from it on (the caller passes
    the last week), and report the model beside popularity (and `truth`, if given).

    `views`: fct_content_views rows; `videos`: `video_catalogue(...)`; `policyholders`:
    `policyholder_profiles(...)`; `truth`: optional (policyholder_id, video_id, score) to score
    as a ranking too, e.g. the true affinities; `model`: an unfitted recommender (default
    `ContentRecommender()`). The baseline uses the model's product filter setting.

    Returns model_/popularity_/truth_ `ndcg_at_{k}` and `recall_at_{k}`, `ndcg_ratio` (model
    over popularity), `users`, `cold_start_users` (no history before the holdout),
    `fit_seconds`, `train_pairs`.
    """
    model = model if model is not None else ContentRecommender()
    feedback = implicit_feedback(views, before=holdout_start)
    relevant = relevant_views(views, holdout_start)
    audience = relevant.select("policyholder_id").unique().sort("policyholder_id")
    started = time.perf_counter()
    model.fit(feedback, videos, policyholders, seed=seed)
    fit_seconds = time.perf_counter() - started
    baseline = PopularityRecommender(product_filter=model.product_filter)
    baseline.fit(feedback, videos, policyholders, seed=seed)
    rankings = {
        "model": model.recommend(audience, k=k, exclude_seen=False),
        "popularity": baseline.recommend(audience, k=k, exclude_seen=False),
    }
    if truth is not None:
        truth = as_text(truth, "policyholder_id").join(audience, on="policyholder_id")
        rankings["truth"] = rank_scores(truth, k=k)
    report: dict[str, float] = {}
    for name, ranking in rankings.items():
        metrics = ranking_metrics(ranking, relevant, k)
        report[f"{name}_ndcg_at_{k}"] = metrics["ndcg"]
        report[f"{name}_recall_at_{k}"] = metrics["recall"]
    popularity = report[f"popularity_ndcg_at_{k}"]
    report["ndcg_ratio"] = report[f"model_ndcg_at_{k}"] / popularity if popularity else np.nan
    history = set(feedback["policyholder_id"].to_list())
    report["users"] = audience.height
    report["cold_start_users"] = sum(h not in history for h in audience["policyholder_id"])
    report["fit_seconds"] = fit_seconds
    report["train_pairs"] = feedback.height
    return report
