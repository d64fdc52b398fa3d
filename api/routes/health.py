"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EnginesDep
from api.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Answers while the process runs; checks nothing else, so an outage never restarts it."""
    return {"status": "ok"}


def _check(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"unavailable: {type(exc.orig or exc).__name__}"
    return "ok"


@router.get(
    "/readyz",
    summary="Both databases answer",
    responses={
        503: {"description": "a database is down", "content": {"application/problem+json": {}}}
    },
)
async def readyz(engines: EnginesDep) -> Any:
    """200 when the operational database and the warehouse both answer, else 503 problem+json."""
    checks = {
        name: await run_in_threadpool(_check, engine) for name, engine in engines.as_dict().items()
    }
    if all(result == "ok" for result in checks.values()):
        return {"status": "ready", "checks": checks}
    down = ", ".join(name for name, result in checks.items() if result != "ok")
    response: JSONResponse = problem(503, f"not ready: {down} unavailable", checks=checks)
    return response
