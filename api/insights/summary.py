"""The agent's month in plain language (`GET /v1/agents/{agent_id}/summary`, issue 8).

What the language model may see, and why (DESIGN §5, DPDP Act). The issue says the prompt holds
"the agent's aggregates only (no names, numbers or message texts)". Read literally, "no numbers"
would leave nothing to summarise, so it is read as *no personal numbers*: no phone, policy,
PAN, customer or agent codes, no ids, and no names or message texts. The agent's own aggregate
KPIs (counts, rupee totals, rates, ranks, change on the previous month, the territory median)
are the prompt's whole content: they describe a month of work, not a person's identity.

This holds by construction rather than by care:

* `load_agent_month` reads only `marts.agent_performance_monthly`, which by contract carries no
  names, numbers or texts, and keeps only numbers: `Figures`, `Standing` and `AgentMonth` are
  dataclasses of numbers and calendar dates, nothing else (not even the territory's name);
* `prompt_messages` takes nothing but an `AgentMonth` and re-checks that every value in it is a
  number or a date (`_assert_impersonal`) before writing a word;
* and it sends the figures rounded ("about ₹1.2 lakh", "82%", "up 5 points"): enough for a
  summary, less than the ledger, so an outside service learns as little as the text needs.

The deterministic template, in contrast, is shown only to the caller and says the exact figures
of the mart row. It is also the answer whenever no language model is configured or it fails
(`api.llm.complete` returns None), and the answer names its source.
"""

from __future__ import annotations

import dataclasses
import math
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from sqlalchemy import Engine, Row, and_, column, func, select, table

from api.llm import Completion, LlmConfig, complete

# --------------------------------------------------------------------------- aggregates


@dataclass(frozen=True)
class Figures:
    """One agent's month, or the territory's median agent's: numbers only (rupees, counts,
    rates as fractions); None where the mart has no value (no renewal due, no eligible cohort)."""

    new_policies: float
    new_business_ape: float
    first_year_premium: float
    renewal_premium_due: float
    renewal_premium_collected: float
    renewal_collection_rate: float | None
    policies_in_force_at_start: float
    lapses: float
    lapse_ratio: float | None
    revivals: float
    persistency_13m: float | None
    app_active_customers: float
    whatsapp_inbound: float
    whatsapp_outbound: float
    whatsapp_read_rate: float | None
    median_first_response_seconds: float | None
    videos_shared: float
    videos_completed: float


@dataclass(frozen=True)
class Standing:
    """Where the agent ranks among the agents of its territory and insurer that month."""

    territory_rank_new_business_ape: int | None
    territory_agents: int
    provider_rank_new_business_ape: int | None
    provider_agents: int
    territory_rank_persistency_13m: int | None


@dataclass(frozen=True)
class AgentMonth:
    """Everything a summary says: the month, its figures, the previous month's, the territory
    median (None when the agent is alone in its territory) and the ranks."""

    month: date  # first day
    as_of: date  # last day, or the as-of day of a month in progress
    figures: Figures
    previous: Figures | None
    territory_median: Figures | None
    standing: Standing

    @property
    def complete(self) -> bool:
        return self.as_of >= date(self.month.year, self.month.month, _last_day(self.month))


# Figures field -> mart column.
_COLUMNS: dict[str, str] = {f.name: f.name for f in dataclasses.fields(Figures)}
_COLUMNS["persistency_13m"] = "persistency_13m_by_count"

_STANDING_COLUMNS = (
    "territory_rank_new_business_ape",
    "provider_rank_new_business_ape",
    "territory_rank_persistency_13m",
)
_MONTHLY = table(
    "agent_performance_monthly",
    *(
        column(name)
        for name in (
            "agent_id",
            "month_start",
            "month_as_of_date",
            "provider_id",
            "territory",
            *_COLUMNS.values(),
            *_STANDING_COLUMNS,
        )
    ),
    schema="marts",
)


def _last_day(month: date) -> int:
    return monthrange(month.year, month.month)[1]


def previous_month(month: date) -> date:
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


