"""Prometheus metrics of the API (DESIGN §8): request latency, the answer cache, models served.

Each app owns a `Metrics` with its own registry (so several apps in one process, as in tests,
do not collide), created by `create_app`, stored on `app.state.metrics` and served at `/metrics`.

- `mitra_http_request_duration_seconds{method, route, status}`: a histogram per route
  *template* (`/v1/agents/{agent_id}/kpis`), never the raw path, whose ids would make one series
  per agent. Requests that match no route are labelled `unmatched`.
- `mitra_cache_{hits,misses,computations,errors}_total`, `mitra_cache_compute_seconds`: kept by
  `api.cache.AnswerCache`, per namespace.
- `mitra_rate_limited_total{name}`: requests refused by `api.ratelimit`.
- `mitra_model_answers_total{model, version}`: incremented by endpoints through
  `model_served(model, version)`, so a dashboard shows which model versions answer.

Several workers (`uvicorn --workers N`, gunicorn): each process counts on its own. Either scrape
every worker (one port each), or set `PROMETHEUS_MULTIPROC_DIR` to an empty folder before the
workers start (prometheus_client's multiprocess mode: each process writes its values to files
there and `/metrics` sums them across processes; clear the folder at each deployment).
`/metrics` needs no token, as usual for scrapers: keep it off the public ingress.
"""

from __future__ import annotations

import os
from time import perf_counter
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client import Histogram as PromHistogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds. Dense below 0.2 s, where the answers' targets are (p95 under 200 ms, under 100 ms at
# scale, cached under 20 ms), sparse above.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
LATENCY_BUCKETS += (0.5, 1.0, 2.5, 5.0, 10.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class Metrics:
    """The API's metrics in one registry; cheap enough to call on every request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_duration = PromHistogram(
            "mitra_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "mitra_cache_hits", "Answers served from the cache.", ["namespace"], registry=r
        )
        self.cache_misses = Counter(
            "mitra_cache_misses",
            "Lookups that found no answer (computed here or awaited from a computation).",
            ["namespace"],
            registry=r,
        )
        self.cache_computations = Counter(
            "mitra_cache_computations",
            "Answers computed by this process (one per key under a burst).",
            ["namespace"],
            registry=r,
        )
        self.cache_compute_seconds = PromHistogram(
            "mitra_cache_compute_seconds",
            "Time to compute an answer that was not cached.",
            ["namespace"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_errors = Counter(
            "mitra_cache_errors",
            "Cache or rate-limit store failures; the request went on without it.",
            ["operation"],
            registry=r,
        )
        self.rate_limited = Counter(
            "mitra_rate_limited", "Requests refused with 429.", ["name"], registry=r
        )
        self.models_served = Counter(
            "mitra_model_answers",
            "Answers that carried a model's output, by model and version.",
            ["model", "version"],
            registry=r,
        )
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | PromHistogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, kept: `labels()` takes a lock and builds a key on every
        call, a few microseconds on every request. Label values here come from code (routes,
        namespaces, statuses), never from raw input, so the children stay few."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "OTHER"
        self.child(self.request_duration, method, route, str(status)).observe(seconds)

    def model_served(self, model: str, version: str) -> None:
        """Count one answer that used `model` at `version` (e.g. `lapse`,
        `lapse-20261004T020000123456-1a2b3c4d`)."""
        self.models_served.labels(model, version).inc()

    def exposition(self) -> bytes:
        """The text format; summed over processes in prometheus_client's multiprocess mode."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or `unmatched` (a 404 must not add a series per URL)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class MetricsMiddleware:
    """Records every HTTP request's latency (pure ASGI: no per-request task or body copy)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        # An exception escaping the app becomes a 500 in Starlette's outermost handler.
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                scope["method"], route_template(scope), status, perf_counter() - start
            )


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
