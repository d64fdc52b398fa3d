"""`raw/whatsapp_messages`, `raw/whatsapp_statuses`, the other WhatsApp raw tables and each
message's current state.

One receipt day per partition: the day's webhook deliveries (signature re-checked over the raw
bytes; a bad line goes to quarantine.whatsapp and nowhere else) and the chat exports uploaded that
day (`source = 'chat_export'`). Every table's partition of the day (messages, statuses, calls,
message edits, contact changes, account events, quarantine) is replaced in one transaction, and
the day's statuses are folded into `raw.whatsapp_message_states` (keyed by `wamid_token`) in the
same transaction; folding is idempotent, so re-loading a day changes nothing. Tables holding raw
Meta ids, bodies or payloads drop their partitions older than `MITRA_RAW_RETENTION_DAYS`.

Blocking checks guard what would corrupt the tables (keys, reconciliation of lines and of
records); values of an open vocabulary the code does not know (a new status, message type or
change field) only raise the `unexpected_values` warning, with the values and counts.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import polars as pl
import psycopg
from psycopg import sql

from orchestration.defs.ingest.checks import (
    DayCheck,
    check_specs,
    partition_rows,
    reconciliation_check,
    results,
    suite_checks,
    unexpected_values_check,
    unexpected_values_spec,
    volume_check,
)
from orchestration.defs.ingest.expectations import CheckSuite
from orchestration.defs.ingest.landing import day_files, read_bytes
from orchestration.defs.ingest.load import replace_day
from orchestration.defs.ingest.partitions import partition_days
from orchestration.defs.ingest.tables import (
    WHATSAPP_MESSAGES,
    WHATSAPP_QUARANTINE,
    WHATSAPP_RETAINED,
    WHATSAPP_STATES,
    WHATSAPP_STATUSES,
    WHATSAPP_TABLES,
)
from orchestration.defs.operational.assets import DATABASE_RETRY
from orchestration.resources import DatabasesResource, LandingResource
from transforms.chat_exports import parse_chat_export
from transforms.whatsapp import (
    KNOWN_STATUSES,
    STATES_SCHEMA,
    id_token_expr,
    merge_states,
    message_states,
    parse_webhook_deliveries,
)
from warehouse import urls
from warehouse.partitions import drop_partitions_before
from warehouse.raw_tables import ensure_tables
from warehouse.settings import get_settings

MESSAGES_KEY = dg.AssetKey(["raw", "whatsapp_messages"])
STATUSES_KEY = dg.AssetKey(["raw", "whatsapp_statuses"])
# The other tables a day's webhooks fill: (frame name, what the table holds).
SIDE_TABLES = {
    "calls": "WhatsApp call events (`field: calls`: connect, status, terminate), one row per "
    "call event and receipt day; call ids as keyed tokens beside the raw id (retention).",
    "edits": "Edits and revokes of messages (the customer's, or the agent's typed in the "
    "WhatsApp Business app), pointing at the original message's token.",
    "contact_changes": "Address-book syncs of the business app and number changes "
    "(`user_changed_number`): phone numbers as keyed tokens only.",
    "account_events": "Account-level webhook fields (template, quality, account and capability "
    "updates; top-level errors), the value kept as JSON text.",
}
SOURCES = ["webhook", "echo", "history", "chat_export"]
KNOWN_INTERACTIVE = frozenset({"button_reply", "list_reply", "nfm_reply", "call_permission_reply"})


def _message_keys(day: date) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid_token"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="wamid"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="source", value_set=SOURCES),
    ]


def _status_keys(day: date) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid_token"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="status"),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["wamid", "status"]),
    ]


MESSAGE_SUITES = [
    CheckSuite("keys_valid", "wamid present, tokenised, unique; our sources", True, _message_keys)
]
STATUS_SUITES = [
    CheckSuite("keys_valid", "one row per wamid and status, tokenised", True, _status_keys)
]
MESSAGE_CHECKS = [
    *check_specs(MESSAGES_KEY, MESSAGE_SUITES),
    unexpected_values_spec(
        MESSAGES_KEY, "change fields and message types quarantined as not yet handled, and "
        "interactive subtypes loaded but not known, with their counts",
    ),
]  # fmt: skip
STATUS_CHECKS = [
    *check_specs(STATUSES_KEY, STATUS_SUITES),
    unexpected_values_spec(STATUSES_KEY, "statuses loaded but not known, with their counts"),
]


@dataclass(frozen=True)
class WhatsAppDay:
    counts: dict[str, int]
    message_checks: list[DayCheck]
    status_checks: list[DayCheck]


def _chat_exports(paths, day: date, pii_key: bytes):
    """Every export of the day; a message exported twice (same chat re-exported) loads once.
    Also counts the files whose date order nothing in them decided (read day-first)."""
    parsed = [
        parse_chat_export(p.read_text(encoding="utf-8", errors="replace"), p.name, day, pii_key)
        for p in paths
    ]
    messages = pl.concat([r.messages for r in parsed]) if parsed else None
    rejected = [r.rejected for r in parsed]
    read = sum(r.read for r in parsed)
    system = sum(r.system_lines for r in parsed)
    ambiguous = sum(r.date_order_ambiguous for r in parsed)
    return messages, rejected, read, system, ambiguous


def _upsert_states(conn: psycopg.Connection, states: pl.DataFrame) -> None:
    columns = WHATSAPP_STATES.column_names
    conn.execute("CREATE TEMP TABLE _states (LIKE raw.whatsapp_message_states) ON COMMIT DROP")
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY _states ({}) FROM STDIN (FORMAT CSV, NULL '\\N')").format(
                sql.SQL(", ").join(map(sql.Identifier, columns))
            )
        ) as copy,
    ):
        copy.write(states.select(columns).write_csv(include_header=False, null_value="\\N"))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in columns
        if c != "wamid_token"
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO raw.whatsapp_message_states ({}) SELECT {} FROM _states"
            " ON CONFLICT (wamid_token) DO UPDATE SET {}"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            updates,
        )
    )
    conn.execute("DROP TABLE _states")


def _fold_states(statuses: pl.DataFrame) -> Callable[[psycopg.Connection], None]:
    """Fold the day's statuses into the running state of each message (same transaction)."""

    def fold(conn: psycopg.Connection) -> None:
        if statuses.is_empty():
            return
        tokens = statuses["wamid_token"].unique().to_list()
        select = sql.SQL("SELECT {} FROM {} WHERE wamid_token = ANY(%s)").format(
            sql.SQL(", ").join(map(sql.Identifier, WHATSAPP_STATES.column_names)),
            sql.Identifier("raw", WHATSAPP_STATES.name),
        )
        with conn.cursor() as cur:
            cur.execute(select, (tokens,))
            rows = cur.fetchall()
        old = pl.DataFrame(rows, schema=STATES_SCHEMA, orient="row") if rows else None
        _upsert_states(conn, merge_states(old, statuses))

    return fold


