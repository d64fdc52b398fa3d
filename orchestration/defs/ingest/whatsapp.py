"""`raw/whatsapp_messages`, `raw/whatsapp_statuses` and each message's current state.

One receipt day per partition: the day's webhook deliveries (signature re-checked over the raw
bytes; a bad one goes to quarantine.whatsapp and nowhere else) and the chat exports uploaded that
day (`source = 'chat_export'`). Both tables' partitions and the quarantine are replaced together,
and the day's statuses are folded into `raw.whatsapp_message_states` in the same transaction,
keeping the furthest state on sent < delivered < read whatever the arrival order (folding is
idempotent, so re-loading a day changes nothing). Message bodies live only here, and partitions
older than `MITRA_RAW_RETENTION_DAYS` are dropped.
"""

from collections.abc import Iterator
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
    volume_check,
)
from orchestration.defs.ingest.expectations import CheckSuite
from orchestration.defs.ingest.landing import day_files, read_bytes
from orchestration.defs.ingest.load import replace_day
from orchestration.defs.ingest.partitions import partition_days
from orchestration.defs.ingest.tables import (
    WHATSAPP_MESSAGES,
    WHATSAPP_QUARANTINE,
    WHATSAPP_STATES,
    WHATSAPP_STATUSES,
)
from orchestration.defs.operational.assets import DATABASE_RETRY
from orchestration.resources import DatabasesResource, LandingResource
from transforms.chat_exports import parse_chat_export
from transforms.whatsapp import STATE_RANK, STATES_SCHEMA, merge_states, parse_webhook_deliveries
from warehouse import urls
from warehouse.partitions import drop_partitions_before
from warehouse.raw_tables import ensure_tables
from warehouse.settings import get_settings

MESSAGES_KEY = dg.AssetKey(["raw", "whatsapp_messages"])
STATUSES_KEY = dg.AssetKey(["raw", "whatsapp_statuses"])
STATUSES = [*STATE_RANK, "failed"]


def _message_keys(day: date) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="wamid"),
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="source", value_set=["webhook", "chat_export"]
        ),
    ]


def _status_keys(day: date) -> list:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="wamid"),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["wamid", "status"]),
        gx.expectations.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES),
    ]


MESSAGE_SUITES = [
    CheckSuite("keys_valid", "wamid present and unique; known source", True, _message_keys)
]
STATUS_SUITES = [
    CheckSuite("keys_valid", "one row per wamid and status; known statuses", True, _status_keys)
]
MESSAGE_CHECKS = check_specs(MESSAGES_KEY, MESSAGE_SUITES)
STATUS_CHECKS = check_specs(STATUSES_KEY, STATUS_SUITES)


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


def _fold_states(statuses: pl.DataFrame):
    """Fold the day's statuses into the running state of each message (same transaction)."""

    def fold(conn: psycopg.Connection) -> None:
        if statuses.is_empty():
            return
        wamids = statuses["wamid"].unique().to_list()
        columns = WHATSAPP_STATES.column_names
        select = sql.SQL("SELECT {} FROM {} WHERE wamid = ANY(%s)").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier("raw", WHATSAPP_STATES.name),
        )
        with conn.cursor() as cur:
            cur.execute(select, (wamids,))
            rows = cur.fetchall()
        old = pl.DataFrame(rows, schema=STATES_SCHEMA, orient="row") if rows else None
        merged = merge_states(old, statuses).select(columns)
        conn.execute("CREATE TEMP TABLE _states (LIKE raw.whatsapp_message_states) ON COMMIT DROP")
        with (
            conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY _states ({}) FROM STDIN (FORMAT CSV, NULL '\\N')").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns))
                )
            ) as copy,
        ):
            copy.write(merged.write_csv(include_header=False, null_value="\\N"))
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c != "wamid"
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO raw.whatsapp_message_states SELECT * FROM _states"
                " ON CONFLICT (wamid) DO UPDATE SET {}"
            ).format(updates)
        )

    return fold


def load_whatsapp_day(day: date, landing: LandingResource, warehouse_url: str) -> WhatsAppDay:
    delivery_files = day_files(landing.path, "whatsapp", day, "*.ndjson*")
    data = b"".join(read_bytes(p) for p in delivery_files)
    hooks = parse_webhook_deliveries(data, day, landing.app_secret_bytes, landing.pii_key_bytes)
    export_files = day_files(landing.path, "whatsapp_exports", day, "*.txt")
    chat, chat_rejected, chat_read, chat_system, chat_ambiguous = _chat_exports(
        export_files, day, landing.pii_key_bytes
    )
    messages = hooks.messages
    chat_duplicates = 0
    if chat is not None:
        unique_chat = chat.unique(subset="wamid", keep="first", maintain_order=True)
        chat_duplicates = chat.height - unique_chat.height
        messages = pl.concat([messages, unique_chat])
    rejected = pl.concat([hooks.rejected, *chat_rejected])
    with psycopg.connect(urls.libpq_url(warehouse_url)) as conn:
        ensure_tables(conn, [WHATSAPP_STATES])
        replace_day(
            conn,
            day,
            {
                WHATSAPP_MESSAGES: messages,
                WHATSAPP_STATUSES: hooks.statuses,
                WHATSAPP_QUARANTINE: rejected,
            },
            also=_fold_states(hooks.statuses),
        )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("raw", WHATSAPP_STATES.name)))
        retention = get_settings().raw_retention_days
        drop_partitions_before(
            conn, WHATSAPP_MESSAGES.partitioned, date.today() - timedelta(days=retention)
        )
        in_messages = partition_rows(conn, WHATSAPP_MESSAGES, day)
        in_statuses = partition_rows(conn, WHATSAPP_STATUSES, day)
        reconciliation = reconciliation_check(
            day,
            read=hooks.read + chat_read,
            loaded=hooks.loaded_lines + (chat.height - chat_duplicates if chat is not None else 0),
            quarantined=rejected.height,
            duplicates=hooks.duplicate_lines + chat_duplicates,
            skipped=chat_system,
            in_table=in_messages + in_statuses,
            expected_in_table=messages.height + hooks.statuses.height,
        )
        # Chat exports arrive as whole chats in bursts: the volume band watches the webhook stream.
        message_volume = volume_check(
            conn, WHATSAPP_MESSAGES, day, hooks.messages.height, only=sql.SQL("source = 'webhook'")
        )
        status_volume = volume_check(conn, WHATSAPP_STATUSES, day, hooks.statuses.height)
    counts = {
        **hooks.counts(),
        "chat_export_files": len(export_files),
        "chat_export_messages": messages.height - hooks.messages.height,
        "chat_exports_ambiguous_date_order": chat_ambiguous,
        "messages": messages.height,
        "statuses": hooks.statuses.height,
        "quarantined": rejected.height,
    }
    return WhatsAppDay(
        counts,
        [reconciliation, message_volume, *suite_checks(messages, MESSAGE_SUITES, day)],
        [reconciliation, status_volume, *suite_checks(hooks.statuses, STATUS_SUITES, day)],
    )


def build_whatsapp_assets(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                MESSAGES_KEY,
                group_name="raw_whatsapp",
                kinds={"polars", "postgres"},
                description="Inbound WhatsApp messages (webhooks and chat exports), one row per "
                "wamid and receipt day; phone numbers as keyed tokens, bodies kept only here.",
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

    return whatsapp_logs
