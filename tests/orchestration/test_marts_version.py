"""The marts version bumped by Dagster runs, for real: the warehouse row and its Redis mirror.

A small job of the same shape as the daily refresh (an ingest step, a marts step, an ml step)
carries the hooks the real jobs carry; the real jobs are checked to carry them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import dagster as dg
import psycopg
import pytest
import redis

from orchestration.defs.marts_version import MARTS_VERSION_HOOKS, RedisResource
from orchestration.resources import DatabasesResource
from warehouse import urls
from warehouse.marts_version import (
    MartsVersion,
    bump_marts_version,
    ensure_marts_version_table,
    publish_version,
    redis_version_key,
)

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _row(warehouse_url: str) -> tuple[int, uuid.UUID, str | None]:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        row = conn.execute("SELECT version, warehouse_id, run_id FROM ops.marts_version").fetchone()
    assert row is not None
    return row


@pytest.fixture(scope="module")
def version_warehouse(make_database: Callable[[str], str]) -> str:
    url = make_database("marts_version")
    with psycopg.connect(urls.libpq_url(url)) as conn:
        ensure_marts_version_table(conn)
        ensure_marts_version_table(conn)  # idempotent: still one row
    return url


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as dagster_instance:
        yield dagster_instance


@pytest.fixture(scope="module")
def redis_client(redis_url: str, version_warehouse: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.delete(redis_version_key(_row(version_warehouse)[1]))
    client.close()


@dg.asset(key=["raw", "probe_events"])
def raw_probe() -> None:
    """An ingest step: writes raw only, so it must not bump."""


@dg.asset(key=["marts", "probe_kpis"], deps=[raw_probe])
def marts_probe() -> None:
    """A dbt-like step writing a mart."""


@dg.asset(key=["ml", "probe_scores"], deps=[marts_probe])
def ml_probe() -> None:
    """A scoring step writing an ml table."""


@dg.multi_asset(specs=[dg.AssetSpec(["marts", "half_a"]), dg.AssetSpec(["marts", "half_b"])])
def half_built_marts() -> Iterator[dg.MaterializeResult]:
    """Like a dbt build that fails after rebuilding some models."""
    yield dg.MaterializeResult(asset_key=["marts", "half_a"])
    raise RuntimeError("model half_b failed")


def _run(
    warehouse_url: str, redis_url: str | None, assets: list, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("refresh", selection=assets, hooks=MARTS_VERSION_HOOKS)
    defs = dg.Definitions(
        assets=assets,
        jobs=[job],
        resources={
            "databases": DatabasesResource(warehouse_url=warehouse_url),
            "redis": RedisResource(url=redis_url),
        },
    )
    return defs.resolve_job_def("refresh").execute_in_process(
        instance=instance, raise_on_error=False
    )


def test_a_refresh_bumps_after_each_step_that_wrote_marts_or_ml(
    version_warehouse: str, redis_url: str, redis_client: redis.Redis, instance: dg.DagsterInstance
) -> None:
    before, warehouse_id, _ = _row(version_warehouse)
    result = _run(version_warehouse, redis_url, [raw_probe, marts_probe, ml_probe], instance)
    assert result.success

    version, _, run_id = _row(version_warehouse)
    assert version == before + 2  # the marts step and the ml step; not the raw one
    assert run_id == result.run_id
    assert int(redis_client.get(redis_version_key(warehouse_id)) or 0) == version
    assert 0 < redis_client.pttl(redis_version_key(warehouse_id)) <= 10 * 60 * 1000


def test_a_step_that_fails_after_writing_a_mart_still_bumps(
    version_warehouse: str, redis_url: str, redis_client: redis.Redis, instance: dg.DagsterInstance
) -> None:
    before, warehouse_id, _ = _row(version_warehouse)
    result = _run(version_warehouse, redis_url, [half_built_marts], instance)
    assert not result.success
    assert _row(version_warehouse)[0] == before + 1
    assert int(redis_client.get(redis_version_key(warehouse_id)) or 0) == before + 1


def test_an_unreachable_redis_is_logged_and_the_warehouse_row_still_moves(
    version_warehouse: str, instance: dg.DagsterInstance
) -> None:
    before = _row(version_warehouse)[0]
    result = _run(version_warehouse, UNREACHABLE_REDIS, [marts_probe], instance)
    logs = [
        record.user_message
        for record in instance.all_logs(result.run_id)
        if record.level >= 40  # ERROR
    ]
    assert result.success
    assert _row(version_warehouse)[0] == before + 1
    assert any("marts version not bumped" in message for message in logs)


def test_the_redis_mirror_never_moves_backwards(
    version_warehouse: str, redis_client: redis.Redis
) -> None:
    """Two steps bumping at once may mirror out of order; the older number must not win."""
    newer = bump_marts_version(version_warehouse)
    older = MartsVersion(newer.version - 1, newer.warehouse_id, newer.refreshed_at, None)
    assert publish_version(redis_client, newer) == newer.version
    assert publish_version(redis_client, older) == newer.version
    assert int(redis_client.get(redis_version_key(newer.warehouse_id)) or 0) == newer.version


def test_the_daily_and_training_jobs_carry_the_hooks() -> None:
    from orchestration.definitions import DAILY_JOB, TRAINING_JOB, build_definitions

    defs = build_definitions()
    for name in (DAILY_JOB, TRAINING_JOB):
        assert defs.resolve_job_def(name).hook_defs >= MARTS_VERSION_HOOKS, name
    assert isinstance(defs.resources["redis"], RedisResource)
