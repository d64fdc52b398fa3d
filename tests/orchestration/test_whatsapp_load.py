"""The WhatsApp asset on a day holding every webhook payload kind (the corpus of
tests/data/whatsapp_webhooks plus bad lines and re-deliveries), materialised through Dagster into
PostgreSQL; and a warehouse created by the previous version, migrated by the loader."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import dagster as dg
import orjson
import psycopg
import pytest
from psycopg import sql

from orchestration.defs.ingest.partitions import daily_partitions
from orchestration.defs.ingest.whatsapp import build_whatsapp_assets, load_whatsapp_day
from orchestration.resources import DatabasesResource, LandingResource
from simulator.whatsapp import meta_json, sign
from transforms.pii import keyed_token
from warehouse import urls

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "data" / "whatsapp_webhooks"
SECRET = "test-app-secret"
PII_KEY = "test-pii-key"
DAY = date(2026, 9, 1)
RECEIVED_AT = "2026-09-01T10:00:00.000+05:30"
TABLES = (
    "whatsapp_messages",
    "whatsapp_statuses",
    "whatsapp_calls",
    "whatsapp_message_edits",
    "whatsapp_contact_changes",
    "whatsapp_account_events",
)


def _line(raw: bytes, signature: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "received_at": RECEIVED_AT,
            "signature": signature or sign(raw, SECRET.encode()),
            "body": raw.decode(),
        }
    )


def _write_day(root: Path) -> list[bytes]:
    """The day's landing file: every corpus body, a re-delivery of the first three, one line
    with a bad signature and one that is not JSON. Returns the corpus bodies."""
    bodies = [meta_json(json.loads(p.read_text())) for p in sorted(CORPUS.glob("*.json"))]
    lines = [_line(raw) for raw in bodies]
    lines += lines[:3]
    lines.append(_line(bodies[0], signature="sha256=" + "0" * 64))
    lines.append(b'{"received_at": "2026-09-01T10:00:00+05:30", "body": "{trunc')
    folder = root / "whatsapp" / f"dt={DAY}"
    folder.mkdir(parents=True)
    (folder / "deliveries.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return bodies


def _query(url: str, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(urls.libpq_url(url)) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def loaded(make_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("whatsapp_corpus")
    bodies = _write_day(root)
    warehouse = make_database("wa_corpus")
    asset = build_whatsapp_assets(daily_partitions(DAY))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asset],
            instance=instance,
            partition_key=DAY.isoformat(),
            resources={
                "databases": DatabasesResource(operational_url=warehouse, warehouse_url=warehouse),
                "landing": LandingResource(root=str(root), app_secret=SECRET, pii_key=PII_KEY),
            },
        )
    return warehouse, result, bodies


def _checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (c.asset_key.to_user_string(), c.check_name): c
        for c in result.get_asset_check_evaluations()
    }


def test_every_blocking_check_passes_and_the_unknowns_are_a_warning(loaded) -> None:
    _, result, _ = loaded
    assert result.success
    checks = _checks(result)
    for asset in ("raw/whatsapp_messages", "raw/whatsapp_statuses"):
        for name in ("reconciliation", "keys_valid"):
            assert checks[(asset, name)].passed, (asset, name)
    messages = checks[("raw/whatsapp_messages", "unexpected_values")]
    assert not messages.passed and messages.severity == dg.AssetCheckSeverity.WARN
    assert messages.metadata["unexpected"].value == {
        "change_field": {"group_lifecycle_update": 1},
        "message_type": {"hologram": 1},
    }
    statuses = checks[("raw/whatsapp_statuses", "unexpected_values")]
    assert not statuses.passed and statuses.severity == dg.AssetCheckSeverity.WARN
    assert statuses.metadata["unexpected"].value == {"status": {"pending_review": 1}}


def test_the_day_reconciles_at_line_and_record_level(loaded) -> None:
    warehouse, result, bodies = loaded
    details = _checks(result)[("raw/whatsapp_messages", "reconciliation")].metadata["details"]
    day = details.value[DAY.isoformat()]
    assert day["read"] == len(bodies) + 3 + 2
    assert (day["duplicates"], day["quarantined"]) == (3, 2)  # duplicate lines, rejected lines
    assert day["loaded"] + day["duplicates"] + day["quarantined"] == day["read"]
    assert day["records"] == (
        day["records_loaded"] + day["records_duplicates"] + day["records_quarantined"]
    )
    count = sql.SQL("SELECT count(*) FROM {}")
    rows = {
        table: _query(warehouse, count.format(sql.Identifier("raw", table)))[0][0]
        for table in TABLES
    }
    assert rows == {
        "whatsapp_messages": 25,
        "whatsapp_statuses": 8,
        "whatsapp_calls": 3,
        "whatsapp_message_edits": 2,
        "whatsapp_contact_changes": 4,
        "whatsapp_account_events": 10,
    }
    assert sum(rows.values()) == day["records_loaded"] == day["rows_in_partition"]
    reasons = dict(
        _query(
            warehouse,
            "SELECT reason, count(*) FROM quarantine.whatsapp GROUP BY 1",
        )
    )
    assert reasons == {
        "bad_signature": 1,
        "invalid_json": 1,
        "implausible_timestamp": 3,
        "unhandled_type:hologram": 1,
        "unhandled_field:group_lifecycle_update": 1,
        "missing_field:id": 1,
        "missing_field:status": 1,
        "unexpected_shape:message": 1,
    }
    assert day["records_quarantined"] + day["quarantined"] == sum(reasons.values())


def test_no_meta_id_of_the_corpus_is_lost(loaded) -> None:
    """Every wamid and wacid the bodies hold is in a raw table (as itself or as a token) or in
    the quarantine's raw JSON."""
    warehouse, _, bodies = loaded
    ids = {m for raw in bodies for m in re.findall(rb'"(wa[mc]id\.[A-Za-z0-9]+)"', raw)}
    found = {
        row[0]
        for statement in (
            "SELECT wamid FROM raw.whatsapp_messages",
            "SELECT context_wamid FROM raw.whatsapp_messages",
            "SELECT reaction_to_wamid FROM raw.whatsapp_messages",
            "SELECT wamid FROM raw.whatsapp_statuses",
            "SELECT call_id FROM raw.whatsapp_calls",
            "SELECT wamid FROM raw.whatsapp_message_edits",
            "SELECT original_wamid FROM raw.whatsapp_message_edits",
        )
        for row in _query(warehouse, statement)
    }
    tokens = {
        r[0]
        for r in _query(warehouse, "SELECT event_wamid_token FROM raw.whatsapp_contact_changes")
    }
    quarantined = " ".join(r[0] for r in _query(warehouse, "SELECT raw FROM quarantine.whatsapp"))
    lost = [
        i.decode()
        for i in ids
        if i.decode() not in found
        and keyed_token(i.decode(), PII_KEY.encode()) not in tokens
        and i.decode() not in quarantined
    ]
    assert len(ids) > 30 and not lost