def _rebuild_states(pii_key: bytes) -> Callable[[psycopg.Connection], None]:
    """Refill a states table created anew (its key changed from `wamid` to `wamid_token`) by
    folding every status the statuses table still holds; runs in the migration's transaction."""

    def rebuild(conn: psycopg.Connection) -> None:
        if conn.execute("SELECT to_regclass('raw.whatsapp_statuses')").fetchone()[0] is None:
            return
        rows = conn.execute(
            "SELECT wamid, status, status_at, error_code FROM raw.whatsapp_statuses"
        ).fetchall()
        if not rows:
            return
        statuses = pl.DataFrame(
            rows,
            schema={"wamid": pl.String, "status": pl.String,
                    "status_at": pl.Datetime("us", "UTC"), "error_code": pl.Int64},
            orient="row",
        ).with_columns(wamid_token=id_token_expr("wamid", pii_key))  # fmt: skip
        _upsert_states(conn, message_states(statuses))

    return rebuild


def _unexpected(hooks, messages: pl.DataFrame) -> tuple[dict, dict]:
    """Values of the open vocabularies the code does not know, counted: (for the messages
    asset, for the statuses asset)."""
    reasons = Counter(hooks.quarantined["reason"].to_list())

    def prefixed(prefix: str) -> dict[str, int]:
        return {r.removeprefix(prefix): n for r, n in reasons.items() if r.startswith(prefix)}

    interactive = Counter(
        v for v in messages["interactive_type"].drop_nulls().to_list() if v not in KNOWN_INTERACTIVE
    )
    statuses = Counter(v for v in hooks.statuses["status"].to_list() if v not in KNOWN_STATUSES)
    return (
        {
            "change_field": prefixed("unhandled_field:"),
            "message_type": prefixed("unhandled_type:"),
            "interactive_type": dict(interactive),
        },
        {"status": dict(statuses)},
    )


