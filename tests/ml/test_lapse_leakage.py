"""A feature never sees data from on or after its as-of day (issue 6, "Must show").

For each input mart, everything dated on or after the as-of day is changed (rows added, values
altered, rows removed), including facts about the past that only became known later (a session
received days after it happened, a late payment of an old premium); the features must be
exactly equal. A change before the as-of day must show, so the test has teeth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ml.lapse.features import LapseInputs, features_as_of
from tests.ml.conftest import make_lapse_inputs

AS_OF_DAYS = [date(2024, 6, 20), date(2025, 1, 15), date(2025, 4, 2)]
HORIZON = 45


@pytest.fixture(scope="module")
def inputs() -> LapseInputs:
    return make_lapse_inputs(seed=11, policies=240)


def _with_facts_on_the_day(inputs: LapseInputs, as_of: date) -> LapseInputs:
    """`inputs` with facts dated exactly on the as-of day, the sharpest case of "on or after":
    payments of premiums already due, sessions, views and messages of the day or received on
    it, cohorts reported from it, exits recorded on it."""
    dues = inputs.fct_premium_dues.with_columns(
        paid_on=pl.when(
            (pl.col("due_date") < as_of)
            & (pl.col("paid_on").is_null() | (pl.col("paid_on") > as_of))
        )
        .then(pl.lit(as_of))
        .otherwise(pl.col("paid_on"))
    )
    holders = inputs.dim_policyholder["policyholder_id"].head(25).to_list()
    day, received = [as_of, as_of - timedelta(days=3)], [as_of, as_of]
    sessions = pl.DataFrame(
        {
            "policyholder_id": holders * 2,
            "session_day": day * len(holders),
            "first_received_day": received * len(holders),
            "event_count": [9] * (2 * len(holders)),
        }
    )
    views = sessions.select(
        "policyholder_id",
        pl.col("session_day").alias("view_day"),
        pl.col("first_received_day").alias("last_received_day"),
    )
    messages = views.select(
        "policyholder_id",
        pl.lit("inbound").alias("direction"),
        pl.col("view_day").alias("message_day"),
        pl.col("last_received_day").alias("received_day"),
    )
    persistency = inputs.agent_persistency.head(8).with_columns(
        reported_from=pl.lit(as_of), policies_eligible=pl.lit(40), policies_persisting=pl.lit(0)
    )
    on_the_day = pl.lit(datetime(as_of.year, as_of.month, as_of.day, 5)).dt.replace_time_zone("UTC")
    policies = inputs.dim_policy.with_columns(
        app_policy_status=pl.when(pl.int_range(pl.len()) % 5 == 1)
        .then(pl.lit("death_claim"))
        .otherwise(pl.col("app_policy_status")),
        app_status_changed_at=pl.when(pl.int_range(pl.len()) % 5 == 1)
        .then(on_the_day)
        .otherwise(pl.col("app_status_changed_at")),
    )
    relaxed = "vertical_relaxed"
    return LapseInputs(
        fct_premium_dues=dues,
        dim_policy=policies,
        dim_policyholder=inputs.dim_policyholder,
        fct_app_sessions=pl.concat([inputs.fct_app_sessions, sessions], how=relaxed),
        fct_content_views=pl.concat([inputs.fct_content_views, views], how=relaxed),
        fct_whatsapp_messages=pl.concat([inputs.fct_whatsapp_messages, messages], how=relaxed),
        agent_persistency=pl.concat([inputs.agent_persistency, persistency], how=relaxed),
    )


def _later(as_of: date, days: int = 0) -> pl.Expr:
    return pl.lit(as_of + timedelta(days=days))


def _dues_after(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Premium facts from the as-of day on: payments made on or after it move or vanish,
    unpaid premiums get paid late, premiums not yet due disappear or get new payment days,
    and new premiums appear; the marts' own as-of day moves."""
    paid_later = pl.col("paid_on") >= as_of
    not_yet_due = pl.col("due_date") >= as_of
    unknown_yet = not_yet_due & (pl.col("paid_on").is_null() | paid_later)
    changed = frame.with_columns(
        paid_on=pl.when(paid_later & (pl.col("installment_number") % 2 == 0))
        .then(None)
        .when(paid_later)
        .then(pl.col("paid_on") + timedelta(days=40))
        .when(pl.col("paid_on").is_null())
        .then(_later(as_of, 3))
        .otherwise(pl.col("paid_on")),
        as_of_date=_later(as_of, 400),
    )
    kept = changed.filter(~(unknown_yet & (pl.col("installment_number") % 3 == 0)))
    extra = (
        frame.filter(~not_yet_due)
        .head(5)
        .with_columns(
            installment_number=pl.col("installment_number") + 1000,
            due_date=_later(as_of, 2),
            grace_end_date=_later(as_of, 32),
            paid_on=_later(as_of, 1),
            as_of_date=_later(as_of, 400),
        )
    )
    return pl.concat([kept, extra])


