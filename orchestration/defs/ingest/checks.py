"""Asset checks of the landing sources, shared by every daily-partitioned raw asset.

A raw asset loads one or more days; for each day it collects a `DayCheck` per check, and at the
end yields one `AssetCheckResult` per check: passed when every day passed, with the days'
details as metadata. Blocking checks stop the assets downstream (DESIGN §2).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from orchestration.defs.ingest.expectations import CheckSuite, run_suites, run_table_suites
from warehouse import urls
from warehouse.raw_tables import TableSpec

RECONCILIATION = "reconciliation"
VOLUME = "volume_in_band"
UNEXPECTED_VALUES = "unexpected_values"
# A day's volume passes when it lies within this factor of the trailing week's median.
VOLUME_BAND = (0.5, 2.0)
TRAILING_DAYS = 7
ALL_ROWS = sql.SQL("true")


@dataclass(frozen=True)
class DayCheck:
    name: str
    day: date
    passed: bool
    details: dict[str, Any]


def check_specs(asset_key: dg.AssetKey, suites: list[CheckSuite]) -> list[dg.AssetCheckSpec]:
    """The GE suites plus reconciliation (blocking) and volume (warning) for one asset."""
    specs = [
        dg.AssetCheckSpec(s.name, asset=asset_key, description=s.description, blocking=s.blocking)
        for s in suites
    ]
    specs.append(
        dg.AssetCheckSpec(
            RECONCILIATION,
            asset=asset_key,
            blocking=True,
            description="loaded + quarantined + duplicates dropped = read, and the table holds "
            "exactly the loaded rows",
        )
    )
    specs.append(
        dg.AssetCheckSpec(
            VOLUME,
            asset=asset_key,
            description=f"rows within {VOLUME_BAND[0]}-{VOLUME_BAND[1]}x of the median of the "
            f"trailing {TRAILING_DAYS} loaded days",
        )
    )
    return specs


def unexpected_values_spec(asset_key: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    """A warning, never blocking: values of an open vocabulary the code does not know yet are
    data to look at, not a reason to stop the assets downstream."""
    return dg.AssetCheckSpec(
        UNEXPECTED_VALUES, asset=asset_key, blocking=False, description=description
    )


def unexpected_values_check(day: date, unexpected: dict[str, dict[str, int]]) -> DayCheck:
    """Passes when no vocabulary (say `status`, `change_field`) holds a value outside the known
    ones; the values and their counts go to the metadata either way."""
    found = {name: counts for name, counts in unexpected.items() if counts}
    return DayCheck(UNEXPECTED_VALUES, day, not found, {"unexpected": found})


def _unexpected_totals(days: list[DayCheck]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    for check in days:
        for name, counts in check.details.get("unexpected", {}).items():
            for value, n in counts.items():
                totals[name][value] = totals[name].get(value, 0) + n
    return dict(totals)


def suite_checks(frame, suites: list[CheckSuite], day: date) -> list[DayCheck]:
    """The suites on the frame just loaded (small sources)."""
    return _day_checks(run_suites(frame, suites, day), day)


def partition_suite_checks(
    warehouse_url: str, spec: TableSpec, suites: list[CheckSuite], day: date
) -> list[DayCheck]:
    """The suites on the day's partition inside PostgreSQL (large sources: bounded memory)."""
    partition = spec.partitioned.partition_name(day)
    outcomes = run_table_suites(
        urls.psycopg2_url(warehouse_url), spec.schema, partition, suites, day
    )
    return _day_checks(outcomes, day)


def _day_checks(outcomes, day: date) -> list[DayCheck]:
    return [
        DayCheck(
            name,
            day,
            outcome.passed,
            {"evaluated": outcome.evaluated, "failures": outcome.failures},
        )
        for name, outcome in outcomes.items()
    ]


def reconciliation_check(
    day: date,
    *,
    read: int,
    loaded: int,
    quarantined: int,
    duplicates: int,
    in_table: int,
    expected_in_table: int | None = None,
    skipped: int = 0,
) -> DayCheck:
    """Nothing lost, nothing invented: every record read was loaded, quarantined, dropped as a
    duplicate (or, for chat exports, skipped as a system line), and the partition holds exactly
    what was loaded (`expected_in_table` when rows differ from records, e.g. webhook lines)."""
    expected = loaded if expected_in_table is None else expected_in_table
    balanced = loaded + quarantined + duplicates + skipped == read and in_table == expected
    return DayCheck(
        RECONCILIATION,
        day,
        balanced,
        {"read": read, "loaded": loaded, "quarantined": quarantined, "duplicates": duplicates,
         "skipped": skipped, "rows_in_partition": in_table, "rows_expected": expected},
    )  # fmt: skip


def volume_check(
    conn: psycopg.Connection,
    spec: TableSpec,
    day: date,
    rows: int,
    only: sql.Composable = ALL_ROWS,
) -> DayCheck:
    """Compare the day's rows (those matching `only`, a fixed SQL condition) with the same rows
    of the trailing week's loaded days (no history: passes)."""
    query = sql.SQL(
        "SELECT {col}, count(*) FROM {table} WHERE {col} >= %s AND {col} < %s AND {only} GROUP BY 1"
    ).format(
        col=sql.Identifier(spec.partition_column),
        table=sql.Identifier(spec.schema, spec.name),
        only=only,
    )
    history = [
        n for _, n in conn.execute(query, (day - timedelta(days=TRAILING_DAYS), day)).fetchall()
    ]
    if not history:
        return DayCheck(VOLUME, day, True, {"rows": rows, "trailing_days": 0})
    median = statistics.median(history)
    low, high = VOLUME_BAND
    # Small days swing by chance: allow at least four Poisson standard deviations around them.
    slack = 4 * math.sqrt(median)
    return DayCheck(
        VOLUME,
        day,
        min(low * median, median - slack) <= rows <= max(high * median, median + slack),
        {"rows": rows, "trailing_median": median, "trailing_days": len(history)},
    )


def partition_rows(conn: psycopg.Connection, spec: TableSpec, day: date) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
        sql.Identifier(spec.schema, spec.name), sql.Identifier(spec.partition_column)
    )
    return conn.execute(query, (day,)).fetchone()[0]


def results(
    asset_key: dg.AssetKey, checks: Iterable[DayCheck], specs: list[dg.AssetCheckSpec]
) -> list[dg.AssetCheckResult]:
    """One result per check spec, over all days of the run."""
    by_name: dict[str, list[DayCheck]] = defaultdict(list)
    for check in checks:
        by_name[check.name].append(check)
    out = []
    for spec in specs:
        days = by_name.get(spec.name, [])
        failed = [c.day.isoformat() for c in days if not c.passed]
        metadata: dict[str, Any] = {
            "days": len(days),
            "failed_days": failed,
            "details": dg.MetadataValue.json({c.day.isoformat(): c.details for c in days}),
        }
        if spec.name == UNEXPECTED_VALUES:
            metadata["unexpected"] = dg.MetadataValue.json(_unexpected_totals(days))
        out.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=spec.name,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR
                if spec.blocking
                else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return out