def _reconcile(conn, day: date, hooks, chat_counts: dict[str, int], frames, quarantine) -> DayCheck:
    """Lines and records both balance, and every partition holds exactly what was loaded."""
    in_tables = sum(partition_rows(conn, WHATSAPP_TABLES[name], day) for name in frames)
    lines = reconciliation_check(
        day,
        read=hooks.read + chat_counts["read"],
        loaded=hooks.loaded_lines + chat_counts["loaded"],
        quarantined=hooks.rejected.height + chat_counts["rejected"],
        duplicates=hooks.duplicate_lines + chat_counts["duplicates"],
        skipped=chat_counts["skipped"],
        in_table=in_tables,
        expected_in_table=sum(frame.height for frame in frames.values()),
    )
    counts = hooks.counts()
    records_ok = counts["records"] == (
        counts["loaded"] + counts["duplicates"] + counts["quarantined_records"]
    )
    in_quarantine = partition_rows(conn, WHATSAPP_QUARANTINE, day)
    details = {
        **lines.details,
        "records": counts["records"],
        "records_loaded": counts["loaded"],
        "records_duplicates": counts["duplicates"],
        "records_quarantined": counts["quarantined_records"],
        "rows_in_quarantine": in_quarantine,
    }
    passed = lines.passed and records_ok and in_quarantine == quarantine.height
    return DayCheck(lines.name, day, passed, details)


def load_whatsapp_day(day: date, landing: LandingResource, warehouse_url: str) -> WhatsAppDay:
    pii_key = landing.pii_key_bytes
    delivery_files = day_files(landing.path, "whatsapp", day, "*.ndjson*")
    data = b"".join(read_bytes(p) for p in delivery_files)
    hooks = parse_webhook_deliveries(data, day, landing.app_secret_bytes, pii_key)
    export_files = day_files(landing.path, "whatsapp_exports", day, "*.txt")
    chat, chat_rejected, chat_read, chat_system, chat_ambiguous = _chat_exports(
        export_files, day, pii_key
    )
    messages = hooks.messages
    chat_counts = {"read": chat_read, "skipped": chat_system, "loaded": 0, "duplicates": 0}
    if chat is not None:
        unique_chat = chat.unique(subset="wamid", keep="first", maintain_order=True)
        chat_counts["duplicates"] = chat.height - unique_chat.height
        chat_counts["loaded"] = unique_chat.height
        messages = pl.concat([messages, unique_chat])
    chat_counts["rejected"] = sum(r.height for r in chat_rejected)
    quarantine = pl.concat([hooks.quarantine, *chat_rejected], how="diagonal_relaxed")
    frames = {**hooks.frames, "messages": messages}
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_tables(
            conn,
            [WHATSAPP_STATUSES, WHATSAPP_STATES],
            rebuild={WHATSAPP_STATES.qualified: _rebuild_states(pii_key)},
        )
        replace_day(
            conn,
            day,
            {
                **{WHATSAPP_TABLES[name]: frame for name, frame in frames.items()},
                WHATSAPP_QUARANTINE: quarantine.select(WHATSAPP_QUARANTINE.column_names),
            },
            also=_fold_states(hooks.statuses),
        )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("raw", WHATSAPP_STATES.name)))
        cutoff = date.today() - timedelta(days=get_settings().raw_retention_days)
        for spec in WHATSAPP_RETAINED:
            drop_partitions_before(conn, spec.partitioned, cutoff)
        reconciliation = _reconcile(conn, day, hooks, chat_counts, frames, quarantine)
        # Chat exports arrive as whole chats in bursts: the volume band watches the webhook stream.
        message_volume = volume_check(
            conn, WHATSAPP_MESSAGES, day, hooks.messages.height, only=sql.SQL("source = 'webhook'")
        )
        status_volume = volume_check(conn, WHATSAPP_STATUSES, day, hooks.statuses.height)
    unexpected_messages, unexpected_statuses = _unexpected(hooks, messages)
    counts = {
        **hooks.counts(),
        "chat_export_files": len(export_files),
        "chat_export_messages": messages.height - hooks.messages.height,
        "chat_exports_ambiguous_date_order": chat_ambiguous,
        "messages": messages.height,
        "statuses": hooks.statuses.height,
        "quarantined": quarantine.height,
        **{name: hooks.frames[name].height for name in SIDE_TABLES},
    }
    return WhatsAppDay(
        counts,
        [
            reconciliation,
            message_volume,
            unexpected_values_check(day, unexpected_messages),
            *suite_checks(messages, MESSAGE_SUITES, day),
        ],
        [
            reconciliation,
            status_volume,
            unexpected_values_check(day, unexpected_statuses),
            *suite_checks(hooks.statuses, STATUS_SUITES, day),
        ],
    )