def _policies_after(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Policies issued on or after the day appear; exits recorded on or after it change, and
    some policies in force get an exit recorded on the day."""
    new = frame.head(3).with_columns(
        policy_id=pl.format("new-{}", pl.col("policy_id")),
        issue_date=_later(as_of),
        maturity_date=_later(as_of, 3650),
    )
    changed_on = pl.col("app_status_changed_at").dt.convert_time_zone("Asia/Kolkata").dt.date()
    exited = pl.col("app_policy_status").is_in(["matured", "death_claim", "surrendered"])
    known_exit = exited & (changed_on < as_of)
    alter = ~known_exit & ((changed_on >= as_of) | (pl.int_range(pl.len()) % 7 == 0))
    later = pl.lit(datetime(as_of.year, as_of.month, as_of.day, 9)).dt.replace_time_zone("UTC")
    changed = frame.with_columns(
        app_policy_status=pl.when(alter)
        .then(pl.lit("surrendered"))
        .otherwise(pl.col("app_policy_status")),
        app_status_changed_at=pl.when(alter).then(later).otherwise(pl.col("app_status_changed_at")),
    )
    return pl.concat([changed, new])


def _holders_after(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """A policyholder who only joins later (no policy before the day)."""
    return pl.concat([frame, frame.head(1).with_columns(policyholder_id=pl.lit("new-holder"))])


def _events_after(day: str, received: str, value: str | None) -> Callable:
    """Events on or after the day, or received on or after it, change, vanish or multiply."""

    def change(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
        later = (pl.col(day) >= as_of) | (pl.col(received) >= as_of)
        altered = frame.with_columns(
            pl.when(later).then(pl.col(received) + timedelta(days=2)).otherwise(pl.col(received))
        )
        if value is not None:
            altered = altered.with_columns(
                pl.when(later).then(pl.col(value) * 3).otherwise(pl.col(value)).alias(value)
            )
        # Past events received from the day on were not known yet: all go; of the others, half.
        gone = later & ((pl.col(day) < as_of) | (pl.int_range(pl.len()) % 2 == 0))
        kept = altered.filter(~gone)
        extra = frame.head(20).with_columns(
            pl.lit(as_of).alias(day), pl.lit(as_of + timedelta(days=1)).alias(received)
        )
        return pl.concat([kept, extra])

    return change


def _messages_after(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    changed = _events_after("message_day", "received_day", None)(frame, as_of)
    later = pl.col("message_day") >= as_of
    return changed.with_columns(
        direction=pl.when(later).then(pl.lit("inbound")).otherwise(pl.col("direction"))
    )


def _persistency_after(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Cohorts reported from the day on change or appear."""
    later = pl.col("reported_from") >= as_of
    changed = frame.with_columns(
        policies_persisting=pl.when(later).then(0).otherwise(pl.col("policies_persisting")),
        policies_eligible=pl.when(later).then(9).otherwise(pl.col("policies_eligible")),
    )
    extra = frame.head(4).with_columns(reported_from=_later(as_of), policies_eligible=pl.lit(50))
    return pl.concat([changed, extra], how="vertical_relaxed")


CHANGES: dict[str, Callable[[pl.DataFrame, date], pl.DataFrame]] = {
    "fct_premium_dues": _dues_after,
    "dim_policy": _policies_after,
    "dim_policyholder": _holders_after,
    "fct_app_sessions": _events_after("session_day", "first_received_day", "event_count"),
    "fct_content_views": _events_after("view_day", "last_received_day", None),
    "fct_whatsapp_messages": _messages_after,
    "agent_persistency": _persistency_after,
}


@pytest.mark.parametrize("as_of", AS_OF_DAYS, ids=str)
@pytest.mark.parametrize("mart", list(CHANGES))
def test_changing_data_from_the_as_of_day_on_leaves_features_unchanged(
    inputs: LapseInputs, mart: str, as_of: date
) -> None:
    inputs = _with_facts_on_the_day(inputs, as_of)
    before = features_as_of(inputs, as_of, HORIZON)
    assert before.height > 10
    changed_frame = CHANGES[mart](getattr(inputs, mart), as_of)
    assert not changed_frame.equals(getattr(inputs, mart))
    after = features_as_of(replace(inputs, **{mart: changed_frame}), as_of, HORIZON)
    assert_frame_equal(before, after)


@pytest.mark.parametrize("as_of", AS_OF_DAYS, ids=str)
def test_changing_every_mart_at_once_leaves_features_unchanged(
    inputs: LapseInputs, as_of: date
) -> None:
    inputs = _with_facts_on_the_day(inputs, as_of)
    before = features_as_of(inputs, as_of, HORIZON)
    changed = {mart: change(getattr(inputs, mart), as_of) for mart, change in CHANGES.items()}
    assert_frame_equal(before, features_as_of(replace(inputs, **changed), as_of, HORIZON))


def test_the_features_do_see_the_day_before(inputs: LapseInputs) -> None:
    """Facts of the day before the as-of day count: the test above is not vacuous."""
    as_of = date(2025, 1, 15)
    before = features_as_of(inputs, as_of, HORIZON)
    holder = before["policyholder_id"][0]
    session = pl.DataFrame(
        {
            "policyholder_id": [holder] * 5,
            "session_day": [as_of - timedelta(days=1)] * 5,
            "first_received_day": [as_of - timedelta(days=1)] * 5,
            "event_count": [7] * 5,
        }
    )
    sessions = pl.concat([inputs.fct_app_sessions, session], how="vertical_relaxed")
    after = features_as_of(replace(inputs, fct_app_sessions=sessions), as_of, HORIZON)
    row = pl.col("policyholder_id") == holder
    assert after.filter(row)["app_sessions_90d"][0] > before.filter(row)["app_sessions_90d"][0]
