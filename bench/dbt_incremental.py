"""The daily dbt build of the incremental models: does its cost stay flat as history grows?

Two mvp worlds, one with 30 and one with 180 days of app and WhatsApp activity (both ending on
the same day, premium history from 7 years before their start), are simulated into scratch
databases, loaded through Dagster (the daily job's operational extract and landing sources, the
days as one single-run backfill) and built in full by dbt (`dbt run`, default vars; the full
Dagster materialisation would add the dbt tests and the per-partition bookkeeping of 180 days,
minutes that tell nothing here). Then the daily partition of the last day is rebuilt `repeat`
times (the build once), the two worlds taking turns so a busy machine slows them alike:

- **dbt run** of the partitioned selection (`dbt_incremental_models`: the incremental models,
  window as --vars) for that day: the models alone, which should read only the day and their
  look-back and delete+insert that one day (or its month). This is the ratio aimed at: the
  180-day run within 1.5x the 30-day run;
- **dbt build** of the same selection: what the Dagster daily run executes for its partition,
  the models and their tests; the tests (unique keys, not null, relationships) read the whole
  tables, so this part grows with history by design.

Each is shown as the whole dbt invocation (process start, project parse, nodes: what a partition
run costs) and as dbt's own elapsed time for the nodes, then per model.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from bench.database import scratch_database
from orchestration.definitions import DAILY_JOB, INGEST_ASSETS, build_definitions
from orchestration.defs.dbt.assets import BETWEEN_INCREMENTAL
from orchestration.defs.dbt.project import run_dbt_cli
from orchestration.defs.operational.assets import operational_snapshots
from orchestration.demo import QUIET_RUN_CONFIG
from orchestration.resources import DatabasesResource, LandingResource
from simulator.config import SimulationConfig
from simulator.runner import simulate
from warehouse.migrate import upgrade

END = date(2026, 11, 1)  # the first day after both worlds' activity
HISTORIES = (30, 180)
SECRET = "bench-app-secret"  # noqa: S105 - a scratch world's webhook secret, not a credential
PII_KEY = "bench-pii-key"
COMMANDS = ("run", "build")
AIM = 1.5


@dataclass(frozen=True)
class World:
    days: int
    config: SimulationConfig
    warehouse_url: str

    @property
    def last_day(self) -> date:
        return self.config.end - timedelta(days=1)


@dataclass(frozen=True)
class Timing:
    wall: float  # the whole dbt invocation
    nodes: float  # dbt's own elapsed time running the nodes (run_results.json)
    models: dict[str, float]  # seconds per model


def dbt(warehouse_url: str, target: Path, *args: str) -> Timing:
    """One dbt invocation, as the Dagster dbt assets make it (a subprocess, profiles.yml filled
    from the warehouse URL), timed."""
    started = time.perf_counter()
    completed = run_dbt_cli([*args, "--target-path", str(target), "--quiet"], warehouse_url)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{completed.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())
    models = {
        r["unique_id"].rpartition(".")[2]: r["execution_time"]
        for r in results["results"]
        if r["unique_id"].startswith("model.")
    }
    return Timing(wall, results["elapsed_time"], models)


def build_world(days: int, stack: ExitStack, scratch: Path, tier: str = "mvp") -> World:
    """Simulate `days` days of `tier` into fresh databases, load them through Dagster (the daily
    job's operational extract and landing sources, the days as one single-run backfill, as
    `mitra demo` does), then build every dbt model in full (dbt run, default vars)."""
    config = SimulationConfig(
        tier=tier,  # type: ignore[arg-type]
        start=END - timedelta(days=days),
        days=days,
        seed=7,
        landing_root=scratch / f"landing_{days}",
        truth_root=scratch / f"truth_{days}",
    )
    operational = stack.enter_context(scratch_database())
    warehouse = stack.enter_context(scratch_database())
    started = time.perf_counter()
    upgrade(operational)
    simulate(config, operational, app_secret=SECRET.encode(), progress=False)
    simulated = time.perf_counter()
    defs = build_definitions(
        DatabasesResource(operational_url=operational, warehouse_url=warehouse),
        LandingResource(root=str(config.landing_root), app_secret=SECRET, pii_key=PII_KEY),
        partitions_start=config.start,
    )
    instance = stack.enter_context(dg.instance_for_test())
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=QUIET_RUN_CONFIG,
            asset_selection=[*operational_snapshots.keys, *INGEST_ASSETS],
            tags={
                "dagster/asset_partition_range_start": config.start.isoformat(),
                "dagster/asset_partition_range_end": (config.end - timedelta(days=1)).isoformat(),
            },
        )
    if not result.success:
        failures = [
            f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
            for event in result.all_events
            if event.is_step_failure
        ]
        raise RuntimeError(f"loading the {days}-day world failed: {'; '.join(failures)}")
    loaded = time.perf_counter()
    dbt(warehouse, scratch / f"target_{days}", "run")
    print(
        f"  {days:>3}-day world: simulated in {simulated - started:5.1f} s, loaded in "
        f"{loaded - simulated:5.1f} s, built in {time.perf_counter() - loaded:5.1f} s",
        flush=True,
    )
    return World(days, config, warehouse)


def time_day(world: World, command: str, target: Path) -> Timing:
    """The last day's partition of the incremental models: `dbt build` or `dbt run`."""
    window = {"min_date": world.last_day.isoformat(), "max_date": world.config.end.isoformat()}
    return dbt(
        world.warehouse_url,
        target,
        command,
        "--select",
        BETWEEN_INCREMENTAL,
        "--vars",
        json.dumps(window),
    )


