"""The operational API under load: a policy read and event intake beside a bare endpoint.

Three scenarios, each at `--concurrency` (default 50) keep-alive connections, closed loop (every
connection sends its next request as soon as the last one is answered), against the real app
served by uvicorn in its own process:

- **bare**: `GET /healthz`, an `async` route that does nothing: what the server stack itself
  (uvicorn, FastAPI routing, JSON) costs per request, so the other two read as a share of it;
- **read**: `GET /v1/policies/{id}` as an agent of that policy's tenant (a JWT verified per
  request, a transaction under row-level security on PostgreSQL, the row as JSON);
- **intake**: `POST /v1/events`, a batch of 20 app events (BATCH_EVENTS) (a phone flushing its
  queue: ~14 KB, simulator events re-timed to now and re-owned by the caller), validated by
  ingestion's parser and written durably (fsync) to the landing zone before the 202.

Set-up: a fresh database on `--database-url` (an admin URL; else `BENCH_DATABASE_URL`,
`TEST_DATABASE_URL`, PostgreSQL on 127.0.0.1:5432, or the embedded server), migrated, with the
API tests' two-tenant world (`tests.api.conftest`); the landing zone is a temporary folder; both
are removed at the end. Access tokens are minted by the same code as a sign-in (`Api.token`), so
no OTP is sent. The server runs `uvicorn api.main:create_app --factory` (uvloop, httptools, no
access log) with one worker by default: the machine has 2 cores, shared by the server,
PostgreSQL and this load generator, so a second worker only takes CPU from the other two
(`--workers 2`, measured: no more requests/s, longer tails).

The load generator runs in this process, apart from the server, so it never competes for the
server's GIL. By default it is a minimal HTTP/1.1 client on asyncio streams (uvloop): requests
encoded in advance, responses read by Content-Length. It drives the bare endpoint at ~12,000
requests/s with a quarter of a core, so the server saturates first; `--client httpx` uses
`httpx.AsyncClient` instead, which at 50 connections here saturated a core at ~140 requests/s
(its pool's cost grows with the connections: encode/httpx#3215) and would measure itself.
Over each timed window the bench reads the CPU of the server, of this process, of PostgreSQL
(the whole server) and of the machine: "other" is what else ran (a shared machine is noisy, and
the report says so), and the database sessions opened (a pool that reconnects shows there).

Each scenario is warmed up, then runs for `--seconds` (or `--requests` requests) per round, for
`--rounds` rounds, the order rotated every round (bare, read, intake; read, intake, bare; ...) so
drift in the machine slows all alike. Reported per scenario: p50/p95/p99 latency and requests/s
over all rounds (total requests / total time, and per round), the CPU and sessions above, and
the ratios to the bare endpoint. The aims (issue 7): p95 under 50 ms, and the read at least half
the bare endpoint's throughput. At a fixed concurrency, latency and throughput are tied (Little's
law: mean latency = concurrency / throughput), so a p95 under 50 ms at 50 connections needs
roughly 1,000+ requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import uuid
from collections import Counter
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from api.security.otp_delivery import RecordingOtpSender
from bench.database import DEFAULT_ADMIN_URL, admin_url, scratch_database
from bench.http_load import (
    APP,
    CLIENTS,
    CORES,
    DEFAULT_REDIS_URL,
    WARMUP_S,
    Budget,
    Call,
    Probe,
    Window,
    event_loop_factory,
    percentiles_ms,
    redis_url_if_up,
    serve,
)
from bench.http_load import summary as summarise
from simulator.app_events import day_chunks
from simulator.config import FaultRates, SimulationConfig
from simulator.world import build_world
from tests.api.conftest import Api, Tenant, _tenant
from warehouse import urls
from warehouse.migrate import upgrade
from warehouse.settings import Settings

SCENARIOS = ("bare", "read", "intake")
LABELS = {
    "bare": "bare    GET /healthz",
    "read": "read    GET /v1/policies/{id}",
    "intake": "intake  POST /v1/events",
}
EXPECTED_STATUS = {"bare": 200, "read": 200, "intake": 202}
BATCH_EVENTS = 20  # events per intake request: a phone flushing its queue (30 s of a session)
BODIES_PER_USER = 128  # distinct intake bodies per caller, cycled (each event its own messageId)
AIM_P95_MS = 50.0
AIM_READ_SHARE = 0.5
EVENTS_DAY = date(2026, 1, 5)  # the simulator day the events are taken from (re-timed to now)


# --------------------------------------------------------------------------- database and world


def _seed(engine: Engine) -> list[Tenant]:
    """The API tests' world: two tenants, each with agents, customers and policies."""
    with Session(engine) as session, session.begin():
        return [_tenant(session, "BENA"), _tenant(session, "BENB")]


