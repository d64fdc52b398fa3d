"""The performance endpoint under load, cached and uncached, beside a bare endpoint (issue 8).

Three scenarios, each at `--concurrency` (default 50) keep-alive connections, closed loop,
against the real app served by uvicorn in its own process (`bench.http_load`, the machinery of
`bench.api_operational`):

- **bare**: `GET /healthz`, an `async` route that does nothing: the server stack's own cost;
- **cached**: `GET /v1/agents/{id}/performance?period=...&on=...` over a small fixed set of keys
  (up to CACHED_AGENTS agents x day/month/year, `on` the agent's latest day), each agent asking
  for its own figures with its own token. Before every timed window each key is requested once
  (untimed), so every timed request should be `X-Cache: hit`; the share is counted from the
  header and reported;
- **uncached**: the same endpoint, every request a key never asked for in the current marts
  version: the marts version is bumped (`warehouse.marts_version.bump_marts_version`, mirrored
  into Redis) before every window, then the connections share one walk over (agent, period,
  `on`) with `on` each day of the world (`on` is part of the key even when two days fall in the
  same month or financial year), the periods interleaved so any prefix of the walk is a third
  each. Only keys the marts have rows for are used, so the answers are real 200s (a 404 fails
  the run); the window ends after `--seconds` or when the walk runs out (agents x days x 3 keys
  per version), whichever is first. The agent facts the endpoint authorises with (tenant and
  territory, cached per agent and version) are primed after the bump by one leaderboard request
  per agent (untimed), so a timed request computes the performance answer itself: two SQL
  queries on the warehouse (the agent's two periods, the territory median), the single-flight
  lock and the store in Redis. The miss share is counted from `X-Cache` and reported.

The rounds rotate the order of the scenarios (bare, cached, uncached; cached, uncached, bare;
...) so drift in a shared machine slows all alike. Reported per scenario: p50/p95/p99 latency,
requests/s (over all rounds and per round), CPU per request of the server, of the PostgreSQL
backends of the world's two databases and of Redis (steadier than requests/s on a busy
machine), cores busy (the whole PostgreSQL server and the rest of the machine too), warehouse
sessions opened, the `X-Cache` shares; then cached/bare throughput and the aims: cached p95
under 20 ms, uncached p95 under 100 ms, cached throughput at least half the bare endpoint's.
At a fixed concurrency latency and throughput are tied (Little's law: mean latency =
connections / requests/s), so a p95 under 20 ms at 50 connections needs well over 2,500
requests/s, and one under 100 ms well over 500.

The server runs with `MITRA_INSIGHTS_RATE_LIMIT` set to `--rate-limit` (default 1,000,000,000
requests a minute per caller), so the per-caller limit (default 240) never answers 429 here; its
Redis round trip (`api.ratelimit`) is still paid by every insights request, as in production.
The first pass uses Redis (`--redis-url`, `REDIS_URL` or the local one, if it answers); then,
unless `--no-memory-pass`, one shorter pass (`--memory-rounds`) without `REDIS_URL`: the
in-process answer cache, which reads the marts version from the warehouse on every lookup.

The world: `--operational-url` and `--warehouse-url` (or `BENCH_INSIGHTS_OPERATIONAL_URL` and
`BENCH_INSIGHTS_WAREHOUSE_URL`) of an existing built world (nothing is
dropped; the bench adds `ops.marts_version` if missing, as `ensure_warehouse` does, bumps that
version, and deletes the sign-in sessions it created for the agents' users at the end), else a
small one built once per run into two scratch databases on `--database-url` (the way
`tests/built_world.py` does: the simulator's mvp tier for `--days` days, then Dagster's daily
job as one single-run backfill, without models; 2-3 minutes), dropped at the end.

`--profile SCENARIO` samples the server with py-spy (`pip install py-spy`) during that scenario's
timed windows and prints the functions that cost the most (it slows that scenario a little).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text

from bench.database import DEFAULT_ADMIN_URL, admin_url, scratch_database
from bench.http_load import (
    APP,
    CORES,
    DEFAULT_REDIS_URL,
    REPO_ROOT,
    WARMUP_S,
    Budget,
    Call,
    Probe,
    Server,
    Window,
    event_loop_factory,
    percentiles_ms,
    raw_window,
    redis_url_if_up,
    serve,
    summary,
)
from warehouse import urls
from warehouse.marts_version import bump_marts_version
from warehouse.settings import Settings

SCENARIOS = ("bare", "cached", "uncached")
LABELS = {
    "bare": "bare      GET /healthz",
    "cached": "cached    GET .../performance",
    "uncached": "uncached  GET .../performance",
}
PERIODS = ("day", "month", "year")
MARTS = {  # period: (mart, its period-start column)
    "day": ("agent_performance_daily", "activity_date"),
    "month": ("agent_performance_monthly", "month_start"),
    "year": ("agent_performance_yearly", "year_start"),
}
EXPECTED_HIT = {"cached": "hit", "uncached": "miss"}
CACHED_AGENTS = 20  # agents of the cached scenario's fixed keys (x 3 periods)
AIM_CACHED_P95_MS = 20.0
AIM_UNCACHED_P95_MS = 100.0
AIM_CACHED_SHARE = 0.5
RATE_LIMIT = 1_000_000_000  # MITRA_INSIGHTS_RATE_LIMIT of the served app: never a 429 here
WORLD_START = date(2026, 9, 1)  # the scratch world, as tests/built_world.py builds it
WORLD_DAYS = 21
SECRET = "bench-insights-app-secret"  # noqa: S105 - a scratch world's webhook secret
PII_KEY = "bench-insights-pii-key"
RUN_ID = "bench.api_insights"
PROJECT_PACKAGES = ("api/", "warehouse/", "orchestration/")  # the project's code, in profiles


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class World:
    operational_url: str
    warehouse_url: str
    built: bool  # by this run (scratch databases), else an existing one


def _build_world(admin: str, days: int, stack: ExitStack, scratch: Path) -> World:
    """An mvp world of `days` days into two scratch databases (dropped when `stack` closes):
    simulated, then every data asset materialised as one single-run backfill (no models)."""
    with warnings.catch_warnings():  # Dagster's beta warnings, at import
        warnings.simplefilter("ignore")
        import dagster as dg

        from orchestration.definitions import build_definitions, materialize_days
        from orchestration.demo import QUIET_RUN_CONFIG
        from orchestration.resources import DatabasesResource, LandingResource
    from simulator.config import SimulationConfig
    from simulator.runner import simulate
    from warehouse.migrate import upgrade

    config = SimulationConfig(
        tier="mvp",
        start=WORLD_START,
        days=days,
        seed=11,
        landing_root=scratch / "landing",
        truth_root=scratch / "truth",
    )
    operational = stack.enter_context(scratch_database(admin, "op_"))
    warehouse = stack.enter_context(scratch_database(admin, "wh_"))
    print(f"  building an mvp world of {days} days (simulator, then Dagster)...", flush=True)
    started = time.perf_counter()
    upgrade(operational)
    simulate(config, operational, app_secret=SECRET.encode(), progress=False)
    simulated = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_definitions(
            DatabasesResource(operational_url=operational, warehouse_url=warehouse),
            LandingResource(root=str(config.landing_root), app_secret=SECRET, pii_key=PII_KEY),
            partitions_start=config.start,
        )
    last = config.start + timedelta(days=days - 1)
    log = io.StringIO()
    with (
        dg.instance_for_test() as instance,
        contextlib.redirect_stdout(log),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # Dagster's beta warnings
        results = materialize_days(defs, instance, config.start, last, QUIET_RUN_CONFIG)
    failed = [
        f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
        for result in results
        for event in result.all_events
        if event.is_step_failure
    ]
    if failed or not all(result.success for result in results):
        raise RuntimeError(f"building the world failed: {'; '.join(failed)[:3000]}")
    print(
        f"  world built: simulated in {simulated - started:.0f} s, materialised in "
        f"{time.perf_counter() - simulated:.0f} s",
        flush=True,
    )
    return World(operational, warehouse, built=True)


@dataclass(frozen=True)
class Agent:
    agent_id: uuid.UUID
    user_id: uuid.UUID
    last_day: date


@dataclass(frozen=True)
class Plan:
    """The agents and the performance keys of the scenarios."""

    agents: list[Agent]
    days: list[date]
    cached: list[tuple[Agent, str, date]]
    uncached: list[tuple[Agent, str, date]]  # one walk per marts version


def _plan(world: World) -> Plan:
    """Every (agent, period, day) the marts answer for: the agents with daily rows and a user,
    each day they have, and a period only when its mart has the agent's row for that day's
    period (so no request is a 404)."""
    from api.insights.periods import PERIODS as SPECS
    from api.insights.periods import Period

    starts: dict[str, dict[uuid.UUID, set[date]]] = {}
    with psycopg.connect(urls.libpq_url(world.warehouse_url)) as conn:
        for period, (mart, column) in MARTS.items():
            query = sql.SQL("SELECT agent_id, {} FROM marts.{}").format(
                sql.Identifier(column), sql.Identifier(mart)
            )
            rows = conn.execute(query).fetchall()
            found: dict[uuid.UUID, set[date]] = defaultdict(set)
            for agent_id, start in rows:
                found[agent_id].add(start)
            starts[period] = found
    daily = starts["day"]
    with psycopg.connect(urls.libpq_url(world.operational_url)) as conn:
        users = dict(
            conn.execute(
                "SELECT id, user_id FROM agents WHERE id = ANY(%s) AND user_id IS NOT NULL",
                (list(daily),),
            ).fetchall()
        )
    agents = [
        Agent(agent_id, users[agent_id], max(daily[agent_id]))
        for agent_id in sorted(daily, key=str)
        if agent_id in users
    ]
    if not agents:
        raise RuntimeError("no agent of the warehouse has daily performance rows and a user")
    days = sorted({day for agent in agents for day in daily[agent.agent_id]})

    def answered(agent: Agent, period: str, day: date) -> bool:
        return SPECS[Period(period)].start_of(day) in starts[period].get(agent.agent_id, ())

    uncached = [
        (agent, period, day)
        for day in days
        for agent in agents
        for period in PERIODS
        if answered(agent, period, day)
    ]
    cached = [
        (agent, period, agent.last_day)
        for agent in agents[:CACHED_AGENTS]
        for period in PERIODS
        if answered(agent, period, agent.last_day)
    ]
    return Plan(agents, days, cached, uncached)


class Tokens:
    """Access tokens of the agents' users, minted like a sign-in (`tests.api.conftest.Api.token`,
    minus the OTP): one sign-in session per user, its access token re-issued for every round
    (they live 15 minutes). `close` deletes the sessions made here, and only those."""

    def __init__(self, operational_url: str, settings: Settings) -> None:
        self.engine: Engine = create_engine(urls.sqlalchemy_url(operational_url))
        self.settings = settings
        self.principals: dict[uuid.UUID, Any] = {}
        self.session_ids: list[uuid.UUID] = []

    def token(self, user_id: uuid.UUID) -> str:
        from api.db import scoped_session
        from api.security.sessions import start_session
        from api.security.tokens import issue_access_token
        from warehouse.operational.models import User

        if user_id not in self.principals:
            with scoped_session(self.engine, None) as session:
                user = session.get(User, user_id)
                if user is None:
                    raise RuntimeError(f"no user {user_id} in the operational database")
                issued = start_session(session, user, ip=None, user_agent=RUN_ID)
            self.principals[user_id] = issued.principal
            self.session_ids.append(issued.session.id)
        return issue_access_token(self.settings, self.principals[user_id])

    def close(self) -> None:
        if self.session_ids:
            with self.engine.begin() as conn:
                conn.execute(
                    text("DELETE FROM user_sessions WHERE id = ANY(:ids)"),
                    {"ids": self.session_ids},
                )
        self.engine.dispose()


def _path(agent: Agent, period: str, day: date) -> str:
    return f"/v1/agents/{agent.agent_id}/performance?period={period}&on={day.isoformat()}"


def _calls(plan: Plan, tokens: Tokens) -> dict[str, list[Call]]:
    """The requests of each scenario with fresh tokens, plus `facts`: one leaderboard request
    per agent, which caches the agent facts of the current marts version."""
    auth = {a.user_id: {"authorization": f"Bearer {tokens.token(a.user_id)}"} for a in plan.agents}
    return {
        "bare": [Call("GET", "/healthz", {})],
        "cached": [Call("GET", _path(*key), auth[key[0].user_id]) for key in plan.cached],
        "uncached": [Call("GET", _path(*key), auth[key[0].user_id]) for key in plan.uncached],
        "facts": [
            Call("GET", f"/v1/agents/{a.agent_id}/leaderboard?period=day", auth[a.user_id])
            for a in plan.agents
        ],
    }


# --------------------------------------------------------------------------- the server


def _server_env(
    world: World, redis_url: str | None, secret: str, scratch: Path, rate_limit: int
) -> dict[str, str]:
    """The environment `get_settings()` builds the served app's settings from (as deployed);
    `REDIS_URL` empty without Redis (so a `.env` cannot set it)."""
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    return env | {
        "REDIS_URL": redis_url or "",
        "MITRA_OPERATIONAL_URL": world.operational_url,
        "MITRA_WAREHOUSE_URL": world.warehouse_url,
        "MITRA_DAGSTER_URL": world.operational_url,  # needed to start; never used here
        "MITRA_LANDING_URL": str(scratch / "landing"),
        "MITRA_ENV": "development",
        "MITRA_JWT_SECRET": secret,
        "MITRA_HOME": str(scratch / "home"),
        "MITRA_INSIGHTS_RATE_LIMIT": str(rate_limit),
    }


def _py_spy_program() -> str:
    beside = Path(sys.executable).with_name("py-spy")  # the venv's
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    return found


@contextmanager
def _py_spy(server: Server, seconds: float, out: Path, workers: int) -> Iterator[None]:
    """py-spy sampling the server for `seconds` (collapsed stacks into `out`)."""
    command = [
        _py_spy_program(), "record", "--pid", str(server.process.pid), "--rate", "200",
        "--format", "raw", "--nonblocking", "--gil", "--duration", str(max(1, math.ceil(seconds))),
        "--output", str(out),
        *(["--subprocesses"] if workers > 1 else []),
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attached
    try:
        yield
    finally:
        try:
            _, err = spy.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if spy.returncode != 0:
            print(f"  py-spy failed: {err.decode(errors='replace')[-500:]}", flush=True)


def _drive(
    label: str,
    world: World,
    plan: Plan,
    tokens: Tokens,
    redis_url: str | None,
    options: dict[str, Any],
    scratch: Path,
) -> dict[str, list[Window]]:
    """One pass: the server started with (or without) Redis, every scenario warmed up, then
    the rounds."""
    seconds, concurrency, rounds = options["seconds"], options["concurrency"], options["rounds"]
    chosen, profile = options["scenarios"], options["profile"]
    budget = Budget(seconds=seconds)
    warmup = Budget(seconds=WARMUP_S)
    scratch.mkdir(parents=True, exist_ok=True)
    # A version of this pass's own (and `ops.marts_version` created if the world predates it).
    bump_marts_version(world.warehouse_url, run_id=RUN_ID, redis_url=redis_url)
    env = _server_env(world, redis_url, options["secret"], scratch, options["rate_limit"])
    windows: dict[str, list[Window]] = {name: [] for name in chosen}
    dbs = (urls.parse(world.warehouse_url).database, urls.parse(world.operational_url).database)
    with (
        serve(env, options["workers"], False, scratch, options["app"]) as server,
        closing(
            Probe(server, world.warehouse_url, redis=redis_url is not None, backends=dbs)
        ) as probe,
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
    ):

        def window(calls: list[Call], until: Budget, once: bool = False) -> Window:
            result = runner.run(
                raw_window(
                    server, calls, until, concurrency, 200, probe, once=once, tally=b"x-cache"
                )
            )
            if result.errors:
                raise RuntimeError(
                    f"{label}: {result.errors} of {result.requests} requests did not answer "
                    f"200; the first: {result.first_error}"
                )
            return result

        def measure(
            name: str, calls: dict[str, list[Call]], until: Budget, spy: Path | None
        ) -> Window:
            if name == "cached":  # every key once: stored under the current marts version
                window(calls["cached"], Budget(requests=len(calls["cached"])), once=True)
            elif name == "uncached":  # a new marts version, its agent facts cached
                bump_marts_version(world.warehouse_url, run_id=RUN_ID, redis_url=redis_url)
                window(calls["facts"], Budget(requests=len(calls["facts"])), once=True)
            with (
                _py_spy(server, seconds, spy, options["workers"])
                if spy
                else contextlib.nullcontext()
            ):
                return window(calls[name], until, once=name == "uncached")

        calls = _calls(plan, tokens)
        for name in chosen:
            measure(name, calls, warmup, None)
        print(f"  {label}: warmed up ({warmup} of each scenario)", flush=True)
        for round_index in range(rounds):
            calls = _calls(plan, tokens)
            shift = round_index % len(chosen)
            for name in (*chosen[shift:], *chosen[:shift]):
                spy = (
                    options["profile_dir"] / f"{label}-{name}-{round_index + 1}.txt"
                    if profile == name
                    else None
                )
                windows[name].append(measure(name, calls, budget, spy))
                _progress(label, round_index, rounds, name, windows[name][-1])
    return windows


# --------------------------------------------------------------------------- the run


def run(
    seconds: float = 5.0,
    concurrency: int = 50,
    rounds: int = 3,
    operational_url: str | None = None,
    warehouse_url: str | None = None,
    database_url: str | None = None,
    days: int = WORLD_DAYS,
    redis_url: str | None = None,
    memory_pass: bool = True,
    memory_rounds: int = 1,
    workers: int = 1,
    app: str = APP,
    scenarios: tuple[str, ...] = SCENARIOS,
    rate_limit: int = RATE_LIMIT,
    profile: str | None = None,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Build (or take) the world, run the Redis pass and the in-process pass, report."""
    operational_url = operational_url or os.environ.get("BENCH_INSIGHTS_OPERATIONAL_URL")
    warehouse_url = warehouse_url or os.environ.get("BENCH_INSIGHTS_WAREHOUSE_URL")
    if (operational_url is None) != (warehouse_url is None):
        raise ValueError("give both --operational-url and --warehouse-url, or neither")
    redis_url = redis_url_if_up(redis_url)
    chosen = tuple(name for name in SCENARIOS if name in scenarios)
    passes = [("redis", redis_url, rounds)] if redis_url else []
    if memory_pass or not redis_url:
        passes.append(("memory", None, memory_rounds if redis_url else rounds))
    print(
        f"insights API under load: {concurrency} keep-alive connections, raw client, uvicorn "
        f"{workers} worker{'s' if workers > 1 else ''}, {rounds} rounds x {seconds:g} s per "
        f"scenario (warm-up {WARMUP_S:g} s), passes: "
        + ", ".join(f"{name} ({n} rounds)" for name, _, n in passes)
        + f"; Redis {redis_url or 'none'}; MITRA_INSIGHTS_RATE_LIMIT={rate_limit:,}/min; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mitra-insights-")))
        if operational_url and warehouse_url:
            world = World(urls.libpq_url(operational_url), urls.libpq_url(warehouse_url), False)
        else:
            world = _build_world(admin_url(database_url), days, stack, scratch)
        print(
            f"  world: operational {urls.parse(world.operational_url).render_as_string()}, "
            f"warehouse {urls.parse(world.warehouse_url).render_as_string()}"
            + (" (scratch, dropped at the end)" if world.built else " (given; kept)"),
            flush=True,
        )
        plan = _plan(world)
        print(
            f"  {len(plan.agents)} agents, days {plan.days[0]}..{plan.days[-1]}: "
            f"{len(plan.cached)} cached keys, {len(plan.uncached):,} uncached keys per marts "
            "version",
            flush=True,
        )
        secret = secrets.token_urlsafe(32)
        settings = Settings(
            operational_url=world.operational_url, warehouse_url=world.warehouse_url,
            dagster_url=world.operational_url, jwt_secret=SecretStr(secret),
        )  # fmt: skip
        tokens = Tokens(world.operational_url, settings)
        stack.callback(tokens.close)
        if profile:
            profile_dir = profile_dir or scratch / "profiles"
            profile_dir.mkdir(parents=True, exist_ok=True)
        options = {
            "seconds": seconds, "concurrency": concurrency, "scenarios": chosen,
            "profile": profile, "profile_dir": profile_dir, "secret": secret,
            "rate_limit": rate_limit, "workers": workers, "app": app,
        }  # fmt: skip
        for label, url, pass_rounds in passes:
            windows = _drive(
                label, world, plan, tokens, url, options | {"rounds": pass_rounds}, scratch / label
            )
            results[label] = _results(windows)
        config = {
            "seconds": seconds, "concurrency": concurrency, "workers": workers,
            "agents": len(plan.agents), "cached_keys": len(plan.cached),
            "uncached_keys": len(plan.uncached), "rate_limit": rate_limit,
            "passes": {label: n for label, _, n in passes}, "redis_url": redis_url,
        }  # fmt: skip
        results["config"] = config
        _report(results)
        if profile:
            for label, _, _ in passes:
                _report_profile(
                    label, profile, sorted(profile_dir.glob(f"{label}-{profile}-*.txt"))
                )
    return results


