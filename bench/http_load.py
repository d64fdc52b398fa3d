"""Closed-loop HTTP load on the API served by uvicorn in its own process (shared by the API
benchmarks: `bench.api_operational`, `bench.api_insights`).

- `serve`: `uvicorn <app> --factory` in a process of its own, from environment variables (as
  deployed), until it answers `/healthz`;
- `raw_window` / `httpx_window`: `concurrency` keep-alive connections, each sending its next
  request as soon as the last one is answered, for a `Budget` (seconds or requests). The raw
  client is a minimal HTTP/1.1 client on asyncio streams (requests encoded in advance,
  responses read by Content-Length) that drives a bare endpoint at ~12,000 requests/s with a
  quarter of a core; httpx at 50 connections saturated a core at ~140 requests/s here
  (encode/httpx#3215) and would measure itself;
- `Probe`: the CPU of the server, of this process, of PostgreSQL (and optionally Redis) and of
  the whole machine around a window, and the database sessions opened;
- `summary`: p50/p95/p99, requests/s and CPU per request over a scenario's windows.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import psycopg
import redis

from warehouse import urls

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
APP = "api.main:create_app"  # the factory uvicorn serves
STARTUP_TIMEOUT_S = 60.0
CORES = ("server", "client", "postgres", "redis", "backends", "other")  # reported busy cores
WARMUP_S = 2.0  # untimed load of each scenario first (pools filled, code paths warm)


# --------------------------------------------------------------------------- databases, Redis


def redis_url_if_up(explicit: str | None) -> str | None:
    """The Redis the app shares its rate limits and cache through, as in production: `explicit`,
    `REDIS_URL` or the local default, if it answers; else none (each process counts alone)."""
    url = explicit or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return None
    return url


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        """The request as it goes on the wire (HTTP/1.1, keep-alive)."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.method != "GET":
            lines.append(f"content-length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        """CPU time of the server's processes (uvicorn, and its workers when there are several)."""
        try:
            parent = psutil.Process(self.process.pid)
            total = 0.0
            for proc in [parent, *parent.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
            return total
        except psutil.NoSuchProcess:
            return 0.0


@contextmanager
def serve(
    env: dict[str, str], workers: int, access_log: bool, scratch: Path, app: str = APP
) -> Iterator[Server]:
    """`uvicorn <app> --factory` in its own process, until it answers /healthz."""
    port = free_port()
    log = scratch / "uvicorn.log"
    command = [
        sys.executable, "-m", "uvicorn", app, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", *([] if access_log else ["--no-access-log"]),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited during start-up:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- load generators


@dataclass(frozen=True)
class Budget:
    """When a window ends: after `requests` requests, or once `seconds` have passed."""

    requests: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.requests:,} requests" if self.requests else f"{self.seconds:g} s"

    def counter(self) -> Callable[[], bool]:
        """A function each connection calls before a request: may it send one more?"""
        issued = itertools.count()
        limit = self.requests
        deadline = time.perf_counter() + self.seconds if self.seconds else float("inf")
        if limit:
            return lambda: next(issued) < limit
        return lambda: time.perf_counter() < deadline


@dataclass(frozen=True)
class Reading:
    at: float  # perf_counter
    server: float  # CPU seconds so far
    client: float
    postgres: float
    machine: float  # busy CPU seconds of the whole machine
    sessions: int  # sessions ever opened on the probed database
    redis: float = 0.0  # CPU seconds of the Redis server (when the probe reads it)
    backends: float = 0.0  # CPU seconds of the live PostgreSQL backends of the probed databases


@dataclass
class Window:
    """One timed run of one scenario."""

    latencies: np.ndarray  # seconds, of the requests answered as expected
    seconds: float
    errors: int
    first_error: str | None
    before: Reading
    after: Reading
    tally: Counter[str] = field(default_factory=Counter)  # values of the tallied header

    def cores(self, name: str) -> float:
        """Cores busy on average (1.0 = one core the whole window) by `name`, a CPU counter of
        `Reading`, or `other`: busy cores not ours, other programs on the machine (a shared
        box is noisy)."""
        if name == "other":
            ours = sum(self.cores(n) for n in ("server", "client", "postgres", "redis"))
            return max(0.0, self.cores("machine") - ours)
        span = self.after.at - self.before.at
        return self.cpu_seconds(name) / span

    def cpu_seconds(self, name: str) -> float:
        return getattr(self.after, name) - getattr(self.before, name)

    @property
    def sessions(self) -> int:
        """Database sessions opened during the window."""
        return self.after.sessions - self.before.sessions

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors


class Probe:
    """Counters read around a window: the CPU of the server, of this process, of PostgreSQL
    (and of Redis, with `redis=True`) and of the whole machine (whatever else runs on it shows as
    busy cores beyond those), and the sessions opened on the database of `url` (a pool that
    opens a connection per request shows here). With `backends`, also the CPU of the live
    PostgreSQL backends connected to those databases: what the server's queries cost there,
    apart from whatever else the PostgreSQL server is doing (a pool that keeps its connections
    is counted whole; a backend that ends within a window is not)."""

    def __init__(
        self, server: Server, url: str, *, redis: bool = False, backends: tuple[str, ...] = ()
    ) -> None:
        self.server = server
        self.database = urls.parse(url).database
        self.stats = psycopg.connect(urls.libpq_url(url), autocommit=True)
        self.redis = redis
        self.backend_marks = tuple(f" {name} " for name in backends)

    def close(self) -> None:
        self.stats.close()

    @staticmethod
    def _postgres_seconds() -> float:
        """CPU time of the whole PostgreSQL server: its live processes, plus what the ended
        ones used (the postmaster's children times), so a backend opened and closed within the
        window counts. Other databases on the server count too, if anything else uses them."""
        total = 0.0
        for proc in psutil.process_iter(["name", "ppid"]):
            if proc.info["name"] != "postgres":
                continue
            try:
                times = proc.cpu_times()
                total += times.user + times.system
                if psutil.Process(proc.info["ppid"]).name() != "postgres":  # the postmaster
                    total += times.children_user + times.children_system
            except psutil.Error:
                continue
        return total

    @staticmethod
    def _redis_seconds() -> float:
        """CPU time of the local Redis server(s) (every client of it counts)."""
        total = 0.0
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "redis-server":
                continue
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _backend_seconds(self) -> float:
        """CPU time of the backends whose process title names a probed database
        (`postgres: <cluster>: <user> <database> <client> <state>`)."""
        total = 0.0
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.info["name"] != "postgres" or not proc.info["cmdline"]:
                continue
            title = proc.info["cmdline"][0]
            if not any(mark in title for mark in self.backend_marks):
                continue
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _sessions(self) -> int:
        """Sessions ever opened on the probed database (PostgreSQL 14+; 0 before)."""
        try:
            self.stats.execute("SELECT pg_stat_clear_snapshot()")
            row = self.stats.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.database,)
            ).fetchone()
        except psycopg.errors.UndefinedColumn:
            return 0
        return int(row[0]) if row and row[0] is not None else 0

    def read(self) -> Reading:
        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        return Reading(
            at=time.perf_counter(),
            server=self.server.cpu_seconds(),
            client=time.process_time(),
            postgres=self._postgres_seconds(),
            machine=sum(machine) - idle,
            sessions=self._sessions(),
            redis=self._redis_seconds() if self.redis else 0.0,
            backends=self._backend_seconds() if self.backend_marks else 0.0,
        )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, head in lower case, body) of one response, read by its Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
    end = lower.index(b"\r\n", at + 2)
    length = int(head[at + 17 : end])
    return int(head[9:12]), lower, await reader.readexactly(length) if length else b""


