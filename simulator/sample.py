"""A small, fixed sample of operational data for `mitra demo` and the end-to-end tests.

Deterministic on purpose: ids are UUIDv5 of natural keys and every value comes from a seeded
generator, so loading twice inserts nothing new (`ON CONFLICT DO NOTHING`) and tests can compute
the expected mart numbers from `sample_policies()`. The full simulator (issue 3) replaces it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from warehouse.databases import make_engine
from warehouse.operational.models import (
    Agent,
    InsurancePolicy,
    InsuranceProvider,
    Policyholder,
    PremiumPayment,
    User,
)

NAMESPACE = uuid.UUID("6f1c1d1e-4b8e-4f55-9d1e-6d2a8b7e0a11")
SEED = 20261125
AS_OF = date(2026, 11, 1)

PROVIDERS = [
    ("LIC", "Life Insurance Corporation of India", "life", "512"),
    ("HDFCLIFE", "HDFC Life Insurance Company", "life", "101"),
]
AGENTS = [  # code, provider, name, territory, state, city
    ("LIC-A001", "LIC", "Priya Sharma", "Pune West", "Maharashtra", "Pune"),
    ("LIC-A002", "LIC", "Rahul Deshmukh", "Pune West", "Maharashtra", "Pune"),
    ("LIC-A003", "LIC", "Anjali Iyer", "Chennai Central", "Tamil Nadu", "Chennai"),
    ("HDL-A001", "HDFCLIFE", "Vikram Singh", "Jaipur North", "Rajasthan", "Jaipur"),
    ("HDL-A002", "HDFCLIFE", "Meera Nair", "Kochi", "Kerala", "Kochi"),
    ("HDL-A003", "HDFCLIFE", "Arjun Reddy", "Hyderabad East", "Telangana", "Hyderabad"),
]
FIRST_NAMES = [
    "Aarav",
    "Diya",
    "Kabir",
    "Isha",
    "Rohan",
    "Sneha",
    "Arnav",
    "Pooja",
    "Karan",
    "Neha",
]
LAST_NAMES = ["Patel", "Gupta", "Kulkarni", "Menon", "Joshi", "Rao", "Bose", "Chauhan"]
POLICY_TYPES = ["endowment", "term", "money_back", "ulip", "health", "whole_life"]
MODES = ["monthly", "quarterly", "half_yearly", "annual", "single"]
MONTHS_BETWEEN = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "annual": 12, "single": 0}
POLICIES_PER_AGENT = [14, 9, 6, 11, 5, 0]  # uneven on purpose; the last agent has sold nothing


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(parts))


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    first = date(day.year + year, month + 1, 1)
    last_day = (date(first.year + (first.month // 12), first.month % 12 + 1, 1) - timedelta(1)).day
    return first.replace(day=min(day.day, last_day))


@dataclass(frozen=True)
class SamplePolicy:
    """What a test needs to recompute the marts from the sample."""

    policy_id: uuid.UUID
    agent_code: str
    premium_amount: Decimal
    premium_mode: str
    sum_assured: Decimal
    status: str


def _rows() -> dict[Table, list[dict]]:
    rng = random.Random(SEED)  # noqa: S311 - sample data, not security
    providers, users, agents, holders, policies, payments = [], [], [], [], [], []
    for code, name, kind, reg in PROVIDERS:
        providers.append(
            {
                "id": _id("provider", code),
                "code": code,
                "name": name,
                "provider_type": kind,
                "irdai_registration_number": reg,
                "status": "active",
            }
        )
    for index, (code, provider, name, territory, state, city) in enumerate(AGENTS):
        agent_id, user_id = _id("agent", code), _id("user", code)
        users.append(
            {
                "id": user_id,
                "phone": f"+9198{index:08d}",
                "full_name": name,
                "role": "agent",
                "status": "active",
            }
        )
        agents.append(
            {
                "id": agent_id,
                "provider_id": _id("provider", provider),
                "user_id": user_id,
                "agent_code": code,
                "territory": territory,
                "state": state,
                "city": city,
                "status": "active",
                "joined_on": date(2019 + index % 4, 4, 1),
                "whatsapp_phone_number_id": f"10{index:013d}",
                "irdai_license_number": f"IRDA/{provider}/{index:06d}",
            }
        )
        for n in range(POLICIES_PER_AGENT[index]):
            holder_code = f"{code}-C{n:03d}"
            holder_id = _id("policyholder", holder_code)
            holders.append(
                {
                    "id": holder_id,
                    "provider_id": _id("provider", provider),
                    "agent_id": agent_id,
                    "customer_code": holder_code,
                    "full_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    "city": city,
                    "state": state,
                    "preferred_language": "en",
                    "date_of_birth": date(1960 + rng.randrange(40), 1 + rng.randrange(12), 1),
                }
            )
            mode = rng.choice(MODES)
            premium = Decimal(rng.randrange(10, 400) * 100)
            issue = _add_months(AS_OF, -rng.randrange(1, 48))
            status = rng.choices(
                ["active", "lapsed", "grace", "revived", "surrendered"], weights=[70, 12, 8, 5, 5]
            )[0]
            policy_id = _id("policy", holder_code)
            policies.append(
                {
                    "id": policy_id,
                    "provider_id": _id("provider", provider),
                    "policyholder_id": holder_id,
                    "agent_id": agent_id,
                    "policy_number": f"{provider[:3]}{rng.randrange(10**8, 10**9)}",
                    "policy_type": rng.choice(POLICY_TYPES),
                    "plan_name": "Sample Plan",
                    "sum_assured": premium * rng.choice([20, 50, 100]),
                    "premium_amount": premium,
                    "premium_mode": mode,
                    "policy_term_years": 20,
                    "premium_paying_term_years": 1 if mode == "single" else 15,
                    "issue_date": issue,
                    "status": status,
                }
            )
            payments.extend(
                _payments(policy_id, _id("provider", provider), issue, mode, premium, status)
            )
    return {
        InsuranceProvider.__table__: providers,
        User.__table__: users,
        Agent.__table__: agents,
        Policyholder.__table__: holders,
        InsurancePolicy.__table__: policies,
        PremiumPayment.__table__: payments,
    }


def _payments(
    policy_id, provider_id, issue: date, mode: str, premium: Decimal, status: str
) -> list[dict]:
    """Dues from issue to AS_OF; paid on time, except the last ones of a lapsed or grace policy."""
    step = MONTHS_BETWEEN[mode]
    dues = [issue] if step == 0 else []
    if step:
        due = issue
        while due <= AS_OF:
            dues.append(due)
            due = _add_months(due, step)
    unpaid = {"lapsed": 2, "grace": 1}.get(status, 0)
    rows = []
    for number, due in enumerate(dues, start=1):
        paid = number <= len(dues) - unpaid
        rows.append(
            {
                "provider_id": provider_id,
                "policy_id": policy_id,
                "due_date": due,
                "amount": premium,
                "premium_mode": mode,
                "installment_number": number,
                "status": "paid" if paid else ("lapsed" if status == "lapsed" else "due"),
                "paid_at": datetime.combine(due, time(11, 0), UTC) if paid else None,
                "paid_amount": premium if paid else None,
                "payment_channel": "upi" if paid else None,
            }
        )
    return rows


def sample_policies() -> list[SamplePolicy]:
    """The sample's policies, for tests that recompute the marts by hand."""
    agent_codes = {row["id"]: row["agent_code"] for row in _rows()[Agent.__table__]}
    return [
        SamplePolicy(
            row["id"],
            agent_codes[row["agent_id"]],
            row["premium_amount"],
            row["premium_mode"],
            row["sum_assured"],
            row["status"],
        )
        for row in _rows()[InsurancePolicy.__table__]
    ]


def load_sample(operational_url: str) -> dict[str, int]:
    """Insert the sample (rows already there are left alone); returns the rows per table."""
    engine = make_engine(operational_url, pool_size=1)
    counts: dict[str, int] = {}
    try:
        with engine.begin() as conn:
            for table, rows in _rows().items():
                if rows:
                    conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
                counts[table.name] = len(rows)
    finally:
        engine.dispose()
    return counts
