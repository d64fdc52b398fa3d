"""How popular each video is: overall, and among the policyholders of each language.

Why per language: customers choose among the videos in their language and English, and like
their own language's videos better (the simulator gives them a +1 logit bonus), so the English
videos most watched overall are not the best first videos for a Bengali speaker. A language's
counts are shrunk towards the overall shares with `LANGUAGE_PRIOR` pseudo-views, so a language
with few viewers borrows from everyone. On a 120-day scale-tier world, ranking by these shares
scores NDCG@10 0.104 on the last week, against 0.093 for the videos with most viewers overall
(`PopularityRecommender`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

LANGUAGE_PRIOR = 100.0  # pseudo-views spread by the overall shares


def column_totals(matrix: sp.csr_matrix) -> np.ndarray:
    """Per video the column total of a (policyholder x video) matrix: views of a view-count
    matrix, distinct viewers of a 0/1 one."""
    return np.asarray(matrix.sum(axis=0), dtype=float).ravel()


def language_popularity(
    views: sp.csr_matrix, user_languages: Sequence[str | None]
) -> dict[str | None, np.ndarray]:
    """Per language, each video's share of that language's views, smoothed towards the overall
    shares; the key None holds the overall shares (for policyholders of unknown language)."""
    overall = column_totals(views)
    overall_share = overall / overall.sum() if overall.sum() > 0 else np.zeros_like(overall)
    languages = np.array(list(user_languages), dtype=object)
    shares: dict[str | None, np.ndarray] = {None: overall_share}
    for language in sorted({lang for lang in languages if lang is not None}):
        counts = column_totals(views[np.flatnonzero(languages == language)])
        shares[language] = (counts + LANGUAGE_PRIOR * overall_share) / (
            counts.sum() + LANGUAGE_PRIOR
        )
    return shares


def popularity_rows(
    shares: dict[str | None, np.ndarray], languages: Sequence[str | None]
) -> np.ndarray:
    """(policyholders x videos) the popularity each policyholder's language gives each video;
    a language unseen in training gets the overall shares."""
    overall = shares[None]
    if not len(languages):
        return np.zeros((0, len(overall)))
    return np.stack([shares.get(lang, overall) for lang in languages])
