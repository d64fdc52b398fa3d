"""A new install: the daily job runs before any weekly training, on a 14-day growth-tier world,
and is green; its scoring registers the baselines as the first champions. Then the recommender's
challengers: one that does not beat popularity within language on the same holdout stays a
challenger, one that beats it replaces it."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from orchestration.definitions import DAILY_JOB, TRAINING_JOB, build_definitions
from orchestration.defs.ml.definitions import SCORING_ASSETS
from orchestration.defs.ml.recommender_assets import RECOMMENDER_MODEL
from orchestration.defs.ml.registry_store import champion
from orchestration.resources import DatabasesResource, LandingResource
from simulator.config import SimulationConfig
from simulator.runner import simulate
from warehouse import urls
from warehouse.migrate import upgrade

pytestmark = pytest.mark.integration

START = date(2026, 9, 1)
DAYS = 14
SECRET = "first-champion-secret"


@pytest.fixture(scope="module")
def fresh_install(make_database, tmp_path_factory) -> tuple[dg.Definitions, str, list]:
    """`mitra simulate --tier growth --days 14`, then the daily job over those days as one run
    (every asset, scoring included) with an empty model registry."""
    tmp = tmp_path_factory.mktemp("first_champions")
    config = SimulationConfig(
        tier="growth",
        start=START,
        days=DAYS,
        seed=5,
        landing_root=tmp / "landing",
        truth_root=tmp / "truth",
    )
    operational = make_database("first_op")
    upgrade(operational)
    simulate(config, operational, app_secret=SECRET.encode(), progress=False)
    warehouse = make_database("first_wh")
    defs = build_definitions(
        DatabasesResource(operational_url=operational, warehouse_url=warehouse),
        LandingResource(root=str(config.landing_root), app_secret=SECRET, pii_key="first-pii"),
        partitions_start=START,
    )
    last = START + timedelta(days=DAYS - 1)
    with dg.instance_for_test() as instance:
        daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": START.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
    return defs, warehouse, [daily]


def _registry(url: str, model_name: str) -> list[dict]:
    with psycopg.connect(urls.libpq_url(url), row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM ml.model_registry WHERE model_name = %s ORDER BY trained_at",
            (model_name,),
        ).fetchall()


def _rows(url: str, statement: sql.Composable) -> list[tuple]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(statement).fetchall()


def test_the_daily_job_is_green_from_an_empty_registry(fresh_install) -> None:
    _, warehouse, (daily,) = fresh_install
    assert daily.success, [e.message for e in daily.all_events if e.is_failure]
    materialised = {e.asset_key for e in daily.all_events if e.is_step_materialization}
    assert set(SCORING_ASSETS) <= materialised
    for name, kind in (("lapse", "logistic"), ("recommender", "language_popularity")):
        (row,) = _registry(warehouse, name)
        assert row["kind"] == kind
        assert row["is_champion"] and row["promoted_at"] is not None
        assert row["promotion_note"].startswith(f"first champion: the {kind} baseline")
        assert champion(warehouse, name).version == row["version"]
    lapse = _registry(warehouse, "lapse")[0]
    assert 0.5 < lapse["metrics"]["test_auc"] <= 1.0
    recommender = _registry(warehouse, "recommender")[0]
    assert recommender["metrics"]["ndcg_at_10"] > 0
    # Every day of the run scored, each by the champion registered in it.
    for table, version in (
        ("lapse_scores", lapse["version"]),
        ("content_recommendations", recommender["version"]),
    ):
        scored = _rows(
            warehouse,
            sql.SQL(
                "SELECT count(DISTINCT scored_for), array_agg(DISTINCT model_version) FROM {}"
            ).format(sql.Identifier("ml", table)),
        )
        assert scored == [(DAYS, [version])], table
    sources = _rows(warehouse, sql.SQL("SELECT DISTINCT source FROM ml.content_recommendations"))
    assert sources == [("popular",)]


def _train_recommender(defs: dg.Definitions, method: str) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(TRAINING_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=[RECOMMENDER_MODEL],
            run_config={"ops": {"ml__recommender_model": {"config": {"method": method}}}},
        )


def test_a_challenger_replaces_the_champion_only_when_it_wins_on_the_same_holdout(
    fresh_install,
) -> None:
    defs, warehouse, _ = fresh_install
    baseline = champion(warehouse, "recommender")
    assert baseline is not None and baseline.card["kind"] == "language_popularity"

    # The baseline's own method as challenger: the same NDCG on the same week does not beat it.
    tie = _train_recommender(defs, "language_popularity")
    assert tie.success
    challenger = _registry(warehouse, "recommender")[-1]
    metrics = challenger["metrics"]
    assert metrics["champion_ndcg_at_10"] == pytest.approx(baseline.card["metrics"]["ndcg_at_10"])
    assert metrics["ndcg_at_10"] == pytest.approx(metrics["champion_ndcg_at_10"])
    assert not challenger["is_champion"] and "does not beat" in challenger["promotion_note"]
    assert champion(warehouse, "recommender").version == baseline.version

    # PMI over co-views learns tastes popularity cannot: it wins on the same week and replaces it.
    win = _train_recommender(defs, "pmi")
    assert win.success
    challenger = _registry(warehouse, "recommender")[-1]
    metrics = challenger["metrics"]
    assert metrics["champion_ndcg_at_10"] == pytest.approx(baseline.card["metrics"]["ndcg_at_10"])
    assert metrics["ndcg_at_10"] > metrics["champion_ndcg_at_10"]
    assert challenger["is_champion"] and "beats the champion" in challenger["promotion_note"]
    assert champion(warehouse, "recommender").version == challenger["version"]
    assert len([r for r in _registry(warehouse, "recommender") if r["is_champion"]]) == 1
