"""The content recommender and its popularity baseline (DESIGN §7).

`ContentRecommender` scores, for a policyholder with history x (their strengths per video):

    score = neighbours(x) / max + self_weight * x / max(x) + popularity_weight * pop / max(pop)

- `neighbours(x) = x @ M`, M the item-item cosine (default) or the SVD projection
  (`ml.recommend.similarity`): videos watched by the people who watched theirs;
- `x` itself: the videos they already chose. Customers go back to the videos they like (the
  holdout counts a re-watch as relevant, as the simulator's oracle does), so with
  `exclude_seen=False` these rank high; with `exclude_seen=True` they are removed anyway;
- `pop`: the video's popularity among policyholders of their language
  (`ml.recommend.popularity`). With a handful of views per customer (3.6 on average for those
  with any, in the scale tier) the neighbours alone are noisy; the language prior steadies them.

Each term is scaled to a maximum of 1 per policyholder so the weights mean the same for a
customer with one view and one with fifty. A policyholder without history is scored by `pop`
alone: source 'popular'. The weights (1.0 and 1.0) were chosen on a 120-day scale-tier world;
see `ml.recommend.evaluation` for how it is measured.

`PopularityRecommender` ranks every policyholder's videos by how many policyholders viewed them
(overall, not by language), under the same language and product filters: the baseline the
issue compares with, so the difference is the personal part and the language-aware prior.

Both are plain picklable objects (numpy arrays, scipy matrices, lists) and deterministic: the
item-item model has no randomness, and the SVD variant is seeded with `fit(..., seed)`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ml.recommend.base import Recommender, _Audience
from ml.recommend.popularity import language_popularity, popularity_rows, viewer_counts
from ml.recommend.similarity import item_cosine, svd_projection

Method = Literal["item_item", "svd"]
METHODS: tuple[Method, ...] = ("item_item", "svd")


class ContentRecommender(Recommender):
    """Item-item (or SVD) collaborative filtering on implicit feedback, blended with language
    popularity, filtered by language (and optionally product); popularity for cold start."""

    def __init__(
        self,
        method: Method = "item_item",
        self_weight: float = 1.0,
        popularity_weight: float = 1.0,
        product_filter: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        super().__init__(product_filter=product_filter)
        self.method = method
        self.self_weight = self_weight
        self.popularity_weight = popularity_weight

    def _fit_scorer(self) -> None:
        if self.method == "item_item":
            self.similarity = item_cosine(self.strength)
        else:
            self.similarity = svd_projection(self.strength, seed=self.seed)
        self.popularity = language_popularity(self.strength, self.user_languages)

    def _score(self, audience: _Audience) -> tuple[np.ndarray, np.ndarray]:
        history = self._history(audience.rows)
        personal = history.max(axis=1) > 0
        popular = _unit_rows(popularity_rows(self.popularity, audience.languages))
        neighbours = _unit_rows(history @ self.similarity)
        own = _unit_rows(history)
        blended = neighbours + self.self_weight * own + self.popularity_weight * popular
        return np.where(personal[:, None], blended, popular), personal


class PopularityRecommender(Recommender):
    """Every policyholder gets the videos most viewed overall (distinct viewers), filtered by
    language (and optionally product) like the model: the baseline."""

    def _fit_scorer(self) -> None:
        self.counts = viewer_counts(self.strength)

    def _score(self, audience: _Audience) -> tuple[np.ndarray, np.ndarray]:
        n = len(audience.ids)
        return np.broadcast_to(self.counts, (n, len(self.counts))).copy(), np.zeros(n, bool)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its largest absolute value (rows of zeros stay zero)."""
    scale = np.abs(matrix).max(axis=1, keepdims=True) if matrix.size else matrix
    return np.divide(matrix, scale, out=np.zeros_like(matrix), where=scale > 0)
