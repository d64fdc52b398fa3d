"""The premium and persistency metrics recomputed from the operational database with polars.

The warehouse is the one the session fixture built (simulator → operational DB → extract → dbt
through Dagster). Here `insurance_policies` and `premium_payments` are read from the operational
database itself and DESIGN §6 is implemented again, independently of the dbt SQL (the lapse
spells walk each policy's dues in order, where the SQL groups them by revival day), following
the definitions in models/marts/premiums/_premiums__docs.md:

- the as-of day: the IST day of the latest `premium_payments.updated_at`, at most today;
- grace: 15 days for monthly premiums, 30 otherwise, its last day due date + grace days;
- lapse: a regular, not waived premium unpaid at the end of its grace, the policy in force and
  not exited; the policy lapses the next day; premiums whose grace ends while it is lapsed are
  arrears; revival: the first payment on or after the lapse day (before any exit);
- lapse ratio of a month: policies lapsed in it / regular-premium policies in force at the end
  of the day before it, premium-paying term not over;
- first-year premium (paid in the period on policy-year-1 dues), new-business APE (premium x
  payments a year, a tenth of single premiums, of the policies issued in the period);
- renewal collection rate: renewal dues (policy year >= 2, regular, not waived, not arrears, not
  after exit) whose grace ends in the period: paid by grace end / due;
- persistency at months 13..61 by count and by annualised premium, per cohort month and over the
  trailing 12 reported cohort months.

Compared: every row of `agent_persistency`; and, for every agent, the rows of
`agent_performance_daily` and `agent_performance_monthly`, both as the build left them (the
partition window the fixture ran) and as their SQL gives over the whole history (the compiled
models run as queries: nothing written). Counts exactly, money to the paisa, ratios to 1e-9.
"""

from __future__ import annotations

import calendar
import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import psycopg
import pytest
from psycopg.types.string import TextLoader

from tests.built_world import run_dbt
from warehouse import urls

pytestmark = pytest.mark.integration

IST = "Asia/Kolkata"
MONTHS_BETWEEN = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "annual": 12, "single": 0}
PAYMENTS_PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "annual": 1, "single": 0}
EXIT_STATUSES = {"matured", "death_claim", "surrendered", "cancelled"}
PERSISTENCY_MONTHS = (13, 25, 37, 49, 61)
MIN_AGENTS = 5
RATIO_TOLERANCE = 1e-9


# --- reading -----------------------------------------------------------------------------------


def connect(url: str) -> psycopg.Connection:
    """A connection that reads UUIDs as text and timestamps in UTC."""
    conn = psycopg.connect(urls.libpq_url(url))
    conn.adapters.register_loader("uuid", TextLoader)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def frame(conn: psycopg.Connection, query: str) -> pl.DataFrame:
    with conn.cursor() as cursor:
        cursor.execute(query)
        columns = [d.name for d in cursor.description]
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, the day clamped to the month's last (31 Jan + 1 = 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def month_start(day: date) -> date:
    return day.replace(day=1)


def ist_day(moment: datetime | None) -> date | None:
    if moment is None:
        return None
    return (moment.astimezone(UTC) + timedelta(hours=5, minutes=30)).date()


# --- the book, from the operational tables ------------------------------------------------------


@dataclass
class Due:
    policy_id: str
    installment: int
    due_date: date
    mode: str
    amount_paise: int
    paid_paise: int | None
    paid_on: date | None
    waived: bool

    @property
    def grace_end(self) -> date:
        return self.due_date + timedelta(days=15 if self.mode == "monthly" else 30)


@dataclass
class Policy:
    policy_id: str
    agent_id: str
    mode: str
    premium_paise: int
    paying_years: int
    issue_date: date
    maturity_date: date | None
    status: str
    status_day: date | None
    dues: list[Due]

    @property
    def exit_day(self) -> date | None:
        return self.status_day if self.status in EXIT_STATUSES else None

    @property
    def ape_tenth_paise(self) -> int:
        """APE in tenths of a paisa (a tenth of a single premium is exact in them)."""
        if self.mode == "single":
            return self.premium_paise
        return self.premium_paise * PAYMENTS_PER_YEAR[self.mode] * 10