def _number(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _figures(row: Row[Any], columns: dict[str, str] = _COLUMNS) -> Figures:
    """The numbers of a mart row (or of the medians' row, whose columns are the field names).
    Counts and sums are never null in the mart (dense, zeros); rates may be."""
    return Figures(**{field: _number(getattr(row, col)) for field, col in columns.items()})


def latest_month(warehouse: Engine, agent_id: object) -> date | None:
    """The agent's latest month in the mart (its as-of month)."""
    query = select(func.max(_MONTHLY.c.month_start)).where(_MONTHLY.c.agent_id == agent_id)
    with warehouse.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def load_agent_month(warehouse: Engine, agent_id: object, month: date) -> AgentMonth | None:
    """The agent's `month` from `marts.agent_performance_monthly`, with the previous month and
    the median over the agents of the same insurer and territory that month; None when the
    mart has no row for it. Two reads: the agent's two rows, then the insurer's rows of the
    month, aggregated in the database (medians with `percentile_cont`)."""
    prev = previous_month(month)
    m = _MONTHLY.c
    own = select(_MONTHLY).where(m.agent_id == agent_id, m.month_start.in_([month, prev]))
    with warehouse.connect() as conn:
        rows = {r.month_start: r for r in conn.execute(own)}
        current = rows.get(month)
        if current is None:
            return None
        same_territory = m.territory.is_not_distinct_from(current.territory)
        peers = select(
            func.count().filter(same_territory).label("territory_agents"),
            func.count().label("provider_agents"),
            *(
                func.percentile_cont(0.5).within_group(m[col]).filter(same_territory).label(field)
                for field, col in _COLUMNS.items()
            ),
        ).where(and_(m.provider_id == current.provider_id, m.month_start == month))
        peer = conn.execute(peers).one()
    territory_agents = int(peer.territory_agents)
    by_field = {field: field for field in _COLUMNS}
    median = _figures(peer, by_field) if territory_agents > 1 else None
    return AgentMonth(
        month=month,
        as_of=current.month_as_of_date,
        figures=_figures(current),
        previous=_figures(rows[prev]) if prev in rows else None,
        territory_median=median,
        standing=Standing(
            territory_rank_new_business_ape=current.territory_rank_new_business_ape,
            territory_agents=territory_agents,
            provider_rank_new_business_ape=current.provider_rank_new_business_ape,
            provider_agents=int(peer.provider_agents),
            territory_rank_persistency_13m=current.territory_rank_persistency_13m,
        ),
    )


# --------------------------------------------------------------------------- formatting


def indian_grouping(whole: int) -> str:
    """12345678 -> '1,23,45,678' (the last three digits, then pairs)."""
    sign, digits = ("-" if whole < 0 else ""), str(abs(whole))
    head, tail = digits[:-3], digits[-3:]
    pairs = []
    while head:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return sign + ",".join([*pairs, tail]) if pairs else sign + tail


def inr(amount: float) -> str:
    """Exact rupees as printed in India: '₹1,23,456', with paise only when there are any."""
    paise = round(amount * 100)
    whole, rest = divmod(abs(paise), 100)
    text = indian_grouping(whole) + (f".{rest:02d}" if rest else "")
    return ("-" if paise < 0 else "") + "₹" + text


def percent(rate: float) -> str:
    """Exact enough for the caller: one decimal ('65.7%')."""
    return f"{rate * 100:.1f}%"


def approx_inr(amount: float) -> str:
    """Two significant figures in lakh and crore: 'about ₹1.2 lakh', 'about ₹65,000'."""
    if amount == 0:
        return "₹0"
    digits = 1 - math.floor(math.log10(abs(amount)))
    rounded = round(amount, digits)
    if abs(rounded) >= 1e7:
        return f"about ₹{rounded / 1e7:.3g} crore"
    if abs(rounded) >= 1e5:
        return f"about ₹{rounded / 1e5:.3g} lakh"
    return f"about ₹{indian_grouping(round(rounded))}"


def approx_percent(rate: float) -> str:
    """Whole percents, but one decimal under 10% (a lapse ratio of 0.4% is not 0%)."""
    return f"{rate * 100:.1f}%" if 0 < abs(rate) < 0.1 else f"{round(rate * 100)}%"


def approx_duration(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = round(seconds / size)
            return f"about {n} {unit}{'s' if n != 1 else ''}"
    return "under a minute"


def _count(n: float) -> str:
    return str(round(n)) if float(n).is_integer() else f"{n:.1f}"


def _plural(n: float, one: str, many: str) -> str:
    return f"{_count(n)} {one if n == 1 else many}"


def _rank(s: Standing, whose: str) -> str:
    """'3 of 12 in your territory and 5 of 80 in your insurer' (the territory left out when
    the agent is alone in it)."""
    insurer = f"{s.provider_rank_new_business_ape} of {s.provider_agents} in {whose} insurer"
    if s.territory_agents < 2 or s.territory_rank_new_business_ape is None:
        return insurer
    territory = f"{s.territory_rank_new_business_ape} of {s.territory_agents} in {whose} territory"
    return f"{territory} and {insurer}"


def _month_name(month: date) -> str:
    return f"{month:%B %Y}"


# --------------------------------------------------------------------------- the prompt

SYSTEM_PROMPT = (
    "You write a short monthly performance summary for an Indian life-insurance agent, shown in "
    "the agent's app. Write in plain English, in the second person, 3 to 5 sentences and under "
    "110 words, no greeting, no lists, no markdown. Use only the facts given and the figures as "
    "given (they are rounded); never invent a number. Say what went well, what needs attention, "
    "and one concrete next step (for example following up renewals due or replying faster)."
)

Kind = Literal["count", "rupees", "rate"]

# (label, Figures field, kind) of the facts the prompt states, in order.
_FACTS: tuple[tuple[str, str, Kind], ...] = (
    ("New policies issued", "new_policies", "count"),
    ("New-business APE", "new_business_ape", "rupees"),
    ("First-year premium collected", "first_year_premium", "rupees"),
    ("Renewal premium due", "renewal_premium_due", "rupees"),
    ("Renewal collection rate", "renewal_collection_rate", "rate"),
    ("Policies lapsed", "lapses", "count"),
    ("Lapse ratio", "lapse_ratio", "rate"),
    ("Policies revived", "revivals", "count"),
    ("13th-month persistency", "persistency_13m", "rate"),
    ("Customers active in the app", "app_active_customers", "count"),
    ("WhatsApp messages from customers", "whatsapp_inbound", "count"),
    ("WhatsApp messages to customers", "whatsapp_outbound", "count"),
    ("WhatsApp read rate", "whatsapp_read_rate", "rate"),
    ("Videos shared", "videos_shared", "count"),
    ("Videos watched to the end", "videos_completed", "count"),
)


def _approx(value: float, kind: Kind) -> str:
    if kind == "rupees":
        return approx_inr(value)
    if kind == "rate":
        return approx_percent(value)
    return _count(value)


def _change(now: float, before: float, kind: Kind) -> str:
    """The change on the previous month, rounded like the figures."""
    if kind == "rate":
        points = round((now - before) * 100)
        return (
            "same as last month"
            if points == 0
            else (f"{'up' if points > 0 else 'down'} {_plural(abs(points), 'point', 'points')}")
        )
    if kind == "count":
        return f"last month {_count(before)}"
    if before == 0:
        return "none last month" if now else "none last month either"
    pct = round((now - before) / before * 100 / 5) * 5
    return (
        "about the same as last month"
        if pct == 0
        else (f"{'up' if pct > 0 else 'down'} about {abs(pct)}% on last month")
    )


def _fact(month: AgentMonth, label: str, field: str, kind: Kind) -> str | None:
    value = getattr(month.figures, field)
    if value is None:
        return None
    notes = []
    before = getattr(month.previous, field) if month.previous else None
    if before is not None:
        notes.append(_change(value, before, kind))
    median = getattr(month.territory_median, field) if month.territory_median else None
    if median is not None:
        notes.append(f"territory median {_approx(median, kind)}")
    return f"- {label}: {_approx(value, kind)}" + (f" ({'; '.join(notes)})" if notes else "")


def _assert_impersonal(value: object) -> None:
    """Refuse anything but numbers, dates, enums and None (recursively through dataclasses):
    the guarantee that no name, code or text can reach the prompt."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _assert_impersonal(getattr(value, f.name))
    elif not (value is None or isinstance(value, Enum | int | float | date)):
        raise TypeError(f"the summary prompt takes numbers only, not {type(value).__name__}")


def prompt_messages(month: AgentMonth) -> list[dict[str, str]]:
    """The chat messages for the language model: the system instructions and the month's
    aggregates, rounded (see the module docstring). Takes an `AgentMonth` and nothing else."""
    _assert_impersonal(month)
    period = _month_name(month.month)
    if not month.complete:
        period += f" (figures to {month.as_of.day} {month.as_of:%B}; the month is still running)"
    lines = [f"Month: {period}."]
    lines += [
        fact
        for label, field, kind in _FACTS
        if (fact := _fact(month, label, field, kind)) is not None
    ]
    s, f = month.standing, month.figures
    if f.median_first_response_seconds is not None:
        lines.append(
            f"- Median time to first reply to a customer: "
            f"{approx_duration(f.median_first_response_seconds)}"
        )
    if s.provider_rank_new_business_ape is not None:
        lines.append(f"- Rank on new-business APE: {_rank(s, 'the')}")
    if month.previous is None:
        lines.append("- No figures for the previous month.")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]


# --------------------------------------------------------------------------- the template


def _versus(month: AgentMonth, field: str, fmt: Callable[[float], str]) -> str:
    """' (August: X; territory median Y)' with the exact figures available."""
    notes = []
    before = getattr(month.previous, field) if month.previous else None
    if before is not None:
        notes.append(f"{previous_month(month.month):%B}: {fmt(before)}")
    median = getattr(month.territory_median, field) if month.territory_median else None
    if median is not None:
        notes.append(f"territory median {fmt(median)}")
    return f" ({'; '.join(notes)})" if notes else ""


def template_summary(month: AgentMonth) -> str:
    """The deterministic summary with the mart's exact figures: the answer when no language
    model is configured or it fails."""
    f, s = month.figures, month.standing
    period = _month_name(month.month)
    if not month.complete:
        period += f", to {month.as_of.day} {month.as_of:%B}"
    parts = [
        f"{period}: you issued {_plural(f.new_policies, 'new policy', 'new policies')}"
        f"{_versus(month, 'new_policies', _count)}, with new-business APE of "
        f"{inr(f.new_business_ape)}{_versus(month, 'new_business_ape', inr)}, and collected "
        f"{inr(f.first_year_premium)} of first-year premium."
    ]
    if s.provider_rank_new_business_ape is not None:
        parts.append(f"On new-business APE you rank {_rank(s, 'your')}.")
    if f.renewal_premium_due and f.renewal_collection_rate is not None:
        parts.append(
            f"Renewals: {inr(f.renewal_premium_collected)} collected of "
            f"{inr(f.renewal_premium_due)} due, {percent(f.renewal_collection_rate)}"
            f"{_versus(month, 'renewal_collection_rate', percent)}."
        )
    else:
        parts.append("No renewal premiums fell due.")
    lapse = (
        f" ({percent(f.lapse_ratio)} of {_count(f.policies_in_force_at_start)} in force)"
        if f.lapse_ratio is not None
        else ""
    )
    parts.append(
        f"{_plural(f.lapses, 'policy', 'policies')} lapsed{lapse} and "
        f"{_count(f.revivals)} {'was' if f.revivals == 1 else 'were'} revived."
    )
    if f.persistency_13m is not None:
        parts.append(
            f"13th-month persistency: {percent(f.persistency_13m)}"
            f"{_versus(month, 'persistency_13m', percent)}."
        )
    engagement = (
        f"Your customers: {_count(f.app_active_customers)} active in the app; "
        f"{_count(f.whatsapp_inbound)} WhatsApp messages in and {_count(f.whatsapp_outbound)} out"
    )
    if f.whatsapp_read_rate is not None:
        engagement += f", {percent(f.whatsapp_read_rate)} read"
    if f.median_first_response_seconds is not None:
        engagement += f"; median first reply {approx_duration(f.median_first_response_seconds)}"
    parts.append(engagement + ".")
    parts.append(
        f"Videos: {_count(f.videos_shared)} shared, {_count(f.videos_completed)} watched to the "
        "end."
    )
    return " ".join(parts)


# --------------------------------------------------------------------------- the answer


@dataclass(frozen=True)
class Summary:
    text: str
    source: Literal["llm", "template"]
    model: str | None
    usage: dict[str, int] | None


def summarise(month: AgentMonth, llm: LlmConfig | None) -> Summary:
    """The language model's summary when one is configured and answers, the template's
    otherwise. Blocking (up to the LLM timeout x attempts): call it from the threadpool."""
    answer: Completion | None = complete(
        llm, prompt_messages(month), purpose="agent_summary", max_tokens=300
    )
    if answer is None:
        return Summary(text=template_summary(month), source="template", model=None, usage=None)
    return Summary(
        text=answer.text,
        source="llm",
        model=answer.model,
        usage=answer.usage.as_dict() if answer.usage else None,
    )
