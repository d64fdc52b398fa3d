"""What was known on the as-of day about a policy, its policyholder and its agent.

Each function takes the `Prepared` inputs and an `at` frame of (code, as_of) questions and
answers with one row per question, in order. Everything goes through `ml.lapse.asof.Running`,
so only facts known before the as-of day count (see `ml.lapse.inputs` for when each is known).

- **Policy**: premiums paid, paid late (after the due date: in grace or on revival), paid late in
  the last 365 days, an earlier premium unpaid in grace now, lapses before; and whether it is
  lapsed on the day (DESIGN §6: a premium unpaid at grace end lapses the policy the day after,
  the first later payment of any premium revives it).
- **Policyholder**: app sessions, actions and video views, and WhatsApp messages written to the
  agent, over the last 90 days, as rates a 30 days over the app (or WhatsApp) data there is.
- **Agent**: 13th-month persistency of the cohorts reported in the last two years, and its
  lapses over those expected: each premium of its book whose grace ended in the last two years
  (policy in force) expects the lapse rate everyone's premiums of the same mode and persistency
  year had in the two years before it; the ratio compares like with like, so an agent with many
  monthly payers (a low lapse rate per premium) is not mistaken for a good one.

Agent figures are shrunk towards everyone's: `AGENT_PRIOR_POLICIES` cohort policies at the
overall persistency, `AGENT_PRIOR_LAPSES` lapses at the expected rate (a ratio of 1).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from ml.lapse.asof import KNOWN_ON, Running
from ml.lapse.inputs import Prepared

LATE_WINDOW_DAYS = 365
ENGAGEMENT_WINDOW_DAYS = 90
MIN_HISTORY_DAYS = 14
AGENT_WINDOW_DAYS = 730
AGENT_PRIOR_POLICIES = 10.0
AGENT_PRIOR_LAPSES = 5.0
# A (mode, year) lapse rate needs this many premiums behind it to set expectations.
MIN_CELL_PREMIUMS = 50.0
_DAY = timedelta(days=1)


def _payment_facts(dues: pl.DataFrame) -> pl.DataFrame:
    """Facts to sum per policy: `paid` and `late` (after the due date), known the day after the
    payment; `in_grace`, +1 the day after the due date and -1 the day after the payment or the
    grace end, whichever comes first (so it counts premiums past due, unpaid, still in grace)."""
    paid = dues.filter(pl.col("paid_on").is_not_null())
    resolved = (
        pl.when(pl.col("paid_on").is_null())
        .then(pl.col("grace_end_date"))
        .otherwise(pl.min_horizontal(pl.max_horizontal("paid_on", "due_date"), "grace_end_date"))
    )
    columns = ("paid", "late", "in_grace")

    def fact(frame: pl.DataFrame, known_on: pl.Expr, **values: pl.Expr) -> pl.DataFrame:
        zero = pl.lit(0.0)
        return frame.select(
            "policy",
            known_on.alias(KNOWN_ON),
            *(values.get(c, zero).cast(pl.Float64).alias(c) for c in columns),
        )

    return pl.concat(
        [
            fact(paid, pl.col("paid_on") + _DAY, paid=pl.lit(1.0),
                 late=pl.col("paid_on") > pl.col("due_date")),
            fact(dues, pl.col("due_date") + _DAY, in_grace=pl.lit(1.0)),
            fact(dues, resolved + _DAY, in_grace=pl.lit(-1.0)),
        ]
    )  # fmt: skip


def lapse_facts(dues: pl.DataFrame, policies: pl.DataFrame) -> pl.DataFrame:
    """Regular premiums after the first whose grace ended with the policy in force (the
    previous premium paid by then), known the day after grace end, with `lapsed` (unpaid at
    grace end), the policy, agent and `cell` (premium mode x persistency year, for
    expectations). Premiums falling due while the policy was already lapsed (arrears) are left
    out, so a long lapse counts once."""
    ordered = dues.sort("policy", "installment_number").with_columns(
        previous_paid_on=pl.col("paid_on").shift(1).over("policy"),
        previous_number=pl.col("installment_number").shift(1).over("policy"),
    )
    in_force = (pl.col("previous_number") == pl.col("installment_number") - 1) & (
        pl.col("previous_paid_on") <= pl.col("grace_end_date")
    )
    unpaid = pl.col("paid_on").is_null() | (pl.col("paid_on") > pl.col("grace_end_date"))
    step = 12 // pl.col("payments_per_year")
    year = ((pl.col("installment_number") - 1) * step + 11) // 12
    return (
        ordered.filter(pl.col("installment_number") > 1, in_force)
        .join(policies.select("policy", "agent", "payments_per_year"), on="policy")
        .filter(pl.col("payments_per_year").is_in([1, 2, 4, 12]))
        .select(
            "policy",
            "agent",
            (pl.col("payments_per_year") * 10 + pl.min_horizontal(year, 6)).alias("cell"),
            (pl.col("grace_end_date") + _DAY).alias(KNOWN_ON),
            pl.lit(1.0).alias("eligible"),
            unpaid.cast(pl.Float64).alias("lapsed"),
        )
    )


def lapsed_on_day(prep: Prepared, at: pl.DataFrame) -> pl.Series:
    """Per (policy, as_of) of `at`: lapsed on the day, i.e. a premium was unpaid at its grace
    end before the day and no payment of the policy came on or after the lapse day since."""
    missed = prep.dues.filter(
        pl.col("paid_on").is_null() | (pl.col("paid_on") > pl.col("grace_end_date"))
    ).select("policy", (pl.col("grace_end_date") + _DAY).alias(KNOWN_ON))
    payments = prep.dues.filter(pl.col("paid_on").is_not_null()).select(
        "policy", (pl.col("paid_on") + _DAY).alias(KNOWN_ON), "paid_on"
    )
    last_lapse = Running(
        missed.with_columns(pl.col(KNOWN_ON).alias("lapsed_on")), "policy", ["lapsed_on"], "max"
    ).at(at["policy"], at["as_of"])["lapsed_on"]
    last_payment = Running(payments, "policy", ["paid_on"], "max").at(at["policy"], at["as_of"])
    frame = pl.DataFrame({"lapsed_on": last_lapse, "paid_on": last_payment["paid_on"]})
    lapsed = pl.col("lapsed_on").is_not_null() & (
        pl.col("paid_on").is_null() | (pl.col("paid_on") < pl.col("lapsed_on"))
    )
    return frame.select(lapsed.alias("lapsed"))["lapsed"]


def policy_history(prep: Prepared, facts: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """Per (policy, as_of): paid, late, late_12m, in_grace and prior_lapses (from `facts`,
    the `lapse_facts`)."""
    payments = Running(_payment_facts(prep.dues), "policy", ["paid", "late", "in_grace"])
    now = payments.at(at["policy"], at["as_of"])
    late_12m = payments.trailing(at["policy"], at["as_of"], LATE_WINDOW_DAYS)["late"]
    lapses = Running(facts, "policy", ["lapsed"]).at(at["policy"], at["as_of"])["lapsed"]
    return now.with_columns(late_12m=late_12m, prior_lapses=lapses)


def _per_30_days(count: pl.Expr, observed_days: pl.Expr) -> pl.Expr:
    """A count as a rate a 30 days, null when fewer than `MIN_HISTORY_DAYS` were observed."""
    return pl.when(observed_days >= MIN_HISTORY_DAYS).then(count / observed_days * 30.0)


def holder_engagement(prep: Prepared, at: pl.DataFrame) -> pl.DataFrame:
    """Per (holder, as_of): app_sessions_90d, app_actions_per_session, content_views_90d and
    whatsapp_inbound_90d (see the module docstring); null before there is enough data."""
    window = ENGAGEMENT_WINDOW_DAYS
    keys, days = at["holder"], at["as_of"]
    own = pl.col("holder").is_not_null()
    sessions = prep.sessions.filter(own).with_columns(sessions=pl.lit(1.0))
    views = prep.views.filter(own).with_columns(views=pl.lit(1.0))
    messages = prep.messages.filter(own)
    frame = pl.concat(
        [
            Running(sessions, "holder", ["sessions", "events"]).trailing(keys, days, window),
            Running(views, "holder", ["views"]).trailing(keys, days, window),
            Running(messages, "holder", ["inbound"]).trailing(keys, days, window),
            # Where each source's data starts, as known on the day (agents' sessions count).
            Running(prep.sessions, None, ["day"], "min").at(None, days).rename({"day": "app"}),
            Running(prep.messages, None, ["day"], "min").at(None, days).rename({"day": "wa"}),
        ],
        how="horizontal",
    ).with_columns(as_of=days)
    # Days of data in the window (null before the source has any: "no data", not "none").
    observed = {
        source: pl.when(pl.col(source).is_not_null()).then(
            pl.min_horizontal((pl.col("as_of") - pl.col(source)).dt.total_days(), window)
        )
        for source in ("app", "wa")
    }
    return frame.select(
        _per_30_days(pl.col("sessions"), observed["app"]).alias("app_sessions_90d"),
        pl.when(observed["app"] >= MIN_HISTORY_DAYS, pl.col("sessions") > 0)
        .then(pl.col("events") / pl.col("sessions"))
        .alias("app_actions_per_session"),
        _per_30_days(pl.col("views"), observed["app"]).alias("content_views_90d"),
        _per_30_days(pl.col("inbound"), observed["wa"]).alias("whatsapp_inbound_90d"),
    )


def _expected_lapses(facts: pl.DataFrame) -> pl.DataFrame:
    """`facts` with `expected`: the lapse rate of the premiums of the same cell whose grace
    ended in the `AGENT_WINDOW_DAYS` before this one's (known the day before it was); premiums
    without `MIN_CELL_PREMIUMS` such predecessors are dropped (nothing to compare with)."""
    cells = Running(facts, "cell", ["eligible", "lapsed"])
    before = cells.trailing(facts["cell"], facts[KNOWN_ON] - _DAY, AGENT_WINDOW_DAYS)
    rate = pl.when(before["eligible"] >= MIN_CELL_PREMIUMS).then(
        before["lapsed"] / before["eligible"]
    )
    return facts.with_columns(expected=rate).filter(pl.col("expected").is_not_null())


def agent_track_record(prep: Prepared, facts: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """Per (agent, as_of): agent_persistency_13m and agent_lapse_ratio, shrunk (module doc)."""
    window = AGENT_WINDOW_DAYS
    keys, days = at["agent"], at["as_of"]
    cohorts = Running(prep.persistency, "agent", ["eligible", "persisting"])
    own = cohorts.trailing(keys, days, window)
    everyone = Running(prep.persistency, None, ["eligible", "persisting"]).trailing(
        None, days, window
    )
    overall = everyone["persisting"] / everyone["eligible"]
    persistency = (own["persisting"] + AGENT_PRIOR_POLICIES * overall) / (
        own["eligible"] + AGENT_PRIOR_POLICIES
    )
    expected = _expected_lapses(facts)
    ratio = Running(expected, "agent", ["lapsed", "expected"]).trailing(keys, days, window)
    lapse_ratio = (ratio["lapsed"] + AGENT_PRIOR_LAPSES) / (ratio["expected"] + AGENT_PRIOR_LAPSES)
    return pl.DataFrame(
        {"agent_persistency_13m": persistency, "agent_lapse_ratio": lapse_ratio}
    ).with_columns(pl.all().fill_nan(None))
