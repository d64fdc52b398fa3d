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
from api.problems import document_body_problems, install_problem_handlers
from api.resources import payments
from api.resources.catalogue import RESOURCES
from api.resources.crud import crud_router
from api.routes import auth, events, health, insights, whatsapp
from api.security.otp_delivery import LoggingOtpSender, OtpSender
from warehouse.databases import make_engine, resolve_database_urls
from warehouse.settings import Settings, get_settings

API_VERSION = "0.1.0"


def create_app(settings: Settings | None = None, *, otp_sender: OtpSender | None = None) -> FastAPI:
    """Build the app for `settings` (the environment's when not given).

    `otp_sender` delivers sign-in codes; without one, development logs them, and production
    refuses to start (a code must never end up in a log there).
    """
    app_settings = settings or get_settings()
    if otp_sender is None:
        if app_settings.env == "production":
            raise RuntimeError(
                "MITRA_ENV=production needs an OTP sender (an SMS gateway) passed to create_app;"
                " the development sender would write sign-in codes to the log"
            )
        otp_sender = LoggingOtpSender()

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
    app.state.otp_sender = otp_sender
    install_problem_handlers(app)
    document_body_problems(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    for resource in RESOURCES:
        app.include_router(crud_router(resource))
    app.include_router(payments.router)
    app.include_router(events.router)
    app.include_router(whatsapp.router)
    app.include_router(insights.router)
    return app
