"""App events ingestion: our path against a plain CSV COPY and pandas `to_sql`, on the same rows.

One simulator day of each tier in THROUGHPUT_TIERS (a `scale` day of ~100k events, where the
per-row costs show, and a `growth` day of ~10k, where the fixed cost of an atomic partition
swap shows) is written to a scratch landing zone, then loaded into a scratch database (median
of `repeat` runs): ours into the day's partition of
raw.app_events exactly as the asset does, the baselines into plain unindexed tables. Ours and the
plain COPY take turns, so a busy machine slows them alike; pandas, two orders of magnitude
slower, runs after them, so what its thousands of INSERTs leave behind (autovacuum, a churned
heap) does not land inside their timings:

- **ours**: the asset's load, `load_app_events_partition`: gunzip (read ahead in a thread) +
  `transforms.app_events` parse + binary COPY encoded column-wise in Arrow and sent from
  worker threads (`warehouse.bulk`) into a fresh table, its primary key built, the partition
  swapped in and the quarantine written, all in one transaction, all timed;
- **plain COPY**: `COPY ... FROM STDIN (FORMAT csv)` of the same clean rows already rendered as
  CSV bytes, only the COPY timed: a loader handed finished CSV (aim: ours >= 0.7 of its rate);
- **pandas**: `DataFrame.to_sql(method="multi", chunksize=1000)` through SQLAlchemy of the same
  rows already in a pandas frame, only `to_sql` timed (aim: ours >= 10x faster).

The three tables are compared by an ordered checksum, so the rates are for the same rows.

Memory: a growth-tier and an enterprise-tier day are each ingested (parse + load, gzip read in
blocks of BLOCK_BYTES) in a fresh process, which reports its peak RSS (`ru_maxrss`) and the RSS
it had before reading. What still grows with the day is the dedupe state, 16 bytes an event
(`transforms.seen_keys`: 16 MB for a million events), and the quarantined lines; the day's
bytes never are in memory at once.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from bench.database import scratch_database
from orchestration.defs.ingest.app_events import load_app_events_partition
from orchestration.defs.ingest.tables import pg_type
from simulator.app_events import FILE_NAME, SOURCE, generate_app_events_day
from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder
from simulator.world import build_world
from transforms.app_events import APP_EVENTS_SCHEMA, parse_app_events_blocks
from warehouse import urls

START = date(2026, 1, 5)  # a Monday in the tax season, as in bench/app_events.py
BLOCK_BYTES = 8 << 20  # decompressed bytes parsed at a time: bounds memory whatever the day
METHODS = ("ours", "plain_copy", "pandas")
COPY_TARGETS = ("plain_copy", "pandas")  # plain tables; ours loads raw.app_events itself
TABLES = {
    "ours": sql.Identifier("raw", "app_events"),
    "plain_copy": sql.Identifier("plain_copy"),
    "pandas": sql.Identifier("pandas"),
}
PANDAS_REPEAT = 1  # pandas takes seconds to a minute a run, 25x+ the others: noise is moot
RSS_TIERS = ("growth", "enterprise")
THROUGHPUT_TIERS = ("scale", "growth")


@dataclass(frozen=True)
class Ingested:
    """What loading one landing file did."""

    read: int
    loaded: int
    rejected: int
    duplicates: int


def generate_day(tier: str, day_index: int, root: Path) -> tuple[Path, date]:
    """Write the simulator's app events file of day `day_index` of a run starting on START."""
    day = START + timedelta(days=day_index)
    config = SimulationConfig(tier=tier, start=START, days=day_index + 1, landing_root=root)
    generate_app_events_day(build_world(config), day, config, FaultLog())
    return day_folder(root, SOURCE, day) / FILE_NAME, day


def gunzip_blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The file's decompressed content, `size` bytes at a time."""
    with gzip.open(path, "rb") as handle:
        while block := handle.read(size):
            yield block


