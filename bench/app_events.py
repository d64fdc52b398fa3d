"""Simulated app events: events generated per second, with and without writing the gzip files,
and the peak memory of one enterprise day.

Each measurement runs in a fresh Python process, so its peak RSS (`ru_maxrss`) is its own and
no cache is warm. The issue aims at 200,000 events a second on 2 cores and an enterprise day
within 4 GB. "written" is what `mitra simulate` does (generation overlapped with gzip on a second
thread); "generated" stops at the NDJSON bytes, so the difference is the cost of compression,
shown for the largest block at several zlib levels (`write_gzip_lines` sets the level it uses).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from datetime import date
from pathlib import Path

from simulator.app_events import day_chunks, generate_app_events_day
from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.world import build_world

START = date(2026, 1, 5)  # a Monday in the tax season: a busy week
COMPRESSION_LEVELS = (9, 6, 3, 1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _compression_rates(block: bytes, lines: int) -> dict[str, float]:
    """Lines per second zlib compresses `block` (gzip framing) at each level."""
    rates = {}
    for level in COMPRESSION_LEVELS:
        started = time.perf_counter()
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        compressor.compress(block)
        compressor.flush()
        rates[str(level)] = lines / (time.perf_counter() - started)
    return rates


def measure(tier: str, days: int, write: bool) -> dict[str, object]:
    """Build the world, then generate `days` days (written to a scratch landing zone, or only
    serialised); runs in the child process."""
    with tempfile.TemporaryDirectory(prefix="mitra-bench-") as scratch:
        config = SimulationConfig(tier=tier, start=START, days=days, landing_root=Path(scratch))
        started = time.perf_counter()
        world = build_world(config)
        result: dict[str, object] = {
            "tier": tier, "days": days, "world_s": time.perf_counter() - started,
            "world_rss_mb": _peak_rss_mb(),
        }  # fmt: skip
        counts: Counter[str] = Counter()
        largest = b""  # the block compression is timed on
        started = time.perf_counter()
        for day in config.day_list():
            if write:
                counts.update(generate_app_events_day(world, day, config, FaultLog()))
            else:
                for block in day_chunks(world, day, config, counts):
                    largest = bytes(block) if len(block) > len(largest) else largest
        seconds = time.perf_counter() - started
    result |= {"lines": counts["lines"], "seconds": seconds, "rss_mb": _peak_rss_mb()}
    if largest:
        result["compression"] = _compression_rates(largest, largest.count(b"\n") + 1)
    return result


def _in_fresh_process(tier: str, days: int, write: bool) -> dict:
    command = [sys.executable, "-m", "bench.app_events", "--tier", tier, "--days", str(days)]
    output = subprocess.run(
        [*command, *(["--write"] if write else [])], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.splitlines()[-1])


def _report(label: str, result: dict) -> None:
    lines, seconds = result["lines"], result["seconds"]
    print(
        f"  {label:<34} {lines:>10,} events in {seconds:6.2f} s  {lines / seconds:>10,.0f} "
        f"events/s  (world {result['world_s']:.1f} s)"
    )


def run(tier: str = "growth", days: int = 3, enterprise: bool = True) -> dict[str, dict]:
    """Print and return the measurements: `days` days of `tier`, then one enterprise day."""
    cases = [(tier, days)] + ([("enterprise", 1)] if enterprise else [])
    results: dict[str, dict] = {}
    print("app events simulator (each case in a fresh process; target 200,000 events/s)")
    for case_tier, case_days in cases:
        name = f"{case_tier}, {case_days} day{'s' if case_days > 1 else ''}"
        generated = _in_fresh_process(case_tier, case_days, write=False)
        written = _in_fresh_process(case_tier, case_days, write=True)
        _report(f"{name}, generated", generated)
        _report(f"{name}, written (gzip)", written)
        rates = ", ".join(
            f"level {level} {rate:,.0f}/s" for level, rate in generated["compression"].items()
        )
        print(f"  {'':<34} zlib alone, largest block: {rates}")
        results[name] = {"generated": generated, "written": written}
    if enterprise:
        written = results["enterprise, 1 day"]["written"]
        print(
            f"  enterprise day peak RSS: {written['rss_mb']:,.0f} MB "
            f"(world alone {written['world_rss_mb']:,.0f} MB; limit 4,096 MB)"
        )
    return results


def main() -> None:
    """The child process: one measurement, printed as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.app_events", description=__doc__)
    parser.add_argument("--tier", default="growth")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the gzip files too")
    args = parser.parse_args()
    print(json.dumps(measure(args.tier, args.days, args.write)))


if __name__ == "__main__":
    main()
