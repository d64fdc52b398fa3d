"""Premium dues and payments, with the planted truth of every due's lapse probability.

The true probability that a due is still unpaid when its grace period ends is a documented
function of things the platform can observe, plus noise it cannot:

    logit p = logit p0(policy year, mode)              base hazard, see below
            + MODE_EFFECT[mode]                         monthly payers lapse more
            + 1.0 x (ln(premium / income) - ln 0.05)    premium heavy for the income
            - 1.5 x (engagement - 0.4)                  app activity (seen in app events)
            - agent quality                             the agent's own persistency
            + 0.25 x min(late payments so far, 3)       payment history
            + 0.3 x [policyholder younger than 30]
            + e_policy,  e_policy ~ N(0, 0.6)           unobservable

p0 spreads a yearly lapse hazard evenly over the dues of that policy year:
p0 = 1 - (1 - H[year]) ** (1 / dues a year), with H = 13%, 9%, 6%, 5.5%, 5%, then 4%:
hazard highest in the first two policy years (as insurers' persistency curves show). With the
other terms this lands 13th-month persistency near 80% and 61st-month near 56% by count
(scale tier; tested). A paid due is paid late (within grace) with probability 0.1 + 1.5 p.

A lapsed policy is revived (arrears paid at once) with probability 20%, 2 to 24 months later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from simulator.config import SimulationConfig
from simulator.rng import stream, uuids
from simulator.world import PAYMENTS_PER_YEAR, World

YEARLY_HAZARD = np.array([0.13, 0.09, 0.06, 0.055, 0.05, 0.04])
MODE_EFFECT = {"monthly": 0.3, "quarterly": 0.1, "half_yearly": 0.0, "annual": -0.1, "single": 0.0}
GRACE_DAYS = {"monthly": 15, "quarterly": 30, "half_yearly": 30, "annual": 30, "single": 30}
REVIVAL_PROBABILITY = 0.2
CHANNELS = ["upi", "nach", "net_banking", "debit_card", "credit_card", "wallet", "cash", "cheque"]
CHANNEL_SHARES = [0.45, 0.20, 0.12, 0.08, 0.05, 0.03, 0.04, 0.03]
IST_OFFSET = np.timedelta64(330, "m")
# Truth is kept for dues up to this long after the window, so models scoring "the next 30 days"
# at the window's end can be judged.
TRUTH_HORIZON_DAYS = 60
CHUNK = 50_000


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """`days` (datetime64[D]) plus whole months, the day of month clamped (31 Jan + 1 = 28 Feb)."""
    month_start = days.astype("datetime64[M]")
    day_of_month = (days - month_start.astype("datetime64[D]")).astype(int)
    target = month_start + months.astype("timedelta64[M]")
    last_day = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        int
    ) - 1
    return target.astype("datetime64[D]") + np.minimum(day_of_month, last_day).astype(
        "timedelta64[D]"
    )


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class PolicyOutcome:
    """How each policy stands at the end of the window (for `insurance_policies.status`)."""

    policy_id: np.ndarray
    status: np.ndarray
    status_changed_at: np.ndarray


def _ist_timestamp(days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A time of day in IST business and evening hours on each day, as UTC datetime64[us]."""
    minutes = np.where(rng.random(len(days)) < 0.7, rng.integers(9 * 60, 18 * 60, len(days)),
                       rng.integers(18 * 60, 23 * 60, len(days)))  # fmt: skip
    local = days.astype("datetime64[m]") + minutes.astype("timedelta64[m]")
    return (local - IST_OFFSET).astype("datetime64[us]")


