"""Landing sources into raw through the real Dagster machinery, on simulator data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import psycopg
import pytest

from orchestration.definitions import build_definitions
from orchestration.defs.ingest.automation import INGEST_JOB
from orchestration.defs.ingest.load import PAYLOAD_COLUMNS, analyze_statement
from orchestration.defs.ingest.tables import (
    APP_EVENTS,
    APP_EVENTS_QUARANTINE,
    WHATSAPP_MESSAGES,
    WHATSAPP_QUARANTINE,
    WHATSAPP_STATES,
    WHATSAPP_STATUSES,
)
from orchestration.resources import DatabasesResource, LandingResource
from simulator.config import SimulationConfig
from simulator.runner import simulate
from simulator.whatsapp import true_message_states
from simulator.world import build_world
from tests.conftest import REPO_ROOT
from transforms.whatsapp import id_token_expr
from warehouse import urls
from warehouse.migrate import upgrade

pytestmark = pytest.mark.integration

SECRET = "test-app-secret"
PII_KEY = "test-pii-key"
START = date(2026, 9, 1)
DAYS = 7
RANGE_TAGS = {
    "dagster/asset_partition_range_start": START.isoformat(),
    "dagster/asset_partition_range_end": (START + timedelta(days=DAYS - 1)).isoformat(),
}


@pytest.fixture(scope="module")
def world_and_dbs(make_database, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ingest")
    config = SimulationConfig(
        tier="mvp",
        start=START,
        days=DAYS,
        seed=3,
        landing_root=tmp / "landing",
        truth_root=tmp / "truth",
    )
    operational = make_database("ingest_op")
    upgrade(operational)
    simulate(config, operational, app_secret=SECRET.encode(), progress=False)
    warehouse = make_database("ingest_wh")
    return config, operational, warehouse


def _defs(config: SimulationConfig, operational: str, warehouse: str) -> dg.Definitions:
    return build_definitions(
        DatabasesResource(operational_url=operational, warehouse_url=warehouse),
        LandingResource(root=str(config.landing_root), app_secret=SECRET, pii_key=PII_KEY),
        partitions_start=START,
    )


@pytest.fixture(scope="module")
def backfilled(world_and_dbs):
    """A week loaded as one single-run backfill of the ingest job."""
    config, operational, warehouse = world_and_dbs
    job = _defs(config, operational, warehouse).resolve_job_def(INGEST_JOB)
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, tags=RANGE_TAGS)
    return config, warehouse, result


def _query(url: str, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(statement, params).fetchall()


def _truth_faults(config: SimulationConfig, source: str) -> dict[str, int]:
    truth = json.loads((config.truth_root / "faults.json").read_text())
    totals: dict[str, int] = {}
    for faults in truth.get(source, {}).values():
        for fault, n in faults.items():
            totals[fault] = totals.get(fault, 0) + n
    return totals


def test_a_week_loads_into_daily_partitions_with_passing_checks(backfilled) -> None:
    _, warehouse, result = backfilled
    assert result.success
    partitions = {
        row[0]
        for row in _query(
            warehouse,
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid"
            " WHERE inhparent = 'raw.app_events'::regclass",
        )
    }
    assert partitions == {f"app_events_p{(START + timedelta(days=i)):%Y%m%d}" for i in range(DAYS)}
    checks = {
        (c.asset_key.to_user_string(), c.check_name): c.passed
        for c in result.get_asset_check_evaluations()
    }
    for asset in ("raw/app_events", "raw/whatsapp_messages", "raw/whatsapp_statuses"):
        assert checks[(asset, "reconciliation")], asset
        assert checks[(asset, "keys_valid")], asset
    assert checks[("raw/app_events", "accepted_values")]


def test_quarantine_counts_equal_the_injected_faults(backfilled) -> None:
    config, warehouse, result = backfilled
    truth = _truth_faults(config, "app_events")
    reasons = dict(
        _query(
            warehouse,
            "SELECT split_part(reason, ':', 1), count(*) FROM quarantine.app_events GROUP BY 1",
        )
    )
    assert reasons.get("invalid_json", 0) == truth.get("truncated_json", 0)
    assert reasons.get("missing_field", 0) == truth.get("missing_field", 0)
    assert reasons.get("wrong_type", 0) == truth.get("wrong_type", 0)
    metadata = next(
        m.materialization.metadata
        for m in (e.event_specific_data for e in result.get_asset_materialization_events())
        if m.materialization.asset_key.to_user_string() == "raw/app_events"
    )
    # Re-sends within a day are dropped by the load; a batch re-sent the next day lands in two
    # partitions (staging drops it across days, DESIGN §5). Together: every injected duplicate.
    across_days = _query(
        warehouse, "SELECT count(*) - count(DISTINCT message_id) FROM raw.app_events"
    )[0][0]
    assert metadata["duplicates"].value + across_days == truth["duplicate"]
    # A bad signature goes to quarantine and never reaches raw.
    whatsapp = _truth_faults(config, "whatsapp")
    bad = _query(
        warehouse, "SELECT count(*) FROM quarantine.whatsapp WHERE reason = 'bad_signature'"
    )
    assert bad[0][0] == whatsapp.get("bad_signature", 0) > 0


def test_every_settled_message_reaches_its_true_final_state(backfilled, world_and_dbs) -> None:
    config, warehouse, _ = backfilled
    truth = true_message_states(build_world(config), config)
    end = datetime.combine(config.end, datetime.min.time(), UTC) - timedelta(hours=5, minutes=30)
    settled = truth.filter(pl.col("settled_at") < end, pl.col("final_state").is_not_null())
    states = pl.DataFrame(
        _query(warehouse, "SELECT wamid_token, state FROM raw.whatsapp_message_states"),
        schema=["wamid_token", "state"],
        orient="row",
    )
    # The states table is keyed by the wamid's token: a wamid encodes the recipient's number.
    settled = settled.with_columns(wamid_token=id_token_expr("wamid", PII_KEY.encode()))
    joined = settled.join(states, on="wamid_token", how="left")
    # A status whose only delivery had a bad signature is lost (Meta would retry; the simulator
    # does not): those messages may lag, never lead. All others match exactly.
    rank = {"sent": 1, "delivered": 2, "read": 3, None: 0}
    behind = joined.filter(pl.col("state") != pl.col("final_state"))
    assert all(rank[s] < rank[f] for s, f in behind.select("state", "final_state").iter_rows())
    assert behind.height <= _truth_faults(config, "whatsapp").get("bad_signature", 0)
    assert (
        joined.height > 50
        and joined.filter(pl.col("state") == pl.col("final_state")).height > 0.9 * joined.height
    )


def _checksum(url: str, day: date) -> tuple[int, str]:
    row = _query(
        url,
        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
        " FROM raw.app_events t WHERE received_day = %s",
        (day,),
    )
    return row[0]


def test_materialising_a_partition_twice_gives_the_identical_table(
    backfilled, world_and_dbs
) -> None:
    config, operational, warehouse = world_and_dbs
    day = START + timedelta(days=2)
    before = _checksum(warehouse, day)
    defs = _defs(config, operational, warehouse)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(INGEST_JOB)
            .execute_in_process(instance=instance, partition_key=day.isoformat())
            .success
        )
    assert _checksum(warehouse, day) == before
    assert before[0] > 100


_KILLED = """
import sys, time
from datetime import date
import orchestration.defs.ingest.app_events as app_events
from orchestration.resources import LandingResource

