"""Lapse features on a hand-made book of policies whose every value is worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from ml.lapse.features import (
    FEATURE_NAMES,
    ID_COLUMNS,
    KEY_COLUMNS,
    LABEL,
    LapseInputs,
    as_of_schedule,
    features_as_of,
    training_examples,
)
from ml.lapse.schedule import add_months, upcoming_dues
from tests.ml.conftest import add_months as add_months_py

AS_OF = date(2025, 3, 1)
D = date


def _policy(policy_id: str, mode: str, issue: date, **extra: object) -> dict:
    per_year = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "annual": 1, "single": 0}[mode]
    row = dict(
        policy_id=policy_id,
        policyholder_id=extra.pop("holder", "H1"),
        agent_id=extra.pop("agent", "A"),
        provider_id="LIC",
        policy_type="endowment",
        premium_mode=mode,
        payments_per_year=per_year,
        premium_amount=1000.0,
        sum_assured=240_000.0,
        premium_paying_term_years=10,
        issue_date=issue,
        maturity_date=issue + timedelta(days=3652),
        app_policy_status="active",
        app_status_changed_at=datetime(issue.year, issue.month, issue.day, 6),
    )
    row.update(extra)
    return row


def _dues(policy_id: str, mode: str, issue: date, last: int, paid: dict | None = None) -> list:
    """Instalments 1..last, each paid on its due date unless `paid` says otherwise: a day, or
    None for unpaid (instalment 1 is paid at issue)."""
    step = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "annual": 12}[mode]
    grace = 15 if mode == "monthly" else 30
    rows = []
    for n in range(1, last + 1):
        due = add_months_py(issue, step * (n - 1))
        rows.append(
            dict(
                policy_id=policy_id,
                installment_number=n,
                due_date=due,
                grace_end_date=due + timedelta(days=grace),
                paid_on=(paid or {}).get(n, due),
                as_of_date=D(2025, 6, 30),
            )
        )
    return rows


def _book() -> LapseInputs:
    policies = [
        # P1: paid late twice (instalments 3 and 9); instalment 10 due 10 March.
        _policy("P1", "monthly", D(2024, 6, 10)),
        # P2: annual, its third premium due 15 March (never paid).
        _policy("P2", "annual", D(2023, 3, 15), holder="H2", agent="B"),
        # P3: quarterly, the premium due 5 March already paid on 28 February.
        _policy("P3", "quarterly", D(2024, 3, 5)),
        # P4: lapsed (13th premium unpaid at grace end, 4 February), no row after.
        _policy("P4", "monthly", D(2024, 1, 20)),
        # P5: lapsed on 10 February, revived on 27 February by paying instalment 14.
        _policy("P5", "monthly", D(2024, 1, 25)),
        # P6: the premium due 20 February unpaid, in grace until 7 March.
        _policy("P6", "monthly", D(2024, 6, 20)),
        _policy("P7", "single", D(2024, 5, 1)),
        # P8 surrendered before the as-of day, P9 after it.
        _policy("P8", "monthly", D(2024, 6, 15), app_policy_status="surrendered",
                app_status_changed_at=datetime(2025, 2, 1, 6)),
        _policy("P9", "monthly", D(2024, 6, 16), app_policy_status="surrendered",
                app_status_changed_at=datetime(2025, 3, 5, 6)),
        _policy("P10", "monthly", D(2025, 3, 1)),  # issued on the as-of day
    ]  # fmt: skip
    dues = [
        *_dues("P1", "monthly", D(2024, 6, 10), 9, {3: D(2024, 8, 15), 9: D(2025, 2, 20)}),
        *_dues("P2", "annual", D(2023, 3, 15), 3, {2: D(2024, 3, 10), 3: None}),
        *_dues("P3", "quarterly", D(2024, 3, 5), 5, {2: D(2024, 6, 1), 5: D(2025, 2, 28)}),
        *_dues("P4", "monthly", D(2024, 1, 20), 13, {13: None}),
        *_dues("P5", "monthly", D(2024, 1, 25), 14, {13: None, 14: D(2025, 2, 27)}),
        *_dues("P6", "monthly", D(2024, 6, 20), 9, {9: None}),
        *_dues("P7", "monthly", D(2024, 5, 1), 1),
        *_dues("P8", "monthly", D(2024, 6, 15), 9),
        *_dues("P9", "monthly", D(2024, 6, 16), 9),
    ]
    sessions = pl.DataFrame(
        {
            "policyholder_id": [None, "H1", "H1", "H1", "H1", "H1"],
            "session_day": [D(2024, 12, 1), D(2025, 1, 10), D(2025, 2, 1), D(2025, 2, 28),
                            D(2025, 3, 1), D(2025, 2, 25)],
            # The last one happened on 25 February but reached us on 2 March: not known yet.
            "first_received_day": [D(2024, 12, 1), D(2025, 1, 10), D(2025, 2, 1), D(2025, 2, 28),
                                   D(2025, 3, 1), D(2025, 3, 2)],
            "event_count": [4, 5, 7, 9, 30, 30],
        }
    )  # fmt: skip
    views = pl.DataFrame(
        {
            "policyholder_id": ["H1"],
            "view_day": [D(2025, 2, 1)],
            "last_received_day": [D(2025, 2, 1)],
        }
    )
    messages = pl.DataFrame(
        {
            "policyholder_id": ["H2", "H2", "H2"],
            "direction": ["inbound", "outbound", "inbound"],
            "message_day": [D(2024, 12, 1), D(2025, 2, 1), D(2025, 2, 2)],
            "received_day": [D(2024, 12, 1), D(2025, 2, 1), D(2025, 2, 2)],
        }
    )
    persistency = pl.DataFrame(
        {
            "agent_id": ["A", "A", "B"],
            "persistency_month": [13, 13, 13],
            "reported_from": [D(2024, 5, 1), AS_OF, D(2024, 6, 1)],
            "policies_eligible": [10, 100, 10],
            "policies_persisting": [5, 0, 10],
        }
    )
    holders = pl.DataFrame(
        {
            "policyholder_id": ["H1", "H2"],
            "age_band": ["25-34", "45-54"],
            "income_band": ["2.5-5 lakh", "10-25 lakh"],
        }
    )
    return LapseInputs(
        fct_premium_dues=pl.DataFrame(dues, schema_overrides={"paid_on": pl.Date}),
        dim_policy=pl.DataFrame(policies).with_columns(
            pl.col("app_status_changed_at").dt.replace_time_zone("UTC")
        ),
        dim_policyholder=holders,
        fct_app_sessions=sessions,
        fct_content_views=views,
        fct_whatsapp_messages=messages,
        agent_persistency=persistency,
    )


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    return features_as_of(_book(), AS_OF, 30)


def _row(features: pl.DataFrame, policy_id: str) -> dict:
    rows = features.filter(pl.col("policy_id") == policy_id).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def test_columns_are_keys_ids_and_features(features: pl.DataFrame) -> None:
    assert features.columns == [*KEY_COLUMNS, *ID_COLUMNS, *FEATURE_NAMES]


def test_only_dues_of_policies_in_force_and_unpaid_are_scored(features: pl.DataFrame) -> None:
    # P3 paid in advance, P4 lapsed, P7 single premium, P8 surrendered, P10 issued that day.
    assert sorted(features["policy_id"]) == ["P1", "P2", "P5", "P6", "P9"]
    assert features["due_date"].min() >= AS_OF
    assert features["due_date"].max() < AS_OF + timedelta(days=30)


def test_payment_history(features: pl.DataFrame) -> None:
    p1 = _row(features, "P1")
    assert (p1["installment_number"], p1["due_date"]) == (10, D(2025, 3, 10))
    assert p1["grace_end_date"] == D(2025, 3, 25)
    assert p1["persistency_year"] == "1"
    assert p1["late_payments"] == 2 and p1["late_payments_12m"] == 2
    assert p1["late_share"] == pytest.approx(2 / 9)
    assert p1["prior_lapses"] == 0 and p1["overdue_now"] == 0
    p5 = _row(features, "P5")  # lapsed at instalment 13, revived by instalment 14
    assert (p5["installment_number"], p5["prior_lapses"], p5["late_payments"]) == (15, 1, 1)
    assert p5["persistency_year"] == "2"
    assert _row(features, "P6")["overdue_now"] == 1
    p2 = _row(features, "P2")  # the third annual premium closes policy year 2
    assert (p2["installment_number"], p2["persistency_year"]) == (3, "2")
    assert p2["grace_end_date"] == D(2025, 4, 14)


def test_premium_ratios(features: pl.DataFrame) -> None:
    p1 = _row(features, "P1")
    assert p1["premium_to_income"] == pytest.approx(__import__("math").log(12_000 / 355_000))
    assert p1["premium_to_sum_assured"] == pytest.approx(5.0)


def test_engagement_counts_only_what_was_known(features: pl.DataFrame) -> None:
    p1 = _row(features, "P1")
    # Three sessions known before 1 March (5, 7 and 9 actions), app data from 1 December:
    # 90 days observed.
    assert p1["app_sessions_90d"] == pytest.approx(3 / 90 * 30)
    assert p1["app_actions_per_session"] == pytest.approx(7.0)
    assert p1["content_views_90d"] == pytest.approx(1 / 90 * 30)
    p2 = _row(features, "P2")
    assert p2["app_sessions_90d"] == 0 and p2["app_actions_per_session"] is None
    # WhatsApp data from 1 December; two inbound messages in the 90 days.
    assert p2["whatsapp_inbound_90d"] == pytest.approx(2 / 90 * 30)


def test_no_app_data_is_missing_not_zero() -> None:
    early = features_as_of(_book(), D(2024, 12, 10), 30)
    assert early["app_sessions_90d"].null_count() == early.height
    assert early["whatsapp_inbound_90d"].null_count() == early.height


def test_agent_figures_are_shrunk_towards_everyone(features: pl.DataFrame) -> None:
    # Reported before the day: A 5 of 10, B 10 of 10, so everyone 15 of 20; the 100 policies
    # of A reported on the day itself do not count. Ten pseudo-policies at 75%.
    assert _row(features, "P1")["agent_persistency_13m"] == pytest.approx((5 + 7.5) / 20)
    assert _row(features, "P2")["agent_persistency_13m"] == pytest.approx((10 + 7.5) / 20)


def test_labels() -> None:
    book = _book()
    examples = training_examples(book, [D(2025, 1, 15), D(2025, 1, 28)], D(2025, 12, 31), 30)
    labels = {(r["policy_id"], r["installment_number"]): r[LABEL] for r in examples.to_dicts()}
    assert labels[("P1", 9)] is False  # paid 20 Feb, in grace (to 25 Feb)
    assert labels[("P6", 9)] is True  # never paid
    assert labels[("P4", 13)] is True  # unpaid at grace end: the policy lapsed
    # Instalment 14 of P4 was due (20 Feb) while its 13th was in grace on 28 Jan; the policy
    # lapsed for good, so there is no row: never paid, unpaid at grace end.
    assert labels[("P4", 14)] is True
    assert examples["as_of"].unique().sort().to_list() == [D(2025, 1, 15), D(2025, 1, 28)]
    # Only labels known before `label_known_before` (and the marts' as-of day, 30 June).
    later = training_examples(book, [D(2025, 2, 15)], D(2025, 3, 10), 30)
    assert later.height > 0
    assert (later["grace_end_date"] < D(2025, 3, 10)).all()


def test_add_months_clamps_to_the_month_end() -> None:
    days = pl.DataFrame({"day": [D(2024, 1, 31), D(2024, 1, 31), D(2023, 3, 31), D(2024, 8, 15)],
                         "months": [1, 13, 11, 6]})  # fmt: skip
    out = days.select(add_months(pl.col("day"), pl.col("months")).alias("out"))["out"].to_list()
    assert out == [D(2024, 2, 29), D(2025, 2, 28), D(2024, 2, 29), D(2025, 2, 15)]


def test_upcoming_dues_stop_at_the_premium_term() -> None:
    policy = pl.DataFrame([_policy("Q", "annual", D(2015, 3, 1), premium_paying_term_years=10)])
    dues = upcoming_dues(policy, [D(2024, 2, 20), D(2025, 2, 20)], 30)
    # Instalment 10 (2024) is the last of a 10-year term; nothing in 2025.
    assert dues.select("installment_number", "as_of").rows() == [(10, D(2024, 2, 20))]


def test_as_of_schedule() -> None:
    assert as_of_schedule(D(2025, 1, 1), D(2025, 2, 1), 14) == [
        D(2025, 1, 1), D(2025, 1, 15), D(2025, 1, 29)
    ]  # fmt: skip
