"""End to end: simulator → operational DB → extract → dbt build → mart, recomputed in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import dagster as dg
import psycopg
import pytest

from orchestration.definitions import build_definitions, materialize_days
from orchestration.resources import DatabasesResource, LandingResource
from simulator.config import SimulationConfig
from simulator.runner import simulate
from warehouse import urls
from warehouse.migrate import upgrade

pytestmark = pytest.mark.integration

LANDING: dict = {}  # where the module's simulation wrote its landing files, and its first day
PAYMENTS_PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "annual": 1}
IN_FORCE = {"active", "grace", "revived"}


def _expected_mart(operational_url: str) -> dict[str, tuple[int, int, Decimal, Decimal]]:
    """agent_code -> (policies, in force, sum assured in force, APE in force), recomputed in
    Python from the operational rows (DESIGN §6), independently of the dbt SQL."""
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        rows = conn.execute(
            "SELECT a.agent_code, p.premium_amount, p.premium_mode::text, p.sum_assured,"
            " p.status::text FROM agents a LEFT JOIN insurance_policies p"
            " ON p.agent_id = a.id AND p.deleted_at IS NULL"
        ).fetchall()
    totals: dict[str, list] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for code, premium, mode, sum_assured, status in rows:
        row = totals[code]  # every agent appears, with zeros if they sold nothing
        if premium is None:
            continue
        row[0] += 1
        if status in IN_FORCE:
            row[1] += 1
            row[2] += sum_assured
            row[3] += premium * (Decimal("0.1") if mode == "single" else PAYMENTS_PER_YEAR[mode])
    return {code: (t[0], t[1], t[2], t[3]) for code, t in totals.items()}


def _add_agent_without_policies(operational_url: str) -> None:
    """A newly joined agent: the mart must list them with zeros (a left join, not an inner)."""
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        provider = conn.execute("SELECT id FROM insurance_providers LIMIT 1").fetchone()[0]
        new_user = conn.execute(
            "INSERT INTO users (phone, role, status) VALUES ('+917000000099', 'agent', 'active')"
            " RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO agents (provider_id, user_id, agent_code, status)"
            " VALUES (%s, %s, 'NEW-000001', 'active')",
            (provider, new_user),
        )


def _mart(warehouse_url: str) -> dict[str, tuple[int, int, Decimal, Decimal]]:
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        rows = conn.execute(
            "SELECT agent_code, policies_total, policies_in_force, sum_assured_in_force,"
            " annualised_premium_in_force FROM marts.agent_policy_summary"
        ).fetchall()
    return {code: (total, in_force, sa, ape) for code, total, in_force, sa, ape in rows}


def _materialize(operational_url: str, warehouse_url: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(
        DatabasesResource(operational_url=operational_url, warehouse_url=warehouse_url),
        LandingResource(root=str(LANDING["root"]), app_secret="slice", pii_key="slice-pii"),
        partitions_start=LANDING["start"],
    )
    last = LANDING["start"] + timedelta(days=1)
    with dg.instance_for_test() as instance:
        (result,) = materialize_days(defs, instance, LANDING["start"], last)
        return result


@pytest.fixture(scope="module")
def simulated_operational(make_database, tmp_path_factory) -> str:
    """A fresh operational database holding two simulated mvp days, plus a policy-less agent."""
    tmp = tmp_path_factory.mktemp("slice")
    url = make_database("slice_op")
    upgrade(url)
    config = SimulationConfig(
        tier="mvp", days=2, seed=9, landing_root=tmp / "landing", truth_root=tmp / "truth"
    )
    LANDING.update(root=config.landing_root, start=config.start)
    simulate(config, url, app_secret=b"slice", progress=False)
    _add_agent_without_policies(url)
    return url


def test_slice_end_to_end(simulated_operational: str, warehouse_url: str) -> None:
    operational_url = simulated_operational
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
    counts = {}
    for url in (operational_url, warehouse_url):
        schema = "public" if url == operational_url else "raw"
        with psycopg.connect(urls.libpq_url(url)) as conn:
            counts[schema] = [
                conn.execute(f"SELECT count(*) FROM {schema}.{t}").fetchone()[0]  # noqa: S608
                for t in ("agents", "insurance_policies")
            ]
    assert counts["raw"] == counts["public"] and counts["raw"][0] == 21

    expected = _expected_mart(operational_url)
    assert _mart(warehouse_url) == expected
    assert expected["NEW-000001"] == (0, 0, Decimal(0), Decimal(0))
    assert sum(policies for policies, *_ in expected.values()) == counts["raw"][1]

    # Materialising again changes nothing.
    assert _materialize(operational_url, warehouse_url).success
    assert _mart(warehouse_url) == expected
