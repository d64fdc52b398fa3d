"""The videos in a fixed order, and which of them a policyholder may be shown.

Two filters, as DESIGN §7 asks:

- **Language**: a video in the policyholder's language, or in English (`FALLBACK_LANGUAGE`),
  which the app offers to everyone; a policyholder whose language is unknown may see any video.
  This is a hard filter: the app's customers only ever pick videos in their language or English
  (the simulator plants exactly that), so a video in another language is never relevant.
- **Product**: a video about one of the policy types the policyholder holds, or a general one
  (no policy type: premium payment, nominee update); a policyholder with no known policy may see
  any. It is a preference applied in tiers rather than a wall: matching videos first, then the
  other videos in the right language to fill the list (see `ranked_tiers`). `send_next` always
  applies it (the agent sends something about the policy at risk); `recommend` only with
  `product_filter=True`, off by default because customers' tastes do not follow their products
  in the data we have: on the 120-day scale world it costs NDCG@10 0.141 -> 0.116.

Videos are kept sorted by `video_id`, so every array indexed by video, and every tie broken by
that index, is the same whatever the order of the input rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

FALLBACK_LANGUAGE = "en"
EXCLUDED = 2  # tier of a video that must not be shown; tiers 0 and 1 are shown in that order


@dataclass(frozen=True)
class Catalogue:
    """The recommendable videos: ids (sorted), languages and the policy types each is about."""

    video_ids: np.ndarray  # str, sorted
    languages: np.ndarray  # str or None
    types: np.ndarray  # bool, videos x policy type vocabulary
    type_names: tuple[str, ...]

    @classmethod
    def from_frame(cls, videos: pl.DataFrame) -> Catalogue:
        """From `video_catalogue(...)`: video_id, language, policy_types."""
        videos = videos.unique("video_id", keep="first").sort("video_id")
        type_lists = videos["policy_types"].to_list()
        names = tuple(sorted({t for types in type_lists for t in (types or [])}))
        column = {name: j for j, name in enumerate(names)}
        types = np.zeros((videos.height, len(names)), dtype=bool)
        for i, video_types in enumerate(type_lists):
            for t in video_types or []:
                types[i, column[t]] = True
        return cls(
            video_ids=np.array(videos["video_id"].to_list(), dtype=object),
            languages=np.array(videos["language"].to_list(), dtype=object),
            types=types,
            type_names=names,
        )

    def __len__(self) -> int:
        return len(self.video_ids)

    def index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}

    def language_mask(self, languages: Sequence[str | None]) -> np.ndarray:
        """(policyholders x videos) True where the video is in the policyholder's language or
        English; a whole row True when the policyholder's language is unknown."""
        codes = {lang: i for i, lang in enumerate(sorted({*self.languages} - {None}))}
        video = np.array([codes.get(lang, -1) for lang in self.languages], dtype=np.int64)
        holder = np.array([codes.get(lang, -2) for lang in languages], dtype=np.int64)
        mask = (video[None, :] == holder[:, None]) | (self.languages == FALLBACK_LANGUAGE)[None, :]
        unknown = np.array([lang is None for lang in languages], dtype=bool)
        mask[unknown] = True
        return mask

    def product_mask(self, policy_types: Sequence[Sequence[str] | None]) -> np.ndarray:
        """(policyholders x videos) True where the video is about one of the policyholder's
        policy types or about none in particular; a whole row True when no type is known."""
        column = {name: j for j, name in enumerate(self.type_names)}
        holds = np.zeros((len(policy_types), len(self.type_names)), dtype=bool)
        known = np.zeros(len(policy_types), dtype=bool)
        for i, types in enumerate(policy_types):
            for t in types or []:
                known[i] = True
                if t in column:
                    holds[i, column[t]] = True
        about = holds.astype(np.int32) @ self.types.T.astype(np.int32) > 0
        general = ~self.types.any(axis=1)
        return about | general[None, :] | ~known[:, None]


def ranked_tiers(
    language_ok: np.ndarray, product_ok: np.ndarray | None, excluded: np.ndarray | None
) -> np.ndarray:
    """Tier of every (policyholder, video): 0 shown first, 1 shown after all of tier 0 (right
    language, another product), `EXCLUDED` never (wrong language, or excluded by the caller)."""
    tiers = np.where(language_ok, 0, EXCLUDED).astype(np.int8)
    if product_ok is not None:
        tiers = np.where(language_ok & ~product_ok, 1, tiers).astype(np.int8)
    if excluded is not None:
        tiers[excluded] = EXCLUDED
    return tiers


def top_k(scores: np.ndarray, tiers: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the first `k` videos by tier, then score (higher first), then video index, and
    which of them may be shown (tier below `EXCLUDED`). Returns (indices n x k', valid)."""
    n, width = scores.shape
    k = min(k, width)
    if n == 0 or k == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=bool)
    # One sort key: tier 1 shifted below every tier-0 score, excluded videos last; a stable
    # sort keeps equal keys in video order.
    shift = float(np.ptp(scores)) + 1.0
    key = np.where(tiers < EXCLUDED, scores - tiers * shift, -np.inf)
    ranked = np.argsort(-key, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(tiers, ranked, axis=1) < EXCLUDED
    return ranked, valid