@dataclass
class Spell:
    policy_id: str
    agent_id: str
    lapsed_on: date
    revived_on: date | None

    def covers(self, day: date) -> bool:
        return self.lapsed_on <= day and (self.revived_on is None or day < self.revived_on)


@dataclass
class Book:
    as_of: date
    policies: dict[str, Policy]
    spells: list[Spell]
    arrears: set[tuple[str, int]]  # (policy_id, installment) whose grace ended while lapsed
    joined: dict[str, date]  # agent: the day they joined


def load_book(operational_url: str) -> Book:
    with connect(operational_url) as conn:
        policies = frame(
            conn,
            "SELECT id, agent_id, premium_mode,"
            " round(premium_amount * 100)::bigint AS premium_paise, premium_paying_term_years,"
            " issue_date, maturity_date, status, status_changed_at"
            " FROM insurance_policies WHERE deleted_at IS NULL",
        )
        payments = frame(
            conn,
            "SELECT policy_id, installment_number, due_date, premium_mode, status,"
            " round(amount * 100)::bigint AS amount_paise,"
            " round(paid_amount * 100)::bigint AS paid_paise, paid_at, updated_at"
            " FROM premium_payments",
        )
        agents = frame(conn, "SELECT id, joined_on FROM agents")
    today = ist_day(datetime.now(UTC))
    as_of = min(ist_day(payments["updated_at"].max()), today)
    book: dict[str, Policy] = {}
    for row in policies.iter_rows(named=True):
        book[row["id"]] = Policy(
            policy_id=row["id"],
            agent_id=row["agent_id"],
            mode=row["premium_mode"],
            premium_paise=row["premium_paise"],
            paying_years=row["premium_paying_term_years"],
            issue_date=row["issue_date"],
            maturity_date=row["maturity_date"],
            status=row["status"],
            status_day=ist_day(row["status_changed_at"]),
            dues=[],
        )
    for row in payments.iter_rows(named=True):
        policy = book.get(row["policy_id"])
        if policy is None:  # a payment of a deleted policy
            continue
        paid_on = ist_day(row["paid_at"])
        known = paid_on is not None and paid_on <= as_of
        policy.dues.append(
            Due(
                policy_id=row["policy_id"],
                installment=row["installment_number"],
                due_date=row["due_date"],
                mode=row["premium_mode"] or policy.mode,
                amount_paise=row["amount_paise"],
                paid_paise=row["paid_paise"] if known else None,
                paid_on=paid_on if known else None,
                waived=row["status"] == "waived",
            )
        )
    spells: list[Spell] = []
    arrears: set[tuple[str, int]] = set()
    for policy in book.values():
        own, late = walk_lapses(policy, as_of)
        spells.extend(own)
        arrears |= late
    joined = {row["id"]: row["joined_on"] for row in agents.iter_rows(named=True)}
    return Book(as_of=as_of, policies=book, spells=spells, arrears=arrears, joined=joined)


def walk_lapses(policy: Policy, as_of: date) -> tuple[list[Spell], set[tuple[str, int]]]:
    """The policy's lapse spells and arrears, walking its dues in grace-end order."""
    payment_days = sorted(d.paid_on for d in policy.dues if d.paid_on is not None)
    exit_day = policy.exit_day
    spells: list[Spell] = []
    arrears: set[tuple[str, int]] = set()
    for due in sorted(policy.dues, key=lambda d: (d.grace_end, d.installment)):
        end = due.grace_end
        if spells and spells[-1].covers(end):
            # Lapsed when its grace ended: arrears (whether paid later or not), never a lapse.
            if due.paid_on is None or due.paid_on > end:
                arrears.add((policy.policy_id, due.installment))
            continue
        missed = (
            due.mode != "single"
            and not due.waived
            and end < as_of
            and (exit_day is None or exit_day > end)
            and (due.paid_on is None or due.paid_on > end)
        )
        if not missed:
            continue
        lapsed_on = end + timedelta(days=1)
        later = bisect_left(payment_days, lapsed_on)
        revived_on = payment_days[later] if later < len(payment_days) else None
        if revived_on is not None and exit_day is not None and revived_on >= exit_day:
            revived_on = None
        spells.append(Spell(policy.policy_id, policy.agent_id, lapsed_on, revived_on))
    return spells, arrears


