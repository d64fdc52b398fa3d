"""The answer cache and the rate limits over HTTP, with the real Redis and in-process.

Each test serves a fresh app with a small marts-backed route added for the test (the insights
endpoints are built elsewhere): it reads `marts.cache_probe` through the cache and counts its
computations. Redis keys live under this module's own warehouse id (a fresh database, so a fresh
prefix) and are deleted afterwards; nothing else in the shared Redis is touched.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import orjson
import psycopg
import pytest
import redis
from fastapi import Depends, FastAPI, HTTPException, Response
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text

from api.cache import CacheDep, cache_key, cached_response
from api.db import open_read_pool
from api.deps import EnginesDep
from api.main import create_app
from api.metrics import Metrics
from api.ratelimit import RateLimit
from api.security.tokens import Principal, issue_access_token
from tests.live_server import live_server
from warehouse import urls
from warehouse.marts_version import (
    bump_marts_version,
    ensure_marts_version_table,
    redis_prefix,
    redis_version_key,
)
from warehouse.operational.enums import UserRole
from warehouse.settings import Settings

NAMESPACE = "test.probe.v1"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@dataclass
class Probe:
    """What the test route computes from, and how often it did."""

    delay: float = 0.0
    ttl: int = 60
    computed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, item: str) -> None:
        with self.lock:
            self.computed[item] += 1


@dataclass
class Served:
    base: str
    probe: Probe
    limit_name: str
    app: FastAPI


@pytest.fixture(scope="module")
def cache_warehouse(make_database: Callable[[str], str]) -> str:
    url = make_database("cache_wh")
    with psycopg.connect(urls.libpq_url(url)) as conn:
        ensure_marts_version_table(conn)
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute("CREATE TABLE marts.cache_probe (item text PRIMARY KEY, answer text NOT NULL)")
    return url


@pytest.fixture(scope="module")
def module_redis(redis_url: str, cache_warehouse: str) -> Iterator[redis.Redis]:
    """The shared Redis; deletes this module's keys (its warehouse's prefix) at the end."""
    with psycopg.connect(urls.libpq_url(cache_warehouse)) as conn:
        row = conn.execute("SELECT warehouse_id FROM ops.marts_version").fetchone()
    assert row is not None
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{redis_prefix(row[0])}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["redis", "memory"])
def cache_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("module_redis")
    return request.param


def set_answer(warehouse_url: str, item: str, answer: str) -> None:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        conn.execute(
            "INSERT INTO marts.cache_probe VALUES (%s, %s)"
            " ON CONFLICT (item) DO UPDATE SET answer = excluded.answer",
            (item, answer),
        )


def probe_app(settings: Settings, probe: Probe, limit_name: str) -> FastAPI:
    """The real app plus two routes of this test: a cached marts read and a rate-limited one."""
    app = create_app(settings)

    @app.get("/probe/{item}")
    async def read_probe(item: str, cache: CacheDep, engines: EnginesDep) -> Response:
        def compute() -> bytes:
            probe.count(item)
            time.sleep(probe.delay)
            with engines.warehouse.connect() as conn:
                answer = conn.execute(
                    text("SELECT answer FROM marts.cache_probe WHERE item = :item"),
                    {"item": item},
                ).scalar_one_or_none()
            if answer is None:
                raise HTTPException(404, "no such item")
            return orjson.dumps({"item": item, "answer": answer})

        result = await cache.get_or_compute(NAMESPACE, cache_key(item), compute, probe.ttl)
        return cached_response(result)

    @app.get("/limited", dependencies=[Depends(RateLimit(limit_name, per_minute=3))])
    async def limited() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


@pytest.fixture
def serve(
    operational_url: str, cache_warehouse: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Served]]:
    """Factory: `serve(redis_url, probe)` starts an app for this test (stopped afterwards)."""
    stack: list[object] = []

    @contextmanager
    def started(redis_url: str | None, probe: Probe) -> Iterator[Served]:
        settings = Settings(
            operational_url=operational_url,
            warehouse_url=cache_warehouse,
            dagster_url=operational_url,
            landing_url=str(tmp_path_factory.mktemp("landing")),
            redis_url=redis_url,
        )
        name = f"test-{uuid.uuid4().hex[:12]}"
        app = probe_app(settings, probe, name)
        with live_server(app) as base:
            yield Served(base, probe, name, app)
        if redis_url and redis_url != UNREACHABLE_REDIS:
            with redis.Redis.from_url(redis_url) as client:
                for key in client.scan_iter(match=f"mitra:rl:{name}:*"):
                    client.delete(key)

    def factory(redis_url: str | None, probe: Probe | None = None) -> Served:
        context = started(redis_url, probe or Probe())
        stack.append(context)
        return context.__enter__()

    yield factory
    for context in reversed(stack):
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
def redis_or_none(cache_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if cache_kind == "redis" else None


async def _burst(bases: list[str], path: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return await asyncio.gather(*(client.get(bases[i % len(bases)] + path) for i in range(n)))


def burst(bases: list[str], path: str, n: int) -> list[httpx.Response]:
    """`n` identical requests at once, spread over `bases`."""
    return asyncio.run(_burst(bases, path, n))


def item() -> str:
    return f"item-{uuid.uuid4().hex[:10]}"


def test_a_burst_of_50_identical_uncached_requests_computes_once(
    serve: Callable[..., Served], cache_warehouse: str, redis_or_none: str | None
) -> None:
    served = serve(redis_or_none, Probe(delay=0.3))
    key = item()
    set_answer(cache_warehouse, key, "forty-two")

    responses = burst([served.base], f"/probe/{key}", 50)

    assert [r.status_code for r in responses] == [200] * 50
    assert {r.json()["answer"] for r in responses} == {"forty-two"}
    assert served.probe.computed[key] == 1
    # They really overlapped: the computation was awaited by several, not served from the cache.
    assert sum(r.headers["x-cache"] == "miss" for r in responses) > 1


def test_a_burst_over_two_processes_sharing_redis_computes_once(
    serve: Callable[..., Served], cache_warehouse: str, module_redis: redis.Redis, redis_url: str
) -> None:
    """Two apps (two in-process single-flights) coordinate through the Redis lock alone."""
    probe = Probe(delay=0.3)
    first, second = serve(redis_url, probe), serve(redis_url, probe)
    key = item()
    set_answer(cache_warehouse, key, "shared")

    responses = burst([first.base, second.base], f"/probe/{key}", 50)

    assert [r.status_code for r in responses] == [200] * 50
    assert {r.json()["answer"] for r in responses} == {"shared"}
    assert probe.computed[key] == 1


def test_after_a_marts_refresh_the_next_answer_is_the_new_one(
    serve: Callable[..., Served], cache_warehouse: str, redis_or_none: str | None
) -> None:
    served = serve(redis_or_none)
    key = item()
    set_answer(cache_warehouse, key, "before")
    with httpx.Client(base_url=served.base) as client:
        first = client.get(f"/probe/{key}")
        assert (first.json()["answer"], first.headers["x-cache"]) == ("before", "miss")
        assert client.get(f"/probe/{key}").headers["x-cache"] == "hit"

        # The marts change, but until the refresh says so the cached answer stands.
        set_answer(cache_warehouse, key, "after")
        stale = client.get(f"/probe/{key}")
        assert (stale.json()["answer"], stale.headers["x-cache"]) == ("before", "hit")

        bumped = bump_marts_version(cache_warehouse, run_id="test", redis_url=redis_or_none)
        fresh = client.get(f"/probe/{key}")
        assert fresh.json()["answer"] == "after"
        assert fresh.headers["x-cache"] == "miss"
        assert int(fresh.headers["x-marts-version"]) == bumped.version
        assert client.get(f"/probe/{key}").headers["x-cache"] == "hit"
    assert served.probe.computed[key] == 2


def test_a_lost_redis_mirror_is_caught_up_from_the_warehouse_when_it_expires(
    serve: Callable[..., Served], cache_warehouse: str, module_redis: redis.Redis, redis_url: str
) -> None:
    """A bump whose Redis write was lost (Redis unreachable then) is served at the latest when
    the mirror expires (REDIS_VERSION_TTL_MS): the API then re-reads the warehouse row."""
    served = serve(redis_url)
    key = item()
    set_answer(cache_warehouse, key, "before")
    with httpx.Client(base_url=served.base) as client:
        assert client.get(f"/probe/{key}").json()["answer"] == "before"
        set_answer(cache_warehouse, key, "after")
        bumped = bump_marts_version(cache_warehouse, redis_url=None)  # the mirror write lost
        assert client.get(f"/probe/{key}").json()["answer"] == "before"
        module_redis.delete(redis_version_key(bumped.warehouse_id))  # the mirror expires
        fresh = client.get(f"/probe/{key}")
    assert fresh.json()["answer"] == "after"
    assert int(fresh.headers["x-marts-version"]) == bumped.version
    assert int(module_redis.get(redis_version_key(bumped.warehouse_id)) or 0) == bumped.version


def test_an_answer_expires_after_its_ttl(
    serve: Callable[..., Served], cache_warehouse: str, redis_or_none: str | None
) -> None:
    served = serve(redis_or_none, Probe(ttl=1))
    key = item()
    set_answer(cache_warehouse, key, "short-lived")
    with httpx.Client(base_url=served.base) as client:
        assert client.get(f"/probe/{key}").headers["x-cache"] == "miss"
        assert client.get(f"/probe/{key}").headers["x-cache"] == "hit"
        time.sleep(1.1)
        assert client.get(f"/probe/{key}").headers["x-cache"] == "miss"
    assert served.probe.computed[key] == 2


def test_errors_are_never_cached(
    serve: Callable[..., Served], cache_warehouse: str, redis_or_none: str | None
) -> None:
    served = serve(redis_or_none)
    key = item()
    with httpx.Client(base_url=served.base) as client:
        for _ in range(2):
            missing = client.get(f"/probe/{key}")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
        set_answer(cache_warehouse, key, "now-present")
        assert client.get(f"/probe/{key}").json()["answer"] == "now-present"
    assert served.probe.computed[key] == 3


def test_with_redis_unreachable_answers_are_computed_never_5xx(
    serve: Callable[..., Served], cache_warehouse: str
) -> None:
    served = serve(UNREACHABLE_REDIS, Probe(delay=0.2))
    key = item()
    set_answer(cache_warehouse, key, "uncached")

    responses = burst([served.base], f"/probe/{key}", 20)
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["answer"] for r in responses} == {"uncached"}
    assert served.probe.computed[key] == 1  # still one computation per burst, in the process
    assert all("x-marts-version" not in r.headers for r in responses)

    with httpx.Client(base_url=served.base) as client:
        assert client.get(f"/probe/{key}").status_code == 200
        limited = [client.get("/limited").status_code for _ in range(4)]
        metrics = client.get("/metrics").text
    assert served.probe.computed[key] == 2  # nothing was stored
    assert limited == [200, 200, 200, 429]  # counted in the process meanwhile
    assert 'mitra_cache_errors_total{operation="lookup"}' in metrics


def _token(settings: Settings) -> str:
    principal = Principal(user_id=uuid.uuid4(), role=UserRole.AGENT, session_id=uuid.uuid4())
    return issue_access_token(settings, principal)


def test_rate_limit_answers_429_with_retry_after(
    serve: Callable[..., Served], redis_or_none: str | None
) -> None:
    served = serve(redis_or_none)
    with httpx.Client(base_url=served.base) as client:
        allowed = [client.get("/limited") for _ in range(3)]
        refused = client.get("/limited")
        settings: Settings = served.app.state.settings
        other_user = client.get("/limited", headers={"Authorization": f"Bearer {_token(settings)}"})
        metrics = client.get("/metrics").text

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in allowed} == {"3"}
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # A signed-in caller is counted by user, not by the address it shares with the others.
    assert other_user.status_code == 200
    assert other_user.headers["x-ratelimit-remaining"] == "2"
    assert f'mitra_rate_limited_total{{name="{served.limit_name}"}} 1.0' in metrics


def test_namespaces_are_checked() -> None:
    from api.cache import MemoryAnswerCache

    cache = MemoryAnswerCache(None, Metrics())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        asyncio.run(cache.get_or_compute("Has Spaces", "k", lambda: b"", 10))


def test_concurrent_in_process_lookups_share_one_version_read(cache_warehouse: str) -> None:
    """Without Redis every lookup needs the marts version; 50 arriving together share reads
    instead of each making its own query, and every one still gets its answer."""
    from api.cache import MemoryAnswerCache

    reads = 0

    async def burst() -> list:
        nonlocal reads
        pool = open_read_pool(cache_warehouse, 4)
        await pool.open(wait=True)
        cache = MemoryAnswerCache(pool, Metrics())
        read_version = cache._read_version

        async def counted() -> int:
            nonlocal reads
            reads += 1
            return await read_version()

        cache._read_version = counted  # type: ignore[method-assign]
        try:
            return await asyncio.gather(
                *(cache.get_or_compute("probe.v1", f"k{i}", lambda: b"x", 60) for i in range(50))
            )
        finally:
            await pool.close()

    answers = asyncio.run(burst())
    assert [a.value for a in answers] == [b"x"] * 50
    assert 1 <= reads < 10


@pytest.mark.parametrize("broken", ["unreachable", "no table", "no row"])
def test_in_process_cache_computes_uncached_when_the_version_cannot_be_read(
    make_database: Callable[[str], str], cache_warehouse: str, broken: str
) -> None:
    """Without Redis the version comes from the warehouse: a database that is down, not
    migrated, or has lost its version row makes the lookup compute the answer uncached (never a
    5xx from the cache, never an answer stored under no version), and the failure is counted."""
    from api.cache import MemoryAnswerCache

    if broken == "unreachable":
        url = urls.with_database(cache_warehouse, "mitra_no_such_database")
    else:
        url = make_database("cache_broken")
        if broken == "no row":
            with psycopg.connect(urls.libpq_url(url)) as conn:
                ensure_marts_version_table(conn)
                conn.execute("DELETE FROM ops.marts_version")
    metrics = Metrics()

    async def lookups() -> list:
        pool = AsyncConnectionPool(urls.libpq_url(url), min_size=1, open=False, timeout=1)
        await pool.open(wait=False)
        cache = MemoryAnswerCache(pool, metrics, retry_after_error=0.0)
        try:
            return [await cache.get_or_compute("probe.v1", "k", lambda: b"x", 60) for _ in "ab"]
        finally:
            await pool.close()

    answers = asyncio.run(lookups())
    assert [(a.value, a.hit, a.version) for a in answers] == [(b"x", False, None)] * 2
    errors = metrics.cache_errors.labels("version")._value.get()
    assert errors == 2
