"""The model registry's storage: artifacts under the landing root, cards in `ml.model_registry`.

An artifact is the pickled model, written to `<landing root>/models/<model name>/<version>.pkl`
through a temporary file and a rename (a crash leaves no half file), with its SHA-256 recorded
beside it; loading checks the hash, so a model is never scored from a file that changed. The
champion flag moves in one transaction with the new row (a partial unique index allows one
champion per model name).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle  # our own artifacts, verified by SHA-256 before loading
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ml.registry import ModelCard, PromotionDecision
from warehouse import urls
from warehouse.ml_tables import ML_SCHEMA, ensure_ml_tables

ARTIFACT_FOLDER = "models"


@dataclass(frozen=True)
class StoredModel:
    """A registry row and its artifact's location."""

    card: dict[str, Any]
    artifact_path: Path
    artifact_sha256: str

    @property
    def version(self) -> str:
        return self.card["version"]

    def load(self) -> Any:
        """The model object, after checking the file is the one registered."""
        data = self.artifact_path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.artifact_sha256:
            raise ValueError(
                f"artifact {self.artifact_path} does not match the registry (SHA-256 {actual}, "
                f"registered {self.artifact_sha256}); retrain the model"
            )
        return pickle.loads(data)  # noqa: S301 - verified above


def save_artifact(
    landing_root: Path, model_name: str, version: str, model: Any
) -> tuple[Path, str]:
    """Pickle `model` atomically under the landing root; return its path and SHA-256."""
    folder = landing_root / ARTIFACT_FOLDER / model_name
    folder.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    path = folder / f"{version}.pkl"
    with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
    return path, hashlib.sha256(data).hexdigest()


def save_figure(landing_root: Path, model_name: str, version: str, name: str, png: bytes) -> Path:
    """A PNG beside the model's artifact (ROC and calibration curves)."""
    path = landing_root / ARTIFACT_FOLDER / model_name / f"{version}.{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def _json_safe(metrics: dict[str, float]) -> dict[str, float | None]:
    """NaN (a metric that does not exist, e.g. no champion to compare) as JSON null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}


def register(
    warehouse_url: str,
    card: ModelCard,
    artifact_path: Path,
    artifact_sha256: str,
    decision: PromotionDecision,
) -> None:
    """Insert the card; when `decision.promote`, make it the champion in the same transaction."""
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_ml_tables(conn)
        _lock_model(conn, card.model_name)
        _insert(conn, card, artifact_path, artifact_sha256, decision)


def register_first_champion(
    warehouse_url: str,
    card: ModelCard,
    artifact_path: Path,
    artifact_sha256: str,
    decision: PromotionDecision,
) -> StoredModel:
    """Register a baseline as the first champion, unless a champion appeared while it was
    being trained (another run bootstrapping, or a training): then that one is kept and
    returned, and the baseline is not registered."""
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_ml_tables(conn)
        _lock_model(conn, card.model_name)
        existing = _champion(conn, card.model_name)
        if existing is not None:
            return existing
        _insert(conn, card, artifact_path, artifact_sha256, decision)
        stored = _champion(conn, card.model_name)
    if stored is None:  # decision.promote was false
        raise ValueError(f"{card.version} was registered but not promoted: {decision.note}")
    return stored


def _lock_model(conn: psycopg.Connection, model_name: str) -> None:
    """Serialise registrations of one model until the transaction ends, so two runs cannot
    both see no champion and both insert one (the unique index would fail the second)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"ml.model_registry/{model_name}",),
    )


def _insert(
    conn: psycopg.Connection,
    card: ModelCard,
    artifact_path: Path,
    artifact_sha256: str,
    decision: PromotionDecision,
) -> None:
    if decision.promote:
        conn.execute(
            "UPDATE ml.model_registry SET is_champion = false "
            "WHERE model_name = %s AND is_champion",
            (card.model_name,),
        )
    conn.execute(
        """
        INSERT INTO ml.model_registry (
            model_name, version, kind, training_window_start, training_window_end,
            holdout_start, holdout_end, feature_names, metrics, data_fingerprint,
            library_versions, seed, artifact_path, artifact_sha256, is_champion,
            promoted_at, promotion_note
        ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                  CASE WHEN %s THEN now() END, %s)
        """,
        (
            card.model_name,
            card.version,
            card.kind,
            card.training_window_start,
            card.training_window_end,
            card.holdout_start,
            card.holdout_end,
            json.dumps(list(card.feature_names)),
            json.dumps(_json_safe(card.metrics)),
            card.data_fingerprint,
            json.dumps(card.library_versions),
            card.seed,
            str(artifact_path),
            artifact_sha256,
            decision.promote,
            decision.promote,
            decision.note,
        ),
    )


def _champion(conn: psycopg.Connection, model_name: str) -> StoredModel | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT * FROM ml.model_registry WHERE model_name = %s AND is_champion",
            (model_name,),
        )
        .fetchone()
    )
    if row is None:
        return None
    return StoredModel(row, Path(row["artifact_path"]), row["artifact_sha256"])


def champion(warehouse_url: str, model_name: str) -> StoredModel | None:
    """The current champion of `model_name`, or None before the first promotion."""
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_ml_tables(conn)
        return _champion(conn, model_name)


def latest_metrics(warehouse_url: str, model_name: str) -> tuple[str, dict[str, Any]] | None:
    """Version and metrics of the most recently trained `model_name` (promoted or not)."""
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_ml_tables(conn)
        row = conn.execute(
            "SELECT version, metrics FROM ml.model_registry WHERE model_name = %s "
            "ORDER BY trained_at DESC LIMIT 1",
            (model_name,),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def replace_days(warehouse_url: str, table: str, days: list[date], rows: pl.DataFrame) -> int:
    """Replace the rows of `days` (column `scored_for`) in `ml.<table>` with `rows` (columns
    named as the table's), in one transaction: a rerun of a day gives the same table. Sent as
    one CSV COPY (the table's uuid and jsonb columns take text; the binary COPY of
    `warehouse.bulk` would need their binary forms)."""
    target = sql.Identifier(ML_SCHEMA, table)
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_ml_tables(conn)
        conn.execute(sql.SQL("DELETE FROM {} WHERE scored_for = ANY(%s)").format(target), (days,))
        if rows.height:
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                target, sql.SQL(", ").join(sql.Identifier(c) for c in rows.columns)
            )
            with conn.cursor().copy(statement) as copy:
                copy.write(rows.write_csv(include_header=False))
    return rows.height