def _results(windows: dict[str, list[Window]]) -> dict[str, Any]:
    scenarios = {name: summary(scenario_windows) for name, scenario_windows in windows.items()}
    for name, expected in EXPECTED_HIT.items():
        if name in scenarios:
            tally = scenarios[name]["tally"]
            scenarios[name]["expected_share"] = tally.get(expected, 0) / max(1, sum(tally.values()))
    out: dict[str, Any] = {"scenarios": scenarios}
    if "bare" in scenarios:
        for name in set(scenarios) - {"bare"}:
            out[f"{name}_over_bare"] = scenarios[name]["rps"] / scenarios["bare"]["rps"]
    return out


def _progress(label: str, round_index: int, rounds: int, name: str, w: Window) -> None:
    p50, p95, _ = percentiles_ms(w.latencies)
    cache = ""
    if name in EXPECTED_HIT:
        total = sum(w.tally.values())
        cache = f"; X-Cache {EXPECTED_HIT[name]} {w.tally.get(EXPECTED_HIT[name], 0) / total:.1%}"
    cores = {part: w.cores(part) for part in CORES}
    print(
        f"  {label} round {round_index + 1}/{rounds} {name:<8} {w.requests:>7,} requests in "
        f"{w.seconds:5.2f} s {w.requests / w.seconds:>7,.0f} req/s  p50 {p50:6.1f} ms "
        f"p95 {p95:6.1f} ms; cores: server {cores['server']:4.2f} client {cores['client']:4.2f} "
        f"pg ours {cores['backends']:4.2f} all {cores['postgres']:4.2f} "
        f"redis {cores['redis']:4.2f} other {cores['other']:4.2f}"
        f"{cache}",
        flush=True,
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _report(results: dict[str, Any]) -> None:
    config = results["config"]
    print(
        f"insights API, {config['concurrency']} connections, {config['seconds']:g} s windows, "
        f"uvicorn {config['workers']} worker(s), {config['agents']} agents, "
        f"{config['cached_keys']} cached keys, {config['uncached_keys']:,} uncached keys per "
        f"marts version; MITRA_INSIGHTS_RATE_LIMIT={config['rate_limit']:,}/min (no 429)"
    )
    for label, rounds in config["passes"].items():
        result, scenarios = results[label], results[label]["scenarios"]
        cache = "Redis" if label == "redis" else "in-process cache, no REDIS_URL"
        print(f" {label} pass ({cache}), {rounds} round(s)")
        print(f"  {'':<30} {'p50':>9} {'p95':>9} {'p99':>9} {'req/s':>8}  X-Cache  per round")
        for name, s in scenarios.items():
            share = (
                f"{s['expected_share']:6.1%} {EXPECTED_HIT[name]}" if name in EXPECTED_HIT else ""
            )
            per_round = "/".join(f"{rps:,.0f}" for rps in s["rps_rounds"])
            print(
                f"  {LABELS[name]:<30} {s['p50_ms']:6.1f} ms {s['p95_ms']:6.1f} ms "
                f"{s['p99_ms']:6.1f} ms {s['rps']:>8,.0f}  {share:<11} {per_round}"
            )
        print(
            f"  {'CPU ms/request':<30} {'server':>7} {'pg ours':>8} {'redis':>6}   cores busy: "
            f"{'server':>6} {'client':>6} {'pg ours':>7} {'pg all':>6} {'redis':>6} {'other':>6}"
            "  wh sessions/100"
        )
        for name, s in scenarios.items():
            print(
                f"  {LABELS[name]:<30} {s['server_ms']:7.2f} {s['backends_ms']:8.2f} "
                f"{s['redis_ms']:6.2f}               {s['server_cpu']:6.2f} "
                f"{s['client_cpu']:6.2f} {s['backends_cpu']:7.2f} {s['postgres_cpu']:6.2f} "
                f"{s['redis_cpu']:6.2f} {s['other_cpu']:6.2f}  {s['sessions_per_100']:6.1f}"
            )
        print(
            "  (pg ours: the backends of the world's two databases; pg all: the whole PostgreSQL"
            " server, other users' databases included; other: the rest of the machine)"
        )
        if "cached_over_bare" in result:
            share = result["cached_over_bare"]
            by_cpu = scenarios["bare"]["server_ms"] / scenarios["cached"]["server_ms"]
            print(
                f"  cached / bare throughput: {share:.2f} (aim >= {AIM_CACHED_SHARE}: "
                f"{_verdict(share >= AIM_CACHED_SHARE)}); by server CPU per request: {by_cpu:.2f}"
            )
        if "uncached_over_bare" in result:
            print(f"  uncached / bare throughput: {result['uncached_over_bare']:.2f}")
        for name, aim in (("cached", AIM_CACHED_P95_MS), ("uncached", AIM_UNCACHED_P95_MS)):
            if name in scenarios:
                p95 = scenarios[name]["p95_ms"]
                print(
                    f"  {name} p95 {p95:.1f} ms (aim < {aim:.0f} ms: {_verdict(p95 < aim)}); "
                    f"at {config['concurrency']} connections the mean latency is connections / "
                    f"throughput, so even a mean of {aim:.0f} ms needs "
                    f"{1000 * config['concurrency'] / aim:,.0f}+ req/s (measured "
                    f"{scenarios[name]['rps']:,.0f})"
                )
        if "bare" in scenarios:
            bare = scenarios["bare"]
            bottleneck = "the bottleneck" if bare["client_cpu"] > 0.9 else "not the bottleneck"
            print(
                f"  load generator during bare: {bare['client_cpu']:.2f} cores (server "
                f"{bare['server_cpu']:.2f}): the client is {bottleneck}"
            )
        other = max(s["other_cpu"] for s in scenarios.values())
        if other > 0.2:
            print(
                f"  NOTE: other programs kept up to {other:.2f} of the {os.cpu_count()} cores "
                "busy during the windows: these numbers are lower than on a quiet machine"
            )


# --------------------------------------------------------------------------- profiles


def _frame(frame: str) -> str:
    """py-spy's `function (path:line)` as `path:function`, the path short (py-spy already
    shortens most to their import path)."""
    function, _, where = frame.rpartition(" (")
    path = where.rsplit(":", 1)[0]
    if not function or not path:
        return frame
    if path.startswith("/"):
        if "site-packages/" in path:
            path = path.split("site-packages/", 1)[1]
        elif path.startswith(str(REPO_ROOT)):
            path = os.path.relpath(path, REPO_ROOT)
    return f"{path}:{function}"


def _package(frame: str) -> str:
    return frame.split("/")[0].split(":")[0].removesuffix(".py")


def _report_profile(label: str, scenario: str, files: list[Path], top: int = 15) -> None:
    """Where the server's time went, as shares of py-spy's samples of the thread holding the GIL
    (`--gil`: Python running, not threads waiting on PostgreSQL): self time by package; each
    sample charged to the innermost function of the project's own code on its stack (that
    function and the libraries it called; the ASGI middlewares' `__call__` do not count, so
    uvicorn, Starlette, FastAPI's routing and dependency solving show as "no project function",
    by the innermost library on the stack), and the functions running at the top of the
    stack."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [
                _frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))
            ]
            n = int(count)
            total += n
            leaf = frames[-1] if frames else "<no Python frame>"
            own[leaf] += n
            packages[_package(leaf)] += n
            ours = [
                f
                for f in frames
                if f.startswith(PROJECT_PACKAGES) and not f.endswith("Middleware.__call__")
            ]
            if ours:
                project[ours[-1]] += n
            else:
                libraries = [p for f in frames if (p := _package(f)) not in sys.stdlib_module_names]
                project[f"(no project function) {(libraries or [_package(leaf)])[-1]}"] += n
    if not total:
        print(f" profile of {label}/{scenario}: no samples ({', '.join(map(str, files))})")
        return
    print(
        f" profile of the server, {label} pass, {scenario}: {total:,} samples of the GIL holder "
        f"({files[0].parent})"
    )
    print("  self time by package: " + ", ".join(
        f"{name} {n / total:.1%}" for name, n in packages.most_common(12)
    ))  # fmt: skip
    print("  by the innermost project function on the stack (with the libraries it called):")
    for name, n in project.most_common(top):
        print(f"    {n / total:6.1%}  {name}")
    print("  self (running):")
    for name, n in own.most_common(top):
        print(f"    {n / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_insights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="timed seconds per scenario and round (5)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="keep-alive connections (default 50)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the Redis pass (3)")
    parser.add_argument(
        "--operational-url",
        help="operational database of an existing built world (kept; default "
        "BENCH_INSIGHTS_OPERATIONAL_URL, else a scratch world is built)",
    )
    parser.add_argument(
        "--warehouse-url", help="its warehouse with marts (kept; BENCH_INSIGHTS_WAREHOUSE_URL)"
    )
    parser.add_argument(
        "--database-url",
        help="admin URL of the PostgreSQL server for a scratch world (default: "
        f"BENCH_DATABASE_URL, TEST_DATABASE_URL, {DEFAULT_ADMIN_URL}, else the embedded server)",
    )
    parser.add_argument(
        "--days", type=int, default=WORLD_DAYS, help=f"days of a scratch world ({WORLD_DAYS})"
    )
    parser.add_argument(
        "--redis-url", help=f"the app's Redis (default REDIS_URL, else {DEFAULT_REDIS_URL} if up)"
    )
    parser.add_argument(
        "--no-memory-pass",
        action="store_true",
        help="skip the pass without REDIS_URL (the in-process answer cache)",
    )
    parser.add_argument(
        "--memory-rounds", type=int, default=1, help="rounds of the in-process pass (1)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=RATE_LIMIT,
        help=f"MITRA_INSIGHTS_RATE_LIMIT of the served app, per caller a minute ({RATE_LIMIT:,}:"
        " high enough that no request is refused)",
    )
    parser.add_argument(
        "--app", default=APP, help=f"the app factory uvicorn serves (default {APP})"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable); default all three",
    )
    parser.add_argument(
        "--profile",
        choices=SCENARIOS,
        help="sample the server with py-spy during this scenario's timed windows",
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="keep py-spy's collapsed stacks here (default: temporary)"
    )
    args = parser.parse_args()
    run(
        seconds=args.seconds,
        concurrency=args.concurrency,
        rounds=args.rounds,
        operational_url=args.operational_url,
        warehouse_url=args.warehouse_url,
        database_url=args.database_url,
        days=args.days,
        redis_url=args.redis_url,
        memory_pass=not args.no_memory_pass,
        memory_rounds=args.memory_rounds,
        workers=args.workers,
        app=args.app,
        scenarios=tuple(args.scenario or SCENARIOS),
        rate_limit=args.rate_limit,
        profile=args.profile,
        profile_dir=args.profile_dir,
    )


if __name__ == "__main__":
    main()
