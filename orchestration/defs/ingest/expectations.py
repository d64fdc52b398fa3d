"""great-expectations suites run on a loaded partition, reported as Dagster asset checks.

Each check is a named group of expectations; the check passes when all of them do. The suite
runs on the rows just loaded (the same frame that went into COPY), in an ephemeral
great-expectations context, so a check costs no extra database read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class CheckSuite:
    """A Dagster asset check made of great-expectations expectations."""

    name: str
    description: str
    blocking: bool
    # Built lazily, per day (windows depend on it): importing great-expectations costs seconds.
    expectations: Callable[[date], list[Any]]


@dataclass(frozen=True)
class SuiteOutcome:
    passed: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    evaluated: int = 0


def quiet_context():
    """An ephemeral great-expectations context without progress bars (they flood run logs)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _outcomes(context, batch, suites: list[CheckSuite], day: date) -> dict[str, SuiteOutcome]:
    import great_expectations as gx

    outcomes: dict[str, SuiteOutcome] = {}
    for suite in suites:
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        for expectation in suite.expectations(day):
            gx_suite.add_expectation(expectation)
        result = batch.validate(gx_suite)
        failures = [
            {
                "expectation": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column"),
                "unexpected_count": r.result.get("unexpected_count"),
                "sample": [str(v) for v in (r.result.get("partial_unexpected_list") or [])[:5]],
            }
            for r in result.results
            if not r.success
        ]
        outcomes[suite.name] = SuiteOutcome(
            passed=bool(result.success), failures=failures, evaluated=len(result.results)
        )
    return outcomes


def run_suites(frame: pl.DataFrame, suites: list[CheckSuite], day: date) -> dict[str, SuiteOutcome]:
    """Validate `frame` (the rows loaded for `day`) against every suite, by check name."""
    if frame.is_empty():
        return {suite.name: SuiteOutcome(passed=True) for suite in suites}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = quiet_context()
        batch = (
            context.data_sources.add_pandas("ingest")
            .add_dataframe_asset(name="partition")
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": frame.to_pandas()})
        )
        return _outcomes(context, batch, suites, day)


def run_table_suites(
    sqlalchemy_url: str, schema: str, table: str, suites: list[CheckSuite], day: date
) -> dict[str, SuiteOutcome]:
    """Validate a table (say, one day's partition) inside PostgreSQL: no rows move to Python,
    so a day of any size checks in bounded memory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = quiet_context()
        batch = (
            context.data_sources.add_sql("warehouse", connection_string=sqlalchemy_url)
            .add_table_asset(name=table, table_name=table, schema_name=schema)
            .add_batch_definition_whole_table("whole")
            .get_batch()
        )
        return _outcomes(context, batch, suites, day)
