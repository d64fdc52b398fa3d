"""What the `mitra` commands do: migrate, run dbt, materialise, summarise and serve.

Each step prints what it is doing and how long it took, so a first-time user of `make demo` can see
where the time goes and where something failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from orchestration.defs.ingest.partitions import TIMEZONE
from orchestration.instance import PROJECT_ROOT, dagster_environment, environment
from warehouse import urls
from warehouse.databases import resolve_database_urls
from warehouse.settings import Settings


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print `title`, run the block, then print how long it took."""
    print(f"==> {title} ...", flush=True)
    started = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)


def migrate(settings: Settings) -> None:
    """Operational schema to the newest revision; warehouse schemas and raw tables created."""
    from warehouse.migrate import upgrade
    from warehouse.warehouse_ddl import ensure_warehouse

    db_urls = resolve_database_urls(settings)
    upgrade(db_urls.operational)
    ensure_warehouse(db_urls.warehouse)
    print(f"operational schema at head in {urls.display(db_urls.operational)}")
    print(f"warehouse schemas ready in {urls.display(db_urls.warehouse)}")


def run_dbt(settings: Settings, dbt_args: list[str]) -> int:
    """Run the dbt CLI in `dbt_project/` with the warehouse connection in its environment."""
    from orchestration.defs.dbt.project import run_dbt_cli
    from warehouse.databases import resolve_database_url

    args = [a for a in dbt_args if a != "--"] or ["--help"]
    # `parse` and `--help` need no database: do not start one for them.
    needs_database = args[0] not in ("parse", "--help", "-h", "--version", "clean", "deps")
    warehouse = resolve_database_url(settings, "warehouse") if needs_database else None
    return run_dbt_cli(args, warehouse, capture=False).returncode


def run_simulation(
    settings: Settings,
    *,
    tier: str = "mvp",
    start: date | None = None,
    days: int = 60,
    seed: int = 7,
    replace: bool = False,
    truth_root: Path | None = None,
) -> None:
    """`mitra simulate`: generate a world into the configured databases and landing zone."""
    from simulator.config import SimulationConfig
    from simulator.runner import simulate
    from warehouse.databases import resolve_database_url
    from warehouse.migrate import upgrade

    config = SimulationConfig(
        tier=tier,  # type: ignore[arg-type]
        start=start or date.today() - timedelta(days=days),
        days=days,
        seed=seed,
        landing_root=settings.landing_root,
        truth_root=truth_root or settings.home / "truth",
    )
    operational = resolve_database_url(settings, "operational")
    upgrade(operational)
    print(
        f"simulating tier {tier} ({config.size.users:,} users), {days} days from "
        f"{config.start}, seed {seed}",
        flush=True,
    )
    summary = simulate(
        config,
        operational,
        app_secret=settings.whatsapp_app_secret.get_secret_value().encode(),
        replace=replace,
    )
    for table, rows in summary.rows.items():
        print(f"  {table:24} {rows:>12,}")
    oracle = ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.oracle.items()
    )
    print(f"  oracle: {oracle}")
    print(f"  landing files under {config.landing_root}, ground truth under {config.truth_root}")


def landing_days(settings: Settings) -> tuple[date, date] | None:
    """The first and last receipt day found in the landing zone, within the partitions."""
    days = sorted(
        date.fromisoformat(folder.name.removeprefix("dt="))
        for source in ("app_events", "whatsapp", "whatsapp_exports")
        for folder in (settings.landing_root / source).glob("dt=*")
    )
    days = [d for d in days if settings.partitions_start <= d < date.today()]
    return (days[0], days[-1]) if days else None


def _report(result) -> None:
    """One line per asset (with its partitions) and the checks that did not pass."""
    materialised: dict[str, tuple[int, int | None]] = {}
    for event in result.all_events:
        if event.is_step_failure:
            print(
                f"    step {event.step_key} failed: "
                f"{event.event_specific_data.error.message.strip()}"
            )
        elif event.is_step_materialization:
            key = event.asset_key.to_user_string()
            rows = event.materialization.metadata.get("dagster/row_count")
            count, _ = materialised.get(key, (0, None))
            materialised[key] = (count + 1, rows.value if rows else None)
    for key, (partitions, rows) in materialised.items():
        extent = f" x {partitions} partitions" if partitions > 1 else ""
        print(f"    materialised {key}{extent}" + (f" ({rows:,} rows)" if rows is not None else ""))
    checks = result.get_asset_check_evaluations()
    failed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed]
    print(
        f"    asset checks: {len(checks) - len(failed)} of {len(checks)} passed"
        + (f" (not passed: {', '.join(failed)})" if failed else "")
    )


def materialize_all(settings: Settings) -> bool:
    """Run the daily job over every landing day found, as one single-run backfill: the
    operational extract and the unpartitioned dbt models once, the landing sources and the
    incremental dbt models for the range; recorded in the PostgreSQL-backed instance. With no
    landing day, the run covers yesterday (IST)."""
    import dagster as dg

    from orchestration.definitions import build_definitions, materialize_days

    log_path = settings.home.resolve() / "logs" / "materialize.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    yesterday = datetime.now(ZoneInfo(TIMEZONE)).date() - timedelta(days=1)
    first, last = landing_days(settings) or (yesterday, yesterday)
    # dbt's own output (one line per model and test) goes to a file; the console gets a summary.
    with (
        environment(dagster_environment(settings)),
        log_path.open("w") as log_file,
        contextlib.redirect_stdout(log_file),
    ):
        instance = dg.DagsterInstance.get()
        try:
            runs = materialize_days(
                build_definitions(), instance, first, last, QUIET_RUN_CONFIG, with_models=True
            )
        finally:
            instance.dispose()
    print(f"    days {first} to {last}, as one run (then model training and scoring):")
    for result in runs:
        print(f"    run of {result.dagster_run.job_name}:")
        _report(result)
    print(f"    dbt output: {log_path}")
    return all(result.success for result in runs)


