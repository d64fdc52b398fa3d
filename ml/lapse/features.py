"""Lapse features: for every premium due soon, what was known about it before the as-of day.

The rows are the regular premiums falling due in `[as_of, as_of + horizon_days)` of policies in
force on the as-of day (`ml.lapse.schedule` projects them from the contract): issued before it,
not lapsed on it, not left the book (the app's matured / death claim / surrendered / cancelled
status set before it) and not already paid in advance. The features follow what drives lapses
(DESIGN §7; the simulator plants the same signals, `simulator/payments.py`):

- `premium_mode`: monthly payers lapse more per year; the mode spreads a yearly hazard over
  its dues.
- `persistency_year`: lapses concentrate in the first two years; a premium counts in the year
  it closes (the 13th-month premium tests year 1), "6+" beyond.
- `policy_type`: the product (term, endowment, ULIP...), which insurers see lapse differently.
- `income_band`, `age_band`: the policyholder's means and life stage (bands only: the marts
  hold no personal data).
- `premium_to_income`: ln(annualised premium / a representative income of the band): a
  premium heavy for the income is dropped first.
- `premium_to_sum_assured`: annualised premium as a % of the sum assured: how dear the cover is.
- `late_payments`, `late_payments_12m`: premiums of the policy paid after their due date, ever
  and in the last 365 days (revival arrears included).
- `late_share`: late payments over premiums paid: the habit, whatever the policy's age.
- `prior_lapses`: times the policy lapsed (and was revived) before.
- `overdue_now`: 1 when an earlier premium is past due, unpaid and still in grace.
- `app_sessions_90d`, `app_actions_per_session`, `content_views_90d`: app engagement, sessions
  and videos a 30 days over the last 90 days (or the app data there is), actions a session.
- `whatsapp_inbound_90d`: messages the customer wrote to the agent, a 30 days, last 90 days.
- `agent_persistency_13m`: the agent's 13th-month persistency over the cohorts reported in the
  last two years.
- `agent_lapse_ratio`: the agent's lapses over those expected for the mode and persistency
  year of each premium, last two years.

Engagement rates are null until `ml.lapse.history.MIN_HISTORY_DAYS` of app (or WhatsApp) data
exist before the as-of day: "no data" is not "no sessions". Agent figures are shrunk towards
everyone's, so a new agent is average until its own book says otherwise.

**Nothing from on or after the as-of day** reaches a feature: every fact carries the first day it
could be known (`ml.lapse.inputs`) and is looked up point in time (`ml.lapse.asof`). Contract
terms (mode, premium, sum assured, dates) are known from issue; the bands of `dim_policyholder`
are taken as static attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from ml.lapse.history import (
    agent_track_record,
    holder_engagement,
    lapse_facts,
    lapsed_on_day,
    policy_history,
)
from ml.lapse.inputs import INPUT_COLUMNS, LapseInputs, prepare
from ml.lapse.schedule import upcoming_dues

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_NAMES",
    "ID_COLUMNS",
    "INPUT_COLUMNS",
    "KEY_COLUMNS",
    "LABEL",
    "NUMERIC_FEATURES",
    "LapseInputs",
    "as_of_schedule",
    "features_as_of",
    "training_examples",
]

KEY_COLUMNS: tuple[str, ...] = ("policy_id", "installment_number", "due_date")
ID_COLUMNS: tuple[str, ...] = ("policyholder_id", "agent_id", "provider_id", "grace_end_date")
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "premium_mode",
    "persistency_year",
    "policy_type",
    "income_band",
    "age_band",
)
NUMERIC_FEATURES: tuple[str, ...] = (
    "premium_to_income",
    "premium_to_sum_assured",
    "late_payments",
    "late_payments_12m",
    "late_share",
    "prior_lapses",
    "overdue_now",
    "app_sessions_90d",
    "app_actions_per_session",
    "content_views_90d",
    "whatsapp_inbound_90d",
    "agent_persistency_13m",
    "agent_lapse_ratio",
)
FEATURE_NAMES: tuple[str, ...] = CATEGORICAL_FEATURES + NUMERIC_FEATURES
LABEL = "unpaid_at_grace_end"

# A representative yearly income (rupees) of each band of `dim_policyholder.income_band`: about
# the geometric middle of the band; the open bands take 1.8 and 35 lakh.
INCOME_BAND_RUPEES: dict[str, float] = {
    "under 2.5 lakh": 180_000.0,
    "2.5-5 lakh": 355_000.0,
    "5-10 lakh": 710_000.0,
    "10-25 lakh": 1_580_000.0,
    "25 lakh and over": 3_500_000.0,
}


def _persistency_year(months_since_issue: pl.Expr) -> pl.Expr:
    """The policy year a premium closes: months 1-12 after issue are year 1 (the 13th-month
    premium, due 12 months after issue, is the one 13th-month persistency checks)."""
    year = (months_since_issue + 11) // 12
    return pl.when(year >= 6).then(pl.lit("6+")).otherwise(year.cast(pl.String))


def _build(inputs: LapseInputs, as_of_dates: Sequence[date], horizon_days: int) -> pl.DataFrame:
    """Features of the dues in the window of every as-of day, with an `as_of` column."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    if not as_of_dates:
        raise ValueError("as_of_dates is empty")
    prep = prepare(inputs)
    dues = upcoming_dues(prep.policies, as_of_dates, horizon_days).join(
        prep.policies, on="policy_id", how="inner"
    )
    # Already paid in advance before the as-of day: nothing to predict.
    paid = prep.dues.select("policy", "installment_number", pl.col("paid_on").alias("_paid_on"))
    dues = (
        dues.join(paid, on=["policy", "installment_number"], how="left")
        .filter(pl.col("_paid_on").is_null() | (pl.col("_paid_on") >= pl.col("as_of")))
        .filter(pl.col("exited_on").is_null() | (pl.col("exited_on") >= pl.col("as_of")))
    )
    at = dues.select("policy", "as_of").unique(maintain_order=True)
    at = at.filter(~lapsed_on_day(prep, at))
    facts = lapse_facts(prep.dues, prep.policies)
    at = pl.concat([at, policy_history(prep, facts, at)], how="horizontal")
    dues = dues.join(at, on=["policy", "as_of"], how="inner")
    holders = dues.select("holder", "as_of").unique(maintain_order=True)
    holders = pl.concat([holders, holder_engagement(prep, holders)], how="horizontal")
    agents = dues.select("agent", "as_of").unique(maintain_order=True)
    agents = pl.concat([agents, agent_track_record(prep, facts, agents)], how="horizontal")
    dues = (
        dues.join(prep.holders, on="policyholder_id", how="left")
        .join(holders, on=["holder", "as_of"], how="left")
        .join(agents, on=["agent", "as_of"], how="left")
    )
    annual_premium = pl.col("premium_amount") * pl.col("payments_per_year")
    band_income = pl.col("income_band").replace_strict(
        INCOME_BAND_RUPEES, default=None, return_dtype=pl.Float64
    )
    features = dues.select(
        "as_of",
        *KEY_COLUMNS,
        *ID_COLUMNS,
        "premium_mode",
        _persistency_year(pl.col("months_since_issue")).alias("persistency_year"),
        "policy_type",
        "income_band",
        "age_band",
        (annual_premium / band_income).log().alias("premium_to_income"),
        pl.when(pl.col("sum_assured") > 0)
        .then(annual_premium / pl.col("sum_assured") * 100.0)
        .alias("premium_to_sum_assured"),
        pl.col("late").alias("late_payments"),
        pl.col("late_12m").alias("late_payments_12m"),
        (pl.col("late") / pl.max_horizontal(pl.col("paid"), 1.0)).alias("late_share"),
        "prior_lapses",
        (pl.col("in_grace") > 0).cast(pl.Float64).alias("overdue_now"),
        "app_sessions_90d",
        "app_actions_per_session",
        "content_views_90d",
        "whatsapp_inbound_90d",
        "agent_persistency_13m",
        "agent_lapse_ratio",
    )
    return features.with_columns(
        pl.col(name).cast(pl.Float64).fill_nan(None) for name in NUMERIC_FEATURES
    ).sort("as_of", "due_date", "policy_id", "installment_number")


