"""The periods an agent's performance is shown for, and where each lives in the marts.

One spec per period: its mart, its date column, how a day maps to the period's first day, the
period before, and which KPIs the mart has. Table and column names come only from here, never
from a request, so they can be composed into SQL safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"  # Indian financial year, April to March


# The days a period may be asked for: far inside the calendar, so that the period's start, the
# one before it and their ends never fall off `date.min` / `date.max`.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(start: date) -> date:
    return month_start(start - timedelta(days=1))


def financial_year_start(day: date) -> date:
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


# Figures every period has, in the order the app shows them.
COMMON_KPIS = (
    "new_policies",
    "new_business_ape",
    "first_year_premium",
    "renewal_premium_due",
    "renewal_premium_collected",
    "renewal_collection_rate",
    "lapses",
    "revivals",
    "persistency_13m_by_count",
    "persistency_13m_by_premium",
    "app_sessions",
    "whatsapp_inbound",
    "whatsapp_outbound",
    "videos_shared",
    "videos_completed",
)
RANKS = ("territory_rank_new_business_ape", "provider_rank_new_business_ape")


@dataclass(frozen=True)
class PeriodSpec:
    period: Period
    table: str  # in schema marts
    date_column: str
    kpis: tuple[str, ...]

    def start_of(self, day: date) -> date:
        if self.period is Period.DAY:
            return day
        if self.period is Period.MONTH:
            return month_start(day)
        return financial_year_start(day)

    def previous(self, start: date) -> date:
        if self.period is Period.DAY:
            return start - timedelta(days=1)
        if self.period is Period.MONTH:
            return previous_month(start)
        return date(start.year - 1, 4, 1)


PERIODS: dict[Period, PeriodSpec] = {
    Period.DAY: PeriodSpec(
        Period.DAY,
        "agent_performance_daily",
        "activity_date",
        (*COMMON_KPIS, "app_active_customers", "whatsapp_read_rate"),
    ),
    Period.MONTH: PeriodSpec(
        Period.MONTH,
        "agent_performance_monthly",
        "month_start",
        (*COMMON_KPIS, "lapse_ratio", "app_active_customers", "whatsapp_read_rate"),
    ),
    Period.YEAR: PeriodSpec(
        Period.YEAR, "agent_performance_yearly", "year_start", (*COMMON_KPIS, "lapse_ratio")
    ),
}
