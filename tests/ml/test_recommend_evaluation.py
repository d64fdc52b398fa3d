"""NDCG@k and recall@k on hand-worked rankings; the holdout evaluation on planted tastes."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from ml.recommend import (
    ContentRecommender,
    evaluate_holdout,
    implicit_feedback,
    ndcg_at_k,
    policyholder_profiles,
    rank_scores,
    ranking_metrics,
    recall_at_k,
    relevant_views,
    video_catalogue,
)
from ml.recommend.synthetic import make_marts


def _ranking(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["policyholder_id", "rank", "video_id"], orient="row")


def _relevant(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["policyholder_id", "video_id"], orient="row")


RECS = _ranking([("a", 1, "v1"), ("a", 2, "v2"), ("a", 3, "v3"), ("c", 1, "v4")])
RELEVANT = _relevant([("a", "v1"), ("a", "v3"), ("b", "v9")])


def test_ndcg_by_hand() -> None:
    # a: hits at ranks 1 and 3, DCG 1 + 1/log2(4) = 1.5, ideal 1 + 1/log2(3); b: nothing
    # recommended, 0; c: not in the holdout, not counted.
    a = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RECS, RELEVANT, k=3) == pytest.approx(a / 2)
    # k = 2: only the hit at rank 1 counts, over the same ideal of two hits
    assert ndcg_at_k(RECS, RELEVANT, k=2) == pytest.approx((1 / (1 + 1 / math.log2(3))) / 2)


def test_recall_by_hand() -> None:
    assert recall_at_k(RECS, RELEVANT, k=3) == pytest.approx((2 / 2 + 0) / 2)
    assert recall_at_k(RECS, RELEVANT, k=1) == pytest.approx((1 / 1 + 0) / 2)


def test_recall_and_ideal_are_capped_at_k_as_the_oracle_does() -> None:
    recs = _ranking([("a", 1, "v1"), ("a", 2, "v2")])
    relevant = _relevant([("a", f"v{i}") for i in range(1, 6)])
    assert ranking_metrics(recs, relevant, k=2) == pytest.approx(
        {"ndcg": 1.0, "recall": 1.0, "users": 1}
    )


def test_a_perfect_and_an_empty_ranking() -> None:
    relevant = _relevant([("a", "v1"), ("a", "v2"), ("b", "v3")])
    perfect = _ranking([("a", 1, "v2"), ("a", 2, "v1"), ("b", 1, "v3")])
    assert ranking_metrics(perfect, relevant, k=10)["ndcg"] == pytest.approx(1.0)
    empty = perfect.clear()
    assert ranking_metrics(empty, relevant, k=10) == {"ndcg": 0.0, "recall": 0.0, "users": 2}
    assert math.isnan(ndcg_at_k(perfect, relevant.clear(), k=10))


def test_relevant_views_are_started_or_completed_in_the_window() -> None:
    views = pl.DataFrame(
        {
            "policyholder_id": ["a", "a", "a", "a", "b"],
            "video_id": ["v1", "v1", "v2", "v3", "v4"],
            "view_day": [date(2026, 1, d) for d in (8, 9, 9, 9, 7)],
            "is_started": [True, True, False, False, True],
            "is_completed": [False, True, False, True, True],
        }
    )
    relevant = relevant_views(views, date(2026, 1, 8))
    # v1 once though viewed twice; v2 only progress (its start lost) is not counted; b too early
    assert relevant.rows() == [("a", "v1"), ("a", "v3")]
    assert relevant_views(views, date(2026, 1, 7), end=date(2026, 1, 8)).rows() == [("b", "v4")]


def test_rank_scores_orders_by_score_then_video() -> None:
    scores = pl.DataFrame(
        {
            "policyholder_id": ["a", "a", "a", "b"],
            "video_id": ["v3", "v1", "v2", "v1"],
            "score": [0.5, 0.9, 0.5, 0.1],
        }
    )
    ranked = rank_scores(scores, k=2)
    assert ranked.select("policyholder_id", "rank", "video_id").rows() == [
        ("a", 1, "v1"),
        ("a", 2, "v2"),
        ("b", 1, "v1"),
    ]


@pytest.fixture(scope="module")
def report() -> dict[str, float]:
    marts = make_marts(seed=0)
    return evaluate_holdout(
        marts.fct_content_views,
        video_catalogue(marts.dim_content),
        policyholder_profiles(marts.dim_policyholder, marts.dim_policy),
        marts.holdout_start,
        k=10,
        seed=3,
        truth=marts.truth,
    )


def test_the_model_beats_popularity_on_planted_tastes(report: dict[str, float]) -> None:
    assert report["model_ndcg_at_10"] > 1.3 * report["popularity_ndcg_at_10"]
    assert report["model_recall_at_10"] > report["popularity_recall_at_10"]
    assert report["ndcg_ratio"] == pytest.approx(
        report["model_ndcg_at_10"] / report["popularity_ndcg_at_10"]
    )
    # the planted weights are the ceiling, and the model gets most of the way there
    truth, model = report["truth_ndcg_at_10"], report["model_ndcg_at_10"]
    assert truth > model > 0.8 * truth


def test_the_report_counts_users_and_training_pairs(report: dict[str, float]) -> None:
    marts = make_marts(seed=0)
    relevant = relevant_views(marts.fct_content_views, marts.holdout_start)
    feedback = implicit_feedback(marts.fct_content_views, marts.holdout_start)
    assert report["users"] == relevant["policyholder_id"].n_unique()
    assert report["train_pairs"] == feedback.height
    assert 0 <= report["cold_start_users"] < report["users"]
    assert report["fit_seconds"] >= 0


def test_the_model_metrics_are_those_of_its_recommendations(report: dict[str, float]) -> None:
    marts = make_marts(seed=0)
    videos = video_catalogue(marts.dim_content)
    profiles = policyholder_profiles(marts.dim_policyholder, marts.dim_policy)
    relevant = relevant_views(marts.fct_content_views, marts.holdout_start)
    model = ContentRecommender().fit(
        implicit_feedback(marts.fct_content_views, marts.holdout_start), videos, profiles, 3
    )
    recs = model.recommend(relevant.select("policyholder_id").unique(), exclude_seen=False)
    assert ndcg_at_k(recs, relevant) == pytest.approx(report["model_ndcg_at_10"])