# --- the metrics -------------------------------------------------------------------------------


def policy_year(due: Due) -> int:
    return (due.installment - 1) * MONTHS_BETWEEN[due.mode] // 12 + 1


def is_renewal_due(book: Book, policy: Policy, due: Due) -> bool:
    exit_day = policy.exit_day
    return (
        policy_year(due) >= 2
        and due.mode != "single"
        and not due.waived
        and (policy.policy_id, due.installment) not in book.arrears
        and (exit_day is None or exit_day > due.grace_end)
    )


@dataclass
class Facts:
    """Per agent and day: what the daily mart adds up."""

    new_policies: dict[tuple[str, date], int]
    ape_tenth_paise: dict[tuple[str, date], int]
    first_year_paise: dict[tuple[str, date], int]
    renewal_due_paise: dict[tuple[str, date], int]
    renewal_collected_paise: dict[tuple[str, date], int]
    lapsed_policies: dict[tuple[str, date], set[str]]
    revived_policies: dict[tuple[str, date], set[str]]


def daily_facts(book: Book) -> Facts:
    facts = Facts(*(defaultdict(int) for _ in range(5)), defaultdict(set), defaultdict(set))
    for policy in book.policies.values():
        key = (policy.agent_id, policy.issue_date)
        facts.new_policies[key] += 1
        facts.ape_tenth_paise[key] += policy.ape_tenth_paise
        for due in policy.dues:
            if due.paid_on is not None and policy_year(due) == 1:
                facts.first_year_paise[(policy.agent_id, due.paid_on)] += due.paid_paise
            if is_renewal_due(book, policy, due) and due.grace_end <= book.as_of:
                key = (policy.agent_id, due.grace_end)
                facts.renewal_due_paise[key] += due.amount_paise
                if due.paid_on is not None and due.paid_on <= due.grace_end:
                    facts.renewal_collected_paise[key] += due.paid_paise
    for spell in book.spells:
        facts.lapsed_policies[(spell.agent_id, spell.lapsed_on)].add(spell.policy_id)
        if spell.revived_on is not None:
            facts.revived_policies[(spell.agent_id, spell.revived_on)].add(spell.policy_id)
    return facts


