"""The FastAPI application factory (`uvicorn api.main:create_app --factory`).

No settings or engines exist at import time: `create_app` takes its settings (tests pass their
own) and the lifespan opens the engines, so importing the module touches nothing.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from api.cache import open_answer_cache, open_redis
from api.db import open_read_pool
from api.deps import Engines
from api.event_intake import EventIntake
from api.metrics import Metrics, MetricsMiddleware
from api.problems import document_body_problems, install_problem_handlers
from api.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from api.resources import payments
from api.resources.catalogue import RESOURCES
from api.resources.crud import crud_router
from api.routes import auth, chat, events, health, insights, summary, whatsapp
from api.routes import marts as marts_export
from api.security.otp_delivery import LoggingOtpSender, OtpSender
from warehouse.databases import make_engine, resolve_database_urls
from warehouse.settings import Settings, get_settings

API_VERSION = "0.1.0"
# Threads for blocking work (database sessions) and one pooled connection per thread on each
# database: with fewer connections than threads, every overflow connection was opened and closed
# per request (12-19 new PostgreSQL sessions per 100 reads, bench/api_operational.py).
WORKER_THREADS = 20
DB_POOL_SIZE = WORKER_THREADS
# Hot reads run on the event loop, each holding a connection for one round trip: 10 served 50
# concurrent reads without waiting (bench/api_operational.py).
READ_POOL_SIZE = 10


def uvicorn_proxy_flags(settings: Settings) -> list[str]:
    """uvicorn's command-line flags for proxy headers: trusted only from the proxies named in
    `MITRA_FORWARDED_ALLOW_IPS`. uvicorn's own default trusts `X-Forwarded-For` from any local
    peer, so anything on the host could pose as any client address (rate limits, OTP limits and
    audit rows are keyed on it); with no proxy named, the peer is the client."""
    if not settings.forwarded_allow_ips.strip():
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", settings.forwarded_allow_ips]


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
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Resolving may start the embedded server: do it off the event loop.
        db_urls = await run_in_threadpool(resolve_database_urls, app_settings)
        engines = Engines(
            operational=make_engine(db_urls.operational, pool_size=DB_POOL_SIZE, max_overflow=0),
            warehouse=make_engine(db_urls.warehouse, pool_size=DB_POOL_SIZE, max_overflow=0),
            operational_reads=open_read_pool(db_urls.operational, READ_POOL_SIZE),
            warehouse_reads=open_read_pool(db_urls.warehouse, READ_POOL_SIZE),
        )
        await engines.open_pools()
        to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        # One Redis client (a connection pool) for the answer cache and the rate limits.
        redis = open_redis(app_settings.redis_url) if app_settings.redis_url else None
        cache = open_answer_cache(engines.warehouse, engines.warehouse_reads, metrics, redis)
        app.state.settings = app_settings
        app.state.engines = engines
        app.state.cache = cache
        app.state.rate_limiter = RateLimiter(metrics, redis)
        app.state.event_intake = EventIntake(app_settings.landing_root)
        # The process holds ~300k long-lived objects (scikit-learn, polars, pydantic models);
        # full collections over them paused requests for 0.2-0.4 s under load. Freezing what
        # start-up made moves it out of the collector's sight (measured: cached p99 450 -> 75 ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.event_intake.aclose()
            await cache.aclose()
            if redis is not None:
                await redis.aclose()
            await engines.dispose()

    app = FastAPI(
        title="Agent Mitra API",
        version=API_VERSION,
        description="Operational and insights API of the Agent Mitra platform.",
        lifespan=lifespan,
    )
    app.state.otp_sender = otp_sender
    app.state.metrics = metrics
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    install_problem_handlers(app)
    document_body_problems(app)
    app.include_router(health.router)
    # The most requested routes first: Starlette matches routes in order, and matching past
    # the ~45 operational routes cost an eighth of a cached answer (bench/api_insights.py) and
    # a quarter of event intake's request handling (bench/api_operational.py). Insights are what
    # agents open the app for; every app session sends events; WhatsApp posts every delivery.
    app.include_router(insights.router)
    app.include_router(events.router)
    app.include_router(whatsapp.router)
    app.include_router(auth.router)
    for resource in RESOURCES:
        app.include_router(crud_router(resource))
    app.include_router(payments.router)
    app.include_router(summary.router)
    app.include_router(chat.router)
    app.include_router(marts_export.router)
    return app