def build_whatsapp_assets(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                MESSAGES_KEY,
                group_name="raw_whatsapp",
                kinds={"polars", "postgres"},
                description="WhatsApp messages (webhooks, the agent's echoes, synced history and "
                "chat exports), one row per wamid and receipt day; phone numbers and Meta ids as "
                "keyed tokens, bodies kept only here.",
                metadata={"dagster/table_name": "raw.whatsapp_messages"},
            ),
            dg.AssetSpec(
                STATUSES_KEY,
                group_name="raw_whatsapp",
                kinds={"polars", "postgres"},
                description="Delivery statuses of outbound messages, one row per wamid and status; "
                "raw.whatsapp_message_states keeps each message's furthest state.",
                metadata={"dagster/table_name": "raw.whatsapp_statuses"},
            ),
            *(
                dg.AssetSpec(
                    _side_key(name),
                    group_name="raw_whatsapp",
                    kinds={"polars", "postgres"},
                    description=description,
                    metadata={"dagster/table_name": WHATSAPP_TABLES[name].qualified},
                )
                for name, description in SIDE_TABLES.items()
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=MESSAGE_CHECKS + STATUS_CHECKS,
        retry_policy=DATABASE_RETRY,
        name="whatsapp_logs",
    )
    def whatsapp_logs(
        context: dg.AssetExecutionContext, databases: DatabasesResource, landing: LandingResource
    ) -> Iterator:
        totals: dict[str, int] = {}
        message_checks: list[DayCheck] = []
        status_checks: list[DayCheck] = []
        for day in partition_days(context):
            loaded = load_whatsapp_day(day, landing, databases.warehouse)
            context.log.info("whatsapp %s: %s", day, loaded.counts)
            for name, value in loaded.counts.items():
                totals[name] = totals.get(name, 0) + value
            message_checks += loaded.message_checks
            status_checks += loaded.status_checks
        yield dg.MaterializeResult(
            asset_key=MESSAGES_KEY,
            metadata={**totals, "dagster/row_count": totals.get("messages", 0)},
            check_results=results(MESSAGES_KEY, message_checks, MESSAGE_CHECKS),
        )
        yield dg.MaterializeResult(
            asset_key=STATUSES_KEY,
            metadata={
                "statuses": totals.get("statuses", 0),
                "dagster/row_count": totals.get("statuses", 0),
            },
            check_results=results(STATUSES_KEY, status_checks, STATUS_CHECKS),
        )
        for name in SIDE_TABLES:
            rows = totals.get(name, 0)
            yield dg.MaterializeResult(
                asset_key=_side_key(name), metadata={"rows": rows, "dagster/row_count": rows}
            )

    return whatsapp_logs


def _side_key(frame_name: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", WHATSAPP_TABLES[frame_name].name])


# Every asset the WhatsApp load materialises: jobs and sensors select them together.
WHATSAPP_KEYS = (MESSAGES_KEY, STATUSES_KEY, *(_side_key(name) for name in SIDE_TABLES))