def simulate_chunk(
    world: World, config: SimulationConfig, rows: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, PolicyOutcome]:
    """Dues and payments of the policies at `rows` of `world.policies`.

    Returns (payments for the operational table, truth per due, policy outcomes).
    """
    policies = world.policies[rows]
    holders = world.policyholders
    agents = world.agents
    rng = stream(config.seed, "payments", int(rows[0]))
    n = len(rows)
    mode = policies["premium_mode"].to_numpy()
    per_year = np.array([PAYMENTS_PER_YEAR[m] for m in mode])
    step_months = np.where(per_year > 0, 12 // np.maximum(per_year, 1), 0)
    issue = policies["issue_date"].to_numpy().astype("datetime64[D]")
    paying_years = policies["premium_paying_term_years"].to_numpy()
    n_dues = np.where(per_year > 0, per_year * paying_years, 1)
    premium = policies["premium_amount"].to_numpy()
    holder_row = policies["holder_row"].to_numpy()
    income = holders["annual_income"].to_numpy()[holder_row]
    engagement = holders["engagement"].to_numpy()[holder_row]
    birth = holders["date_of_birth"].to_numpy()[holder_row].astype("datetime64[D]")
    agent_index = {a: i for i, a in enumerate(agents["agent_id"].to_list())}
    quality = agents["quality"].to_numpy()[[agent_index[a] for a in policies["agent_id"].to_list()]]
    grace = np.array([GRACE_DAYS[m] for m in mode])
    end = np.datetime64(config.end, "D")
    truth_end = end + np.timedelta64(TRUTH_HORIZON_DAYS, "D")
    annual_premium = premium * np.maximum(per_year, 1)
    static = (
        np.array([MODE_EFFECT[m] for m in mode])
        + 1.0 * (np.log(annual_premium / income) - np.log(0.05))
        - 1.5 * (engagement - 0.4)
        - quality
        + 0.3 * ((issue - birth).astype(int) < 30 * 365)
        + rng.normal(0.0, 0.6, n)
    )

    late_count = np.zeros(n, dtype=int)
    terminated = np.zeros(n, dtype=bool)
    revive_on = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    status_out = np.full(n, "active", dtype=object)
    changed_out = issue.copy()
    pay_cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "row", "due", "k", "status", "paid_at", "p", "unpaid", "truth")}  # fmt: skip

    def emit(mask, due, k, status, paid_at, p, unpaid, truth):
        pay_cols["row"].append(np.flatnonzero(mask))
        pay_cols["due"].append(due[mask])
        pay_cols["k"].append(np.full(mask.sum(), k))
        pay_cols["status"].append(status[mask])
        pay_cols["paid_at"].append(paid_at[mask])
        pay_cols["p"].append(p[mask])
        pay_cols["unpaid"].append(unpaid[mask])
        pay_cols["truth"].append(truth[mask])

    # The first premium is paid when the policy is issued.
    first_paid = _ist_timestamp(issue, rng)
    no = np.zeros(n, dtype=bool)
    emit(issue < truth_end, issue, 0, np.full(n, "paid", dtype=object), first_paid,
         np.zeros(n), no, no)  # fmt: skip

    for k in range(1, int(n_dues.max())):
        due = add_months(issue, step_months * k)
        live = (k < n_dues) & (per_year > 0) & ~terminated & (due < truth_end)
        if not live.any():
            if (due[(k < n_dues) & (per_year > 0) & ~terminated] >= truth_end).all():
                break
            continue
        grace_end = due + grace.astype("timedelta64[D]")
        # Dues falling while a policy is lapsed and waiting to be revived are paid on revival.
        waiting = live & ~np.isnat(revive_on) & (due < revive_on)
        policy_year = np.minimum((step_months * k - 1) // 12, len(YEARLY_HAZARD) - 1)
        p0 = 1 - (1 - YEARLY_HAZARD[policy_year]) ** (1 / np.maximum(per_year, 1))
        p = 1 / (1 + np.exp(-(_logit(p0) + static + 0.25 * np.minimum(late_count, 3))))
        draw = rng.random(n)
        unpaid = live & ~waiting & (draw < p)
        paid = live & ~waiting & ~unpaid
        late = paid & (rng.random(n) < np.clip(0.1 + 1.5 * p, 0, 0.6))
        offset = np.where(late, rng.integers(1, grace + 1), -rng.integers(0, 11, n))
        paid_at = _ist_timestamp(due + offset.astype("timedelta64[D]"), rng)
        revived_at = _ist_timestamp(np.where(np.isnat(revive_on), due, revive_on), rng)
        status = np.where(late, "paid_in_grace", "paid").astype(object)
        status = np.where(waiting, "revived", status)
        status = np.where(unpaid, "lapsed", status)
        paid_at = np.where(waiting, revived_at, paid_at)
        # As seen at the end of the window: not yet paid means still due.
        not_yet = (paid | waiting) & (paid_at.astype("datetime64[D]") >= end)
        open_unpaid = unpaid & (grace_end >= end)
        status = np.where(not_yet | open_unpaid, "due", status)
        paid_at = np.where(not_yet | unpaid, np.datetime64("NaT"), paid_at)
        # Dues of a lapsed policy are not live predictions: they stay out of the truth file.
        emit(live, due, k, status, paid_at, p, unpaid, live & ~waiting)

        late_count += late | waiting
        # A due unpaid at grace end lapses the policy; some are revived later (in the window).
        revives = unpaid & (rng.random(n) < REVIVAL_PROBABILITY)
        revive_date = grace_end + rng.integers(60, 730, n).astype("timedelta64[D]")
        revives &= revive_date < end
        revive_on = np.where(revives, revive_date, revive_on)
        terminated |= unpaid & ~revives
        seen = due < end
        status_out = np.where(unpaid & (grace_end < end) & seen, "lapsed", status_out)
        status_out = np.where(unpaid & (grace_end >= end) & seen, "grace", status_out)
        status_out = np.where(
            waiting & (revived_at.astype("datetime64[D]") < end) & seen, "revived", status_out
        )
        changed_out = np.where(unpaid & seen, grace_end, changed_out)

    maturity = policies["maturity_date"].to_numpy().astype("datetime64[D]")
    status_out = np.where((maturity < end) & (status_out == "active"), "matured", status_out)

    row = np.concatenate(pay_cols["row"])
    due = np.concatenate(pay_cols["due"])
    k = np.concatenate(pay_cols["k"])
    status = np.concatenate(pay_cols["status"])
    paid_at = np.concatenate(pay_cols["paid_at"])
    channel = rng.choice(CHANNELS, size=len(row), p=CHANNEL_SHARES)
    policy_id = policies["policy_id"].to_numpy()
    amount = premium[row]
    is_paid = ~np.isnat(paid_at)
    created = due.astype("datetime64[us]") - np.timedelta64(330, "m")  # midnight IST
    updated = np.where(is_paid, paid_at, created)
    in_window = due < end
    payments = (
        pl.DataFrame(
            {
                "id": uuids(rng, len(row)),
                "provider_id": policies["provider_id"].to_numpy()[row],
                "policy_id": policy_id[row],
                "due_date": due,
                "amount": amount,
                "premium_mode": mode[row],
                "installment_number": k + 1,
                "status": status.astype(str),
                "paid_at": paid_at,
                "paid_amount": np.where(is_paid, amount, np.nan),
                "payment_channel": np.where(is_paid, channel, None),
                "created_at": created,
                "updated_at": updated,
            }
        )
        .with_columns(
            pl.col("paid_amount").fill_nan(None),
            pl.col("paid_at").dt.replace_time_zone("UTC"),
            pl.col("created_at").dt.replace_time_zone("UTC"),
            pl.col("updated_at").dt.replace_time_zone("UTC"),
        )
        .filter(pl.Series(in_window))
    )
    truth = pl.DataFrame(
        {
            "policy_id": policy_id[row],
            "due_date": due,
            "installment_number": k + 1,
            "lapse_probability": np.concatenate(pay_cols["p"]),
            "unpaid_at_grace_end": np.concatenate(pay_cols["unpaid"]),
        }
    ).filter(pl.Series(np.concatenate(pay_cols["truth"])))
    outcome = PolicyOutcome(policy_id, status_out.astype(str), changed_out)
    return payments, truth, outcome


def simulate_payments(
    world: World, config: SimulationConfig
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, PolicyOutcome]]:
    """Chunks of (payments, truth, outcomes) over all policies, in bounded memory."""
    total = world.policies.height
    for start in range(0, total, CHUNK):
        yield simulate_chunk(world, config, np.arange(start, min(start + CHUNK, total)))


def utc(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=5, minutes=30)