def run(repeat: int = 3) -> dict[str, float]:
    print(
        f"incremental dbt build of one day, mvp tier, {' vs '.join(map(str, HISTORIES))} days "
        f"of history (median of {repeat})",
        flush=True,
    )
    timings: dict[tuple[int, str], list[Timing]] = {}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mitra-bench-")))
        worlds = [build_world(days, stack, scratch) for days in HISTORIES]
        # The build, shown for what it adds, is timed once: the run is what the aim is about.
        rounds = [("run", i) for i in range(repeat)] + [("build", 0)]
        for command, _ in rounds:
            for world in worlds:
                timing = time_day(world, command, scratch / f"target_{world.days}")
                timings.setdefault((world.days, command), []).append(timing)
    short, long = HISTORIES
    report: dict[str, float] = {}
    for command in COMMANDS:
        label = (
            "dbt build (models + tests, one run)" if command == "build" else "dbt run (models only)"
        )
        print(f"  {label}:")
        for part in ("wall", "nodes"):
            medians = {
                days: statistics.median(getattr(t, part) for t in timings[(days, command)])
                for days in HISTORIES
            }
            ratio = medians[long] / medians[short]
            report |= {
                f"{command}_{part}_{short}_s": medians[short],
                f"{command}_{part}_{long}_s": medians[long],
                f"{command}_{part}_ratio": ratio,
            }
            name = "whole invocation" if part == "wall" else "dbt node time"
            print(
                f"    {name:17} {short:>3} days {medians[short]:6.2f} s   {long:>3} days "
                f"{medians[long]:6.2f} s   ratio {ratio:4.2f}"
                + (f" (aim < {AIM})" if command == "run" else "")
            )
    print(f"  per model (dbt run, median seconds):  {short:>3} days  {long:>3} days")
    per_model = {
        days: {
            model: statistics.median(t.models[model] for t in timings[(days, "run")])
            for model in timings[(days, "run")][0].models
        }
        for days in HISTORIES
    }
    for model, seconds in sorted(per_model[long].items(), key=lambda item: -item[1]):
        before = per_model[short][model]
        print(f"    {model:34} {before:7.2f}  {seconds:8.2f}   ratio {seconds / before:4.2f}")
    return report
