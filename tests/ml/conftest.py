"""Small generated marts for the lapse model's tests: pure polars, no database.

`make_lapse_inputs(seed)` builds a few agents, policyholders and policies with their premium
history (paid early, late in grace, lapsed, revived on a later payment), app sessions, video
views, WhatsApp messages (some received days late) and agent persistency rows, between
`HISTORY_START` and `DATA_END`: enough for every feature to take several values.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from ml.lapse.features import LapseInputs

HISTORY_START = date(2021, 1, 1)
APP_START = date(2024, 6, 1)
DATA_END = date(2025, 6, 30)
MODES = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "annual": 12}
INCOME_BANDS = ["under 2.5 lakh", "2.5-5 lakh", "5-10 lakh", "10-25 lakh", "25 lakh and over"]
AGE_BANDS = ["under 25", "25-34", "35-44", "45-54", "55-64", "65 and over"]


def add_months(day: date, months: int) -> date:
    """`day` plus `months`, the day clamped to the target month's end (as the app does)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    first_next = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last_day = (first_next - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last_day))


def _dues_of(rng: np.random.Generator, policy: dict) -> list[dict]:
    """A policy's premium history up to DATA_END: most paid on time or a few days early, some
    late in grace, a few unpaid at grace end (the policy lapses; half are revived 40 to 200 days
    after grace end by paying the premiums that fell due meanwhile, the others stop)."""
    step = MODES.get(policy["premium_mode"])
    grace = 15 if policy["premium_mode"] == "monthly" else 30
    issue = policy["issue_date"]
    rows = [dict(installment_number=1, due_date=issue, paid_on=issue)]
    revival: date | None = None
    k = 1
    while step is not None:
        due = add_months(issue, step * k)
        if due >= DATA_END or k >= policy["payments_per_year"] * 10:
            break
        row = dict(installment_number=k + 1, due_date=due, paid_on=None)
        rows.append(row)
        k += 1
        if revival is not None and due < revival:
            row["paid_on"] = revival  # arrears, paid on revival
            continue
        revival = None
        draw = rng.random()
        if draw < policy["risk"]:
            if rng.random() < 0.5:
                break
            revival = due + timedelta(days=grace + int(rng.integers(40, 200)))
        elif draw < policy["risk"] + policy["late"]:
            row["paid_on"] = due + timedelta(days=int(rng.integers(1, grace + 1)))
        else:
            row["paid_on"] = due - timedelta(days=int(rng.integers(0, 8)))
    for row in rows:
        row["grace_end_date"] = row["due_date"] + timedelta(days=grace)
        if row["paid_on"] is not None and row["paid_on"] >= DATA_END:
            row["paid_on"] = None
    return rows


def make_lapse_inputs(seed: int = 0, policies: int = 60) -> LapseInputs:
    rng = np.random.default_rng(seed)
    agents = [f"agent-{i}" for i in range(4)]
    holders = [f"holder-{i:03d}" for i in range(40)]
    holder_agent = {h: agents[i % len(agents)] for i, h in enumerate(holders)}
    policy_rows, due_rows = [], []
    modes = ["monthly", "quarterly", "half_yearly", "annual", "single"]
    for i in range(policies):
        holder = holders[i % len(holders)]
        mode = modes[i % len(modes)]
        issue = HISTORY_START + timedelta(days=int(rng.integers(0, 3 * 365)))
        per_year = 12 // MODES[mode] if mode in MODES else 0
        status, changed = "active", datetime(issue.year, issue.month, issue.day)
        if i % 17 == 5:
            status, changed = "surrendered", datetime(2024, 9, 1, 8)
        if i % 17 == 11:
            status, changed = "death_claim", datetime(2025, 3, 1, 8)
        policy = dict(
            policy_id=f"policy-{i:03d}",
            policyholder_id=holder,
            agent_id=holder_agent[holder],
            provider_id="provider-a" if i % 3 else "provider-b",
            policy_type=["term", "endowment", "ulip"][i % 3],
            premium_mode=mode,
            payments_per_year=per_year,
            premium_amount=float(rng.integers(2, 50) * 1000),
            sum_assured=float(rng.integers(5, 100) * 100_000),
            premium_paying_term_years=10,
            issue_date=issue,
            maturity_date=issue + timedelta(days=int(20 * 365.25)),
            app_policy_status=status,
            app_status_changed_at=changed,
            risk=float(rng.choice([0.02, 0.08, 0.2])),
            late=float(rng.choice([0.05, 0.3])),
        )
        policy_rows.append(policy)
        for due in _dues_of(rng, policy):
            due_rows.append(dict(policy_id=policy["policy_id"], **due))
    dim_policy = pl.DataFrame(policy_rows).drop("risk", "late")
    dim_policy = dim_policy.with_columns(
        pl.col("app_status_changed_at").dt.replace_time_zone("UTC")
    )
    dues = pl.DataFrame(due_rows, schema_overrides={"paid_on": pl.Date}).with_columns(
        as_of_date=pl.lit(DATA_END - timedelta(days=1))
    )
    dim_policyholder = pl.DataFrame(
        {
            "policyholder_id": holders,
            "age_band": [AGE_BANDS[i % len(AGE_BANDS)] for i in range(len(holders))],
            "income_band": [INCOME_BANDS[i % len(INCOME_BANDS)] for i in range(len(holders))],
        }
    )
    app_days = (DATA_END - APP_START).days

    def dated(n: int, who: list[str | None]) -> tuple[list, list, list]:
        days = [APP_START + timedelta(days=int(d)) for d in rng.integers(0, app_days, n)]
        lags = [timedelta(days=int(x)) for x in rng.choice([0, 0, 0, 1, 3], n)]
        people = [who[int(j)] for j in rng.integers(0, len(who), n)]
        return people, days, [d + lag for d, lag in zip(days, lags, strict=True)]

    people, days, received = dated(600, [*holders[:30], None])
    sessions = pl.DataFrame(
        {
            "policyholder_id": people,
            "session_day": days,
            "first_received_day": received,
            "event_count": rng.integers(3, 20, len(days)),
        }
    )
    people, days, received = dated(200, holders[:30])
    views = pl.DataFrame(
        {"policyholder_id": people, "view_day": days, "last_received_day": received}
    )
    people, days, received = dated(300, holders)
    messages = pl.DataFrame(
        {
            "policyholder_id": people,
            "direction": rng.choice(["inbound", "outbound"], len(days)).tolist(),
            "message_day": days,
            "received_day": received,
        }
    )
    cohorts = [date(2021, m, 1) for m in range(1, 13)] + [date(2022, m, 1) for m in range(1, 13)]
    persistency_rows = []
    for agent in agents:
        for cohort in cohorts:
            eligible = int(rng.integers(0, 6))
            persistency_rows.append(
                dict(
                    agent_id=agent,
                    persistency_month=13,
                    reported_from=add_months(cohort, 13) + timedelta(days=30),
                    policies_eligible=eligible,
                    policies_persisting=int(rng.integers(0, eligible + 1)),
                )
            )
    agent_persistency = pl.DataFrame(persistency_rows)
    return LapseInputs(
        fct_premium_dues=dues,
        dim_policy=dim_policy,
        dim_policyholder=dim_policyholder,
        fct_app_sessions=sessions,
        fct_content_views=views,
        fct_whatsapp_messages=messages,
        agent_persistency=agent_persistency,
    )