def header_value(lower_head: bytes, name: bytes) -> str:
    """The value of header `name` (lower case, no colon) in a lower-cased head, or "-"."""
    at = lower_head.find(b"\r\n" + name + b":")
    if at < 0:
        return "-"
    start = at + len(name) + 3
    return lower_head[start : lower_head.index(b"\r\n", start)].strip().decode("latin-1")


async def raw_window(
    server: Server,
    calls: list[Call],
    budget: Budget,
    concurrency: int,
    expect: int,
    probe: Probe,
    *,
    once: bool = False,
    tally: bytes | None = None,
) -> Window:
    """The raw client over one window. By default each connection walks the calls cyclically
    from its own offset; with `once`, the connections share one walk that sends each call once
    at most, in order (the window then also ends when the calls run out). `tally`: a response
    header (lower case) whose values are counted (`Window.tally`)."""
    host = f"127.0.0.1:{server.port}"
    payloads = [call.encode(host) for call in calls]
    connections = [
        await asyncio.open_connection("127.0.0.1", server.port) for _ in range(concurrency)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    seen: Counter[str] = Counter()
    shared = itertools.count()

    async def connection(
        k: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        walk = shared if once else itertools.count(k * 7919)  # else its own walk
        for i in walk:
            if not more() or (once and i >= len(payloads)):
                return
            started = time.perf_counter()
            writer.write(payloads[i % len(payloads)])
            status, head, body = await read_response(reader)
            elapsed = time.perf_counter() - started
            if status == expect:
                latencies.append(elapsed)
            else:
                errors.append(f"{status} {body[:300].decode(errors='replace')}")
            if tally is not None:
                seen[header_value(head, tally)] += 1

    before = probe.read()
    more = budget.counter()
    started = time.perf_counter()
    await asyncio.gather(*(connection(k, r, w) for k, (r, w) in enumerate(connections)))
    seconds = time.perf_counter() - started
    after = probe.read()
    for _, writer in connections:
        writer.close()
    return window_of(latencies, errors, seconds, before, after, seen)


async def httpx_window(
    server: Server, calls: list[Call], budget: Budget, concurrency: int, expect: int, probe: Probe
) -> Window:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))  # connect
        latencies: list[float] = []
        errors: list[str] = []

        async def connection(k: int) -> None:
            for i in itertools.count(k * 7919):
                if not more():
                    return
                call = calls[i % len(calls)]
                started = time.perf_counter()
                response = await client.request(
                    call.method, call.path, headers=call.headers, content=call.body or None
                )
                elapsed = time.perf_counter() - started
                if response.status_code == expect:
                    latencies.append(elapsed)
                else:
                    errors.append(f"{response.status_code} {response.text[:300]}")

        before = probe.read()
        more = budget.counter()
        started = time.perf_counter()
        await asyncio.gather(*(connection(k) for k in range(concurrency)))
        seconds = time.perf_counter() - started
        after = probe.read()
    return window_of(latencies, errors, seconds, before, after)


