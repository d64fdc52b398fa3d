"""A warehouse built end to end once per test session, shared by the dbt, ML and insights tests:
simulator → operational DB and landing zone → Dagster (extract, ingest, dbt build) → marts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import DAILY_JOB, TRAINING_JOB, build_definitions, materialize_days
from orchestration.defs.dbt.project import run_dbt_cli
from orchestration.defs.ml.definitions import SCORING_ASSETS
from orchestration.resources import DatabasesResource, LandingResource
from simulator.config import SimulationConfig
from simulator.runner import simulate
from warehouse.migrate import upgrade

START = date(2026, 9, 1)
DAYS = 21  # three weeks of app and WhatsApp activity; premium history goes back to 2019
SECRET = "dbt-test-app-secret"
PII_KEY = "dbt-test-pii-key"


@dataclass(frozen=True)
class BuiltWarehouse:
    """Where the simulated world and its warehouse are."""

    operational_url: str
    warehouse_url: str
    config: SimulationConfig
    landing: LandingResource
    results: list = field(default_factory=list)  # the Dagster run(s) that built it

    @property
    def databases(self) -> DatabasesResource:
        return DatabasesResource(
            operational_url=self.operational_url, warehouse_url=self.warehouse_url
        )

    @property
    def last_day(self) -> date:
        return self.config.start + timedelta(days=self.config.days - 1)

    def definitions(self) -> dg.Definitions:
        return build_definitions(self.databases, self.landing, partitions_start=self.config.start)


def run_dbt(warehouse_url: str, target_path: Path, *args: str) -> str:
    """dbt against `warehouse_url`, its files under `target_path`; the output, or the test
    fails with dbt's own output."""
    completed = run_dbt_cli([*args, "--target-path", str(target_path)], warehouse_url)
    if completed.returncode != 0:
        pytest.fail(f"dbt {' '.join(args)} failed:\n{completed.stdout[-6000:]}{completed.stderr}")
    return completed.stdout


@pytest.fixture(scope="session")
def built_warehouse(make_database, tmp_path_factory) -> BuiltWarehouse:
    """An mvp world of DAYS days, every asset materialised as one single-run backfill."""
    tmp: Path = tmp_path_factory.mktemp("dbt")
    config = SimulationConfig(
        tier="mvp",
        start=START,
        days=DAYS,
        seed=11,
        landing_root=tmp / "landing",
        truth_root=tmp / "truth",
    )
    operational = make_database("dbt_op")
    upgrade(operational)
    simulate(config, operational, app_secret=SECRET.encode(), progress=False)
    built = BuiltWarehouse(
        operational_url=operational,
        warehouse_url=make_database("dbt_wh"),
        config=config,
        landing=LandingResource(root=str(config.landing_root), app_secret=SECRET, pii_key=PII_KEY),
    )
    with dg.instance_for_test() as instance:
        built.results.extend(
            materialize_days(built.definitions(), instance, config.start, built.last_day)
        )
    failed = [r.dagster_run.job_name for r in built.results if not r.success]
    assert not failed, f"materialisation failed: {failed}"
    return built


@pytest.fixture(scope="session")
def trained_models(built_warehouse: BuiltWarehouse) -> tuple:
    """The weekly training job run twice with the same seed and data (the second must not be
    promoted), then the scoring of the last day: the runs' results. Shared by the model tests
    and the insights API tests, which serve the scores."""
    defs = built_warehouse.definitions()
    with dg.instance_for_test() as instance:
        training = defs.resolve_job_def(TRAINING_JOB)
        first = training.execute_in_process(instance=instance, raise_on_error=False)
        second = training.execute_in_process(instance=instance, raise_on_error=False)
        day = built_warehouse.last_day.isoformat()
        scoring = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            partition_key=day,
            asset_selection=list(SCORING_ASSETS),
        )
    return first, second, scoring
