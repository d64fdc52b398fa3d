"""The planted ground truth, written apart from anything the platform reads (`<truth>/`).

- `lapse_truth.parquet`: every live premium due with its true probability of being unpaid at
  grace end and whether it was;
- `affinity.npz`: the latent factors behind every policyholder's true content affinity (the
  affinity of any pair is `World.affinity`, recomputed from these);
- `faults.json`: the exact count of every injected fault per source and day;
- `oracle.json`: the scores models are compared with: the AUC of the true lapse probabilities and
  the NDCG@10 / recall@10 of ranking by true affinity on the last week's video views;
- `manifest.json`: the run's arguments, row counts and a SHA-256 of every landing file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl
from sklearn.metrics import roc_auc_score

from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder
from simulator.world import World

VIEW_EVENTS = {"video_started", "video_completed"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def landing_checksums(landing_root: Path, config: SimulationConfig) -> dict[str, str]:
    """SHA-256 of every file the run wrote, keyed by its path under the landing root."""
    out: dict[str, str] = {}
    for source in ("app_events", "whatsapp", "whatsapp_exports"):
        for day in config.day_list():
            folder = day_folder(landing_root, source, day)
            if folder.exists():
                for path in sorted(folder.iterdir()):
                    out[str(path.relative_to(landing_root))] = sha256_file(path)
    return out


def lapse_oracle_auc(lapse_truth: pl.DataFrame) -> float:
    """AUC of the true probabilities against what happened, over every live due."""
    labels = lapse_truth["unpaid_at_grace_end"].to_numpy()
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, lapse_truth["lapse_probability"].to_numpy()))


def _last_week_views(world: World, config: SimulationConfig) -> dict[str, set[str]]:
    """Policyholder user_id -> videos they started in the last 7 days of the window."""
    holders = set(world.policyholders["user_id"].to_list())
    views: dict[str, set[str]] = {}
    for day in config.day_list()[-7:]:
        path = day_folder(config.landing_root, "app_events", day) / "events.ndjson.gz"
        if not path.exists():
            continue
        import gzip

        with gzip.open(path, "rb") as handle:
            for line in handle:
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(event, dict) or event.get("event") not in VIEW_EVENTS:
                    continue
                user, video = event.get("userId"), (event.get("properties") or {}).get("video_id")
                if user in holders and isinstance(video, str):
                    views.setdefault(user, set()).add(video)
    return views


def ranking_oracle(world: World, config: SimulationConfig, k: int = 10) -> dict[str, float]:
    """NDCG@k and recall@k of ranking every video by true affinity, on last week's views."""
    views = _last_week_views(world, config)
    if not views:
        return {"ndcg_at_10": float("nan"), "recall_at_10": float("nan"), "users": 0}
    row_of = {u: i for i, u in enumerate(world.policyholders["user_id"].to_list())}
    video_ids = np.array(world.videos["video_id"].to_list())
    users = sorted(views)
    scores = world.affinity(np.array([row_of[u] for u in users]))
    top = np.argsort(-scores, axis=1)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall = [], []
    for i, user in enumerate(users):
        relevant = views[user]
        hits = np.array([video_ids[j] in relevant for j in top[i]])
        ideal = discounts[: min(len(relevant), k)].sum()
        ndcg.append((hits * discounts).sum() / ideal)
        recall.append(hits.sum() / min(len(relevant), k))
    return {
        "ndcg_at_10": float(np.mean(ndcg)),
        "recall_at_10": float(np.mean(recall)),
        "users": len(users),
    }


def write_truth(
    world: World,
    config: SimulationConfig,
    lapse_truth: pl.DataFrame,
    faults: FaultLog,
    counts: dict[str, int],
) -> dict[str, object]:
    """Write every truth file; returns the oracle scores."""
    root = config.truth_root
    root.mkdir(parents=True, exist_ok=True)
    lapse_truth.sort("policy_id", "due_date").write_parquet(root / "lapse_truth.parquet")
    np.savez(
        root / "affinity.npz",
        holder_factors=world.holder_factors,
        video_factors=world.video_factors,
        video_bias=world.video_bias,
        policyholder_ids=np.array(world.policyholders["policyholder_id"].to_list()),
        video_ids=np.array(world.videos["video_id"].to_list()),
    )
    faults.write(root / "faults.json")
    window = lapse_truth.filter(pl.col("due_date") >= config.end - timedelta(days=30))
    oracle = {
        "lapse_auc_all_dues": lapse_oracle_auc(lapse_truth),
        "lapse_auc_last_30_days": lapse_oracle_auc(window),
        **ranking_oracle(world, config),
    }
    (root / "oracle.json").write_text(json.dumps(oracle, indent=2, sort_keys=True) + "\n")
    settings = {k: str(v) for k, v in asdict(config).items() if k != "faults"}
    manifest = {
        "config": settings,
        "faults": asdict(config.faults),
        "rows": counts,
        "files": landing_checksums(config.landing_root, config),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return oracle
