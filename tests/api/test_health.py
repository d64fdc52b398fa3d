"""Health endpoints over HTTP against a real uvicorn server and real PostgreSQL."""

from __future__ import annotations

import httpx

from api.main import create_app
from tests.live_server import live_server
from warehouse import urls
from warehouse.settings import Settings


def _settings(operational: str, warehouse: str) -> Settings:
    return Settings(operational_url=operational, warehouse_url=warehouse, dagster_url=operational)


def test_readyz_200_with_both_databases_up(operational_url: str, warehouse_url: str) -> None:
    with live_server(create_app(_settings(operational_url, warehouse_url))) as base:
        health = httpx.get(f"{base}/healthz")
        ready = httpx.get(f"{base}/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"operational": "ok", "warehouse": "ok"}}


def test_readyz_503_when_the_warehouse_is_down(operational_url: str) -> None:
    # Nothing listens on port 1: the warehouse server is down.
    down = urls.parse("postgresql://postgres@127.0.0.1:1/agent_mitra_wh")
    with live_server(create_app(_settings(operational_url, str(down)))) as base:
        ready = httpx.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert body["status"] == 503
    assert body["checks"]["operational"] == "ok"
    assert body["checks"]["warehouse"].startswith("unavailable")
    assert "warehouse" in body["detail"]


def test_readyz_503_when_the_operational_database_is_missing(
    operational_url: str, warehouse_url: str
) -> None:
    missing = urls.with_database(operational_url, "no_such_database_for_mitra")
    with live_server(create_app(_settings(missing, warehouse_url))) as base:
        ready = httpx.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "operational": ready.json()["checks"]["operational"],
        "warehouse": "ok",
    }
    assert ready.json()["checks"]["operational"].startswith("unavailable")


def test_openapi_and_problem_json_for_unknown_routes(
    operational_url: str, warehouse_url: str
) -> None:
    with live_server(create_app(_settings(operational_url, warehouse_url))) as base:
        spec = httpx.get(f"{base}/openapi.json")
        missing = httpx.get(f"{base}/v1/nothing-here")
    assert spec.status_code == 200
    assert {"/healthz", "/readyz"} <= set(spec.json()["paths"])
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["title"] == "Not Found"
