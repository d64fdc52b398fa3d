"""Model training and scoring cost on a large world (issue 6: the `scale` tier).

The lapse model's training (marts read, as-of snapshots, both models fitted and calibrated) and
the recommender's (holdout evaluation and the serving fit) are timed in a fresh process, whose
peak RSS is read at the end (`ru_maxrss`), so the memory figure is the models' and not this
process's history. Scoring is timed too: one day's premiums due in the next 30 days through the
trained model (probabilities and reasons), as rows per second.

The world is the warehouse of `--ml-warehouse` (or `BENCH_ML_WAREHOUSE_URL`): building a scale
world takes long (simulate, load 120 days, dbt), so an existing one can be reused; without it a
scratch world of `--ml-tier` / `--ml-days` is built first and dropped after.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

AIM_SECONDS = 60.0


def measure(warehouse_url: str) -> dict[str, float]:
    """In this process: train both models and score one day; seconds, rows and peak RSS."""
    from orchestration.defs.ml.lapse_assets import (
        CHAMPION_KIND,
        LapseTrainingConfig,
        data_as_of,
        read_lapse_inputs,
        score_days,
        train_lapse,
    )
    from orchestration.defs.ml.recommender_assets import fit_for_serving, read_recommender_inputs

    report: dict[str, float] = {}
    started = time.perf_counter()
    inputs = read_lapse_inputs(warehouse_url)
    report["lapse_read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    examples, result = train_lapse(inputs, LapseTrainingConfig())
    report["lapse_train_s"] = time.perf_counter() - started
    report["lapse_examples"] = float(examples.height)
    report["lapse_test_auc"] = result.metrics[CHAMPION_KIND]["test"].auc
    started = time.perf_counter()
    scores = score_days(inputs, result.models[CHAMPION_KIND], [data_as_of(inputs)])
    report["scoring_s"] = time.perf_counter() - started
    report["scored_rows"] = float(scores.height)
    started = time.perf_counter()
    frames = read_recommender_inputs(warehouse_url)
    report["recommender_read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    fit_for_serving(frames, seed=7)
    report["recommender_train_s"] = time.perf_counter() - started
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _measure_in_fresh_process(warehouse_url: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.ml_training", warehouse_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"measuring failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run(warehouse_url: str | None = None, tier: str = "scale", days: int = 120) -> dict[str, float]:
    warehouse_url = warehouse_url or os.environ.get("BENCH_ML_WAREHOUSE_URL")
    world = "the given warehouse" if warehouse_url else f"a {tier} world of {days} days"
    with ExitStack() as stack:
        if warehouse_url is None:
            from bench.dbt_incremental import build_world

            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mitra-ml-")))
            print(f"model training: building a {tier} world of {days} days first", flush=True)
            warehouse_url = build_world(days, stack, scratch, tier=tier).warehouse_url
        report = _measure_in_fresh_process(warehouse_url)
    train_s = report["lapse_train_s"] + report["recommender_train_s"]
    print(f"model training and scoring, {world}")
    print(
        f"  lapse: read marts {report['lapse_read_s']:.1f} s, train {report['lapse_train_s']:.1f} s"
        f" on {int(report['lapse_examples']):,} snapshot rows (test AUC "
        f"{report['lapse_test_auc']:.3f})"
    )
    print(
        f"  recommender: read {report['recommender_read_s']:.1f} s, "
        f"train {report['recommender_train_s']:.1f} s"
    )
    print(
        f"  training both: {train_s:.1f} s (aim < {AIM_SECONDS:.0f} s on 2 cores); peak RSS "
        f"{report['peak_rss_mb']:.0f} MB"
    )
    rate = report["scored_rows"] / report["scoring_s"] if report["scoring_s"] else float("nan")
    print(
        f"  scoring one day: {int(report['scored_rows']):,} premiums in "
        f"{report['scoring_s']:.2f} s = {rate:,.0f} rows/s (features, probability, reasons)"
    )
    return report | {"training_s": train_s, "scoring_rows_per_s": rate}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
