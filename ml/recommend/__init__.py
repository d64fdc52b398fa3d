"""Content recommendation (DESIGN §7): which educational videos to show each policyholder, and
which one their agent should send next to a customer at risk of lapsing.

Plain Python on polars, numpy, scipy and scikit-learn; no Dagster and no I/O. The caller reads
`INPUT_COLUMNS` from the marts, then

- `implicit_feedback(fct_content_views, before)`, `video_catalogue(dim_content)`,
  `policyholder_profiles(dim_policyholder, dim_policy)` -> the model's inputs;
- `ContentRecommender().fit(feedback, videos, policyholders, seed)` -> `.recommend(holders, k)`
  (top k per policyholder) and `.send_next(at_risk)` (one video per at-risk customer);
- `PopularityRecommender`, the baseline the holdout reports beside the model, and
  `LanguagePopularityRecommender`, the first champion, with the same interface;
- `evaluate_holdout(views, videos, policyholders, holdout_start, k, seed, truth=...)` -> NDCG@k
  and recall@k of the model, popularity and (optionally) the true affinities on the holdout.
"""

from ml.recommend.base import Recommender
from ml.recommend.catalogue import FALLBACK_LANGUAGE, Catalogue
from ml.recommend.evaluation import (
    evaluate_holdout,
    ndcg_at_k,
    rank_scores,
    ranking_metrics,
    recall_at_k,
    relevant_views,
)
from ml.recommend.interactions import (
    INPUT_COLUMNS,
    as_text,
    implicit_feedback,
    policyholder_profiles,
    video_catalogue,
)
from ml.recommend.model import (
    METHODS,
    ContentRecommender,
    LanguagePopularityRecommender,
    PopularityRecommender,
)

__all__ = [
    "FALLBACK_LANGUAGE",
    "INPUT_COLUMNS",
    "METHODS",
    "Catalogue",
    "ContentRecommender",
    "LanguagePopularityRecommender",
    "PopularityRecommender",
    "Recommender",
    "as_text",
    "evaluate_holdout",
    "implicit_feedback",
    "ndcg_at_k",
    "policyholder_profiles",
    "rank_scores",
    "ranking_metrics",
    "recall_at_k",
    "relevant_views",
    "video_catalogue",
]
