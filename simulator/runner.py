"""Run a whole simulation: the world, the operational database, the landing files, the truth."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

import polars as pl
from tqdm import tqdm

from simulator.app_events import generate_app_events_day
from simulator.chat_exports import generate_chat_exports_day
from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.operational import OperationalWriter
from simulator.payments import simulate_payments
from simulator.truth import write_truth
from simulator.whatsapp import generate_whatsapp_day
from simulator.world import build_world

LANDING_SOURCES = ("app_events", "whatsapp", "whatsapp_exports")


@dataclass(frozen=True)
class SimulationSummary:
    rows: dict[str, int]
    oracle: dict[str, object]


def simulate(
    config: SimulationConfig,
    operational_url: str,
    *,
    app_secret: bytes,
    replace: bool = False,
    progress: bool = True,
) -> SimulationSummary:
    """Generate everything for `config`; with `replace`, what an earlier simulation left is
    replaced (operational tables emptied, the landing folders of the simulated sources cleared).
    """
    world = build_world(config)
    faults = FaultLog()
    truth_parts: list[pl.DataFrame] = []
    if replace:
        for source in LANDING_SOURCES:
            shutil.rmtree(config.landing_root / source, ignore_errors=True)
    with OperationalWriter(operational_url, config, replace=replace) as writer:
        writer.write_reference(world)
        for payments, truth, outcome in simulate_payments(world, config):
            writer.write_policies(world, outcome, payments)
            truth_parts.append(truth)
        days = tqdm(
            config.day_list(), desc=f"simulating {config.tier}", unit="day",
            disable=not progress, file=sys.stderr,
        )  # fmt: skip
        for day in days:
            outbound = generate_whatsapp_day(world, day, config, faults, app_secret)
            # Explicit creation time: the column's default (now()) would differ run to run.
            writer.write("whatsapp_outbound", outbound.with_columns(created_at=pl.col("sent_at")))
            app = generate_app_events_day(world, day, config, faults)
            writer.counts["app_events"] = writer.counts.get("app_events", 0) + int(
                app.get("lines", 0)
            )
            generate_chat_exports_day(world, day, config, faults)
        counts = dict(writer.counts)
    oracle = write_truth(world, config, pl.concat(truth_parts), faults, counts)
    return SimulationSummary(rows=counts, oracle=oracle)
