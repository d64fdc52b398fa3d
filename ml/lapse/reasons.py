"""Per-prediction reasons: which of a premium's features push its lapse probability up.

How (the model is asked, nothing is guessed): for each feature in turn, the row is scored again
with that one feature replaced by its *reference value*, the training population's median
(numeric features, missing values ignored) or most frequent value (categorical ones). The
feature's contribution is `p(row) - p(row with the feature at its reference)`, on the calibrated
probability the agent sees. The reasons are the `top_k` features with the largest positive
contributions (at least `MIN_CONTRIBUTION`), largest first, each said in words with the row's
own value. A row that is typical on every feature has no reason. Interactions are included
as the model sees them (the change is measured with every other feature at the row's value),
and the contributions need not add up to the probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

MIN_CONTRIBUTION = 0.001
_MODES = {"monthly": "monthly", "quarterly": "quarterly", "half_yearly": "half-yearly",
          "annual": "yearly"}  # fmt: skip


def _plural(n: float, one: str, many: str) -> str:
    count = round(n)
    return f"{count} {one if count == 1 else many}"


def _per_month(value: float, what: str, none: str) -> str:
    if value <= 0:
        return none
    return f"{value:.1f} {what} a month over the last 90 days"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_SAYINGS: dict[str, Callable[[Any], str]] = {
    "premium_mode": lambda v: f"pays {_MODES.get(str(v), str(v))}",
    "persistency_year": lambda v: f"policy year {v}",
    "policy_type": lambda v: f"product: {str(v).replace('_', ' ')}",
    "income_band": lambda v: f"income band {v}",
    "age_band": lambda v: f"age band {v}",
    "premium_to_income": lambda v: f"yearly premium about {math.exp(v) * 100:.0f}% of income",
    "premium_to_sum_assured": lambda v: f"yearly premium {v:.1f}% of the sum assured",
    "late_payments": lambda v: f"{_plural(v, 'late payment', 'late payments')} so far",
    "late_payments_12m": lambda v: (
        f"{_plural(v, 'late payment', 'late payments')} in the last 12 months"
    ),
    "late_share": lambda v: f"{v * 100:.0f}% of premiums paid late",
    "prior_lapses": lambda v: (
        f"lapsed {_plural(v, 'time', 'times')} before" if v > 0 else "never lapsed before"
    ),
    "overdue_now": lambda v: (
        "an earlier premium is overdue (in grace)" if v > 0 else "no premium overdue"
    ),
    "app_sessions_90d": lambda v: _per_month(v, "app sessions", "no app session in 90 days"),
    "app_actions_per_session": lambda v: f"{v:.1f} actions per app session",
    "content_views_90d": lambda v: _per_month(v, "videos watched", "no video watched in 90 days"),
    "whatsapp_inbound_90d": lambda v: _per_month(
        v, "WhatsApp messages to the agent", "no WhatsApp message to the agent in 90 days"
    ),
    "agent_persistency_13m": lambda v: f"agent's 13th-month persistency {v * 100:.0f}%",
    "agent_lapse_ratio": lambda v: f"agent's customers lapse {v:.1f}x as often as expected",
}
_WHEN_MISSING: dict[str, str] = {
    "app_sessions_90d": "no app data yet",
    "app_actions_per_session": "no app session to measure",
    "content_views_90d": "no app data yet",
    "whatsapp_inbound_90d": "no WhatsApp data yet",
}


def describe(feature: str, value: Any) -> str:
    """A feature and its value in words ("3 late payments so far"); `feature=value` if the
    feature has no wording."""
    if _missing(value):
        return _WHEN_MISSING.get(feature, f"{feature.replace('_', ' ')} unknown")
    saying = _SAYINGS.get(feature)
    return saying(value) if saying else f"{feature}={value}"


def top_reasons(
    base: np.ndarray,
    counterfactual: np.ndarray,
    feature_names: Sequence[str],
    values: Sequence[Mapping[str, Any]],
    top_k: int,
) -> list[list[str]]:
    """Reasons per row from `base` probabilities (n,) and `counterfactual` ones (n, features):
    column j is the probability with feature j at its reference value."""
    contributions = base[:, None] - counterfactual
    order = np.argsort(-contributions, axis=1, kind="stable")
    reasons: list[list[str]] = []
    for row, ranked in enumerate(order):
        chosen = [j for j in ranked[:top_k] if contributions[row, j] >= MIN_CONTRIBUTION]
        reasons.append([describe(feature_names[j], values[row][feature_names[j]]) for j in chosen])
    return reasons
