"""What the lapse features read from the marts, and the same data typed and keyed for use.

The I/O layer selects `INPUT_COLUMNS` from `marts.<name>` into a `LapseInputs` (ids as text or
UUID strings, numerics as floats or decimals, dates as dates: `prepare` fixes the types). Then
`prepare` gives every fact the first day it could have been known (`KNOWN_ON`) and replaces the
text ids by integer codes (`policy`, `holder`, `agent`), which the point-in-time look-ups of
`ml.lapse.asof` search quickly.

Deliberately not read: `fct_premium_dues.outcome`, `is_unpaid_at_grace_end`, `lapsed_on`,
`revived_on` and the app's payment status, `dim_policy.policy_status` and its counters, and
`customer_360`: they describe the policy as the marts see it *today*, so a feature built from
them for a past as-of day would know the future. Outcomes are rebuilt from the dates instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from ml.lapse.asof import KNOWN_ON

INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "fct_premium_dues": (
        "policy_id",
        "installment_number",
        "due_date",
        "grace_end_date",
        "paid_on",
        "as_of_date",
    ),
    "dim_policy": (
        "policy_id",
        "policyholder_id",
        "agent_id",
        "provider_id",
        "policy_type",
        "premium_mode",
        "payments_per_year",
        "premium_amount",
        "sum_assured",
        "premium_paying_term_years",
        "issue_date",
        "maturity_date",
        "app_policy_status",
        "app_status_changed_at",
    ),
    "dim_policyholder": ("policyholder_id", "age_band", "income_band"),
    "fct_app_sessions": ("policyholder_id", "session_day", "first_received_day", "event_count"),
    "fct_content_views": ("policyholder_id", "view_day", "last_received_day"),
    "fct_whatsapp_messages": ("policyholder_id", "direction", "message_day", "received_day"),
    "agent_persistency": (
        "agent_id",
        "persistency_month",
        "reported_from",
        "policies_eligible",
        "policies_persisting",
    ),
}
# The app's statuses for a policy that left the book (DESIGN §6).
EXIT_STATUSES = ("matured", "death_claim", "surrendered", "cancelled")


@dataclass(frozen=True)
class LapseInputs:
    """The marts the lapse features read, one polars frame each with `INPUT_COLUMNS`."""

    fct_premium_dues: pl.DataFrame
    dim_policy: pl.DataFrame
    dim_policyholder: pl.DataFrame
    fct_app_sessions: pl.DataFrame
    fct_content_views: pl.DataFrame
    fct_whatsapp_messages: pl.DataFrame
    agent_persistency: pl.DataFrame


@dataclass(frozen=True)
class Prepared:
    """The inputs typed, with integer keys (`policy`, `holder`, `agent`) and dated facts.

    dues: policy, installment_number, due_date, grace_end_date, paid_on.
    policies: the `dim_policy` columns plus the three codes and `exited_on` (the IST day the app
    recorded an exit, else null).
    holders: policyholder_id, age_band, income_band.
    sessions, views, messages: holder (null when not a policyholder's), day, `KNOWN_ON` (the day
    after both the event day and its receipt), and `events` / `inbound`.
    persistency: agent, `KNOWN_ON` (the day after `reported_from`), eligible, persisting (13th
    month only).
    """

    dues: pl.DataFrame
    policies: pl.DataFrame
    holders: pl.DataFrame
    sessions: pl.DataFrame
    views: pl.DataFrame
    messages: pl.DataFrame
    persistency: pl.DataFrame


def _text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


def _day(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Date)


def _ist_day(column: str, frame: pl.DataFrame) -> pl.Expr:
    """The Asia/Kolkata day of a timestamp column (naive timestamps are taken as UTC)."""
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        expr = pl.col(column)
        if dtype.time_zone is None:
            expr = expr.dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("Asia/Kolkata").dt.date()
    return _day(column)


def _known_after(*days: str) -> pl.Expr:
    """The day after the latest of `days` (null days ignored): when the fact was known."""
    return pl.max_horizontal(*(_day(d) for d in days)) + timedelta(days=1)


def _codes(*columns: pl.Series) -> pl.Enum:
    """One integer code per distinct id found in any of `columns`."""
    ids = pl.concat([c.cast(pl.String).drop_nulls() for c in columns]).unique().sort()
    return pl.Enum(ids)


def _code(column: str, ids: pl.Enum, name: str) -> pl.Expr:
    return _text(column).cast(ids).to_physical().cast(pl.Int64).alias(name)


def prepare(inputs: LapseInputs) -> Prepared:
    """Type the inputs, encode their ids and date their facts (see `Prepared`)."""
    raw_dues, raw_policies = inputs.fct_premium_dues, inputs.dim_policy
    policy_ids = _codes(raw_policies["policy_id"], raw_dues["policy_id"])
    holder_ids = _codes(
        raw_policies["policyholder_id"],
        inputs.dim_policyholder["policyholder_id"],
        inputs.fct_app_sessions["policyholder_id"],
        inputs.fct_content_views["policyholder_id"],
        inputs.fct_whatsapp_messages["policyholder_id"],
    )
    agent_ids = _codes(raw_policies["agent_id"], inputs.agent_persistency["agent_id"])
    dues = raw_dues.select(
        _code("policy_id", policy_ids, "policy"),
        pl.col("installment_number").cast(pl.Int64),
        _day("due_date"),
        _day("grace_end_date"),
        _day("paid_on"),
    )
    policies = raw_policies.select(
        *(_text(c) for c in ("policy_id", "policyholder_id", "agent_id", "provider_id")),
        _code("policy_id", policy_ids, "policy"),
        _code("policyholder_id", holder_ids, "holder"),
        _code("agent_id", agent_ids, "agent"),
        _text("policy_type"),
        _text("premium_mode"),
        pl.col("payments_per_year").cast(pl.Int64),
        pl.col("premium_amount").cast(pl.Float64),
        pl.col("sum_assured").cast(pl.Float64),
        pl.col("premium_paying_term_years").cast(pl.Int64),
        _day("issue_date"),
        _day("maturity_date"),
        pl.when(pl.col("app_policy_status").is_in(list(EXIT_STATUSES)))
        .then(_ist_day("app_status_changed_at", raw_policies))
        .alias("exited_on"),
    )
    holders = inputs.dim_policyholder.select(
        _text("policyholder_id"), _text("age_band"), _text("income_band")
    )
    sessions = inputs.fct_app_sessions.select(
        _code("policyholder_id", holder_ids, "holder"),
        _day("session_day").alias("day"),
        _known_after("session_day", "first_received_day").alias(KNOWN_ON),
        pl.col("event_count").cast(pl.Float64).fill_null(0.0).alias("events"),
    )
    views = inputs.fct_content_views.select(
        _code("policyholder_id", holder_ids, "holder"),
        _day("view_day").alias("day"),
        _known_after("view_day", "last_received_day").alias(KNOWN_ON),
    )
    messages = inputs.fct_whatsapp_messages.select(
        _code("policyholder_id", holder_ids, "holder"),
        _day("message_day").alias("day"),
        _known_after("message_day", "received_day").alias(KNOWN_ON),
        (pl.col("direction") == "inbound").cast(pl.Float64).alias("inbound"),
    )
    persistency = inputs.agent_persistency.filter(pl.col("persistency_month") == 13).select(
        _code("agent_id", agent_ids, "agent"),
        (_day("reported_from") + timedelta(days=1)).alias(KNOWN_ON),
        pl.col("policies_eligible").cast(pl.Float64).fill_null(0.0).alias("eligible"),
        pl.col("policies_persisting").cast(pl.Float64).fill_null(0.0).alias("persisting"),
    )
    return Prepared(dues, policies, holders, sessions, views, messages, persistency)
