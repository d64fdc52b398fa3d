"""Which premiums fall due in the days after an as-of day: projected from the policy contract.

`fct_premium_dues` holds an instalment only once the app has created it (on its due day), so on
the day we score there is no row yet for next week's premium, and in history the presence of a
row already tells whether the policy survived until then (a policy that lapsed for good has no
later rows). The dues to score therefore come from `dim_policy` alone: instalment `n` of a
regular premium is due on the issue date plus `(n - 1)` months, quarters, half-years or years,
the day clamped to the month's end (DESIGN §6 and the `premium_due_dates` doc block), up to the
premium-paying term. Grace: 15 days for monthly premiums, 30 for the other modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl

MONTHS_BETWEEN_PREMIUMS = {12: 1, 4: 3, 2: 6, 1: 12}
EXIT_STATUSES = ("matured", "death_claim", "surrendered", "cancelled")


def grace_days(premium_mode: pl.Expr) -> pl.Expr:
    """Days of grace after the due date (DESIGN §6): 15 for monthly premiums, else 30."""
    return pl.when(premium_mode == "monthly").then(15).otherwise(30)


def add_months(day: pl.Expr, months: pl.Expr) -> pl.Expr:
    """`day` plus whole `months`, the day of month clamped to the target month's last day."""
    total = day.dt.year() * 12 + day.dt.month() - 1 + months
    first = pl.date(total // 12, total % 12 + 1, 1)
    last_day = first.dt.month_end().dt.day()
    return first + pl.duration(days=pl.min_horizontal(day.dt.day(), last_day) - 1)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _windows_of(due: np.ndarray, days: np.ndarray, horizon_days: int) -> tuple[np.ndarray, ...]:
    """(due row, as-of day) pairs with `as_of <= due < as_of + horizon`: `days` sorted, all as
    day numbers. A binary search per due, so no cross product of dues and days."""
    last = np.searchsorted(days, due, side="right")  # days[:last] <= due
    first = np.searchsorted(days, due - horizon_days, side="right")  # days[first:] > due - h
    count = np.maximum(last - first, 0)
    rows = np.repeat(np.arange(len(due)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return rows, days[first[rows] + offsets]


def upcoming_dues(
    policies: pl.DataFrame, as_of_dates: Sequence[date], horizon_days: int
) -> pl.DataFrame:
    """Every regular instalment due in `[as_of, as_of + horizon_days)` for each as-of day.

    `policies` needs policy_id, premium_mode, payments_per_year, premium_paying_term_years,
    issue_date and maturity_date. Only policies issued before the as-of day count, and no
    instalment after the premium-paying term or on or after maturity. Returns policy_id,
    installment_number, due_date, grace_end_date, months_since_issue and as_of (one row per due
    and as-of day; a due falls in the windows of several as-of days when they are closer
    together than the horizon).
    """
    days = sorted(set(as_of_dates))
    first_month = _month_index(days[0]) - 1
    last_month = _month_index(days[-1] + timedelta(days=horizon_days)) + 1
    regular = policies.filter(pl.col("payments_per_year").is_in(list(MONTHS_BETWEEN_PREMIUMS)))
    step = pl.col("payments_per_year").replace_strict(
        MONTHS_BETWEEN_PREMIUMS, return_dtype=pl.Int64
    )
    issue_month = pl.col("issue_date").dt.year() * 12 + pl.col("issue_date").dt.month() - 1
    dues = (
        regular.lazy()
        .select(
            pl.exclude("step", "n_dues", "issue_month"),
            step.alias("step"),
            (pl.col("payments_per_year") * pl.col("premium_paying_term_years")).alias("n_dues"),
            issue_month.cast(pl.Int64).alias("issue_month"),
        )
        .with_columns(
            # Instalment k + 1 falls k steps after issue; only k whose month can reach a window.
            k_low=pl.max_horizontal(1, (first_month - pl.col("issue_month")) // pl.col("step")),
            k_high=pl.min_horizontal(
                pl.col("n_dues") - 1,
                (last_month - pl.col("issue_month")) // pl.col("step") + 1,
            ),
        )
        .filter(pl.col("k_high") >= pl.col("k_low"))
        .select(
            "policy_id",
            "premium_mode",
            "issue_date",
            "maturity_date",
            "step",
            pl.int_ranges("k_low", pl.col("k_high") + 1).alias("k"),
        )
        .explode("k")
        .with_columns(months_since_issue=pl.col("k") * pl.col("step"))
        .with_columns(
            installment_number=pl.col("k") + 1,
            due_date=add_months(pl.col("issue_date"), pl.col("months_since_issue")),
        )
        .filter(pl.col("maturity_date").is_null() | (pl.col("due_date") < pl.col("maturity_date")))
        .collect()
    )
    day_numbers = np.array(days, dtype="datetime64[D]").astype(np.int64)
    due_numbers = dues["due_date"].cast(pl.Int64).to_numpy()
    rows, as_of = _windows_of(due_numbers, day_numbers, horizon_days)
    return (
        dues[rows]
        .with_columns(as_of=pl.Series(as_of.astype("datetime64[D]")).cast(pl.Date))
        .filter(pl.col("issue_date") < pl.col("as_of"))
        .select(
            "policy_id",
            "installment_number",
            "due_date",
            (pl.col("due_date") + pl.duration(days=grace_days(pl.col("premium_mode")))).alias(
                "grace_end_date"
            ),
            "months_since_issue",
            "as_of",
        )
    )