def train_models(settings: Settings) -> bool:
    """`mitra train`: run the weekly training job now (both models, registry, promotion)."""
    import dagster as dg

    from orchestration.definitions import TRAINING_JOB, build_definitions

    with environment(dagster_environment(settings)):
        instance = dg.DagsterInstance.get()
        try:
            result = (
                build_definitions()
                .resolve_job_def(TRAINING_JOB)
                .execute_in_process(
                    instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG
                )
            )
        finally:
            instance.dispose()
    _report(result)
    for event in result.all_events:
        if event.is_step_materialization:
            metadata = event.materialization.metadata
            promotion = metadata.get("promotion")
            version = metadata.get("model_version")
            if promotion and version:
                print(f"    {version.value}: {promotion.value}")
    return result.success


# Warnings and errors only on the console; the full run log is in the Dagster UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

SUMMARY_TABLES = {
    "operational": [
        "insurance_providers",
        "agents",
        "policyholders",
        "insurance_policies",
        "premium_payments",
        "video_content",
        "whatsapp_outbound",
    ],
    "warehouse": [
        "raw.agents",
        "raw.insurance_policies",
        "raw.premium_payments",
        "raw.app_events",
        "quarantine.app_events",
        "raw.whatsapp_messages",
        "raw.whatsapp_statuses",
        "quarantine.whatsapp",
        "marts.agent_policy_summary",
    ],
}

TOP_AGENTS_SQL = """
SELECT agent_code, territory, state, policies_in_force, annualised_premium_in_force
FROM marts.agent_policy_summary
ORDER BY annualised_premium_in_force DESC, agent_code
LIMIT %s
"""


def _count(conn: psycopg.Connection, table: str) -> int:
    schema, _, name = table.rpartition(".")
    query = psycopg.sql.SQL("SELECT count(*) FROM {}").format(
        psycopg.sql.Identifier(schema or "public", name)
    )
    return conn.execute(query).fetchone()[0]


def print_summary(settings: Settings, top: int = 5) -> None:
    """Rows per table and the top agents by annualised premium in force."""
    db_urls = resolve_database_urls(settings)
    print("\nRows per table")
    for role, tables in SUMMARY_TABLES.items():
        with psycopg.connect(urls.libpq_url(getattr(db_urls, role))) as conn:
            for table in tables:
                print(f"  {role:12} {table:30} {_count(conn, table):>8,}")
    with psycopg.connect(urls.libpq_url(db_urls.warehouse)) as conn:
        rows = conn.execute(TOP_AGENTS_SQL, (top,)).fetchall()
    print(f"\nTop {top} agents by annualised premium in force (INR)")
    print(f"  {'agent':10} {'territory':18} {'state':14} {'in force':>8} {'APE':>14}")
    for agent, territory, state, in_force, ape in rows:
        print(f"  {agent:10} {territory or '-':18} {state or '-':14} {in_force:>8} {ape:>14,.2f}")


def run_demo(settings: Settings, *, serve: bool, api_port: int, ui_port: int) -> int:
    """Everything end to end on the configured (by default embedded) databases."""
    from orchestration.instance import write_dagster_env_file

    with step("starting databases (embedded PostgreSQL unless MITRA_*_URL are set)"):
        resolve_database_urls(settings)
        write_dagster_env_file(settings)
    with step("migrating the operational schema and creating the warehouse schemas"):
        migrate(settings)
    with step("simulating the mvp tier, 60 days (replaces the previous demo data)"):
        run_simulation(settings, tier="mvp", days=60, replace=True)
    with step("materialising every asset (extract to raw, then dbt build)"):
        if not materialize_all(settings):
            print(
                "mitra: error: materialisation failed (see the step errors above)", file=sys.stderr
            )
            return 1
    print_summary(settings)
    if not serve:
        return 0
    return serve_forever(settings, api_port=api_port, ui_port=ui_port)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_forever(settings: Settings, *, api_port: int | None, ui_port: int | None) -> int:
    """Serve the API and/or the Dagster UI until Ctrl-C; all stop together.

    The children run in their own session, so Ctrl-C reaches only this process, which then stops
    each child once with SIGTERM (a second signal would make uvicorn abort instead of draining).
    """
    env = {**os.environ, **dagster_environment(settings)}
    bin_dir = os.path.dirname(sys.executable)
    commands: list[list[str]] = []
    if api_port:
        from api.main import uvicorn_proxy_flags

        commands.append(
            [f"{bin_dir}/uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(api_port), *uvicorn_proxy_flags(settings)]
        )  # fmt: skip
        print(f"API:        http://127.0.0.1:{api_port}/docs  (readiness: /readyz)")
    if ui_port:
        module = ["-m", "orchestration.definitions"]
        commands.append(
            [f"{bin_dir}/dagster-webserver", "-h", "127.0.0.1", "-p", str(ui_port), *module]
        )
        commands.append([f"{bin_dir}/dagster-daemon", "run", *module])
        print(f"Dagster UI: http://127.0.0.1:{ui_port}")
    processes = [
        subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, start_new_session=True)  # noqa: S603
        for argv in commands
    ]
    print("Press Ctrl-C to stop.", flush=True)
    # A service manager stops us with SIGTERM: shut the children down as for Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = [p for p in processes if p.returncode not in (None, 0)]
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
