"""The `ml` schema's tables: the model registry and what scoring writes.

One definition of each table, created idempotently by `mitra db migrate` (through
`warehouse_ddl.ensure_warehouse`) and by the model assets before they write, so a warehouse made
before these tables existed gains them on the next run.

- `ml.model_registry`: one row per trained model (lapse or recommender): its training window,
  features, metrics on its holdout, a fingerprint of the data it saw, the library versions, and
  where its artifact is (a file under the landing root, with its SHA-256). At most one champion
  per model name (a partial unique index), changed only by the promotion rule.
- `ml.lapse_scores`: per scoring day, every premium due in the next 30 days with its
  probability of being unpaid at grace end, risk band, reasons and the model version.
- `ml.content_recommendations`: per scoring day, each policyholder's top videos (`for_you`) and,
  for customers at risk, the one video their agent should send next (`send_next`).

A scoring day's rows are replaced whole in one transaction, so a rerun gives the same table.
"""

from __future__ import annotations

import psycopg

ML_SCHEMA = "ml"

DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """
    CREATE TABLE IF NOT EXISTS ml.model_registry (
        model_name text NOT NULL,
        version text PRIMARY KEY,
        kind text NOT NULL,
        trained_at timestamptz NOT NULL DEFAULT now(),
        training_window_start date NOT NULL,
        training_window_end date NOT NULL,
        holdout_start date NOT NULL,
        holdout_end date NOT NULL,
        feature_names jsonb NOT NULL,
        metrics jsonb NOT NULL,
        data_fingerprint text NOT NULL,
        library_versions jsonb NOT NULL,
        seed integer NOT NULL,
        artifact_path text NOT NULL,
        artifact_sha256 text NOT NULL,
        is_champion boolean NOT NULL DEFAULT false,
        promoted_at timestamptz,
        promotion_note text NOT NULL
    )
    """,
    """
    CREATE UNIQUE INDEX IF NOT EXISTS model_registry_one_champion
        ON ml.model_registry (model_name) WHERE is_champion
    """,
    """
    CREATE TABLE IF NOT EXISTS ml.lapse_scores (
        scored_for date NOT NULL,
        policy_id uuid NOT NULL,
        installment_number integer NOT NULL,
        due_date date NOT NULL,
        grace_end_date date NOT NULL,
        policyholder_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        provider_id uuid NOT NULL,
        lapse_probability double precision NOT NULL
            CHECK (lapse_probability BETWEEN 0 AND 1),
        risk_band text NOT NULL CHECK (risk_band IN ('high', 'medium', 'low')),
        reasons jsonb NOT NULL,
        model_version text NOT NULL,
        scored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scored_for, policy_id, installment_number)
    )
    """,
    "CREATE INDEX IF NOT EXISTS lapse_scores_agent ON ml.lapse_scores (agent_id, scored_for)",
    """
    CREATE TABLE IF NOT EXISTS ml.content_recommendations (
        scored_for date NOT NULL,
        list_name text NOT NULL CHECK (list_name IN ('for_you', 'send_next')),
        policyholder_id uuid NOT NULL,
        rank integer NOT NULL CHECK (rank >= 1),
        video_id uuid NOT NULL,
        score double precision NOT NULL,
        source text NOT NULL,
        model_version text NOT NULL,
        scored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scored_for, list_name, policyholder_id, rank)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS content_recommendations_holder
        ON ml.content_recommendations (policyholder_id, scored_for)
    """,
)


def ensure_ml_tables(conn: psycopg.Connection) -> None:
    """Create the `ml` schema's tables and indexes if missing (idempotent)."""
    for statement in DDL:
        conn.execute(statement)
