"""Daily partitions of the landing sources: one partition = one day received, in IST."""

from datetime import date

import dagster as dg

from warehouse.landing import RECEIPT_TIMEZONE

TIMEZONE = RECEIPT_TIMEZONE


def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone=TIMEZONE)


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days a run covers: one for a partition run, several for a single-run backfill."""
    return [date.fromisoformat(key) for key in context.partition_keys]