def window_of(
    latencies: list[float],
    errors: list[str],
    seconds: float,
    before: Reading,
    after: Reading,
    tally: Counter[str] | None = None,
) -> Window:
    return Window(
        latencies=np.array(latencies),
        seconds=seconds,
        errors=len(errors),
        first_error=errors[0] if errors else None,
        before=before,
        after=after,
        tally=tally if tally is not None else Counter(),
    )


CLIENTS: dict[str, Callable[..., Any]] = {"raw": raw_window, "httpx": httpx_window}


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop
    return uvloop.new_event_loop


# --------------------------------------------------------------------------- results


def percentiles_ms(latencies: np.ndarray) -> tuple[float, float, float]:
    if not len(latencies):
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    return float(p50), float(p95), float(p99)


def summary(windows: list[Window]) -> dict[str, Any]:
    """A scenario over its windows: latency percentiles, requests/s, cores busy and CPU per
    request (unlike requests/s, barely moved by what else runs on the machine)."""
    latencies = np.concatenate([w.latencies for w in windows])
    seconds = sum(w.seconds for w in windows)
    requests = sum(w.requests for w in windows)
    p50, p95, p99 = percentiles_ms(latencies)

    def weighted(name: str) -> float:
        return sum(w.cores(name) * w.seconds for w in windows) / seconds

    def per_request_ms(name: str) -> float:
        return 1000 * sum(w.cpu_seconds(name) for w in windows) / requests

    return {
        "requests": requests,
        "errors": sum(w.errors for w in windows),
        "rps": requests / seconds,
        "rps_rounds": [w.requests / w.seconds for w in windows],
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        **{f"{name}_cpu": weighted(name) for name in CORES},
        "sessions_per_100": 100 * sum(w.sessions for w in windows) / requests,
        "server_ms": per_request_ms("server"),
        "postgres_ms": per_request_ms("postgres"),
        "redis_ms": per_request_ms("redis"),
        "backends_ms": per_request_ms("backends"),
        "tally": dict(sum((w.tally for w in windows), Counter())),
    }
