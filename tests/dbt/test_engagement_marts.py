"""The engagement marts recomputed from the raw tables with polars, on simulator data.

The warehouse is the one the session fixture built (simulator → ingestion → dbt through
Dagster). Here the raw tables are read as they were loaded (duplicates across receipt days
included) and every figure is derived again in polars, following the definitions of
models/marts/engagement/_engagement__docs.md, independently of the dbt SQL:

- app sessions per agent and day (the agent's policyholders' sessions, by the IST day of the
  session's first event) and app-active customers (a session in the 30 days ending that day);
- WhatsApp messages in (webhook, by the receiving agent's number) and out (sent from the app)
  per agent and day, and per policyholder over the last 30 days;
- video completions per agent and day (`video_completed` of the agent's policyholders), and the
  different videos each policyholder completed;
- the median first-response time per agent and day, and per agent and month: runs of inbound
  messages of a customer resolved through the quoted app message or the BSUID the agent's app
  messages reached, answered by the agent's next app message to that policyholder.

Every agent, day and policyholder is compared, not a sample: the data are small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import psycopg
import pytest
from psycopg.types.string import TextLoader

from warehouse import urls

pytestmark = pytest.mark.integration

IST = "Asia/Kolkata"
ACTIVE_DAYS = 30


def connect(url: str) -> psycopg.Connection:
    """A connection that reads UUIDs as text and timestamps in UTC."""
    conn = psycopg.connect(urls.libpq_url(url))
    conn.adapters.register_loader("uuid", TextLoader)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def _frame(conn: psycopg.Connection, query: str) -> pl.DataFrame:
    """A query's rows as a polars frame (timestamps in UTC)."""
    with conn.cursor() as cursor:
        cursor.execute(query)
        columns = [d.name for d in cursor.description]
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def _ist_day(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(IST).dt.date()


def _first_copy(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """The first copy received of each key, as staging keeps it."""
    return frame.sort(key, "received_at", "received_day").unique(key, keep="first")


@dataclass(frozen=True)
class Raw:
    events: pl.DataFrame  # deduplicated app events
    people: pl.DataFrame  # user_id -> role, policyholder_id, agent_id
    inbound: pl.DataFrame  # webhook messages with their agent and resolved policyholder
    outbound: pl.DataFrame  # app messages


@dataclass(frozen=True)
class Marts:
    daily: pl.DataFrame
    monthly: pl.DataFrame
    customers: pl.DataFrame


def load_raw(conn: psycopg.Connection) -> Raw:
    events = _first_copy(
        _frame(
            conn,
            "SELECT message_id, received_day, received_at, type, event_name, user_id,"
            " session_id, event_timestamp, event_day, properties FROM raw.app_events",
        ),
        "message_id",
    )
    agents = _frame(
        conn,
        "SELECT id AS agent_id, cast(user_id AS text) AS user_id, whatsapp_phone_number_id"
        " FROM raw.agents WHERE _deleted_at IS NULL",
    )
    holders = _frame(
        conn,
        "SELECT id AS policyholder_id, cast(user_id AS text) AS user_id, agent_id"
        " FROM raw.policyholders WHERE _deleted_at IS NULL AND deleted_at IS NULL",
    )
    people = pl.concat(
        [
            agents.select(
                "user_id",
                pl.lit("agent").alias("role"),
                pl.lit(None, pl.String).alias("policyholder_id"),
                pl.col("agent_id").cast(pl.String),
            ),
            holders.select(
                "user_id",
                pl.lit("policyholder").alias("role"),
                pl.col("policyholder_id").cast(pl.String),
                pl.col("agent_id").cast(pl.String),
            ),
        ]
    ).filter(pl.col("user_id").is_not_null())

    outbound = _frame(
        conn,
        "SELECT wamid_token AS message_key, cast(agent_id AS text) AS agent_id,"
        " cast(policyholder_id AS text) AS policyholder_id, sent_at"
        " FROM raw.whatsapp_outbound WHERE _deleted_at IS NULL",
    )
    messages = _first_copy(
        _frame(
            conn,
            "SELECT wamid_token AS message_key, received_day, received_at, sent_at, source,"
            " phone_number_id, direction, customer_user_id,"
            " context_wamid_token AS context_message_key FROM raw.whatsapp_messages",
        ),
        "message_key",
    )
    statuses = _frame(
        conn,
        "SELECT DISTINCT wamid_token AS message_key, recipient_user_id FROM raw.whatsapp_statuses"
        " WHERE recipient_user_id IS NOT NULL",
    )
    # The customer behind a BSUID, per agent: whom the agent's app messages to it were for.
    bsuids = (
        statuses.join(outbound, on="message_key")
        .group_by("agent_id", "recipient_user_id")
        .agg(pl.col("policyholder_id").unique())
        .filter(pl.col("policyholder_id").list.len() == 1)
        .select(
            "agent_id",
            pl.col("recipient_user_id").alias("customer_user_id"),
            pl.col("policyholder_id").list.first().alias("bsuid_policyholder_id"),
        )
    )
    quoted = outbound.select(
        pl.col("message_key").alias("context_message_key"),
        "agent_id",
        pl.col("policyholder_id").alias("quoted_policyholder_id"),
    )
    inbound = (
        messages.filter((pl.col("source") == "webhook") & (pl.col("direction") == "inbound"))
        .join(
            agents.select(
                pl.col("whatsapp_phone_number_id").alias("phone_number_id"),
                pl.col("agent_id").cast(pl.String),
            ),
            on="phone_number_id",
            how="left",
        )
        .join(quoted, on=["context_message_key", "agent_id"], how="left")
        .join(bsuids, on=["agent_id", "customer_user_id"], how="left")
        .with_columns(
            pl.coalesce("quoted_policyholder_id", "bsuid_policyholder_id").alias("policyholder_id")
        )
        .select("message_key", "agent_id", "policyholder_id", "sent_at")
    )
    return Raw(events=events, people=people, inbound=inbound, outbound=outbound)


def load_marts(conn: psycopg.Connection) -> Marts:
    daily = _frame(
        conn,
        "SELECT cast(agent_id AS text) AS agent_id, activity_date, app_active_customers,"
        " app_sessions, whatsapp_inbound, whatsapp_outbound, first_responses,"
        " cast(median_first_response_seconds AS float8) AS median_first_response_seconds,"
        " videos_completed FROM intermediate.int_agent_engagement_daily",
    )
    monthly = _frame(
        conn,
        "SELECT cast(agent_id AS text) AS agent_id, month_start, first_responses,"
        " cast(median_first_response_seconds AS float8) AS median_first_response_seconds,"
        " whatsapp_inbound, whatsapp_outbound, app_sessions, videos_completed"
        " FROM intermediate.int_agent_engagement_monthly",
    )
    customers = _frame(
        conn,
        "SELECT cast(policyholder_id AS text) AS policyholder_id, as_of_date,"
        " app_sessions_30d, whatsapp_inbound_30d, whatsapp_outbound_30d, videos_completed"
        " FROM marts.customer_360",
    )
    return Marts(daily=daily, monthly=monthly, customers=customers)


# --------------------------------------------------------------------------- recomputations


def customer_sessions(raw: Raw) -> pl.DataFrame:
    """Policyholders' sessions: the user of the first event naming one, the first event's day."""
    sessions = (
        raw.events.filter(pl.col("session_id").is_not_null())
        .sort("event_timestamp", "message_id")
        .group_by("session_id")
        .agg(
            pl.col("user_id").drop_nulls().first(),
            pl.col("event_day").min().alias("session_day"),
        )
    )
    return sessions.join(raw.people, on="user_id").filter(pl.col("role") == "policyholder")


def app_sessions_per_agent_day(raw: Raw) -> dict[tuple[str, date], int]:
    counts = customer_sessions(raw).group_by("agent_id", "session_day").len()
    return {(a, d): n for a, d, n in counts.iter_rows()}


def app_active_customers(raw: Raw, days: list[date]) -> dict[tuple[str, date], int]:
    """Per agent and day: policyholders with a session in the 30 days ending that day."""
    visits = customer_sessions(raw).select("agent_id", "policyholder_id", "session_day").unique()
    out: dict[tuple[str, date], int] = {}
    for day in days:
        window = visits.filter(
            pl.col("session_day").is_between(day - timedelta(days=ACTIVE_DAYS - 1), day)
        )
        for agent, n in (
            window.group_by("agent_id").agg(pl.col("policyholder_id").n_unique()).iter_rows()
        ):
            out[(agent, day)] = n
    return out


def video_completions(raw: Raw) -> pl.DataFrame:
    """`video_completed` events of policyholders, with their agent and the video."""
    return (
        raw.events.filter(pl.col("event_name") == "video_completed")
        .join(raw.people.filter(pl.col("role") == "policyholder"), on="user_id")
        .with_columns(pl.col("properties").str.json_path_match("$.video_id").alias("video_id"))
    )


def whatsapp_per_agent_day(raw: Raw) -> tuple[dict, dict]:
    inbound = (
        raw.inbound.filter(pl.col("agent_id").is_not_null())
        .group_by("agent_id", _ist_day("sent_at").alias("day"))
        .len()
    )
    outbound = raw.outbound.group_by("agent_id", _ist_day("sent_at").alias("day")).len()
    return (
        {(a, d): n for a, d, n in inbound.iter_rows()},
        {(a, d): n for a, d, n in outbound.iter_rows()},
    )


def first_responses(raw: Raw) -> pl.DataFrame:
    """Per run of inbound messages of a known customer that the agent answered: the response's
    IST day and the seconds from the run's first message to it."""
    conversation = pl.concat(
        [
            raw.outbound.select(
                "agent_id",
                "policyholder_id",
                "sent_at",
                "message_key",
                pl.lit(False).alias("inbound"),
            ),
            raw.inbound.filter(pl.col("policyholder_id").is_not_null()).select(
                "agent_id",
                "policyholder_id",
                "sent_at",
                "message_key",
                pl.lit(True).alias("inbound"),
            ),
        ]
    ).sort("agent_id", "policyholder_id", "sent_at", "inbound", "message_key")
    conversation = conversation.with_columns(
        (~pl.col("inbound"))
        .cast(pl.Int64)
        .cum_sum()
        .over("agent_id", "policyholder_id")
        .alias("outbound_so_far")
    )
    runs = (
        conversation.filter(pl.col("inbound"))
        .group_by("agent_id", "policyholder_id", "outbound_so_far")
        .agg(pl.col("sent_at").min().alias("run_started_at"))
    )
    responses = conversation.filter(~pl.col("inbound")).select(
        "agent_id",
        "policyholder_id",
        (pl.col("outbound_so_far") - 1).alias("outbound_so_far"),
        pl.col("sent_at").alias("response_at"),
    )
    return runs.join(responses, on=["agent_id", "policyholder_id", "outbound_so_far"]).select(
        "agent_id",
        "policyholder_id",
        _ist_day("response_at").alias("response_day"),
        (pl.col("response_at") - pl.col("run_started_at")).dt.total_seconds().alias("seconds"),
    )


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def loaded(built_warehouse) -> tuple[Raw, Marts]:
    with connect(built_warehouse.warehouse_url) as conn:
        return load_raw(conn), load_marts(conn)


def _mart_counts(frame: pl.DataFrame, key: str, column: str) -> dict[tuple[str, date], int]:
    nonzero = frame.filter(pl.col(column) > 0)
    return {(a, d): n for a, d, n in nonzero.select("agent_id", key, column).iter_rows()}


def test_app_sessions_and_app_active_customers(loaded) -> None:
    raw, marts = loaded
    expected = app_sessions_per_agent_day(raw)
    assert sum(expected.values()) > 100, "too few policyholder sessions to compare"
    assert _mart_counts(marts.daily, "activity_date", "app_sessions") == expected

    days = sorted(set(marts.daily["activity_date"]))
    active = app_active_customers(raw, days)
    assert _mart_counts(marts.daily, "activity_date", "app_active_customers") == active


def test_whatsapp_messages_in_and_out(loaded) -> None:
    raw, marts = loaded
    inbound, outbound = whatsapp_per_agent_day(raw)
    assert sum(inbound.values()) > 50 and sum(outbound.values()) > 50
    assert _mart_counts(marts.daily, "activity_date", "whatsapp_inbound") == inbound
    assert _mart_counts(marts.daily, "activity_date", "whatsapp_outbound") == outbound
    monthly_out = {}
    for (agent, day), n in outbound.items():
        key = (agent, day.replace(day=1))
        monthly_out[key] = monthly_out.get(key, 0) + n
    assert _mart_counts(marts.monthly, "month_start", "whatsapp_outbound") == monthly_out


def test_video_completions(loaded) -> None:
    raw, marts = loaded
    completions = video_completions(raw)
    assert completions.height > 20, "too few completed videos to compare"
    per_day = completions.group_by("agent_id", "event_day").len()
    expected = {(a, d): n for a, d, n in per_day.iter_rows()}
    assert _mart_counts(marts.daily, "activity_date", "videos_completed") == expected


def test_median_first_response_time(loaded) -> None:
    raw, marts = loaded
    responses = first_responses(raw)
    assert responses.height > 10, "too few answered runs to compare"

    daily = responses.group_by("agent_id", "response_day").agg(
        pl.len().alias("runs"), pl.col("seconds").median().alias("median")
    )
    expected = {(a, d): (n, round(m, 1)) for a, d, n, m in daily.iter_rows()}
    got = {
        (a, d): (n, m)
        for a, d, n, m in marts.daily.filter(pl.col("first_responses") > 0)
        .select("agent_id", "activity_date", "first_responses", "median_first_response_seconds")
        .iter_rows()
    }
    assert got == expected

    monthly = responses.group_by(
        "agent_id", pl.col("response_day").dt.truncate("1mo").alias("month_start")
    ).agg(pl.len().alias("runs"), pl.col("seconds").median().alias("median"))
    expected_monthly = {(a, d): (n, round(m, 1)) for a, d, n, m in monthly.iter_rows()}
    got_monthly = {
        (a, d): (n, m)
        for a, d, n, m in marts.monthly.filter(pl.col("first_responses") > 0)
        .select("agent_id", "month_start", "first_responses", "median_first_response_seconds")
        .iter_rows()
    }
    assert got_monthly == expected_monthly


def test_customer_360_engagement(loaded, built_warehouse) -> None:
    raw, marts = loaded
    as_of = marts.customers["as_of_date"].unique().to_list()
    assert as_of == [built_warehouse.last_day]
    since = as_of[0] - timedelta(days=ACTIVE_DAYS - 1)

    sessions = customer_sessions(raw).filter(pl.col("session_day").is_between(since, as_of[0]))
    inbound = raw.inbound.filter(
        pl.col("policyholder_id").is_not_null() & _ist_day("sent_at").is_between(since, as_of[0])
    )
    outbound = raw.outbound.filter(_ist_day("sent_at").is_between(since, as_of[0]))
    completed = (
        video_completions(raw)
        .group_by("policyholder_id")
        .agg(pl.col("video_id").n_unique().alias("videos"))
    )
    expected = {
        "app_sessions_30d": dict(sessions.group_by("policyholder_id").len().iter_rows()),
        "whatsapp_inbound_30d": dict(inbound.group_by("policyholder_id").len().iter_rows()),
        "whatsapp_outbound_30d": dict(outbound.group_by("policyholder_id").len().iter_rows()),
        "videos_completed": dict(completed.iter_rows()),
    }
    for column, values in expected.items():
        assert sum(values.values()) > 10, f"too little {column} to compare"
        got = {
            holder: n
            for holder, n in marts.customers.filter(pl.col(column) > 0)
            .select("policyholder_id", column)
            .iter_rows()
        }
        assert got == values, column