def test_states_are_keyed_by_token_with_played_and_deleted(loaded) -> None:
    warehouse, _, _ = loaded
    columns = {
        r[0]
        for r in _query(
            warehouse,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'raw' AND table_name = 'whatsapp_message_states'",
        )
    }
    assert "wamid" not in columns and "wamid_token" in columns
    states = {
        token: (state, failed, deleted)
        for token, state, failed, deleted in _query(
            warehouse,
            "SELECT wamid_token, state, failed, deleted FROM raw.whatsapp_message_states",
        )
    }

    def of(wamid: str):
        return states[keyed_token(wamid, PII_KEY.encode())]

    assert of("wamid.OUT1") == ("played", False, False)
    assert of("wamid.OUT3") == (None, True, False)
    assert of("wamid.OUT4") == (None, False, True)
    assert of("wamid.OUT7") == ("sent", False, False)


# --------------------------------------------------------------------------- schema drift

_PREVIOUS_VERSION = """
CREATE SCHEMA raw;
CREATE SCHEMA quarantine;
CREATE TABLE raw.whatsapp_statuses (
    wamid text, status text, status_at timestamptz, received_day date, received_at timestamptz,
    phone_number_id text, recipient_user_id text, recipient_phone_token text, error_code bigint,
    error_title text, pricing_category text, PRIMARY KEY (wamid, status, received_day)
) PARTITION BY RANGE (received_day);
CREATE TABLE raw.whatsapp_statuses_p20260831 PARTITION OF raw.whatsapp_statuses
    FOR VALUES FROM ('2026-08-31') TO ('2026-09-01');
INSERT INTO raw.whatsapp_statuses (wamid, status, status_at, received_day) VALUES
    ('wamid.EARLIER', 'sent', '2026-08-31 10:00+00', '2026-08-31'),
    ('wamid.EARLIER', 'read', '2026-08-31 10:05+00', '2026-08-31'),
    ('wamid.OUT1', 'sent', '2026-08-31 09:00+00', '2026-08-31');
CREATE TABLE raw.whatsapp_messages (
    wamid text, received_day date, received_at timestamptz, sent_at timestamptz, source text,
    phone_number_id text, direction text, customer_user_id text, customer_phone_token text,
    message_type text, text_body text, media_id text, mime_type text, interactive_type text,
    reply_id text, reply_title text, button_payload text, reaction_emoji text,
    reaction_to_wamid text, context_wamid text, export_file text,
    PRIMARY KEY (wamid, received_day)
) PARTITION BY RANGE (received_day);
CREATE TABLE quarantine.whatsapp (
    received_day date, line_number bigint, raw text, reason text
) PARTITION BY RANGE (received_day);
CREATE TABLE raw.whatsapp_message_states (
    wamid text PRIMARY KEY, state text, state_at timestamptz, failed boolean,
    failed_at timestamptz, error_code bigint, last_status_at timestamptz
);
INSERT INTO raw.whatsapp_message_states (wamid, state, failed) VALUES
    ('wamid.EARLIER', 'read', false), ('wamid.OUT1', 'sent', false);
"""