def features_as_of(inputs: LapseInputs, as_of: date, horizon_days: int = 30) -> pl.DataFrame:
    """One row per regular premium due in `[as_of, as_of + horizon_days)` of a policy in force,
    keyed by `KEY_COLUMNS`, with `ID_COLUMNS` and the `FEATURE_NAMES`, from data before `as_of`.
    """
    return _build(inputs, [as_of], horizon_days).drop("as_of")


def training_examples(
    inputs: LapseInputs,
    as_of_dates: Sequence[date],
    label_known_before: date,
    horizon_days: int = 30,
) -> pl.DataFrame:
    """`features_as_of` for each as-of day, with `as_of` and the label `unpaid_at_grace_end`.

    Only dues whose grace ended before `label_known_before` (and before the marts' own as-of
    day) are kept, so every label is final. The label is true when the premium was not paid on
    or before its grace end date; a projected premium with no row in `fct_premium_dues` although
    its date has passed belongs to a policy that lapsed for good at an earlier premium (whose
    grace was running on the as-of day), so it was never paid either and counts as unpaid.
    """
    known_before = label_known_before
    data_as_of = inputs.fct_premium_dues["as_of_date"].cast(pl.Date).max()
    if isinstance(data_as_of, date):
        known_before = min(known_before, data_as_of)
    rows = _build(inputs, as_of_dates, horizon_days).filter(pl.col("grace_end_date") < known_before)
    outcomes = inputs.fct_premium_dues.select(
        pl.col("policy_id").cast(pl.String),
        pl.col("installment_number").cast(pl.Int64),
        pl.col("paid_on").cast(pl.Date).alias("_paid_on"),
    )
    labelled = rows.join(outcomes, on=["policy_id", "installment_number"], how="left")
    unpaid = pl.col("_paid_on").is_null() | (pl.col("_paid_on") > pl.col("grace_end_date"))
    return labelled.with_columns(unpaid.alias(LABEL)).drop("_paid_on")


def as_of_schedule(first: date, last: date, every_days: int = 30) -> list[date]:
    """As-of days from `first` to `last`, every `every_days`. Stepping by the horizon puts each
    due in exactly one snapshot; closer steps repeat dues with fresher features."""
    if every_days < 1:
        raise ValueError("every_days must be at least 1")
    count = math.floor((last - first).days / every_days) + 1
    return [first + timedelta(days=every_days * i) for i in range(max(count, 0))]


def features_for_days(
    inputs: LapseInputs, days: Sequence[date], horizon_days: int = 30
) -> pl.DataFrame:
    """`features_as_of` of several days in one pass, with the `as_of` column: what the daily
    scoring of a backfilled range needs, without rebuilding the inputs once per day."""
    if not days:
        raise ValueError("days is empty")
    return _build(inputs, days, horizon_days)
