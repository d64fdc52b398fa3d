"""`make bench`: run every benchmark and print its ratios."""

from __future__ import annotations

import argparse

from bench import app_events, app_events_ingest, dbt_incremental, ml_training, partition_swap

BENCHMARKS = (
    "partition_swap",
    "app_events",
    "app_events_ingest",
    "dbt_incremental",
    "ml_training",
    "api_operational",
    "api_insights",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000, help="rows per partition load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method")
    parser.add_argument("--only", choices=BENCHMARKS, help="run this benchmark alone")
    parser.add_argument(
        "--events-tier", default="growth", help="tier of the app events throughput case"
    )
    parser.add_argument(
        "--ingest-tier",
        action="append",
        help="tier of the app events ingestion throughput case (repeatable; default scale and "
        "growth)",
    )
    parser.add_argument(
        "--ml-warehouse",
        help="an existing warehouse to time the models on (else a --ml-tier world is built)",
    )
    parser.add_argument("--ml-tier", default="scale", help="tier of the model training case")
    parser.add_argument("--ml-days", type=int, default=120, help="days of that world")
    parser.add_argument(
        "--api-seconds",
        type=float,
        default=5.0,
        help="seconds of each API load scenario per round (python -m bench.api_operational "
        "--help for all its options)",
    )
    parser.add_argument("--api-rounds", type=int, default=3, help="rounds of the API scenarios")
    args = parser.parse_args()
    if args.only in (None, "partition_swap"):
        partition_swap.run(rows=args.rows, repeat=args.repeat)
    if args.only in (None, "app_events"):
        app_events.run(tier=args.events_tier)
    if args.only in (None, "app_events_ingest"):
        tiers = tuple(args.ingest_tier or app_events_ingest.THROUGHPUT_TIERS)
        app_events_ingest.run(tiers=tiers, repeat=max(args.repeat, 5))
    if args.only in (None, "dbt_incremental"):
        dbt_incremental.run(repeat=args.repeat)
    if args.only in (None, "ml_training"):
        ml_training.run(args.ml_warehouse, tier=args.ml_tier, days=args.ml_days)
    if args.only in (None, "api_operational"):
        from bench import api_operational  # imports the API and its test world: only when run

        api_operational.run(seconds=args.api_seconds, rounds=args.api_rounds)
    if args.only in (None, "api_insights"):
        from bench import api_insights  # builds a small world unless BENCH_INSIGHTS_*_URL are set

        api_insights.run(seconds=args.api_seconds, rounds=args.api_rounds)


if __name__ == "__main__":
    main()