def round_tenths(tenth_paise: int) -> int:
    """Tenths of a paisa to paise, half away from zero (numeric rounding)."""
    return int((Decimal(tenth_paise) / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class CohortFigures:
    issued: int = 0
    eligible: int = 0
    persisting: int = 0
    premium_eligible: int = 0  # paise
    premium_persisting: int = 0


def persistency_cohorts(book: Book) -> dict[tuple[str, int, date], CohortFigures]:
    """Per agent, k and cohort month: issued, eligible and persisting policies and premium."""
    cohorts: dict[tuple[str, int, date], CohortFigures] = {}
    for policy in book.policies.values():
        if policy.mode == "single" or policy.status in ("proposed", "cancelled"):
            continue
        step = MONTHS_BETWEEN[policy.mode]
        by_installment = {d.installment: d for d in policy.dues}
        annual_paise = policy.premium_paise * PAYMENTS_PER_YEAR[policy.mode]
        for k in PERSISTENCY_MONTHS:
            anniversary = add_months(policy.issue_date, k - 1)
            exited = (
                policy.status in ("death_claim", "matured")
                and policy.status_day is not None
                and policy.status_day < anniversary
            ) or (policy.maturity_date is not None and policy.maturity_date < anniversary)
            eligible = k - 1 < 12 * policy.paying_years and not exited
            due = by_installment.get((k - 1) // step + 1)
            persisting = (
                eligible
                and due is not None
                and due.paid_on is not None
                and due.paid_on <= due.grace_end
            )
            key = (policy.agent_id, k, month_start(policy.issue_date))
            old = cohorts.get(key, CohortFigures())
            cohorts[key] = CohortFigures(
                issued=old.issued + 1,
                eligible=old.eligible + eligible,
                persisting=old.persisting + persisting,
                premium_eligible=old.premium_eligible + annual_paise * eligible,
                premium_persisting=old.premium_persisting + annual_paise * persisting,
            )
    return cohorts


def reported(cohort: date, k: int, day: date) -> bool:
    """Cohort month reported at month k on `day`: its month-k grace (30 days at most, after the
    last day k - 1 months on) ended before the day."""
    return add_months(cohort, k) + timedelta(days=30) <= day


def latest_reported(k: int, day: date) -> date:
    cohort = add_months(month_start(day), -k)
    while not reported(cohort, k, day):
        cohort = add_months(cohort, -1)
    return cohort


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def trailing_persistency(
    cohorts: dict[tuple[str, int, date], CohortFigures], agent: str, k: int, last: date
) -> tuple[float | None, float | None]:
    """By count and by premium over the 12 cohort months ending with `last`."""
    eligible = persisting = premium_eligible = premium_persisting = 0
    for back in range(12):
        figures = cohorts.get((agent, k, add_months(last, -back)))
        if figures:
            eligible += figures.eligible
            persisting += figures.persisting
            premium_eligible += figures.premium_eligible
            premium_persisting += figures.premium_persisting
    return ratio(persisting, eligible), ratio(premium_persisting, premium_eligible)


def in_force_at_start(book: Book, agent: str, start: date) -> int:
    """Regular-premium policies in force at the end of the day before `start`, premium-paying
    term not over by `start`."""
    eve = start - timedelta(days=1)
    lapsed_on_eve = {s.policy_id for s in book.spells if s.agent_id == agent and s.covers(eve)}
    count = 0
    for policy in book.policies.values():
        if policy.agent_id != agent or policy.mode == "single" or policy.status == "proposed":
            continue
        exit_day = policy.exit_day
        if (
            policy.issue_date <= eve
            and (exit_day is None or exit_day > eve)
            and (policy.maturity_date is None or policy.maturity_date > eve)
            and add_months(policy.issue_date, 12 * policy.paying_years) > start
            and policy.policy_id not in lapsed_on_eve
        ):
            count += 1
    return count


# --- the marts ---------------------------------------------------------------------------------

MONEY = (
    "new_business_ape",
    "first_year_premium",
    "renewal_premium_due",
    "renewal_premium_collected",
)


def mart_select(relation: str, key: str, extra: tuple[str, ...]) -> str:
    money = ", ".join(f"round({c} * 100)::bigint AS {c}" for c in MONEY)
    ratios = ", ".join(
        f"persistency_{k}m_by_count, persistency_{k}m_by_premium" for k in PERSISTENCY_MONTHS
    )
    columns = ", ".join(
        (
            "agent_id",
            key,
            "new_policies",
            money,
            "renewal_collection_rate",
            "lapses",
            "revivals",
            *extra,
            ratios,
        )
    )
    return f"SELECT {columns} FROM {relation}"  # noqa: S608


@pytest.fixture(scope="module")
def book(built_warehouse) -> Book:
    return load_book(built_warehouse.operational_url)


@pytest.fixture(scope="module")
def full_history_sql(built_warehouse, tmp_path_factory) -> dict[str, str]:
    """The performance marts' SQL compiled with the default (whole-history) window."""
    target = tmp_path_factory.mktemp("premiums_target")
    models = ("agent_performance_daily", "agent_performance_monthly")
    run_dbt(built_warehouse.warehouse_url, target, "compile", "--select", *models)
    manifest = json.loads((target / "manifest.json").read_text())
    return {
        node["name"]: node["compiled_code"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"] in models
    }


def same_value(actual, expected) -> bool:
    """Counts and paise exactly, ratios to RATIO_TOLERANCE, null only for null."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(expected, float):
        return abs(actual - expected) <= RATIO_TOLERANCE
    return actual == expected


Expected = Callable[[dict], dict]


def check_rows(rows: pl.DataFrame, expected_of: Expected, label: str, key: str) -> list[str]:
    problems: list[str] = []
    for row in rows.iter_rows(named=True):
        for column, value in expected_of(row).items():
            if not same_value(row[column], value):
                problems.append(
                    f"{label} agent {row['agent_id'][:8]} {row[key]} {column}: "
                    f"mart {row[column]!r}, recomputed {value!r}"
                )
    return problems


# --- the tests ---------------------------------------------------------------------------------


def test_the_as_of_day_is_the_last_premium_day(built_warehouse, book: Book) -> None:
    with connect(built_warehouse.warehouse_url) as conn:
        (as_of,) = conn.execute("SELECT DISTINCT as_of_date FROM marts.fct_premium_dues").fetchone()
    assert as_of == book.as_of
    assert book.as_of <= built_warehouse.last_day


def test_agent_persistency_equals_a_recomputation(built_warehouse, book: Book) -> None:
    cohorts = persistency_cohorts(book)
    expected: dict[tuple[str, int, date], dict] = {}
    agents = {agent for agent, _, _ in cohorts}
    for agent in agents:
        for k in PERSISTENCY_MONTHS:
            first = min(c for a, kk, c in cohorts if a == agent and kk == k)
            last = latest_reported(k, book.as_of)
            cohort = first
            while cohort <= last:
                figures = cohorts.get((agent, k, cohort), CohortFigures())
                by_count, by_premium = trailing_persistency(cohorts, agent, k, cohort)
                expected[(agent, k, cohort)] = {
                    "policies_issued": figures.issued,
                    "policies_eligible": figures.eligible,
                    "policies_persisting": figures.persisting,
                    "annualised_premium_eligible": figures.premium_eligible,
                    "annualised_premium_persisting": figures.premium_persisting,
                    "persistency_by_count": ratio(figures.persisting, figures.eligible),
                    "persistency_by_premium": ratio(
                        figures.premium_persisting, figures.premium_eligible
                    ),
                    "window_persistency_by_count": by_count,
                    "window_persistency_by_premium": by_premium,
                }
                cohort = add_months(cohort, 1)
    with connect(built_warehouse.warehouse_url) as conn:
        mart = frame(
            conn,
            "SELECT agent_id, persistency_month, cohort_month, policies_issued,"
            " policies_eligible, policies_persisting,"
            " round(annualised_premium_eligible * 100)::bigint AS annualised_premium_eligible,"
            " round(annualised_premium_persisting * 100)::bigint"
            " AS annualised_premium_persisting, persistency_by_count, persistency_by_premium,"
            " window_persistency_by_count, window_persistency_by_premium"
            " FROM marts.agent_persistency",
        )
    assert mart.height == len(expected), (mart.height, len(expected))
    problems = []
    for row in mart.iter_rows(named=True):
        key = (row["agent_id"], row["persistency_month"], row["cohort_month"])
        assert key in expected, f"unexpected row {key}"
        for column, value in expected[key].items():
            if not same_value(row[column], value):
                problems.append(f"{key} {column}: mart {row[column]!r}, recomputed {value!r}")
    assert not problems, "\n".join(problems[:20])
    # The 13th month is measured, with real lapses: persistency is neither empty nor perfect.
    thirteen = mart.filter(pl.col("persistency_month") == 13)
    assert thirteen["policies_eligible"].sum() > 100
    assert 0.5 < thirteen["policies_persisting"].sum() / thirteen["policies_eligible"].sum() < 1


def expected_daily(facts: Facts, cohorts: dict) -> Expected:
    def of(row: dict) -> dict:
        key = (row["agent_id"], row["activity_date"])
        due = facts.renewal_due_paise.get(key, 0)
        collected = facts.renewal_collected_paise.get(key, 0)
        values = {
            "new_policies": facts.new_policies.get(key, 0),
            "new_business_ape": round_tenths(facts.ape_tenth_paise.get(key, 0)),
            "first_year_premium": facts.first_year_paise.get(key, 0),
            "renewal_premium_due": due,
            "renewal_premium_collected": collected,
            "renewal_collection_rate": ratio(collected, due),
            "lapses": len(facts.lapsed_policies.get(key, ())),
            "revivals": len(facts.revived_policies.get(key, ())),
        }
        for k in PERSISTENCY_MONTHS:
            last = latest_reported(k, row["activity_date"])
            by_count, by_premium = trailing_persistency(cohorts, row["agent_id"], k, last)
            values[f"persistency_{k}m_by_count"] = by_count
            values[f"persistency_{k}m_by_premium"] = by_premium
        return values

    return of


def by_month(table: dict) -> dict:
    """Daily figures of (agent, day) summed (or united) per (agent, first day of month)."""
    months: dict = {}
    for (agent, day), value in table.items():
        key = (agent, month_start(day))
        if isinstance(value, set):
            months.setdefault(key, set()).update(value)
        else:
            months[key] = months.get(key, 0) + value
    return months


def expected_monthly(book: Book, facts: Facts, cohorts: dict) -> Expected:
    month = {name: by_month(getattr(facts, name)) for name in Facts.__dataclass_fields__}

    def of(row: dict) -> dict:
        agent, start = row["agent_id"], row["month_start"]
        end = min(add_months(start, 1) - timedelta(days=1), book.as_of)
        key = (agent, start)
        due = month["renewal_due_paise"].get(key, 0)
        collected = month["renewal_collected_paise"].get(key, 0)
        in_force = in_force_at_start(book, agent, start)
        lapses = len(month["lapsed_policies"].get(key, ()))
        values = {
            "new_policies": month["new_policies"].get(key, 0),
            "new_business_ape": round_tenths(month["ape_tenth_paise"].get(key, 0)),
            "first_year_premium": month["first_year_paise"].get(key, 0),
            "renewal_premium_due": due,
            "renewal_premium_collected": collected,
            "renewal_collection_rate": ratio(collected, due),
            "lapses": lapses,
            "revivals": len(month["revived_policies"].get(key, ())),
            "policies_in_force_at_start": in_force,
            "lapse_ratio": ratio(lapses, in_force),
        }
        for k in PERSISTENCY_MONTHS:
            last = latest_reported(k, end)
            by_count, by_premium = trailing_persistency(cohorts, agent, k, last)
            values[f"persistency_{k}m_by_count"] = by_count
            values[f"persistency_{k}m_by_premium"] = by_premium
        return values

    return of


@pytest.mark.parametrize("source", ["built", "whole_history"])
def test_agent_performance_marts_equal_a_recomputation(
    built_warehouse, book: Book, full_history_sql: dict[str, str], source: str
) -> None:
    facts = daily_facts(book)
    cohorts = persistency_cohorts(book)
    if source == "built":
        daily_relation = "marts.agent_performance_daily"
        monthly_relation = "marts.agent_performance_monthly"
    else:
        daily_relation = f"({full_history_sql['agent_performance_daily']}) AS daily"
        monthly_relation = f"({full_history_sql['agent_performance_monthly']}) AS monthly"
    monthly_extra = ("policies_in_force_at_start", "lapse_ratio")
    with connect(built_warehouse.warehouse_url) as conn:
        daily = frame(conn, mart_select(daily_relation, "activity_date", ()))
        monthly = frame(conn, mart_select(monthly_relation, "month_start", monthly_extra))
    agents = sorted(set(daily["agent_id"]))
    assert len(agents) >= MIN_AGENTS
    assert daily.height > 0 and monthly.height > 0

    problems = check_rows(daily, expected_daily(facts, cohorts), "daily", "activity_date")
    problems += check_rows(
        monthly, expected_monthly(book, facts, cohorts), "monthly", "month_start"
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    if source == "whole_history":
        # Dense: every agent every day from the premium history's first day (or the day the
        # agent joined) to the as-of day.
        first = min(p.issue_date for p in book.policies.values())
        assert daily.height == sum(
            (book.as_of - max(first, joined)).days + 1 for joined in book.joined.values()
        )
        # Years of history: every metric is exercised, not only zeros.
        assert monthly["lapses"].sum() > 20
        assert monthly.filter(pl.col("lapse_ratio") > 0).height > 10
        assert monthly["renewal_premium_due"].sum() > 0
        assert monthly.filter(pl.col("new_business_ape") > 0).height > 50
        assert daily.filter(pl.col("persistency_13m_by_count").is_not_null()).height > 1000
        assert monthly.height > 12 * len(agents)
