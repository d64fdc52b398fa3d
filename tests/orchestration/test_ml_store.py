"""The models' warehouse I/O on a real PostgreSQL: marts read with their types, a scoring day
replaced whole, the registry's champion and latest metrics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import psycopg
import pytest

from ml.registry import ModelCard, baseline_decision
from orchestration.defs.ml.marts import read_marts
from orchestration.defs.ml.registry_store import (
    champion,
    latest_metrics,
    register_first_champion,
    replace_days,
)
from warehouse import urls
from warehouse.ml_tables import ensure_ml_tables


@pytest.fixture(scope="module")
def warehouse(make_database) -> str:
    url = make_database("ml_store")
    with psycopg.connect(urls.libpq_url(url)) as conn:
        ensure_ml_tables(conn)
        conn.execute("CREATE SCHEMA marts")
        conn.execute(
            "CREATE TABLE marts.sample (id uuid, day date, at timestamptz, flag boolean, "
            "n integer, amount numeric(12, 2), kinds text[], label text)"
        )
        conn.execute(
            "INSERT INTO marts.sample VALUES "
            "('6f1c2c1e-7b1a-4c55-9d2e-0a4f1e2b3c4d', '2026-10-31', "
            "'2026-10-31 18:30:00+00', true, 3, 1234.50, '{term,ulip}', 'a, \"b\"'), "
            "(NULL, NULL, NULL, false, NULL, NULL, '{}', NULL)"
        )
    return url


def test_marts_read_with_their_types(warehouse) -> None:
    frame = read_marts(
        warehouse, {"sample": ("id", "day", "at", "flag", "n", "amount", "kinds", "label")}
    )["sample"]
    assert frame.schema["day"] == pl.Date
    assert frame.schema["flag"] == pl.Boolean
    assert frame.schema["n"] == pl.Int32
    assert frame.schema["amount"] == pl.Float64
    first, second = frame.rows(named=True)
    assert first["id"] == "6f1c2c1e-7b1a-4c55-9d2e-0a4f1e2b3c4d"
    assert first["day"] == date(2026, 10, 31)
    assert first["at"] == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    assert (first["flag"], first["n"], first["amount"]) == (True, 3, 1234.5)
    assert first["kinds"] == ["term", "ulip"]
    assert first["label"] == 'a, "b"'
    assert second["kinds"] == [] and second["day"] is None and second["flag"] is False


def test_a_missing_mart_or_column_is_a_clear_error(warehouse) -> None:
    with pytest.raises(LookupError, match="build the marts first"):
        read_marts(warehouse, {"absent": ("id",)})
    with pytest.raises(LookupError, match="no column"):
        read_marts(warehouse, {"sample": ("nope",)})


def _scores(day: date, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "scored_for": [day] * n,
            "list_name": ["for_you"] * n,
            "policyholder_id": ["6f1c2c1e-7b1a-4c55-9d2e-0a4f1e2b3c4d"] * n,
            "rank": list(range(1, n + 1)),
            "video_id": ["0a4f1e2b-7b1a-4c55-9d2e-6f1c2c1e3c4d"] * n,
            "score": [0.5] * n,
            "source": ["personal"] * n,
            "model_version": ["v1"] * n,
        }
    )


def test_a_scoring_day_is_replaced_whole_and_other_days_stay(warehouse) -> None:
    first, second = date(2026, 10, 30), date(2026, 10, 31)
    assert replace_days(warehouse, "content_recommendations", [first], _scores(first, 3)) == 3
    assert replace_days(warehouse, "content_recommendations", [second], _scores(second, 5)) == 5
    assert replace_days(warehouse, "content_recommendations", [second], _scores(second, 2)) == 2
    with psycopg.connect(urls.libpq_url(warehouse)) as conn:
        counts = dict(
            conn.execute(
                "SELECT scored_for, count(*) FROM ml.content_recommendations GROUP BY 1"
            ).fetchall()
        )
    assert counts == {first: 3, second: 2}


def test_no_champion_and_latest_metrics(warehouse) -> None:
    assert champion(warehouse, "lapse") is None
    assert latest_metrics(warehouse, "lapse") is None
    with psycopg.connect(urls.libpq_url(warehouse)) as conn:
        conn.execute(
            "INSERT INTO ml.model_registry (model_name, version, kind, training_window_start, "
            "training_window_end, holdout_start, holdout_end, feature_names, metrics, "
            "data_fingerprint, library_versions, seed, artifact_path, artifact_sha256, "
            "promotion_note) VALUES ('lapse', 'lapse-1', 'gb', '2026-01-01', '2026-06-01', "
            "'2026-07-01', '2026-08-01', '[]', %s, 'f', '{}', 7, '/x', 's', 'n')",
            (json.dumps({"test_auc": 0.7}),),
        )
    assert latest_metrics(warehouse, "lapse") == ("lapse-1", {"test_auc": 0.7})


def _card(version: str) -> ModelCard:
    return ModelCard(
        model_name="recommender",
        version=version,
        kind="language_popularity",
        training_window_start=date(2026, 9, 1),
        training_window_end=date(2026, 9, 7),
        holdout_start=date(2026, 9, 8),
        holdout_end=date(2026, 9, 14),
        feature_names=("implicit_feedback",),
        metrics={"ndcg_at_10": 0.1},
        data_fingerprint="f",
        seed=7,
    )


def test_a_baseline_becomes_the_first_champion_only_while_there_is_none(
    warehouse, tmp_path
) -> None:
    """Two runs bootstrapping at once: the second finds the first's champion and keeps it."""
    artifact = tmp_path / "baseline.pkl"
    artifact.write_bytes(b"model")
    decision = baseline_decision("language_popularity", "ndcg_at_10", 0.1)
    first = register_first_champion(warehouse, _card("recommender-1"), artifact, "s", decision)
    assert first.version == "recommender-1"
    assert first.card["is_champion"] and first.card["promotion_note"] == decision.note
    second = register_first_champion(warehouse, _card("recommender-2"), artifact, "s", decision)
    assert second.version == "recommender-1"
    with psycopg.connect(urls.libpq_url(warehouse)) as conn:
        versions = conn.execute(
            "SELECT version, is_champion FROM ml.model_registry WHERE model_name = 'recommender'"
        ).fetchall()
    assert versions == [("recommender-1", True)]
