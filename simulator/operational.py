"""Write the simulated world into the operational database with COPY (never row by row).

Every timestamp is explicit, so the same seed gives identical table contents. Loading replaces
what a previous simulation wrote, in one transaction, and only when asked to: the tables of a
real operational database are never emptied by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl
import psycopg
from psycopg import sql

from simulator.config import SimulationConfig
from simulator.errors import OperationalNotEmptyError
from simulator.payments import PolicyOutcome
from simulator.world import World
from warehouse import urls

# Child tables first: the order TRUNCATE and COPY respect foreign keys in.
SIMULATED_TABLES = (
    "whatsapp_outbound",
    "premium_payments",
    "insurance_policies",
    "policyholders",
    "video_content",
    "chatbot_knowledge_base",
    "whatsapp_templates",
    "agents",
    "users",
    "insurance_providers",
)
NULL = r"\N"


def _ts(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def _stamps(created: datetime) -> list[pl.Expr]:
    """Explicit `created_at` and `updated_at`: column defaults (now()) would differ run to run."""
    return [pl.lit(created).alias("created_at"), pl.lit(created).alias("updated_at")]


def _array_literal(column: str) -> pl.Expr:
    """A list of plain words as a PostgreSQL array literal ({a,b})."""
    return pl.format("{{{}}}", pl.col(column).list.join(",")).alias(column)


def copy_frame(conn: psycopg.Connection, table: str, frame: pl.DataFrame) -> int:
    """COPY a frame into `table` (columns by name) as CSV; returns the rows written."""
    if frame.is_empty():
        return 0
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, NULL {})").format(
        sql.Identifier(table), columns, sql.Literal(NULL)
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, frame.height, 100_000):
            chunk = frame.slice(start, 100_000)
            copy.write(chunk.write_csv(include_header=False, null_value=NULL))
    return frame.height


def _providers(world: World, created: datetime) -> pl.DataFrame:
    return world.providers.select(
        pl.col("provider_id").alias("id"),
        "code",
        "name",
        "provider_type",
        pl.lit("active").alias("status"),
        *_stamps(created),
    )


def _users(world: World, created: datetime) -> pl.DataFrame:
    agents = world.agents.select(
        pl.col("user_id").alias("id"), "phone", "full_name", pl.lit("agent").alias("role"),
        pl.col("language").alias("language_preference"),
    )  # fmt: skip
    holders = world.policyholders.select(
        pl.col("user_id").alias("id"), "phone", "full_name", pl.lit("policyholder").alias("role"),
        pl.col("language").alias("language_preference"),
    )  # fmt: skip
    return pl.concat([agents, holders]).with_columns(
        pl.lit("active").alias("status"),
        pl.lit(created).alias("phone_verified_at"),
        *_stamps(created),
    )


def _agents(world: World) -> pl.DataFrame:
    return world.agents.select(
        pl.col("agent_id").alias("id"),
        "provider_id",
        "user_id",
        "agent_code",
        pl.format("IRDAI/{}", pl.col("agent_code")).alias("irdai_license_number"),
        "territory",
        "state",
        "city",
        "pincode",
        pl.concat_list(pl.col("language"), pl.lit("en"))
        .list.unique(maintain_order=True)
        .alias("preferred_languages"),
        "whatsapp_business_number",
        "whatsapp_phone_number_id",
        pl.lit("active").alias("status"),
        "joined_on",
        pl.col("joined_on").cast(pl.Datetime("us", "UTC")).alias("created_at"),
        pl.col("joined_on").cast(pl.Datetime("us", "UTC")).alias("updated_at"),
    ).with_columns(_array_literal("preferred_languages"))


def _policyholders(world: World, created: datetime) -> pl.DataFrame:
    return world.policyholders.select(
        pl.col("policyholder_id").alias("id"),
        "provider_id",
        "agent_id",
        "user_id",
        "customer_code",
        "full_name",
        "phone",
        "date_of_birth",
        "gender",
        "annual_income",
        "city",
        "state",
        "pincode",
        pl.col("language").alias("preferred_language"),
        "whatsapp_opt_in",
        *_stamps(created),
    )


def _policies(world: World, outcomes: Iterable[PolicyOutcome]) -> pl.DataFrame:
    outcome = pl.DataFrame(
        {
            "policy_id": np.concatenate([o.policy_id for o in outcomes]),
            "status": np.concatenate([o.status for o in outcomes]),
            "status_changed_at": np.concatenate([o.status_changed_at for o in outcomes]),
        }
    )
    issued_at = pl.col("issue_date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=5)
    changed_at = pl.col("status_changed_at").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=5)
    return (
        world.policies.join(outcome, on="policy_id", how="inner")
        .filter(pl.col("issue_date") < world.config.end)
        .select(
            pl.col("policy_id").alias("id"),
            "provider_id",
            "policyholder_id",
            "agent_id",
            "policy_number",
            "policy_type",
            "plan_name",
            "sum_assured",
            "premium_amount",
            "premium_mode",
            "policy_term_years",
            "premium_paying_term_years",
            "issue_date",
            "maturity_date",
            "status",
            changed_at.alias("status_changed_at"),
            "nominee_details",
            issued_at.alias("created_at"),
            pl.max_horizontal(issued_at, changed_at).alias("updated_at"),
        )
    )


def _videos(world: World, created: datetime) -> pl.DataFrame:
    return world.videos.select(
        pl.col("video_id").alias("id"),
        "provider_id",
        "title",
        "category",
        "language",
        "duration_seconds",
        pl.format("https://cdn.agentmitra.example/v/{}.mp4", pl.col("video_id")).alias("url"),
        pl.concat_list(pl.col("category")).alias("tags"),
        "policy_types",
        pl.lit("published").alias("status"),
        pl.lit(created).alias("published_at"),
        *_stamps(created),
    ).with_columns(_array_literal("tags"), _array_literal("policy_types"))


def _knowledge_base(world: World, created: datetime) -> pl.DataFrame:
    return world.knowledge_base.select(
        pl.col("kb_id").alias("id"),
        "category",
        "question",
        "answer",
        "keywords",
        "language",
        *_stamps(created),
    ).with_columns(_array_literal("keywords"))


def _templates(world: World, created: datetime) -> pl.DataFrame:
    return world.templates.select(
        pl.col("template_id").alias("id"),
        "provider_id",
        "name",
        "language",
        "category",
        "body",
        pl.col("buttons")
        .list.eval(pl.format('{{"type":"QUICK_REPLY","text":"{}"}}', pl.element()))
        .list.join(",")
        .map_elements(lambda s: f"[{s}]", return_dtype=pl.String)
        .alias("buttons"),
        pl.lit("approved").alias("approval_status"),
        *_stamps(created),
    )


def ensure_empty_or_replace(conn: psycopg.Connection, replace: bool) -> None:
    """Refuse to write over existing rows unless `replace`; with it, empty the tables first."""
    if replace:
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in SIMULATED_TABLES)
            )
        )
        return
    for table in SIMULATED_TABLES:
        if conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        ).fetchone()[0]:
            raise OperationalNotEmptyError(
                f"the operational table {table} already has rows; pass --replace to replace "
                "the previous simulation (this empties the operational tables)"
            )


class OperationalWriter:
    """Writes one simulation into the operational database inside a single transaction."""

    def __init__(self, operational_url: str, config: SimulationConfig, *, replace: bool) -> None:
        self.conn = psycopg.connect(urls.libpq_url(operational_url))
        self.config = config
        self.replace = replace
        self.counts: dict[str, int] = {}

    def __enter__(self) -> OperationalWriter:
        ensure_empty_or_replace(self.conn, self.replace)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.commit()
        else:
            self.conn.rollback()
        self.conn.close()

    def write(self, table: str, frame: pl.DataFrame) -> None:
        self.counts[table] = self.counts.get(table, 0) + copy_frame(self.conn, table, frame)

    def write_reference(self, world: World) -> None:
        """Everything that does not come day by day: insurers, people, content, templates."""
        created = _ts(self.config.history_start - timedelta(days=1))
        self.write("insurance_providers", _providers(world, created))
        self.write("users", _users(world, created))
        self.write("agents", _agents(world))
        self.write("policyholders", _policyholders(world, created))
        self.write("video_content", _videos(world, created))
        self.write("chatbot_knowledge_base", _knowledge_base(world, created))
        self.write("whatsapp_templates", _templates(world, created))

    def write_policies(self, world: World, outcome: PolicyOutcome, payments: pl.DataFrame) -> None:
        """A chunk of policies, then their dues (the foreign key wants them in that order)."""
        self.write("insurance_policies", _policies(world, [outcome]))
        self.write("premium_payments", payments)
