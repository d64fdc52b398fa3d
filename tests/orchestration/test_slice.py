"""End to end: sample → operational DB → extract assets → dbt build → mart, checked by hand."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import dagster as dg
import psycopg
import pytest

from orchestration.definitions import ALL_ASSETS_JOB, build_definitions
from orchestration.resources import DatabasesResource
from simulator.sample import AGENTS, load_sample, sample_policies
from warehouse import urls

pytestmark = pytest.mark.integration

PAYMENTS_PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "annual": 1}
IN_FORCE = {"active", "grace", "revived"}


def _expected_mart() -> dict[str, tuple[int, int, Decimal, Decimal]]:
    """agent_code -> (policies, in force, sum assured in force, APE in force), from the sample."""
    totals: dict[str, list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for code, *_ in AGENTS:
        totals[code]  # every agent appears, with zeros if they sold nothing
    for policy in sample_policies():
        row = totals[policy.agent_code]
        row[0] += 1
        if policy.status in IN_FORCE:
            row[1] += 1
            row[2] += policy.sum_assured
            if policy.premium_mode == "single":
                row[3] += policy.premium_amount * Decimal("0.1")
            else:
                row[3] += policy.premium_amount * PAYMENTS_PER_YEAR[policy.premium_mode]
    return {code: (t[0], t[1], t[2], t[3]) for code, t in totals.items()}


def _mart(warehouse_url: str) -> dict[str, tuple[int, int, Decimal, Decimal]]:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        rows = conn.execute(
            "SELECT agent_code, policies_total, policies_in_force, sum_assured_in_force,"
            " annualised_premium_in_force FROM marts.agent_policy_summary"
        ).fetchall()
    return {code: (total, in_force, sa, ape) for code, total, in_force, sa, ape in rows}


def _materialize(operational_url: str, warehouse_url: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(
        DatabasesResource(operational_url=operational_url, warehouse_url=warehouse_url)
    )
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(ALL_ASSETS_JOB).execute_in_process(instance=instance)


def test_slice_end_to_end(operational_url: str, warehouse_url: str) -> None:
    counts = load_sample(operational_url)
    assert counts["agents"] == len(AGENTS)

    result = _materialize(operational_url, warehouse_url)
    assert result.success

    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    assert {
        "raw/agents",
        "raw/insurance_policies",
        "staging/stg_operational__agents",
        "staging/stg_operational__policies",
        "marts/agent_policy_summary",
    } <= materialized

    # dbt tests ran as Dagster asset checks, and all passed.
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 10
    assert all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]
    # great-expectations suites ran on every raw operational copy.
    ge_checked = {
        c.asset_key.to_user_string() for c in checks if c.check_name == "keys_and_accepted_values"
    }
    assert {"raw/agents", "raw/insurance_policies", "raw/premium_payments"} <= ge_checked

    # The raw copies hold every operational row.
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        assert conn.execute("SELECT count(*) FROM raw.agents").fetchone()[0] == len(AGENTS)
        assert conn.execute("SELECT count(*) FROM raw.insurance_policies").fetchone()[0] == len(
            sample_policies()
        )

    expected = _expected_mart()
    assert _mart(warehouse_url) == expected
    assert expected["HDL-A003"] == (0, 0, Decimal(0), Decimal(0))

    # Materialising again (and loading the sample again) changes nothing.
    load_sample(operational_url)
    assert _materialize(operational_url, warehouse_url).success
    assert _mart(warehouse_url) == expected
