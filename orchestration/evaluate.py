"""`mitra evaluate`: the models beside the simulator's ground truth, on the held-out period.

Trains both models on the warehouse's marts exactly as the weekly job does (same code, same
seed), then prints:

- lapse: on the test period's premiums, the model's AUC, the logistic baseline's, and the
  oracle AUC: the simulator's true probabilities (`<truth>/lapse_truth.parquet`) ranked against
  the same labels. The gap to the oracle is what the model leaves on the table; the oracle
  itself is below 1 because lapses are random even knowing the truth.
- recommender: NDCG@10 and recall@10 on the last week's views held out, for the model, for
  popularity and for ranking by the simulator's true affinities.

Exits 1 when the truth folder is missing (a warehouse not built from `mitra simulate`).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from warehouse.databases import resolve_database_url
from warehouse.settings import Settings

LAPSE_TRUTH_FILE = "lapse_truth.parquet"
AFFINITY_FILE = "affinity.npz"


def lapse_report(warehouse_url: str, truth_root: Path, seed: int) -> dict[str, float]:
    """Model, baseline and oracle AUC on the same held-out premiums."""
    from ml.lapse.features import LABEL
    from ml.lapse.metrics import auc
    from orchestration.defs.ml.lapse_assets import (
        BASELINE_KIND,
        CHAMPION_KIND,
        LapseTrainingConfig,
        read_lapse_inputs,
        train_lapse,
    )

    started = time.perf_counter()
    inputs = read_lapse_inputs(warehouse_url)
    _, result = train_lapse(inputs, LapseTrainingConfig(seed=seed))
    seconds = time.perf_counter() - started
    truth = pl.read_parquet(truth_root / LAPSE_TRUTH_FILE).select(
        pl.col("policy_id").cast(pl.String),
        pl.col("due_date").cast(pl.Date),
        "lapse_probability",
    )
    test = result.test_predictions.join(truth, on=["policy_id", "due_date"], how="inner")
    labels = test[LABEL].to_numpy()
    return {
        "test_premiums": float(result.test_predictions.height),
        "with_truth": float(test.height),
        "unpaid_rate": float(labels.mean()) if test.height else float("nan"),
        "model_auc": auc(labels, test[f"p_{CHAMPION_KIND}"].to_numpy()),
        "baseline_auc": auc(labels, test[f"p_{BASELINE_KIND}"].to_numpy()),
        "oracle_auc": auc(labels, test["lapse_probability"].to_numpy()),
        "seconds": seconds,
    }


def true_affinities(truth_root: Path, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """(policyholder_id, video_id, score): the simulator's true affinity of every policyholder
    for every video, by its own formula (`simulator.world.World.affinity`) from the latent
    factors it saved (`affinity.npz`) and the languages in the marts."""
    import numpy as np

    from simulator.world import World

    saved = np.load(truth_root / AFFINITY_FILE)
    holder_ids = [str(h) for h in saved["policyholder_ids"]]
    video_ids = [str(v) for v in saved["video_ids"]]
    languages = dict(
        frames["dim_policyholder"]
        .select(pl.col("policyholder_id").cast(pl.String), "preferred_language")
        .iter_rows()
    )
    video_languages = dict(
        frames["dim_content"].select(pl.col("video_id").cast(pl.String), "language").iter_rows()
    )
    empty = pl.DataFrame()
    world = World(
        config=None,  # type: ignore[arg-type] - only the affinity is asked of it
        providers=empty,
        agents=empty,
        policyholders=pl.DataFrame(
            {"policyholder_id": holder_ids, "language": [languages.get(h) for h in holder_ids]}
        ),
        policies=empty,
        videos=pl.DataFrame(
            {"video_id": video_ids, "language": [video_languages.get(v) for v in video_ids]}
        ),
        templates=empty,
        knowledge_base=empty,
        holder_factors=saved["holder_factors"],
        video_factors=saved["video_factors"],
        video_bias=saved["video_bias"],
    )
    scores = world.affinity(np.arange(len(holder_ids)))
    return pl.DataFrame(
        {
            "policyholder_id": np.repeat(holder_ids, len(video_ids)),
            "video_id": np.tile(video_ids, len(holder_ids)),
            "score": scores.ravel(),
        }
    )


def recommender_report(warehouse_url: str, truth_root: Path, seed: int) -> dict[str, float]:
    """NDCG@10 / recall@10 of the model, popularity and the true affinities, last week held out."""
    from orchestration.defs.ml.recommender_assets import holdout_report, read_recommender_inputs

    frames = read_recommender_inputs(warehouse_url)
    return holdout_report(frames, seed, truth=true_affinities(truth_root, frames))


def evaluate(settings: Settings, truth_root: Path, seed: int = 7) -> int:
    if not (truth_root / LAPSE_TRUTH_FILE).exists():
        print(
            f"error: no simulator truth in {truth_root} (pass --truth, the folder `mitra "
            "simulate --truth` wrote)",
        )
        return 1
    warehouse_url = resolve_database_url(settings, "warehouse")
    lapse = lapse_report(warehouse_url, truth_root, seed)
    print("lapse model, test period (premiums due in the 30 days after each held-out as-of day)")
    print(
        f"  premiums {int(lapse['test_premiums']):,} (with truth {int(lapse['with_truth']):,}),"
        f" unpaid at grace end {lapse['unpaid_rate']:.1%}; trained in {lapse['seconds']:.1f} s"
    )
    print(f"  {'AUC':<28}{'model':>8}{'baseline':>10}{'oracle':>8}")
    print(
        f"  {'unpaid at grace end':<28}{lapse['model_auc']:8.4f}{lapse['baseline_auc']:10.4f}"
        f"{lapse['oracle_auc']:8.4f}   gap to oracle "
        f"{lapse['oracle_auc'] - lapse['model_auc']:+.4f}"
    )
    rec = recommender_report(warehouse_url, truth_root, seed)
    print("recommender, last week held out")
    print(f"  users {int(rec['users']):,}")
    print(f"  {'':<12}{'model':>8}{'popular':>9}{'truth':>8}")
    for metric in ("ndcg_at_10", "recall_at_10"):
        print(
            f"  {metric:<12}{rec[f'model_{metric}']:8.4f}{rec[f'popularity_{metric}']:9.4f}"
            f"{rec[f'truth_{metric}']:8.4f}"
        )
    ratio = rec["model_ndcg_at_10"] / rec["popularity_ndcg_at_10"]
    print(f"  NDCG@10 model / popularity: {ratio:.2f}x")
    return 0