def ingest(url: str, path: Path, day: date) -> Ingested:
    """Our path, exactly the `raw/app_events` asset's load: gunzip, parse and binary-COPY the
    day a block at a time into a fresh table, index it, swap it in as the day's partition of
    raw.app_events and write the quarantine, in one transaction (the asset checks not timed)."""
    counts = load_app_events_partition(day, [path], url)
    return Ingested(
        read=counts["read"],
        loaded=counts["loaded"],
        rejected=counts["quarantined"],
        duplicates=counts["duplicates"],
    )


def _create_table(conn: psycopg.Connection, table: str) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type(dtype)))
        for name, dtype in APP_EVENTS_SCHEMA.items()
    )
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), columns))
    conn.commit()


def _truncate(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
    conn.commit()


def _copy_csv(conn: psycopg.Connection, table: str, csv: bytes) -> None:
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(sql.Identifier(table))
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(csv)


def _prepare(conn: psycopg.Connection, method: str) -> None:
    """Empty a baseline's table; ours replaces its partition, so it needs nothing."""
    if method in COPY_TARGETS:
        _truncate(conn, method)


def _checksum(conn: psycopg.Connection, table: sql.Composable) -> tuple[int, str]:
    """Row count and an md5 of every row's text in message_id order."""
    query = sql.SQL(
        "SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t.message_id)) FROM {} t"
    ).format(table)
    return conn.execute(query).fetchone()


def _timed(prepare: Callable[[], None], method: Callable[[], object]) -> float:
    prepare()
    started = time.perf_counter()
    method()
    return time.perf_counter() - started


def measure_throughput(url: str, path: Path, day: date, repeat: int) -> dict[str, object]:
    """Seconds of each method (median of `repeat`, taking turns) and their checksums."""
    from sqlalchemy import create_engine

    with psycopg.connect(urls.libpq_url(url)) as conn:
        for method in COPY_TARGETS:
            _create_table(conn, method)
        ingested = ingest(url, path, day)
        clean = _clean_rows(path, day)
        csv = clean.write_csv(include_header=False).encode()
        pandas_frame = clean.to_pandas()
        engine = create_engine(urls.sqlalchemy_url(url))
        runs: dict[str, Callable[[], object]] = {
            "ours": lambda: ingest(url, path, day),
            "plain_copy": lambda: _copy_csv(conn, "plain_copy", csv),
            "pandas": lambda: pandas_frame.to_sql(
                "pandas", engine, if_exists="append", index=False, method="multi", chunksize=1000
            ),
        }
        seconds: dict[str, list[float]] = {method: [] for method in METHODS}
        for method in [*(["ours", "plain_copy"] * repeat), *(["pandas"] * PANDAS_REPEAT)]:
            seconds[method].append(_timed(lambda m=method: _prepare(conn, m), runs[method]))
        checksums = {method: _checksum(conn, TABLES[method]) for method in METHODS}
        engine.dispose()
    return {
        "ingested": ingested,
        "seconds": {method: statistics.median(times) for method, times in seconds.items()},
        "checksums": checksums,
    }


def _clean_rows(path: Path, day: date) -> pl.DataFrame:
    return pl.concat(result.clean for result in parse_app_events_blocks(gunzip_blocks(path), day))


# ---------------------------------------------------------------------------------------------
# Peak memory, in a fresh process


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def ingest_alone(url: str, path: Path, day: date) -> dict[str, float]:
    """In the child: load the file as the asset does; RSS before and at the peak."""
    before = _peak_rss_mb()
    started = time.perf_counter()
    ingested = ingest(url, path, day)
    seconds = time.perf_counter() - started
    return {
        "rows": ingested.loaded,
        "read": ingested.read,
        "seconds": seconds,
        "file_mb": path.stat().st_size / 2**20,
        "rss_before_mb": before,
        "rss_peak_mb": _peak_rss_mb(),
    }


# Linux carries a process's peak RSS across fork and exec, so a child started from this process
# (which holds a world) would report this process's peak as its own. A shell in between, which
# forks the child rather than exec-ing it, starts it from a few MB.
_LEAN_PARENT = ["sh", "-c", '"$@"; exit $?', "sh"]


def measure_rss(url: str, tier: str, day_index: int) -> dict[str, float]:
    """Generate a day of `tier` here, ingest it in a fresh Python process."""
    with tempfile.TemporaryDirectory(prefix="mitra-bench-") as scratch:
        path, day = generate_day(tier, day_index, Path(scratch))
        gunzipped = sum(len(block) for block in gunzip_blocks(path))
        child = [sys.executable, "-m", "bench.app_events_ingest", "--child", url, str(path)]
        output = subprocess.run(
            [*_LEAN_PARENT, *child, day.isoformat()], check=True, capture_output=True, text=True
        ).stdout
    return json.loads(output) | {"tier": tier, "ndjson_mb": gunzipped / 2**20}


# ---------------------------------------------------------------------------------------------


def run(
    tiers: tuple[str, ...] = THROUGHPUT_TIERS,
    day_index: int = 0,
    repeat: int = 5,
    rss_tiers: tuple[str, ...] = RSS_TIERS,
) -> dict[str, object]:
    """Throughput side by side on one day of each of `tiers`, then peak memory per tier in
    `rss_tiers`."""
    throughput = {}
    with scratch_database() as url:
        for tier in tiers:
            with tempfile.TemporaryDirectory(prefix="mitra-bench-") as scratch:
                path, day = generate_day(tier, day_index, Path(scratch))
                throughput[tier] = measure_throughput(url, path, day, repeat)
            _report_throughput(tier, day, throughput[tier], repeat)
            _truncate_all(url)
        memory = [measure_rss(url, rss_tier, day_index) for rss_tier in rss_tiers]
        _report_memory(memory)
    return {"throughput": throughput, "memory": memory}


def _truncate_all(url: str) -> None:
    """Drop the baselines' tables, so the next tier starts as this one did."""
    with psycopg.connect(urls.libpq_url(url)) as conn:
        for table in COPY_TARGETS:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def _report_throughput(tier: str, day: date, result: dict, repeat: int) -> None:
    ingested: Ingested = result["ingested"]
    seconds: dict[str, float] = result["seconds"]
    rows = ingested.loaded
    print(
        f"app events ingest, {tier} tier, receipt day {day}: {ingested.read:,} lines read, "
        f"{rows:,} loaded, {ingested.rejected:,} quarantined, {ingested.duplicates:,} duplicates "
        f"(median of {repeat}; pandas {PANDAS_REPEAT})"
    )
    labels = {
        "ours": "ours: the raw/app_events load (parse, binary COPY, index, swap)",
        "plain_copy": "plain COPY of the rows as CSV (COPY only)",
        "pandas": "pandas to_sql(method='multi') (to_sql only)",
    }
    for method, label in labels.items():
        print(f"  {label:<44} {seconds[method]:7.3f} s {rows / seconds[method]:>11,.0f} rows/s")
    same = len(set(result["checksums"].values())) == 1
    print(f"  same rows in all three tables (ordered checksum): {'yes' if same else 'NO'}")
    print(
        f"  ours / plain COPY: {seconds['plain_copy'] / seconds['ours']:.2f} (aim >= 0.7); "
        f"ours / pandas: {seconds['pandas'] / seconds['ours']:.1f}x (aim >= 10x)"
    )


def _report_memory(memory: list[dict[str, float]]) -> None:
    print(f"peak RSS of one day's ingestion (fresh process, {BLOCK_BYTES >> 20} MiB blocks)")
    for m in memory:
        print(
            f"  {m['tier']:<10} {m['read']:>10,} lines {m['ndjson_mb']:8.0f} MB NDJSON "
            f"({m['file_mb']:.0f} MB gz) in {m['seconds']:5.1f} s "
            f"({m['rows'] / m['seconds']:,.0f} rows/s): "
            f"{m['rss_before_mb']:5.0f} MB before, {m['rss_peak_mb']:5.0f} MB peak"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.app_events_ingest", description=__doc__)
    parser.add_argument("--tier", action="append", help="throughput tier (repeatable)")
    parser.add_argument("--day-index", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("URL", "PATH", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, path, day = args.child
        print(json.dumps(ingest_alone(url, Path(path), date.fromisoformat(day))))
    else:
        run(
            tiers=tuple(args.tier or THROUGHPUT_TIERS), day_index=args.day_index, repeat=args.repeat
        )


if __name__ == "__main__":
    main()