# --------------------------------------------------------------------------- requests


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _simulated_events() -> list[dict[str, Any]]:
    """One clean simulator day of the mvp tier: the app's events in the SDK's layout."""
    config = SimulationConfig(tier="mvp", start=EVENTS_DAY, days=1, faults=FaultRates.none())
    blocks = day_chunks(build_world(config), EVENTS_DAY, config, Counter())
    return [orjson.loads(line) for block in blocks for line in bytes(block).split(b"\n")]


def _batch_body(events: list[dict[str, Any]], user_id: uuid.UUID, now: datetime) -> bytes:
    """A batch as the caller's phone would send it now: `receivedAt` is the server's, `userId`
    the caller's, each `messageId` new, and the device clocks shifted so the batch was sent a
    second ago (their differences, which ingestion relies on, kept)."""
    sent = max(datetime.fromisoformat(e["sentAt"]) for e in events)
    shift = now - timedelta(seconds=1) - sent
    batch = []
    for event in events:
        event = {key: value for key, value in event.items() if key != "receivedAt"}
        event["messageId"] = str(uuid.uuid4())
        event["userId"] = str(user_id)
        for key in ("originalTimestamp", "sentAt"):
            event[key] = _iso(datetime.fromisoformat(event[key]) + shift)
        batch.append(event)
    return orjson.dumps({"batch": batch})


def _workload(api: Api, tenants: list[Tenant], events: list[dict[str, Any]]) -> dict[str, list]:
    """The calls of each scenario, cycled by the load generator, the two tenants taking turns.
    Tokens are fresh (one sign-in session per agent): they live 15 minutes, so every round
    gets new ones."""
    now = datetime.now(UTC)
    calls: dict[str, list[Call]] = {"bare": [Call("GET", "/healthz", {})], "read": [], "intake": []}
    starts = [(k * BATCH_EVENTS) % (len(events) - BATCH_EVENTS) for k in range(BODIES_PER_USER)]
    for tenant in tenants:
        auth = {"authorization": f"Bearer {api.token(tenant.agent_user)}"}
        calls["read"].append(Call("GET", f"/v1/policies/{tenant.policy_id}", auth))
        post = auth | {"content-type": "application/json"}
        calls["intake"] += [
            Call(
                "POST",
                "/v1/events",
                post,
                _batch_body(events[s : s + BATCH_EVENTS], tenant.agent_user, now),
            )
            for s in starts
        ]
    return calls


# --------------------------------------------------------------------------- the run


def _landed(landing: Path) -> tuple[int, int]:
    """Files and lines the intake wrote to the landing zone."""
    files = sorted(landing.glob("app_events/dt=*/*.ndjson"))
    return len(files), sum(path.read_bytes().count(b"\n") for path in files)


def _server_env(settings: Settings, redis_url: str | None, home: Path) -> dict[str, str]:
    """The environment `get_settings()` builds the served app's settings from (as deployed)."""
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    env |= {"REDIS_URL": redis_url} if redis_url else {}
    return env | {
        # The warehouse and Dagster URLs are needed to start; these routes never use them.
        "MITRA_OPERATIONAL_URL": str(settings.operational_url),
        "MITRA_WAREHOUSE_URL": str(settings.warehouse_url),
        "MITRA_DAGSTER_URL": str(settings.dagster_url),
        "MITRA_LANDING_URL": settings.landing_url,
        "MITRA_ENV": settings.env,
        "MITRA_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "MITRA_HOME": str(home),
    }


