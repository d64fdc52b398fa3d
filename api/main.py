"""The FastAPI application factory (`uvicorn api.main:create_app --factory`).

No settings or engines exist at import time: `create_app` takes its settings (tests pass their
own) and the lifespan opens the engines, so importing the module touches nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api.deps import Engines
from api.problems import install_problem_handlers
from api.routes import health
from warehouse.databases import make_engine, resolve_database_urls
from warehouse.settings import Settings, get_settings

API_VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (the environment's when not given)."""
    app_settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Resolving may start the embedded server: do it off the event loop.
        db_urls = await run_in_threadpool(resolve_database_urls, app_settings)
        engines = Engines(
            operational=make_engine(db_urls.operational),
            warehouse=make_engine(db_urls.warehouse),
        )
        app.state.settings = app_settings
        app.state.engines = engines
        try:
            yield
        finally:
            engines.dispose()

    app = FastAPI(
        title="Agent Mitra API",
        version=API_VERSION,
        description="Operational and insights API of the Agent Mitra platform.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    return app
