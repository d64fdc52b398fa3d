"""`mitra`: the platform's command line.

    mitra db up | down | status | migrate    manage the embedded PostgreSQL and the schemas
    mitra dbt ARGS...                        run dbt against the warehouse (e.g. `mitra dbt parse`)
    mitra materialize                        materialise every asset once
    mitra train                              train and register the models (the weekly job)
    mitra evaluate [--truth DIR]             the models beside the simulator's truth
    mitra demo [--no-serve]                  the whole platform end to end on the embedded default
    mitra api | mitra ui                     serve the API (:8000) or the Dagster UI (:3000)

Errors the user can act on are printed as one clear line and exit 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import psycopg
import sqlalchemy.exc

from simulator.errors import OperationalNotEmptyError
from warehouse.embedded import EmbeddedPostgresError

TIER_NAMES = ("mvp", "growth", "scale", "enterprise")


def _settings():
    from pydantic import ValidationError

    from warehouse.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
        raise UserError(f"invalid settings: {messages}") from exc


class UserError(Exception):
    """A failure the user can fix; shown without a traceback."""


def _db(args: argparse.Namespace) -> int:
    from warehouse.embedded import EmbeddedPostgres

    settings = _settings()
    server = EmbeddedPostgres(settings.pg_root)
    if args.action == "up":
        from orchestration.instance import write_dagster_env_file
        from warehouse.databases import resolve_database_urls
        from warehouse.urls import display

        db_urls = resolve_database_urls(settings)
        for role, url in db_urls.as_dict().items():
            print(f"{role:12} {display(url)}")
        print(f"dagster CLI settings written to {write_dagster_env_file(settings)}")
    elif args.action == "down":
        print("stopped" if server.down() else "the embedded server was not running")
    elif args.action == "status":
        print(server.status().describe())
        for role in ("operational", "warehouse", "dagster"):
            url = getattr(settings, f"{role}_url")
            if url:
                from warehouse.urls import display

                print(f"{role:12} configured: {display(url)}")
    elif args.action == "migrate":
        from orchestration.demo import migrate

        migrate(settings)
    return 0


def _dbt(args: argparse.Namespace) -> int:
    from orchestration.demo import run_dbt

    return run_dbt(_settings(), args.dbt_args)


def _dagster(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from orchestration.instance import PROJECT_ROOT, dagster_environment

    env = {**os.environ, **dagster_environment(_settings())}
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    argv = [a for a in args.dagster_args if a != "--"] or ["--help"]
    return subprocess.run([dagster, *argv], cwd=PROJECT_ROOT, env=env, check=False).returncode  # noqa: S603


def _simulate(args: argparse.Namespace) -> int:
    from orchestration.demo import run_simulation

    run_simulation(
        _settings(),
        tier=args.tier,
        start=args.start,
        days=args.days,
        seed=args.seed,
        replace=args.replace,
        truth_root=args.truth,
    )
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from orchestration.demo import materialize_all

    return 0 if materialize_all(_settings()) else 1


def _train(args: argparse.Namespace) -> int:
    from orchestration.demo import train_models

    return 0 if train_models(_settings()) else 1


def _evaluate(args: argparse.Namespace) -> int:
    from orchestration.evaluate import evaluate

    settings = _settings()
    return evaluate(settings, truth_root=args.truth or settings.home / "truth", seed=args.seed)


def _demo(args: argparse.Namespace) -> int:
    from orchestration.demo import run_demo

    settings = _settings()
    if settings.env == "production":
        raise UserError(
            "mitra demo replaces the operational data with a simulation: refused in production"
        )
    return run_demo(settings, serve=not args.no_serve, api_port=args.api_port, ui_port=args.ui_port)


def _api(args: argparse.Namespace) -> int:
    from orchestration.demo import serve_forever

    return serve_forever(_settings(), api_port=args.port, ui_port=None)


def _ui(args: argparse.Namespace) -> int:
    from orchestration.demo import serve_forever

    return serve_forever(_settings(), api_port=None, ui_port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mitra",
        description="Agent Mitra data platform: databases, pipelines, dbt, API and demo.",
        epilog="Settings come from MITRA_* environment variables or a .env file; see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser(
        "db",
        help="manage the embedded PostgreSQL server and the schemas",
        description="up: start the embedded server (reused if running) and create the databases; "
        "down: stop it; status: show it; migrate: upgrade the operational schema (Alembic) "
        "and create the warehouse schemas.",
    )
    db.add_argument("action", choices=["up", "down", "status", "migrate"])
    db.set_defaults(handler=_db)

    dbt = commands.add_parser(
        "dbt",
        help="run dbt against the warehouse (e.g. `mitra dbt parse`, `mitra dbt build`)",
        description="Runs dbt in dbt_project/ with the warehouse connection filled in.",
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments passed to dbt")
    dbt.set_defaults(handler=_dbt)

    dagster = commands.add_parser(
        "dagster",
        help="run the dagster CLI on this instance (e.g. `mitra dagster definitions validate`)",
        description="Runs `dagster ARGS` from the repository root with the instance's settings.",
    )
    dagster.add_argument("dagster_args", nargs=argparse.REMAINDER, help="arguments for dagster")
    dagster.set_defaults(handler=_dagster)

    simulate = commands.add_parser(
        "simulate",
        help="generate realistic operational data, app events and WhatsApp logs",
        description="Writes operational rows (COPY) into the operational database, app events, "
        "WhatsApp webhook bodies and chat exports under the landing root, and the planted "
        "ground truth (true lapse probabilities, content affinities, fault counts, oracle "
        "scores) under --truth. The same arguments give identical output.",
    )
    simulate.add_argument(
        "--tier",
        choices=list(TIER_NAMES),
        default="mvp",
        help="size: mvp 700 users, growth 5,000, scale 50,000, enterprise 500,000",
    )
    simulate.add_argument(
        "--start",
        type=date.fromisoformat,
        default=None,
        help="first day, YYYY-MM-DD (default: --days before today)",
    )
    simulate.add_argument("--days", type=int, default=60, help="days of activity (default 60)")
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument(
        "--replace",
        action="store_true",
        help="replace an earlier simulation: empties the operational tables and "
        "the simulated landing folders first",
    )
    simulate.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="where the ground truth goes (default $MITRA_HOME/truth)",
    )
    simulate.set_defaults(handler=_simulate)

    materialize = commands.add_parser(
        "materialize", help="materialise every asset once, recorded in the Dagster instance"
    )
    materialize.set_defaults(handler=_materialize)

    train = commands.add_parser(
        "train",
        help="train the lapse model and the recommender now (the weekly job)",
        description="Runs the weekly_model_training job: reads the marts, trains both models, "
        "stores them in ml.model_registry and the artifact store, and promotes a challenger "
        "only if it beats the champion on the same holdout.",
    )
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="judge the models against the simulator's ground truth",
        description="Trains both models on the marts as the weekly job does and prints, for "
        "the held-out period: the lapse model's AUC beside the oracle AUC of the simulator's "
        "true probabilities (on the same premiums) and beside the logistic baseline; the "
        "recommender's NDCG@10 and recall@10 beside popularity and the true affinities.",
    )
    evaluate.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="the simulation's truth (default $MITRA_HOME/truth)",
    )
    evaluate.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    evaluate.set_defaults(handler=_evaluate)

    demo = commands.add_parser(
        "demo",
        help="run everything end to end on the embedded default, then serve the API and UI",
        description="Starts the database, migrates, loads the sample data, materialises every "
        "asset, prints a summary, then serves the API and the Dagster UI until Ctrl-C.",
    )
    demo.add_argument("--no-serve", action="store_true", help="stop after the summary")
    demo.add_argument("--api-port", type=int, default=8000, help="API port (default 8000)")
    demo.add_argument("--ui-port", type=int, default=3000, help="Dagster UI port (default 3000)")
    demo.set_defaults(handler=_demo)

    api = commands.add_parser("api", help="serve the API with uvicorn")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=_api)

    ui = commands.add_parser("ui", help="serve the Dagster UI (webserver and daemon)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster marks some APIs we rely on as beta (BackfillPolicy); users need not see it.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UserError, EmbeddedPostgresError, OperationalNotEmptyError) as exc:
        print(f"mitra: error: {exc}", file=sys.stderr)
        return 1
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError) as exc:
        cause = getattr(exc, "orig", None) or exc
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        print(f"mitra: error: cannot reach the database: {first_line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmitra: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
