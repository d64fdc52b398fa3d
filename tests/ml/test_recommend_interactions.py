"""The recommender's inputs: implicit feedback, the catalogue and the profiles, from mart rows."""

from __future__ import annotations

import uuid
from datetime import date

import polars as pl
import pytest

from ml.recommend import (
    INPUT_COLUMNS,
    as_text,
    implicit_feedback,
    policyholder_profiles,
    video_catalogue,
)
from ml.recommend.synthetic import make_marts


def _views(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "policyholder_id": pl.String,
            "video_id": pl.String,
            "view_day": pl.Date,
            "is_started": pl.Boolean,
            "is_completed": pl.Boolean,
            "max_progress_percent": pl.Int32,
        },
        orient="row",
    )


def test_strength_adds_views_progress_and_completion() -> None:
    views = _views(
        [
            ("a", "v1", date(2026, 1, 1), True, False, 0),  # 0.5
            ("a", "v1", date(2026, 1, 2), True, True, 100),  # 0.5 + 1.0 + 0.5
            ("a", "v2", date(2026, 1, 3), True, False, 50),  # 0.5 + 0.5
            ("b", "v2", date(2026, 1, 3), False, False, None),  # progress unknown: 0.5
        ]
    )
    feedback = implicit_feedback(views, before=date(2026, 2, 1))
    assert feedback.rows() == [
        ("a", "v1", 2.5, 2, True),
        ("a", "v2", 1.0, 1, False),
        ("b", "v2", 0.5, 1, False),
    ]
    assert feedback.columns == ["policyholder_id", "video_id", "strength", "views", "completed"]


def test_views_on_or_after_the_cut_off_are_ignored() -> None:
    views = _views(
        [
            ("a", "v1", date(2026, 1, 9), True, True, 100),
            ("a", "v2", date(2026, 1, 10), True, True, 100),
        ]
    )
    feedback = implicit_feedback(views, before=date(2026, 1, 10))
    assert feedback["video_id"].to_list() == ["v1"]


def test_every_input_column_is_read() -> None:
    marts = make_marts(seed=1, policyholders=30, videos=8)
    tables = {
        "fct_content_views": marts.fct_content_views,
        "dim_content": marts.dim_content,
        "dim_policyholder": marts.dim_policyholder,
        "dim_policy": marts.dim_policy,
    }
    assert set(INPUT_COLUMNS) == set(tables)
    narrowed = {name: tables[name].select(cols) for name, cols in INPUT_COLUMNS.items()}
    assert implicit_feedback(narrowed["fct_content_views"], marts.holdout_start).height > 0
    assert video_catalogue(narrowed["dim_content"]).height == 8
    assert policyholder_profiles(narrowed["dim_policyholder"], narrowed["dim_policy"]).height == 30


def test_catalogue_keeps_published_videos_and_general_ones_have_no_type() -> None:
    content = pl.DataFrame(
        {
            "video_id": ["v2", "v1", "v3"],
            "language": ["hi", "en", "ta"],
            "policy_types": [["term"], None, ["health"]],
            "video_status": ["published", "published", "draft"],
        }
    )
    catalogue = video_catalogue(content)
    assert catalogue.rows() == [("v1", "en", []), ("v2", "hi", ["term"])]


def test_profiles_collect_policy_types_and_keep_holders_without_policies() -> None:
    holders = pl.DataFrame(
        {"policyholder_id": ["a", "b", "c"], "preferred_language": ["hi", None, "en"]}
    )
    policies = pl.DataFrame(
        {"policyholder_id": ["a", "a", "a", "c"], "policy_type": ["term", "ulip", "term", None]}
    )
    profiles = policyholder_profiles(holders, policies)
    assert profiles.rows() == [("a", "hi", ["term", "ulip"]), ("b", None, []), ("c", "en", [])]
    assert policyholder_profiles(holders)["policy_types"].to_list() == [[], [], []]


def test_uuid_objects_from_the_driver_become_text() -> None:
    ids = [uuid.UUID(int=1), uuid.UUID(int=2), None]
    frame = pl.DataFrame({"policyholder_id": pl.Series(ids, dtype=pl.Object)})
    assert as_text(frame, "policyholder_id")["policyholder_id"].to_list() == [
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
        None,
    ]


@pytest.mark.parametrize("before", [date(2026, 1, 1), date(2030, 1, 1)])
def test_feedback_of_no_views_is_an_empty_frame(before: date) -> None:
    feedback = implicit_feedback(_views([]), before=before)
    assert feedback.is_empty()
    assert feedback.columns == ["policyholder_id", "video_id", "strength", "views", "completed"]
