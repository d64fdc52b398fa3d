"""A whole simulation into a real operational database: reproducible, complete, honest truth."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql

from simulator.config import SimulationConfig
from simulator.errors import OperationalNotEmptyError
from simulator.operational import SIMULATED_TABLES
from simulator.runner import simulate
from warehouse import urls
from warehouse.migrate import upgrade

pytestmark = pytest.mark.integration
SECRET = b"test-app-secret"


def _config(tmp: Path, seed: int) -> SimulationConfig:
    return SimulationConfig(
        tier="mvp",
        start=date(2026, 9, 1),
        days=4,
        seed=seed,
        landing_root=tmp / "landing",
        truth_root=tmp / "truth",
    )


def _table_checksums(url: str) -> dict[str, str]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return {
            table: conn.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
                ).format(sql.Identifier(table))
            ).fetchone()[0]
            for table in SIMULATED_TABLES
        }


def _run(make_database: Callable[[str], str], tmp: Path, seed: int) -> tuple[str, SimulationConfig]:
    url = make_database("sim")
    upgrade(url)
    config = _config(tmp, seed)
    simulate(config, url, app_secret=SECRET, progress=False)
    return url, config


@pytest.fixture(scope="module")
def runs(make_database, tmp_path_factory):
    first = _run(make_database, tmp_path_factory.mktemp("a"), seed=5)
    second = _run(make_database, tmp_path_factory.mktemp("b"), seed=5)
    other = _run(make_database, tmp_path_factory.mktemp("c"), seed=6)
    return first, second, other


def _manifest(config: SimulationConfig) -> dict:
    return json.loads((config.truth_root / "manifest.json").read_text())


def test_same_seed_gives_identical_files_and_tables(runs) -> None:
    (url_a, config_a), (url_b, config_b), (url_c, config_c) = runs
    files_a, files_b = _manifest(config_a)["files"], _manifest(config_b)["files"]
    assert files_a and files_a == files_b
    assert {Path(p).parts[0] for p in files_a} == {"app_events", "whatsapp", "whatsapp_exports"}
    tables_a = _table_checksums(url_a)
    assert tables_a == _table_checksums(url_b)
    # A different seed differs, in the files and in every populated table.
    assert _manifest(config_c)["files"] != files_a
    tables_c = _table_checksums(url_c)
    assert tables_c["insurance_policies"] != tables_a["insurance_policies"]
    assert tables_c["premium_payments"] != tables_a["premium_payments"]


def test_every_table_is_populated_and_truth_written(runs) -> None:
    (url, config), _, _ = runs
    with psycopg.connect(urls.libpq_url(url)) as conn:
        counts = {
            t: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
            ).fetchone()[0]
            for t in SIMULATED_TABLES
        }
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM premium_payments GROUP BY 1").fetchall()
        )
    assert counts["users"] == 700
    assert counts["agents"] == 20
    assert all(n > 0 for n in counts.values()), counts
    assert {"paid", "paid_in_grace", "lapsed", "revived"} <= set(statuses)
    for name in ("lapse_truth.parquet", "affinity.npz", "faults.json", "oracle.json"):
        assert (config.truth_root / name).exists()
    oracle = json.loads((config.truth_root / "oracle.json").read_text())
    assert 0.6 < oracle["lapse_auc_all_dues"] < 1.0


def _count_landing_faults(config: SimulationConfig) -> dict[str, int]:
    """Count from the files alone what the truth file says was injected."""
    truncated = duplicates = 0
    seen: set[str] = set()
    for path in sorted((config.landing_root / "app_events").glob("dt=*/*.gz")):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    truncated += 1
                    continue
                message_id = event.get("messageId") if isinstance(event, dict) else None
                if isinstance(message_id, str):
                    duplicates += message_id in seen
                    seen.add(message_id)
    return {"truncated_json": truncated, "duplicate": duplicates}


def test_fault_counts_in_the_truth_file_match_the_files(runs) -> None:
    (_, config), _, _ = runs
    truth = json.loads((config.truth_root / "faults.json").read_text())
    totals: dict[str, int] = {}
    for days in truth.get("app_events", {}).values():
        for fault, n in days.items():
            totals[fault] = totals.get(fault, 0) + n
    counted = _count_landing_faults(config)
    assert counted["truncated_json"] == totals.get("truncated_json", 0)
    assert counted["duplicate"] >= totals.get("duplicate", 0) > 0

    # Every WhatsApp delivery whose signature fails is one the truth file declares bad.
    bad = 0
    for path in sorted((config.landing_root / "whatsapp").glob("dt=*/*.gz")):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                delivery = orjson.loads(line)
                expected = hmac.new(SECRET, delivery["body"].encode(), hashlib.sha256).hexdigest()
                bad += not hmac.compare_digest(delivery["signature"], f"sha256={expected}")
    declared = sum(d.get("bad_signature", 0) for d in truth["whatsapp"].values())
    assert bad == declared


def test_refuses_to_overwrite_without_replace(runs, tmp_path: Path) -> None:
    (url, _), _, _ = runs
    with pytest.raises(OperationalNotEmptyError, match="--replace"):
        simulate(_config(tmp_path, 5), url, app_secret=SECRET, progress=False)
