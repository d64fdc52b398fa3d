"""What a simulation run produces: the tier's sizes, the dates, the seed and the fault rates.

Tier sizes follow the product plan (MVP 700 users, growth 5,000, scale 50,000, enterprise 500,000);
"users" are app users, agents and policyholders together, about one agent per 35 users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

Tier = Literal["mvp", "growth", "scale", "enterprise"]


@dataclass(frozen=True)
class TierSize:
    users: int
    providers: int
    videos: int

    @property
    def agents(self) -> int:
        return max(5, self.users // 35)

    @property
    def policyholders(self) -> int:
        return self.users - self.agents


TIERS: dict[str, TierSize] = {
    "mvp": TierSize(users=700, providers=3, videos=60),
    "growth": TierSize(users=5_000, providers=6, videos=150),
    "scale": TierSize(users=50_000, providers=6, videos=300),
    "enterprise": TierSize(users=500_000, providers=6, videos=600),
}


@dataclass(frozen=True)
class FaultRates:
    """Share of records that get each fault, as real sources produce them (DESIGN §5)."""

    duplicate: float = 0.02  # the same messageId / wamid delivered again
    late: float = 0.03  # app events queued offline, arriving 1-5 days later
    truncated_json: float = 0.002  # a line cut off mid-write
    missing_field: float = 0.002  # a required field absent
    wrong_type: float = 0.002  # a field of the wrong JSON type
    bad_signature: float = 0.005  # a webhook body whose X-Hub-Signature-256 does not match
    status_out_of_order: float = 0.05  # WhatsApp statuses delivered in the wrong order
    delivered_skipped: float = 0.10  # read arrives without delivered

    @classmethod
    def none(cls) -> FaultRates:
        return cls(**{name: 0.0 for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SimulationConfig:
    tier: Tier = "mvp"
    start: date = date(2026, 9, 1)
    days: int = 60
    seed: int = 7
    landing_root: Path = Path(".mitra/landing")
    truth_root: Path = Path(".mitra/truth")
    faults: FaultRates = field(default_factory=FaultRates)
    # Years of policy history before `start`, so 61st-month persistency can be measured.
    history_years: int = 7

    @property
    def size(self) -> TierSize:
        return TIERS[self.tier]

    @property
    def end(self) -> date:
        """The first day after the simulated window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def history_start(self) -> date:
        return date(self.start.year - self.history_years, self.start.month, 1)

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]
