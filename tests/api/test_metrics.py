"""`/metrics` over HTTP: latency histograms by route template, cache counters, models served."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI, Response
from prometheus_client.parser import text_string_to_metric_families

from api.cache import CacheDep, cache_key, cached_response
from api.main import create_app
from api.metrics import LATENCY_BUCKETS, MetricsDep
from tests.conftest import REPO_ROOT
from tests.live_server import live_server
from warehouse.settings import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def instrumented_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/probe/{item_id}")
    async def probe(item_id: str, cache: CacheDep, metrics: MetricsDep) -> Response:
        result = await cache.get_or_compute(
            "test.metrics", cache_key(item_id), lambda: orjson.dumps({"id": item_id}), 60
        )
        metrics.model_served("lapse", "lapse-v7")
        return cached_response(result)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected failure")

    return app


@pytest.fixture(scope="module")
def base(
    operational_url: str, warehouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = Settings(
        operational_url=operational_url,
        warehouse_url=warehouse_url,
        dagster_url=operational_url,
        landing_url=str(tmp_path_factory.mktemp("landing")),
        redis_url=None,
    )
    with live_server(instrumented_app(settings)) as url:
        yield url


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_show_latency_cache_and_model_versions(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        for item in ("a", "a", "b"):
            assert client.get(f"/probe/{item}").status_code == 200
        assert client.get("/no/such/path/123").status_code == 404
        assert client.get("/boom").status_code == 500
    # uvicorn closes the connection after an exception escaped the app: scrape on a new one.
    with httpx.Client(base_url=base) as client:
        samples = scrape(client)

    hist = "mitra_http_request_duration_seconds"
    route = {"method": "GET", "route": "/probe/{item_id}", "status": "200"}
    assert value(samples, f"{hist}_count", **route) == 3
    assert value(samples, f"{hist}_bucket", **route, le="+Inf") == 3
    assert 0 < value(samples, f"{hist}_sum", **route) < 3
    buckets = {
        dict(labels)["le"]
        for name, labels in samples
        if name == f"{hist}_bucket" and dict(labels)["route"] == "/probe/{item_id}"
    }
    assert {"0.02", "0.1", "0.2"} <= buckets
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    # Templates only: ids in paths never become label values.
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith(hist)}
    assert not any(r and r.startswith(("/probe/a", "/probe/b", "/no/")) for r in routes)
    assert value(samples, f"{hist}_count", method="GET", route="unmatched", status="404") == 1
    assert value(samples, f"{hist}_count", method="GET", route="/boom", status="500") == 1

    assert value(samples, "mitra_cache_hits_total", namespace="test.metrics") == 1
    assert value(samples, "mitra_cache_misses_total", namespace="test.metrics") == 2
    assert value(samples, "mitra_cache_computations_total", namespace="test.metrics") == 2
    assert value(samples, "mitra_cache_compute_seconds_count", namespace="test.metrics") == 2
    assert value(samples, "mitra_model_answers_total", model="lapse", version="lapse-v7") == 3


def test_metrics_is_not_in_the_openapi_document(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


COUNT_ONE = """
import sys
from api.metrics import Metrics
metrics = Metrics()
metrics.model_served("lapse", "v1")
metrics.observe_request("GET", "/x", 200, 0.004)
if sys.argv[1] == "print":
    sys.stdout.write(metrics.exposition().decode())
"""


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, /metrics of any worker reports every worker's counts."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    for mode in ("count", "print"):
        result = subprocess.run(
            [sys.executable, "-c", COUNT_ONE, mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
    text = result.stdout
    assert 'mitra_model_answers_total{model="lapse",version="v1"} 2.0' in text
    count = 'mitra_http_request_duration_seconds_count{method="GET",route="/x",status="200"}'
    assert f"{count} 2.0" in text
