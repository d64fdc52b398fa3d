"""The simulated world and its premium history: deterministic, and realistic where it matters."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from simulator.config import SimulationConfig
from simulator.payments import GRACE_DAYS, add_months, simulate_payments
from simulator.world import PAYMENTS_PER_YEAR, build_world

# The scale tier: persistency of a smaller book swings with a few big agents (growth: 52-59%).
CONFIG = SimulationConfig(tier="scale", start=date(2026, 9, 1), days=30, seed=11)


@pytest.fixture(scope="module")
def generated():
    world = build_world(CONFIG)
    parts = list(simulate_payments(world, CONFIG))
    payments = pl.concat([p for p, _, _ in parts])
    truth = pl.concat([t for _, t, _ in parts])
    return world, payments, truth


def test_add_months_clamps_to_the_month_end() -> None:
    days = np.array(["2026-01-31", "2026-03-15", "2024-02-29"], dtype="datetime64[D]")
    shifted = add_months(days, np.array([1, 12, 12]))
    assert shifted.astype(str).tolist() == ["2026-02-28", "2027-03-15", "2025-02-28"]


def test_same_seed_same_world_other_seed_differs() -> None:
    small = SimulationConfig(tier="mvp", seed=3)
    first, second = build_world(small), build_world(small)
    other = build_world(SimulationConfig(tier="mvp", seed=4))
    for name in ("agents", "policyholders", "policies", "videos", "templates"):
        assert getattr(first, name).equals(getattr(second, name)), name
    assert not first.policies.equals(other.policies)
    assert first.policyholders["phone"].n_unique() == first.policyholders.height


def _persistency(world, payments: pl.DataFrame, month: int) -> float:
    """Share of regular-premium policies issued long enough ago whose month-`month` due was
    paid by the end of its grace period (DESIGN §6), computed from the payments alone."""
    regular = world.policies.filter(pl.col("premium_mode") != "single")
    cohort = regular.with_columns(
        due=pl.col("issue_date").dt.offset_by(f"{month - 1}mo"),
        grace=pl.col("premium_mode").replace_strict(GRACE_DAYS, return_dtype=pl.Int64),
    ).filter(
        pl.col("due").dt.offset_by("30d") < CONFIG.end,
        pl.col("premium_paying_term_years") * 12 > month - 1,
    )
    paid = payments.filter(pl.col("paid_at").is_not_null()).select(
        "policy_id", "due_date", pl.col("paid_at").dt.convert_time_zone("Asia/Kolkata").dt.date()
    )
    joined = cohort.join(
        paid, left_on=["policy_id", "due"], right_on=["policy_id", "due_date"], how="left"
    )
    on_time = joined.filter(
        pl.col("paid_at") <= pl.col("due") + pl.duration(days=pl.col("grace"))
    ).height
    return on_time / cohort.height


def test_persistency_lands_where_insurers_disclose(generated) -> None:
    world, payments, _ = generated
    p13, p61 = _persistency(world, payments, 13), _persistency(world, payments, 61)
    assert 0.75 <= p13 <= 0.85, p13
    assert 0.50 <= p61 <= 0.60, p61
    assert p13 > _persistency(world, payments, 25) > _persistency(world, payments, 37) > p61


def test_lapse_hazard_highest_early_and_for_monthly_mode(generated) -> None:
    world, _, truth = generated
    dues = truth.join(
        world.policies.select("policy_id", "issue_date", "premium_mode"), on="policy_id"
    ).with_columns(
        year=((pl.col("due_date") - pl.col("issue_date")).dt.total_days() - 1) // 365 + 1,
        per_year=pl.col("premium_mode").replace_strict(PAYMENTS_PER_YEAR, return_dtype=pl.Int64),
    )
    # Per policy year, the chance a policy lapses that year: 1 - prod(1 - p) over its dues.
    yearly = (
        dues.group_by("year")
        .agg(pl.col("unpaid_at_grace_end").mean().alias("rate"), pl.col("per_year").mean())
        .with_columns(annual=1 - (1 - pl.col("rate")) ** pl.col("per_year"))
        .sort("year")
    )
    rates = dict(zip(yearly["year"], yearly["annual"], strict=True))
    assert rates[1] > rates[3] and rates[2] > rates[4]
    per_due = dues.group_by("premium_mode").agg(pl.col("lapse_probability").mean())
    by_mode = dict(zip(per_due["premium_mode"], per_due["lapse_probability"], strict=True))
    # Per year a monthly payer faces twelve chances to lapse: compare yearly hazards.
    assert 1 - (1 - by_mode["monthly"]) ** 12 > 1 - (1 - by_mode["annual"])


def test_a_fifth_of_agents_bring_most_premium(generated) -> None:
    world, _, _ = generated
    ape = (
        world.policies.with_columns(
            per_year=pl.col("premium_mode").replace_strict(PAYMENTS_PER_YEAR, return_dtype=pl.Int64)
        )
        .with_columns(
            ape=pl.when(pl.col("per_year") == 0)
            .then(pl.col("premium_amount") * 0.1)
            .otherwise(pl.col("premium_amount") * pl.col("per_year"))
        )
        .group_by("agent_id")
        .agg(pl.col("ape").sum())
        .sort("ape", descending=True)
    )
    top = ape.head(max(1, world.agents.height // 5))["ape"].sum()
    assert top / ape["ape"].sum() > 0.6


def test_tax_season_sells_more(generated) -> None:
    world, _, _ = generated
    months = world.policies.group_by(pl.col("issue_date").dt.month().alias("m")).len()
    per_month = dict(zip(months["m"], months["len"], strict=True))
    season = np.mean([per_month[m] for m in (1, 2, 3)])
    rest = np.mean([per_month[m] for m in range(4, 13)])
    assert season > 1.6 * rest


def test_truth_keeps_only_live_dues_with_probabilities(generated) -> None:
    _, _, truth = generated
    assert truth["lapse_probability"].is_between(0, 1).all()
    assert truth["installment_number"].min() >= 2
    assert truth.select(pl.struct("policy_id", "due_date").n_unique()).item() == truth.height
