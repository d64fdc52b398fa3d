"""ContentRecommender and PopularityRecommender: determinism, filters, cold start, exclusions,
`send_next`, on small generated marts with planted taste clusters."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import polars as pl
import pytest

from ml.recommend import (
    METHODS,
    ContentRecommender,
    LanguagePopularityRecommender,
    PopularityRecommender,
    evaluate_holdout,
    implicit_feedback,
    policyholder_profiles,
    video_catalogue,
)
from ml.recommend.synthetic import SyntheticMarts, make_marts


@dataclass(frozen=True)
class Inputs:
    marts: SyntheticMarts
    feedback: pl.DataFrame
    videos: pl.DataFrame
    profiles: pl.DataFrame


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    marts = make_marts(seed=5)
    return Inputs(
        marts=marts,
        feedback=implicit_feedback(marts.fct_content_views, before=marts.holdout_start),
        videos=video_catalogue(marts.dim_content),
        profiles=policyholder_profiles(marts.dim_policyholder, marts.dim_policy),
    )


def _fit(inputs: Inputs, seed: int = 0, **params: object) -> ContentRecommender:
    return ContentRecommender(**params).fit(inputs.feedback, inputs.videos, inputs.profiles, seed)


def _everyone(inputs: Inputs) -> pl.DataFrame:
    return inputs.profiles.select("policyholder_id")


@pytest.mark.parametrize("method", METHODS)
def test_training_is_deterministic_with_a_seed(inputs: Inputs, method: str) -> None:
    first = _fit(inputs, seed=11, method=method).recommend(_everyone(inputs))
    second = _fit(inputs, seed=11, method=method).recommend(_everyone(inputs))
    assert first.equals(second)


def test_row_order_of_the_inputs_does_not_matter(inputs: Inputs) -> None:
    model = _fit(inputs)
    shuffled = ContentRecommender().fit(
        inputs.feedback.sample(fraction=1.0, shuffle=True, seed=1),
        inputs.videos.reverse(),
        inputs.profiles.sample(fraction=1.0, shuffle=True, seed=2),
        seed=0,
    )
    assert model.recommend(_everyone(inputs)).equals(shuffled.recommend(_everyone(inputs)))


def test_a_pickled_model_recommends_the_same(inputs: Inputs) -> None:
    model = _fit(inputs)
    restored = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own object
    assert restored.recommend(_everyone(inputs)).equals(model.recommend(_everyone(inputs)))


def test_output_columns_ranks_and_k(inputs: Inputs) -> None:
    recs = _fit(inputs).recommend(_everyone(inputs), k=5)
    assert recs.schema == pl.Schema(
        {
            "policyholder_id": pl.String,
            "rank": pl.Int32,
            "video_id": pl.String,
            "score": pl.Float64,
            "source": pl.String,
        }
    )
    per_holder = recs.group_by("policyholder_id").agg(
        n=pl.len(), ranks=pl.col("rank").sort(), distinct=pl.col("video_id").n_unique()
    )
    assert per_holder["n"].max() <= 5
    assert all(r == list(range(1, len(r) + 1)) for r in per_holder["ranks"].to_list())
    assert (per_holder["distinct"] == per_holder["n"]).all()
    # scores do not increase down the list
    assert (
        recs.sort("policyholder_id", "rank")
        .with_columns(drop=pl.col("score").diff().over("policyholder_id"))["drop"]
        .drop_nulls()
        .max()
        <= 0
    )


@pytest.mark.parametrize("model_class", [ContentRecommender, PopularityRecommender])
def test_every_video_is_in_the_holders_language_or_english(
    inputs: Inputs, model_class: type
) -> None:
    model = model_class().fit(inputs.feedback, inputs.videos, inputs.profiles, 0)
    recs = model.recommend(_everyone(inputs), k=10, exclude_seen=False)
    checked = recs.join(inputs.profiles, on="policyholder_id").join(
        inputs.videos.select("video_id", video_language="language"), on="video_id"
    )
    ok = (pl.col("video_language") == pl.col("language")) | (pl.col("video_language") == "en")
    assert checked.height == recs.height
    assert checked.select(ok.all()).item()
    if model_class is ContentRecommender:
        # a Hindi speaker gets Hindi videos too: the filter is not "English only" (overall
        # popularity, the baseline, mostly picks English: everyone can watch those)
        assert checked.filter(pl.col("language") == "hi")["video_language"].eq("hi").any()


def test_an_unknown_language_may_get_any_video(inputs: Inputs) -> None:
    model = _fit(inputs)
    stranger = pl.DataFrame({"policyholder_id": ["nobody"], "language": [None]})
    recs = model.recommend(stranger.cast({"language": pl.String}), k=40)
    assert recs.height == inputs.videos.height
    given = pl.DataFrame({"policyholder_id": ["nobody"], "language": ["ta"]})
    languages = set(
        model.recommend(given, k=40).join(inputs.videos, on="video_id")["language"].to_list()
    )
    assert languages == {"ta", "en"}


def test_product_filter_puts_videos_about_the_holders_policies_first(inputs: Inputs) -> None:
    model = _fit(inputs, product_filter=True)
    recs = model.recommend(_everyone(inputs), k=10, exclude_seen=True)
    checked = (
        recs.join(inputs.profiles, on="policyholder_id")
        .join(inputs.videos.select("video_id", video_types="policy_types"), on="video_id")
        .with_columns(
            matches=(pl.col("video_types").list.len() == 0)
            | (pl.col("video_types").list.set_intersection("policy_types").list.len() > 0)
        )
    )
    # within each list, every matching video ranks above every other one
    worst_match = checked.filter("matches").group_by("policyholder_id").agg(pl.col("rank").max())
    best_other = (
        checked.filter(~pl.col("matches"))
        .group_by("policyholder_id")
        .agg(first_other=pl.col("rank").min())
    )
    both = worst_match.join(best_other, on="policyholder_id")
    assert (both["rank"] < both["first_other"]).all()
    assert checked["matches"].mean() > 0.9
    # without the filter, other products come up too (tastes here ignore products)
    unfiltered = _fit(inputs).recommend(_everyone(inputs), k=10)
    assert unfiltered.height >= recs.height


def test_cold_start_holders_get_the_popular_videos_of_their_language(inputs: Inputs) -> None:
    model = _fit(inputs)
    history = set(inputs.feedback["policyholder_id"].to_list())
    cold = inputs.profiles.filter(~pl.col("policyholder_id").is_in(list(history)))
    assert cold.height > 0
    recs = model.recommend(cold.select("policyholder_id"), k=10)
    assert set(recs["source"].to_list()) == {"popular"}
    # the same list for everyone of one language, and it differs between languages
    lists = (
        recs.join(cold, on="policyholder_id")
        .sort("rank")
        .group_by("policyholder_id", "language")
        .agg(pl.col("video_id"))
    )
    per_language = lists.group_by("language").agg(pl.col("video_id").unique().len().alias("n"))
    assert (per_language["n"] == 1).all()
    assert lists.select(pl.col("video_id")).unique().height == lists["language"].n_unique()
    # new policyholders unknown at fit time are cold start too
    newcomer = pl.DataFrame({"policyholder_id": ["new"], "language": ["hi"]})
    assert model.recommend(newcomer)["source"].to_list() == ["popular"] * 10


def test_holders_with_history_get_personal_recommendations(inputs: Inputs) -> None:
    model = _fit(inputs)
    known = inputs.feedback.select("policyholder_id").unique()
    recs = model.recommend(known, k=10)
    assert set(recs["source"].to_list()) == {"personal"}


@pytest.mark.parametrize("model_class", [ContentRecommender, PopularityRecommender])
def test_exclude_seen_drops_every_video_viewed_before(inputs: Inputs, model_class: type) -> None:
    model = model_class().fit(inputs.feedback, inputs.videos, inputs.profiles, 0)
    seen = inputs.feedback.select("policyholder_id", "video_id")
    fresh = model.recommend(_everyone(inputs), k=10, exclude_seen=True)
    assert fresh.join(seen, on=["policyholder_id", "video_id"]).is_empty()
    everything = model.recommend(_everyone(inputs), k=10, exclude_seen=False)
    assert not everything.join(seen, on=["policyholder_id", "video_id"]).is_empty()


def test_popularity_ranks_by_distinct_viewers(inputs: Inputs) -> None:
    model = PopularityRecommender().fit(inputs.feedback, inputs.videos, inputs.profiles, 0)
    english = pl.DataFrame({"policyholder_id": ["x"], "language": ["en"]})
    recs = model.recommend(english, k=3)
    viewers = (
        inputs.feedback.join(inputs.videos.filter(pl.col("language") == "en"), on="video_id")
        .group_by("video_id")
        .agg(n=pl.len())
        .sort(["n", "video_id"], descending=[True, False])
    )
    assert recs["video_id"].to_list() == viewers["video_id"].head(3).to_list()
    assert set(recs["source"].to_list()) == {"popular"}


def test_send_next_never_proposes_a_completed_video(inputs: Inputs) -> None:
    model = _fit(inputs)
    at_risk = _everyone(inputs)
    proposals = model.send_next(at_risk)
    assert proposals.height == at_risk.height
    assert proposals["policyholder_id"].to_list() == at_risk["policyholder_id"].to_list()
    completed = inputs.feedback.filter("completed").select("policyholder_id", "video_id")
    assert not completed.is_empty()
    assert proposals.join(completed, on=["policyholder_id", "video_id"]).is_empty()
    assert proposals["video_id"].null_count() == 0


def test_send_next_prefers_the_policy_at_risk_and_keeps_the_language(inputs: Inputs) -> None:
    model = _fit(inputs)
    holders = inputs.profiles.filter(pl.col("language") == "hi").head(20)
    at_risk = holders.select("policyholder_id", policy_type=pl.lit("health"))
    proposals = model.send_next(at_risk).join(inputs.videos, on="video_id")
    assert proposals.height == 20
    assert proposals["language"].is_in(["hi", "en"]).all()
    types = pl.col("policy_types")
    about = types.list.contains("health") | (types.list.len() == 0)
    assert proposals.select(about.all()).item()


def test_send_next_gives_null_when_everything_allowed_was_completed() -> None:
    videos = pl.DataFrame(
        {"video_id": ["v1", "v2"], "language": ["ta", "hi"], "policy_types": [[], []]},
        schema_overrides={"policy_types": pl.List(pl.String)},
    )
    profiles = pl.DataFrame(
        {"policyholder_id": ["a", "b"], "language": ["ta", "ta"], "policy_types": [[], []]},
        schema_overrides={"policy_types": pl.List(pl.String)},
    )
    feedback = pl.DataFrame(
        {
            "policyholder_id": ["a", "b"],
            "video_id": ["v1", "v1"],
            "strength": [2.0, 0.5],
            "views": [1, 1],
            "completed": [True, False],
        }
    )
    model = ContentRecommender().fit(feedback, videos, profiles, seed=0)
    proposals = model.send_next(pl.DataFrame({"policyholder_id": ["a", "b", "a"]}))
    assert proposals.select("policyholder_id", "video_id").rows() == [("a", None), ("b", "v1")]
    assert proposals["score"].to_list()[0] is None


@pytest.mark.parametrize(
    "model_class", [ContentRecommender, PopularityRecommender, LanguagePopularityRecommender]
)
def test_an_unfitted_copy_refits_to_the_same_model(inputs: Inputs, model_class: type) -> None:
    settings = {"product_filter": True}
    if model_class is ContentRecommender:
        settings |= {"method": "cosine", "self_weight": 0.5, "popularity_weight": 2.0}
    model = model_class(**settings).fit(inputs.feedback, inputs.videos, inputs.profiles, 0)
    copy = model.unfitted()
    assert type(copy) is model_class
    assert not hasattr(copy, "catalogue")
    refitted = copy.fit(inputs.feedback, inputs.videos, inputs.profiles, 0)
    assert refitted.recommend(_everyone(inputs)).equals(model.recommend(_everyone(inputs)))


def test_the_first_registered_models_method_name_still_loads() -> None:
    assert ContentRecommender(method="item_item").method == "cosine"  # type: ignore[arg-type]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method"):
        ContentRecommender(method="deep")  # type: ignore[arg-type]


def test_language_popularity_gives_everyone_the_cold_start_list_of_their_language(
    inputs: Inputs,
) -> None:
    """The first champion: what the model gives a customer without history, for everyone,
    history or not (all 'popular')."""
    baseline = LanguagePopularityRecommender().fit(
        inputs.feedback, inputs.videos, inputs.profiles, 0
    )
    holders = _everyone(inputs)
    recs = baseline.recommend(holders, k=10, exclude_seen=False)
    assert set(recs["source"].to_list()) == {"popular"}
    assert recs["policyholder_id"].n_unique() == holders.height
    cold = _fit(inputs).recommend(
        pl.DataFrame({"policyholder_id": ["new", "newer"], "language": ["hi", "ta"]}), k=10
    )
    newcomers = baseline.recommend(
        pl.DataFrame({"policyholder_id": ["new", "newer"], "language": ["hi", "ta"]}), k=10
    )
    assert newcomers.select("policyholder_id", "rank", "video_id").equals(
        cold.select("policyholder_id", "rank", "video_id")
    )


def test_the_model_beats_language_popularity_on_the_same_holdout(inputs: Inputs) -> None:
    """The planted tastes are what a challenger must learn to replace the first champion."""
    marts = inputs.marts
    measured = {
        name: evaluate_holdout(
            marts.fct_content_views, inputs.videos, inputs.profiles, marts.holdout_start,
            model=model,
        )["model_ndcg_at_10"]
        for name, model in (
            ("baseline", LanguagePopularityRecommender()),
            ("pmi", ContentRecommender()),
        )
    }  # fmt: skip
    assert measured["pmi"] > 1.2 * measured["baseline"] > 0