def run(
    seconds: float = 5.0,
    requests: int | None = None,
    concurrency: int = 50,
    rounds: int = 3,
    database_url: str | None = None,
    redis_url: str | None = None,
    workers: int = 1,
    client: str = "raw",
    access_log: bool = False,
    scenarios: tuple[str, ...] = SCENARIOS,
    app: str = APP,
) -> dict[str, Any]:
    """Start the server on a fresh database, drive the scenarios in rotated rounds, report.
    Each window lasts `seconds`, or `requests` requests when given."""
    budget = Budget(requests=requests) if requests else Budget(seconds=seconds)
    warmup = Budget(requests=max(200, requests // 10)) if requests else Budget(seconds=WARMUP_S)
    window = CLIENTS[client]
    admin = admin_url(database_url)
    redis_url = redis_url_if_up(redis_url)
    print(
        f"operational API under load: {concurrency} keep-alive connections, {client} client, "
        f"uvicorn {workers} worker{'s' if workers > 1 else ''}, {rounds} rounds x {budget} per "
        f"scenario (warm-up {warmup}), {os.cpu_count()} CPUs",
        flush=True,
    )
    events = _simulated_events()
    with (
        scratch_database(admin) as url,
        tempfile.TemporaryDirectory(prefix="mitra-bench-api-") as scratch_dir,
    ):
        scratch = Path(scratch_dir)
        landing = scratch / "landing"
        secret = secrets.token_urlsafe(32)
        upgrade(url)
        owner = create_engine(urls.sqlalchemy_url(url))
        tenants = _seed(owner)
        settings = Settings(
            operational_url=url, warehouse_url=url, dagster_url=url,
            landing_url=str(landing), jwt_secret=SecretStr(secret), env="development",
        )  # fmt: skip
        api = Api(base="", settings=settings, sender=RecordingOtpSender(), engine=owner)
        env = _server_env(settings, redis_url, scratch / "home")
        print(
            f"  database {urls.parse(url).render_as_string()}, Redis {redis_url or 'none'}, "
            f"landing zone {landing}"
        )
        chosen = tuple(name for name in SCENARIOS if name in scenarios)
        windows: dict[str, list[Window]] = {name: [] for name in chosen}
        intake_requests = [0]  # warm-up included: what the landing zone should hold
        try:
            with (
                serve(env, workers, access_log, scratch, app) as server,
                closing(Probe(server, url)) as probe,
                asyncio.Runner(loop_factory=event_loop_factory()) as runner,
            ):

                def drive(name: str, calls: list[Call], until: Budget) -> Window:
                    result = runner.run(
                        window(server, calls, until, concurrency, EXPECTED_STATUS[name], probe)
                    )
                    _check(name, result)
                    intake_requests[0] += result.requests if name == "intake" else 0
                    return result

                workload = _workload(api, tenants, events)
                for name in chosen:
                    drive(name, workload[name], warmup)
                print(f"  warmed up ({warmup} of each scenario)", flush=True)
                for round_index in range(rounds):
                    workload = _workload(api, tenants, events)
                    shift = round_index % len(chosen)
                    for name in (*chosen[shift:], *chosen[:shift]):
                        windows[name].append(drive(name, workload[name], budget))
                        _progress(round_index, rounds, name, windows[name][-1])
        finally:
            owner.dispose()
        files, lines = _landed(landing)
    config = {
        "window": str(budget), "concurrency": concurrency, "rounds": rounds,
        "warmup": str(warmup), "workers": workers, "client": client, "batch": BATCH_EVENTS,
    }  # fmt: skip
    results = _results(windows, config, (files, lines), intake_requests[0] * BATCH_EVENTS)
    _report(results)
    return results


def _results(
    windows: dict[str, list[Window]],
    config: dict[str, Any],
    landed: tuple[int, int],
    expected_lines: int,
) -> dict[str, Any]:
    summary = {name: summarise(scenario_windows) for name, scenario_windows in windows.items()}
    results: dict[str, Any] = {"scenarios": summary, "config": config}
    if "bare" in summary:
        for name in set(summary) - {"bare"}:
            results[f"{name}_over_bare"] = summary[name]["rps"] / summary["bare"]["rps"]
    if "intake" in summary:
        results |= {
            "events_per_s": summary["intake"]["rps"] * BATCH_EVENTS,
            "landed_files": landed[0],
            "landed_lines": landed[1],
            "expected_lines": expected_lines,
        }
    return results


def _check(name: str, window: Window) -> None:
    if window.errors:
        raise RuntimeError(
            f"{name}: {window.errors} of {window.requests} requests did not answer "
            f"{EXPECTED_STATUS[name]}; the first: {window.first_error}"
        )


def _progress(round_index: int, rounds: int, name: str, w: Window) -> None:
    p50, p95, _ = percentiles_ms(w.latencies)
    cores = {part: w.cores(part) for part in CORES}
    print(
        f"  round {round_index + 1}/{rounds} {name:<6} {w.requests:>7,} requests in "
        f"{w.seconds:6.2f} s {w.requests / w.seconds:>8,.0f} req/s  p50 {p50:6.1f} ms "
        f"p95 {p95:6.1f} ms; cores: server {cores['server']:4.2f} client {cores['client']:4.2f} "
        f"postgres {cores['postgres']:4.2f} other {cores['other']:4.2f}; "
        f"{w.sessions:,} DB sessions",
        flush=True,
    )


def _report(results: dict[str, Any]) -> None:
    config, summary = results["config"], results["scenarios"]
    print(
        f"operational API, {config['concurrency']} connections, {config['rounds']} rounds x "
        f"{config['window']} per scenario, uvicorn {config['workers']} worker(s), "
        f"{config['client']} client; intake batches of {config['batch']} events"
    )
    print(f"  {'':<30} {'p50':>9} {'p95':>9} {'p99':>9} {'req/s':>8}  per round")
    for name, s in summary.items():
        rounds = "/".join(f"{rps:,.0f}" for rps in s["rps_rounds"])
        print(
            f"  {LABELS[name]:<30} {s['p50_ms']:6.1f} ms {s['p95_ms']:6.1f} ms "
            f"{s['p99_ms']:6.1f} ms {s['rps']:>8,.0f}  {rounds}"
        )
    print(f"  {'CPU':<30} {'ms/request':>20}  {'cores busy on average':>36}  new DB sessions")
    print(
        f"  {'':<30} {'server':>9} {'postgres':>10}  {'server':>8} {'client':>8} "
        f"{'postgres':>9} {'other':>8}  per 100 requests"
    )
    for name, s in summary.items():
        print(
            f"  {LABELS[name]:<30} {s['server_ms']:9.2f} {s['postgres_ms']:10.2f}  "
            f"{s['server_cpu']:8.2f} {s['client_cpu']:8.2f} {s['postgres_cpu']:9.2f} "
            f"{s['other_cpu']:8.2f}  {s['sessions_per_100']:6.1f}"
        )
    if "intake" in summary:
        same = results["landed_lines"] == results["expected_lines"]
        print(
            f"  intake: {results['events_per_s']:,.0f} events/s; landed "
            f"{results['landed_lines']:,} events in {results['landed_files']:,} files "
            f"(expected {results['expected_lines']:,}: {'yes' if same else 'NO'})"
        )
    if "read_over_bare" in results:
        share = results["read_over_bare"]
        verdict = "met" if share >= AIM_READ_SHARE else "MISSED"
        print(f"  read / bare throughput: {share:.2f} (aim >= {AIM_READ_SHARE}: {verdict})")
    if "intake_over_bare" in results:
        print(f"  intake / bare throughput: {results['intake_over_bare']:.2f}")
    if "bare" in summary and len(summary) > 1:
        # What the ratios would be with the server's CPU the only limit: steadier on a busy box.
        shares = ", ".join(
            f"{name} {summary['bare']['server_ms'] / s['server_ms']:.2f}"
            for name, s in summary.items()
            if name != "bare"
        )
        print(
            f"  / bare by server CPU per request (the ratios if that were the only limit): {shares}"
        )
    for name in ("read", "intake"):
        if name in summary:
            p95 = summary[name]["p95_ms"]
            verdict = "met" if p95 < AIM_P95_MS else "MISSED"
            print(f"  {name} p95 {p95:.1f} ms (aim < {AIM_P95_MS:.0f} ms: {verdict})")
    if "bare" in summary:
        bare = summary["bare"]
        verdict = "the bottleneck" if bare["client_cpu"] > 0.9 else "not the bottleneck"
        print(
            f"  load generator during bare: {bare['client_cpu']:.2f} cores (server "
            f"{bare['server_cpu']:.2f}): the client is {verdict}"
        )
    other = max(s["other_cpu"] for s in summary.values())
    if other > 0.2:
        print(
            f"  NOTE: other programs kept up to {other:.2f} of the {os.cpu_count()} cores busy "
            "during the windows: these numbers are lower than on a quiet machine"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_operational",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="timed seconds per scenario and round (default 5)",
    )
    parser.add_argument(
        "--requests", type=int, help="timed requests per scenario and round instead of --seconds"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="keep-alive connections (default 50)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three scenarios")
    parser.add_argument(
        "--database-url",
        help="admin URL of the PostgreSQL server for the scratch database (default: "
        f"BENCH_DATABASE_URL, TEST_DATABASE_URL, {DEFAULT_ADMIN_URL}, else the embedded server)",
    )
    parser.add_argument(
        "--redis-url", help=f"the app's Redis (default REDIS_URL, else {DEFAULT_REDIS_URL} if up)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--client", choices=tuple(CLIENTS), default="raw", help="load generator (default raw)"
    )
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on")
    parser.add_argument(
        "--app",
        default=APP,
        help=f"the app factory uvicorn serves (default {APP}; another one to try a change)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable; e.g. to profile one); default all three",
    )
    args = parser.parse_args()
    run(
        seconds=args.seconds,
        requests=args.requests,
        concurrency=args.concurrency,
        rounds=args.rounds,
        database_url=args.database_url,
        redis_url=args.redis_url,
        workers=args.workers,
        client=args.client,
        access_log=args.access_log,
        scenarios=tuple(args.scenario or SCENARIOS),
        app=args.app,
    )


if __name__ == "__main__":
    main()