from orchestration.defs.ingest.landing import read_bytes

def halves(files):
    # The day in two blocks; hang before the second, while the first is in the open COPY.
    data = b"".join(read_bytes(path) for path in files)
    yield data[: len(data) // 2]
    time.sleep(0.5)  # the encoder and writer threads send the first half to the server
    print("half-way", flush=True)
    time.sleep(60)
    yield data[len(data) // 2 :]
app_events.read_blocks = halves
landing = LandingResource(root=sys.argv[1], app_secret="x", pii_key="y")
app_events.load_app_events_day(date.fromisoformat(sys.argv[2]), landing, sys.argv[3])
"""


def test_a_load_killed_half_way_leaves_the_partition_whole(backfilled, world_and_dbs) -> None:
    config, _, warehouse = world_and_dbs
    day = START + timedelta(days=3)
    before = _checksum(warehouse, day)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(config.landing_root), day.isoformat(), warehouse],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.stdout.readline().strip() == "half-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    assert _checksum(warehouse, day) == before


@pytest.mark.parametrize(
    "spec",
    [APP_EVENTS, APP_EVENTS_QUARANTINE, WHATSAPP_MESSAGES, WHATSAPP_STATUSES, WHATSAPP_QUARANTINE],
    ids=lambda spec: spec.qualified,
)
def test_the_loaders_analyze_names_every_column_but_the_payloads(spec) -> None:
    """The ANALYZE run after a day is swapped in, as PostgreSQL receives it, lists the
    columns joins and filters use and none of the JSON or text payloads."""
    text = analyze_statement(spec, START).as_string()
    partition = spec.partitioned.partition_name(START)
    match = re.fullmatch(rf'ANALYZE "{spec.schema}"\."{partition}" \((.+)\)', text)
    assert match, text
    named = [column.strip('"') for column in match.group(1).split(", ")]
    assert named == [c for c in spec.column_names if c not in PAYLOAD_COLUMNS]
    assert not set(named) & PAYLOAD_COLUMNS
    if spec is APP_EVENTS:
        assert {"message_id", "user_id", "session_id", "event_day"} <= set(named)
        assert {"properties", "context"} <= set(spec.column_names)


def test_loaded_partitions_were_analyzed_by_the_loader(backfilled) -> None:
    """Every loaded day's partitions carry a manual ANALYZE (`last_analyze`; autovacuum's own
    sets `last_autoanalyze` instead), and so does the message-state table."""
    _, warehouse, _ = backfilled
    names = [
        spec.partitioned.partition_name(START + timedelta(days=offset))
        for spec in (APP_EVENTS, WHATSAPP_MESSAGES, WHATSAPP_STATUSES)
        for offset in range(DAYS)
    ] + [WHATSAPP_STATES.name]
    rows = _query(
        warehouse,
        "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables"
        " WHERE schemaname = 'raw' AND relname = ANY(%s)",
        (names,),
    )
    assert dict(rows) == dict.fromkeys(names, True)


def test_schedule_tick_loads_the_previous_day(world_and_dbs) -> None:
    config, operational, warehouse = world_and_dbs
    defs = _defs(config, operational, warehouse)
    schedule = defs.resolve_schedule_def("daily_refresh_0200_ist")
    tick = datetime(2026, 9, 5, 2, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        requests = schedule.evaluate_tick(context).run_requests
        assert [r.partition_key for r in requests] == ["2026-09-04"]


def test_sensor_reloads_a_day_whose_files_changed_after_it_was_loaded(
    world_and_dbs, tmp_path: Path
) -> None:
    config, operational, warehouse = world_and_dbs
    defs = _defs(config, operational, warehouse)
    sensor = defs.resolve_sensor_def("late_landing_files")
    job = defs.resolve_job_def(INGEST_JOB)
    day = START + timedelta(days=1)
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, partition_key=day.isoformat()).success
        first = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        )
        # Loaded days are left alone; days with chat exports that no run loaded yet are loaded.
        first_days = {r.partition_key for r in first.run_requests}
        assert day.isoformat() not in first_days
        exports = config.landing_root / "whatsapp_exports"
        assert first_days == {p.name.removeprefix("dt=") for p in exports.glob("dt=*")} - {
            day.isoformat()
        }
        late = config.landing_root / "app_events" / f"dt={day.isoformat()}" / "late-batch.ndjson"
        late.write_text("")
        try:
            second = sensor.evaluate_tick(
                dg.build_sensor_context(
                    instance=instance,
                    cursor=first.cursor,
                    definitions=defs,
                    resources=defs.resources,
                )
            )
        finally:
            late.unlink()
    assert [(r.partition_key, r.asset_selection) for r in second.run_requests] == [
        (day.isoformat(), [dg.AssetKey(["raw", "app_events"])])
    ]
