"""What every recommender shares: fitting the indexes, ranking under the filters, `recommend`
and `send_next`. A subclass only says how to score videos (`_fit_scorer`, `_score`).

Policyholders and videos are indexed in sorted id order and ties are broken by that order, so a
fitted model and its recommendations do not depend on the order of the input rows. Scoring runs
in blocks of `BLOCK` policyholders, so memory stays flat at any tier (a dense 50,000 x 300 score
matrix would be 120 MB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.recommend.catalogue import Catalogue, ranked_tiers, top_k
from ml.recommend.interactions import as_text

BLOCK = 4096
SOURCES = ("personal", "popular")
RECOMMENDATION_SCHEMA = {
    "policyholder_id": pl.String,
    "rank": pl.Int32,
    "video_id": pl.String,
    "score": pl.Float64,
    "source": pl.String,
}
SEND_NEXT_SCHEMA = {
    "policyholder_id": pl.String,
    "video_id": pl.String,
    "score": pl.Float64,
    "source": pl.String,
}


@dataclass(frozen=True)
class _Audience:
    """The policyholders to score: their ids, fitted rows (-1 if unknown at fit), languages and
    policy types (from the caller's frame where given, else from the fitted profiles)."""

    ids: list[str]
    rows: np.ndarray
    languages: list[str | None]
    policy_types: list[list[str] | None]


class Recommender:
    """Base of `ContentRecommender` and `PopularityRecommender`.

    `product_filter`: rank the videos about a policyholder's policy types (and general videos)
    before the others in their language in `recommend`; `send_next` always does.
    """

    def __init__(self, product_filter: bool = False) -> None:
        self.product_filter = product_filter

    # fitting -----------------------------------------------------------------------------

    def fit(
        self,
        feedback: pl.DataFrame,
        videos: pl.DataFrame,
        policyholders: pl.DataFrame,
        seed: int = 0,
    ) -> Self:
        """Learn from `implicit_feedback(...)` over `video_catalogue(...)` for the policyholders
        of `policyholder_profiles(...)`. Feedback on videos outside the catalogue is dropped;
        feedback of policyholders without a profile still teaches which videos go together."""
        self.seed = seed
        self.catalogue = Catalogue.from_frame(videos)
        columns = pl.DataFrame(
            {"video_id": self.catalogue.video_ids.tolist(), "col": np.arange(len(self.catalogue))},
            schema={"video_id": pl.String, "col": pl.Int64},
        )
        profiles = as_text(policyholders, "policyholder_id").unique("policyholder_id", keep="first")
        for name, dtype in (("language", pl.String), ("policy_types", pl.List(pl.String))):
            if name not in profiles.columns:
                profiles = profiles.with_columns(pl.lit(None, dtype=dtype).alias(name))
        feedback = as_text(feedback, "policyholder_id", "video_id").join(columns, on="video_id")
        users = (
            pl.concat([profiles.select("policyholder_id"), feedback.select("policyholder_id")])
            .unique()
            .sort("policyholder_id")
            .with_row_index("row")
        )
        profiles = users.join(profiles, on="policyholder_id", how="left").sort("row")
        self.user_index = dict(zip(users["policyholder_id"], range(users.height), strict=True))
        self.user_languages = profiles["language"].cast(pl.String).to_list()
        self.user_policy_types = profiles["policy_types"].to_list()
        feedback = feedback.join(users, on="policyholder_id")
        rows, cols = feedback["row"].to_numpy(), feedback["col"].to_numpy()
        shape = (users.height, len(self.catalogue))

        def matrix(values: np.ndarray) -> sp.csr_matrix:
            built = sp.csr_matrix((values.astype(np.float64), (rows, cols)), shape=shape)
            built.sum_duplicates()
            built.eliminate_zeros()
            return built

        self.strength = matrix(feedback["strength"].cast(pl.Float64).to_numpy())
        self.views = matrix(
            feedback["views"].cast(pl.Float64).to_numpy()
            if "views" in feedback.columns
            else np.ones(feedback.height)
        )
        self.completed = matrix(
            feedback["completed"].fill_null(False).cast(pl.Float64).to_numpy()
            if "completed" in feedback.columns
            else np.zeros(feedback.height)
        )
        self._fit_scorer()
        return self

    def unfitted(self) -> Recommender:
        """A new, unfitted recommender with the same settings: to refit a registered champion
        on the challenger's data and compare them on equal terms."""
        raise NotImplementedError

    def _fit_scorer(self) -> None:
        """Learn what `_score` needs from `self.strength` and the profiles."""
        raise NotImplementedError

    def _score(self, audience: _Audience) -> tuple[np.ndarray, np.ndarray]:
        """(policyholders x videos) scores, and per policyholder whether they are personal."""
        raise NotImplementedError

    # serving -----------------------------------------------------------------------------

    def recommend(
        self, policyholders: pl.DataFrame, k: int = 10, exclude_seen: bool = True
    ) -> pl.DataFrame:
        """Top `k` videos per distinct policyholder of `policyholders` (a frame with
        policyholder_id; its `language` / `policy_types` columns, where not null, override the
        fitted profiles, e.g. for a policyholder who joined after the fit).

        Columns: policyholder_id, rank (1..k), video_id, score (higher is better; its scale is
        the model's own), source ('personal' when the policyholder has history, 'popular'
        otherwise). Only videos in the policyholder's language or English; with
        `exclude_seen`, none they viewed before the fit's cut-off. Fewer than `k` rows when
        fewer videos are allowed.
        """
        audience = self._audience(policyholders)
        parts = []
        for block in _blocks(len(audience.ids)):
            part = _slice(audience, block)
            scores, personal = self._score(part)
            excluded = self._seen(part.rows, self.strength) if exclude_seen else None
            product = (
                self.catalogue.product_mask(part.policy_types) if self.product_filter else None
            )
            tiers = ranked_tiers(self.catalogue.language_mask(part.languages), product, excluded)
            ranked, valid = top_k(scores, tiers, k)
            who, position = np.nonzero(valid)
            video = ranked[who, position]
            parts.append(
                pl.DataFrame(
                    {
                        "policyholder_id": np.array(part.ids, dtype=object)[who].tolist(),
                        "rank": position + 1,
                        "video_id": self.catalogue.video_ids[video].tolist(),
                        "score": scores[who, video],
                        "source": np.where(personal[who], *SOURCES).tolist(),
                    },
                    schema=RECOMMENDATION_SCHEMA,
                )
            )
        return pl.concat(parts) if parts else pl.DataFrame(schema=RECOMMENDATION_SCHEMA)

    def send_next(self, at_risk: pl.DataFrame) -> pl.DataFrame:
        """One video per at-risk policyholder for their agent to send: the best-scored video in
        their language that they have not watched to the end, preferring videos about the policy
        at risk (`policy_type` column, if given; else any policy they hold) or general ones.

        Columns: policyholder_id, video_id, score, source; one row per distinct policyholder, in
        input order, video_id null only when they have completed every video they may be sent.
        """
        frame = as_text(at_risk, "policyholder_id")
        if "policy_type" in frame.columns:
            types = frame.group_by("policyholder_id", maintain_order=True).agg(
                policy_types=pl.col("policy_type").drop_nulls().cast(pl.String).unique().sort()
            )
            frame = frame.drop("policy_type").unique("policyholder_id", maintain_order=True)
            frame = frame.drop("policy_types", strict=False).join(
                types, on="policyholder_id", how="left", maintain_order="left"
            )
            # no known type for the policy at risk: fall back to the fitted profile's types
            frame = frame.with_columns(
                pl.when(pl.col("policy_types").list.len() > 0).then(pl.col("policy_types"))
            )
        audience = self._audience(frame)
        parts = []
        for block in _blocks(len(audience.ids)):
            part = _slice(audience, block)
            scores, personal = self._score(part)
            tiers = ranked_tiers(
                self.catalogue.language_mask(part.languages),
                self.catalogue.product_mask(part.policy_types),
                self._seen(part.rows, self.completed),
            )
            ranked, valid = top_k(scores, tiers, 1)
            has = valid[:, 0] if valid.shape[1] else np.zeros(len(part.ids), dtype=bool)
            best = ranked[:, 0] if ranked.shape[1] else np.zeros(len(part.ids), dtype=np.int64)
            parts.append(
                pl.DataFrame(
                    {
                        "policyholder_id": part.ids,
                        "video_id": [
                            self.catalogue.video_ids[v] if ok else None
                            for v, ok in zip(best, has, strict=True)
                        ],
                        "score": np.where(has, scores[np.arange(len(best)), best], np.nan)
                        if len(best)
                        else np.zeros(0),
                        "source": np.where(personal, *SOURCES).tolist(),
                    },
                    schema=SEND_NEXT_SCHEMA,
                ).with_columns(pl.col("score").fill_nan(None))
            )
        return pl.concat(parts) if parts else pl.DataFrame(schema=SEND_NEXT_SCHEMA)

    # helpers -----------------------------------------------------------------------------

    def _audience(self, policyholders: pl.DataFrame) -> _Audience:
        frame = as_text(policyholders, "policyholder_id").unique(
            "policyholder_id", maintain_order=True
        )
        ids = frame["policyholder_id"].to_list()
        rows = np.array([self.user_index.get(h, -1) for h in ids], dtype=np.int64)
        fitted = [self.user_languages[r] if r >= 0 else None for r in rows]
        if "language" in frame.columns:
            given = frame["language"].cast(pl.String).to_list()
            languages = [g if g is not None else f for g, f in zip(given, fitted, strict=True)]
        else:
            languages = fitted
        if "policy_types" in frame.columns:
            given = frame["policy_types"].to_list()
            types = [
                t if t is not None else (self.user_policy_types[r] if r >= 0 else None)
                for t, r in zip(given, rows, strict=True)
            ]
        else:
            types = [self.user_policy_types[r] if r >= 0 else None for r in rows]
        return _Audience(ids=ids, rows=rows, languages=languages, policy_types=types)

    def _history(self, rows: np.ndarray, matrix: sp.csr_matrix | None = None) -> np.ndarray:
        """Dense rows of `matrix` (default: the strengths) for fitted rows; zeros for -1."""
        matrix = self.strength if matrix is None else matrix
        dense = np.zeros((len(rows), matrix.shape[1]))
        known = rows >= 0
        if known.any():
            dense[known] = matrix[rows[known]].toarray()
        return dense

    def _seen(self, rows: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
        return self._history(rows, matrix) > 0


def _blocks(n: int) -> list[slice]:
    return [slice(start, min(start + BLOCK, n)) for start in range(0, n, BLOCK)]


def _slice(audience: _Audience, block: slice) -> _Audience:
    return _Audience(
        ids=audience.ids[block],
        rows=audience.rows[block],
        languages=audience.languages[block],
        policy_types=audience.policy_types[block],
    )
