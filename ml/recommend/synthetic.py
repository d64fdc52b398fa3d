"""Small generated marts with planted taste clusters, for tests of the recommender (and of what
calls it) without a warehouse.

Why this shape: it plants exactly what the recommender should find, and nothing it should not.
Every video has a topic cluster and a language (half in English); every policyholder has a
language and one favourite cluster. A policyholder picks among the videos in their language or
English with weight `popularity x (TASTE if the video is in their cluster else 1)` and finishes
the ones in their cluster more often. So popularity alone gets part of the holdout right, and
knowing someone's cluster from their history gets much more: a recommender that learns tastes
must beat popularity by a wide margin; `truth` (the planted weights) is the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

LANGUAGES = ("en", "hi", "ta")
POLICY_TYPES = ("term", "endowment", "health")
TASTE = 8.0  # weight of a video in the policyholder's favourite cluster
START = date(2026, 1, 1)


@dataclass(frozen=True)
class SyntheticMarts:
    """The marts' columns the recommender reads, plus the planted truth."""

    fct_content_views: pl.DataFrame
    dim_content: pl.DataFrame
    dim_policyholder: pl.DataFrame
    dim_policy: pl.DataFrame
    holdout_start: date  # the last 7 days
    truth: pl.DataFrame  # policyholder_id, video_id, score (planted log weight)


def make_marts(
    seed: int = 0,
    policyholders: int = 400,
    videos: int = 40,
    clusters: int = 4,
    days: int = 60,
    views_per_holder: float = 6.0,
) -> SyntheticMarts:
    """Marts over `days` days; a fifth of the policyholders never watch anything (cold start)."""
    rng = np.random.default_rng(seed)
    video_ids = [f"video-{i:03d}" for i in range(videos)]
    holder_ids = [f"holder-{i:04d}" for i in range(policyholders)]
    video_lang = np.where(np.arange(videos) % 2 == 0, "en", rng.choice(LANGUAGES[1:], videos))
    video_cluster = np.arange(videos) % clusters
    popularity = rng.lognormal(0.0, 0.5, videos)
    video_types = [[POLICY_TYPES[i % 3]] if i % 4 else [] for i in range(videos)]
    holder_lang = rng.choice(LANGUAGES, policyholders, p=[0.3, 0.4, 0.3])
    holder_cluster = rng.integers(0, clusters, policyholders)
    weight = popularity[None, :] * np.where(
        video_cluster[None, :] == holder_cluster[:, None], TASTE, 1.0
    )
    allowed = (video_lang[None, :] == holder_lang[:, None]) | (video_lang[None, :] == "en")
    weight = np.where(allowed, weight, 0.0)
    share = weight / weight.sum(axis=1, keepdims=True)
    counts = rng.poisson(views_per_holder, policyholders)
    counts[rng.random(policyholders) < 0.2] = 0
    rows = []
    for h in range(policyholders):
        for v in rng.choice(videos, size=counts[h], p=share[h]):
            liked = video_cluster[v] == holder_cluster[h]
            completed = bool(rng.random() < (0.7 if liked else 0.2))
            progress = 100 if completed else int(rng.choice([0, 25, 50, 75]))
            rows.append(
                {
                    "policyholder_id": holder_ids[h],
                    "video_id": video_ids[v],
                    "view_day": START + timedelta(days=int(rng.integers(0, days))),
                    "is_started": True,
                    "is_completed": completed,
                    "max_progress_percent": progress,
                    "watch_seconds": 120 if completed else None,
                }
            )
    views = pl.DataFrame(
        rows,
        schema={
            "policyholder_id": pl.String,
            "video_id": pl.String,
            "view_day": pl.Date,
            "is_started": pl.Boolean,
            "is_completed": pl.Boolean,
            "max_progress_percent": pl.Int32,
            "watch_seconds": pl.Int32,
        },
    )
    holder_types = [
        sorted(set(rng.choice(POLICY_TYPES, size=int(rng.integers(1, 3))).tolist()))
        for _ in range(policyholders)
    ]
    return SyntheticMarts(
        fct_content_views=views,
        dim_content=pl.DataFrame(
            {
                "video_id": video_ids,
                "language": video_lang.tolist(),
                "policy_types": video_types,
                "video_status": ["published"] * videos,
            },
            schema_overrides={"policy_types": pl.List(pl.String)},
        ),
        dim_policyholder=pl.DataFrame(
            {"policyholder_id": holder_ids, "preferred_language": holder_lang.tolist()}
        ),
        dim_policy=pl.DataFrame(
            {
                "policyholder_id": [
                    h for h, ts in zip(holder_ids, holder_types, strict=True) for _ in ts
                ],
                "policy_type": [t for ts in holder_types for t in ts],
            }
        ),
        holdout_start=START + timedelta(days=days - 7),
        truth=pl.DataFrame(
            {
                "policyholder_id": np.repeat(holder_ids, videos).tolist(),
                "video_id": np.tile(video_ids, policyholders).tolist(),
                "score": np.log(np.where(allowed, weight, 1e-9)).ravel(),
            }
        ),
    )