def test_a_warehouse_of_the_previous_version_is_migrated(make_database, tmp_path) -> None:
    """New columns are added to the old tables (old rows keep null there); the states table,
    whose key changed, is rebuilt from the statuses still held and then folds the new day."""
    warehouse = make_database("wa_drift")
    with psycopg.connect(urls.libpq_url(warehouse)) as conn:
        conn.execute(_PREVIOUS_VERSION)
    _write_day(tmp_path)
    landing = LandingResource(root=str(tmp_path), app_secret=SECRET, pii_key=PII_KEY)
    day = load_whatsapp_day(DAY, landing, warehouse)
    assert all(c.passed for c in day.message_checks if c.name in ("reconciliation", "keys_valid"))
    columns = {
        (table, column)
        for table, column in _query(
            warehouse,
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema IN ('raw', 'quarantine')",
        )
    }
    for table, column in (
        ("whatsapp_statuses", "wamid_token"),
        ("whatsapp_statuses", "pricing_model"),
        ("whatsapp_messages", "flow_response_json"),
        ("whatsapp", "record_index"),
        ("whatsapp_message_states", "deleted"),
    ):
        assert (table, column) in columns, (table, column)
    assert ("whatsapp_message_states", "wamid") not in columns
    old = _query(
        warehouse,
        "SELECT count(*), count(wamid_token) FROM raw.whatsapp_statuses"
        " WHERE received_day = '2026-08-31'",
    )
    assert old == [(3, 0)]  # kept; their tokens come when the day is reloaded
    states = dict(_query(warehouse, "SELECT wamid_token, state FROM raw.whatsapp_message_states"))
    key = PII_KEY.encode()
    assert states[keyed_token("wamid.EARLIER", key)] == "read"  # rebuilt from the old statuses
    assert states[keyed_token("wamid.OUT1", key)] == "played"  # and folded with the new day
    assert _query(warehouse, "SELECT count(*) FROM raw.whatsapp_messages")[0][0] == 25
    # A second load finds nothing to migrate and gives the same states.
    load_whatsapp_day(DAY, landing, warehouse)
    assert (
        dict(_query(warehouse, "SELECT wamid_token, state FROM raw.whatsapp_message_states"))
        == states
    )
