"""Analyst exports of the warehouse marts: which marts, which filters, and the byte streams.

The allowed list (`MARTS`) is the one definition of what may leave the warehouse through the
API: the table of each model, the columns it may be filtered on (types in `FILTERS`, one
definition for every mart that has the column), its date column and its default order. The
exportable columns are the mart's own, read from the catalog when the export starts (marts carry
no names, numbers or texts by contract, DESIGN §5: they are what the analyst SQL role reads);
a mart's `hidden` columns are left out if one ever must be. SQL is composed only from these
names (`psycopg.sql.Identifier`); every value a caller sends is a bound literal.

Tenancy: the warehouse has no row-level security, so every statement carries
`provider_id = ANY(<the caller's tenants>)` unless the caller sees every tenant (super admin).
Every allowed mart has a `provider_id` column (checked against the built warehouse by the
tests); `dim_date` has none, holds no tenant data and is not exported. Rows whose
`provider_id` is NULL (chat-export WhatsApp messages not yet matched to an agent) belong to no
tenant and reach only super admins.

Formats, all produced from one `COPY (SELECT ...) TO STDOUT` through psycopg 3, read one row per
message and handed on in chunks of about `CHUNK_BYTES` (memory stays bounded whatever the size):

* CSV: PostgreSQL's own CSV with a header, passed through untouched (exact text: numerics as
  stored, timestamps in UTC as `2026-09-01 04:30:00+00`, booleans `t`/`f`, NULL an empty field,
  an empty string `""`).
* NDJSON / JSON: PostgreSQL's `row_to_json` of each row (exact numbers, ISO-8601 times), read
  raw through a CSV COPY whose quote and delimiter are control characters JSON never contains
  unescaped; NDJSON is one object a line, JSON one array of them.
* Parquet: the same CSV stream cut into groups of rows (`PARQUET_ROWS_PER_GROUP` or
  `PARQUET_GROUP_BYTES`), each parsed by Arrow's CSV reader straight into the column types taken
  from the catalog and written as one row group, whose bytes are sent as soon as it is written;
  the footer last. Measured on 1M rows of fct_premium_dues (31 columns, 2 shared cores): about
  5 s and +60-80 MB peak, against 16-21 s and +188 MB for Python tuples fetched from a
  server-side cursor (fetchmany of 20,000) and converted by pyarrow.
"""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

import orjson
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg import sql

from warehouse import urls

log = logging.getLogger(__name__)

SCHEMA = "marts"
CHUNK_BYTES = 1 << 20  # what one pull of the response stream carries, about 1 MiB
# A Parquet row group ends at this many rows or this much CSV, whichever comes first: the
# export holds one group as CSV, as Arrow columns and encoded, about 3.5 times this at peak.
PARQUET_ROWS_PER_GROUP = 65_536
PARQUET_GROUP_BYTES = 8 << 20
MAX_FILTER_VALUES = 100
MAX_LIMIT = 100_000_000
# An export holds a read lock on its mart until it ends; dbt's rebuild of a table mart (rename
# and drop) waits for it, and every later reader queues behind dbt. A client too slow to take a
# whole mart in this time is cut off rather than let it stall the refresh.
STATEMENT_TIMEOUT_MS = 15 * 60 * 1000


# --------------------------------------------------------------------------- the allowed list


class FilterType(Enum):
    UUID = "uuid"
    TEXT = "text"
    INTEGER = "integer"


@dataclass(frozen=True)
class Filter:
    """An equality filter: `?<column>=v1&<column>=v2` keeps rows whose column is one of them."""

    column: str
    type: FilterType
    pg_types: frozenset[str]  # the catalog types the column may have in a mart
    description: str


def _filter(column: str, kind: FilterType, description: str) -> Filter:
    pg_types = {
        FilterType.UUID: {"uuid"},
        FilterType.TEXT: {"text", "varchar"},
        FilterType.INTEGER: {"int2", "int4", "int8"},
    }[kind]
    return Filter(column, kind, frozenset(pg_types), description)


FILTERS: dict[str, Filter] = {
    f.column: f
    for f in (
        _filter("provider_id", FilterType.UUID, "Insurer (tenant); only within the caller's."),
        _filter("agent_id", FilterType.UUID, "Agent."),
        _filter("policyholder_id", FilterType.UUID, "Policyholder."),
        _filter("policy_id", FilterType.UUID, "Policy."),
        _filter("video_id", FilterType.UUID, "Video."),
        _filter("territory", FilterType.TEXT, "Sales territory."),
        _filter("agent_status", FilterType.TEXT, "Agent lifecycle status."),
        _filter("policy_type", FilterType.TEXT, "Product family (endowment, term, ulip, ...)."),
        _filter(
            "premium_mode", FilterType.TEXT, "monthly, quarterly, half_yearly, annual, single."
        ),
        _filter("policy_status", FilterType.TEXT, "Rebuilt policy status (active, lapsed, ...)."),
        _filter("outcome", FilterType.TEXT, "Premium outcome (paid_on_time, lapsed, ...)."),
        _filter("category", FilterType.TEXT, "Video category."),
        _filter("language", FilterType.TEXT, "Language code (hi, en, ...)."),
        _filter("user_role", FilterType.TEXT, "Role of the app user (agent, policyholder)."),
        _filter("direction", FilterType.TEXT, "WhatsApp direction (inbound, outbound)."),
        _filter("persistency_month", FilterType.INTEGER, "k of month-k persistency (13 ... 61)."),
        _filter("financial_year", FilterType.INTEGER, "First calendar year of the financial year."),
    )
}


@dataclass(frozen=True)
class Mart:
    """One exportable mart."""

    name: str
    description: str
    order_by: tuple[str, ...]  # the default order; ends with the key, so it is total
    filters: tuple[str, ...]  # besides provider_id, which every mart has
    date_column: str | None = None  # what `from` / `to` bound
    hidden: frozenset[str] = field(default_factory=frozenset)

    @property
    def table(self) -> sql.Composable:
        return sql.Identifier(SCHEMA, self.name)

    @property
    def filter_columns(self) -> tuple[str, ...]:
        return ("provider_id", *self.filters)


MARTS: dict[str, Mart] = {
    m.name: m
    for m in (
        Mart(
            "agent_performance_daily",
            "One row per agent and IST day: new business, renewals, lapses, persistency, ranks,"
            " engagement.",
            ("agent_id", "activity_date"),
            ("agent_id", "territory"),
            "activity_date",
        ),
        Mart(
            "agent_performance_monthly",
            "One row per agent and calendar month, with the lapse ratio.",
            ("agent_id", "month_start"),
            ("agent_id", "territory"),
            "month_start",
        ),
        Mart(
            "agent_performance_yearly",
            "One row per agent and financial year (April to March).",
            ("agent_id", "financial_year"),
            ("agent_id", "territory", "financial_year"),
            "year_start",
        ),
        Mart(
            "agent_persistency",
            "Persistency by agent, cohort month and month k, with 12-month windows.",
            ("agent_id", "cohort_month", "persistency_month"),
            ("agent_id", "territory", "persistency_month"),
            "cohort_month",
        ),
        Mart(
            "agent_policy_summary",
            "One row per agent: policies sold and premium in force.",
            ("agent_id",),
            ("agent_id", "territory", "agent_status"),
        ),
        Mart(
            "dim_agent",
            "One row per agent: territory, status, joining and licence dates, book of business.",
            ("agent_id",),
            ("agent_id", "territory", "agent_status"),
            "joined_on",
        ),
        Mart(
            "dim_policy",
            "One row per policy: product, premium, APE, rebuilt status, lapses and revivals.",
            ("policy_id",),
            (
                "agent_id",
                "policyholder_id",
                "policy_id",
                "policy_type",
                "premium_mode",
                "policy_status",
            ),
            "issue_date",
        ),
        Mart(
            "fct_premium_dues",
            "One row per premium instalment due: grace, payment and outcome.",
            ("due_date", "premium_payment_id"),
            ("agent_id", "policyholder_id", "policy_id", "premium_mode", "outcome"),
            "due_date",
        ),
        Mart(
            "dim_policyholder",
            "One row per policyholder: bands and flags, no names or numbers.",
            ("policyholder_id",),
            ("agent_id", "policyholder_id"),
        ),
        Mart(
            "customer_360",
            "One row per policyholder: policies, next due, payments, engagement.",
            ("policyholder_id",),
            ("agent_id", "policyholder_id"),
        ),
        Mart(
            "dim_content",
            "One row per video of an insurer's library.",
            ("video_id",),
            ("video_id", "category", "language"),
        ),
        Mart(
            "content_performance",
            "One row per video: views, completion, shares.",
            ("video_id",),
            ("video_id", "category", "language"),
        ),
        Mart(
            "fct_app_sessions",
            "One row per app session of an agent or a policyholder.",
            ("session_day", "session_id"),
            ("agent_id", "policyholder_id", "user_role"),
            "session_day",
        ),
        Mart(
            "fct_content_views",
            "One row per video view.",
            ("view_day", "content_view_id"),
            ("agent_id", "policyholder_id", "video_id", "language"),
            "view_day",
        ),
        Mart(
            "fct_whatsapp_messages",
            "One row per WhatsApp message, in and out, with its delivery state and first response.",
            ("message_day", "message_key"),
            ("agent_id", "policyholder_id", "direction"),
            "message_day",
        ),
    )
}

# --------------------------------------------------------------------------- formats


class ExportFormat(Enum):
    CSV = "csv"
    NDJSON = "ndjson"
    JSON = "json"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self][0]

    @property
    def extension(self) -> str:
        return self.value


_MEDIA_TYPES: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.CSV: ("text/csv",),
    ExportFormat.NDJSON: ("application/x-ndjson",),
    ExportFormat.JSON: ("application/json",),
    ExportFormat.PARQUET: ("application/vnd.apache.parquet", "application/octet-stream"),
}
# Content-Type of each answer (CSV: RFC 4180's optional parameters).
CONTENT_TYPES: dict[str, str] = {
    "text/csv": "text/csv; charset=utf-8; header=present",
    "application/x-ndjson": "application/x-ndjson",
    "application/json": "application/json",
    "application/vnd.apache.parquet": "application/vnd.apache.parquet",
    "application/octet-stream": "application/octet-stream",
}
_BY_MEDIA_TYPE = {mt: fmt for fmt, types in _MEDIA_TYPES.items() for mt in types}
_WILDCARDS = {
    "*/*": ExportFormat.CSV,
    "text/*": ExportFormat.CSV,
    "application/*": ExportFormat.JSON,
}
_MEDIA_RANGE = re.compile(r"^\s*([^\s;]+)\s*(;.*)?$")
_Q = re.compile(r";\s*q\s*=\s*([0-9.]+)")


class NotAcceptable(Exception):
    """The Accept header names no format an export can be written in."""


def negotiate(requested: ExportFormat | None, accept: str | None) -> tuple[ExportFormat, str]:
    """The format and the media type to answer with: `format=` when given, else the most
    preferred acceptable type of `Accept` (ties in header order), else CSV."""
    if requested is not None:
        return requested, requested.media_type
    if not accept or not accept.strip():
        return ExportFormat.CSV, ExportFormat.CSV.media_type
    ranked: list[tuple[float, int, ExportFormat, str]] = []
    for position, part in enumerate(accept.split(",")):
        match = _MEDIA_RANGE.match(part)
        if not match:
            continue
        media = match.group(1).lower()
        q = 1.0
        if match.group(2) and (qm := _Q.search(match.group(2))):
            try:
                q = float(qm.group(1))
            except ValueError:
                continue
        if q <= 0:
            continue
        if media in _BY_MEDIA_TYPE:
            ranked.append((-q, position, _BY_MEDIA_TYPE[media], media))
        elif media in _WILDCARDS:
            fmt = _WILDCARDS[media]
            ranked.append((-q, position, fmt, fmt.media_type))
    if not ranked:
        raise NotAcceptable(
            "no export format matches Accept; one of: " + ", ".join(sorted(_BY_MEDIA_TYPE))
        )
    _, _, fmt, media = min(ranked, key=lambda r: (r[0], r[1]))
    return fmt, media


# --------------------------------------------------------------------------- the request


class InvalidExport(Exception):
    """The request does not fit the mart (a filter it lacks, an unknown column): a 422."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class MartNotBuilt(Exception):
    """The mart is allowed but its table does not exist (yet) in the warehouse: a 404."""


@dataclass(frozen=True)
class ExportRequest:
    """A validated export: what to read and for whom."""

    mart: Mart
    format: ExportFormat
    tenants: tuple[uuid.UUID, ...] | None  # None: every tenant (super admin)
    filters: dict[str, tuple[Any, ...]]  # column -> accepted values
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # exclusive
    columns: tuple[str, ...] | None = None  # None: every exportable column
    limit: int | None = None
    ordered: bool = False

    @property
    def sorted(self) -> bool:
        """Rows in the mart's order: when asked, and always under a limit ("the first n")."""
        return self.ordered or self.limit is not None

    def audit_values(self) -> dict[str, Any]:
        """What the audit row says about the export (no row count: it is written first)."""
        return {
            "format": self.format.value,
            "columns": list(self.columns) if self.columns else "all",
            "filters": {k: list(v) for k, v in self.filters.items()},
            "from": self.date_from,
            "to": self.date_to,
            "limit": self.limit,
            "ordered": self.sorted,
            "tenants": list(self.tenants) if self.tenants is not None else "all",
        }


def check_request(
    mart: Mart,
    *,
    filters: dict[str, Sequence[Any]],
    date_from: date | None,
    date_to: date | None,
    columns: str | None,
) -> tuple[dict[str, tuple[Any, ...]], tuple[str, ...] | None]:
    """Filters and projection checked against the allowed list (the catalog check of the
    projected names comes when the export opens). Raises InvalidExport."""
    errors: list[dict[str, Any]] = []
    kept: dict[str, tuple[Any, ...]] = {}
    for column, values in filters.items():
        if not values:
            continue
        if column not in mart.filter_columns:
            errors.append(
                {
                    "location": ["query", column],
                    "message": f"{mart.name} cannot be filtered on {column}; it can on: "
                    + ", ".join(mart.filter_columns),
                    "type": "filter_not_applicable",
                }
            )
            continue
        kept[column] = tuple(dict.fromkeys(values))
    if (date_from or date_to) and mart.date_column is None:
        errors.append(
            {
                "location": ["query", "from" if date_from else "to"],
                "message": f"{mart.name} has no date column to bound",
                "type": "filter_not_applicable",
            }
        )
    if date_from and date_to and date_from > date_to:
        errors.append(
            {
                "location": ["query", "to"],
                "message": "`to` is before `from` (the range is from <= day < to)",
                "type": "date_range",
            }
        )
    projected: tuple[str, ...] | None = None
    if columns is not None:
        names = [c.strip() for c in columns.split(",")]
        if not all(names):
            errors.append(
                {
                    "location": ["query", "columns"],
                    "message": "columns is a comma-separated list of column names",
                    "type": "columns",
                }
            )
        else:
            projected = tuple(dict.fromkeys(names))
    if errors:
        raise InvalidExport("the export request does not fit the mart", errors)
    return kept, projected


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # pg_type.typname, e.g. int4, numeric, _text
    precision: int | None = None  # numeric(p, s) only
    scale: int | None = None
    element: str | None = None  # arrays: the element's typname

    def arrow_type(self) -> pa.DataType:
        """Its Parquet (Arrow) type; anything unlisted is written as its text."""
        if self.element is not None:
            inner = _ARROW_TYPES.get(self.element)
            return pa.list_(inner) if inner is not None else pa.string()
        if self.pg_type == "numeric":
            if self.precision is not None and self.precision <= 38:
                return pa.decimal128(self.precision, self.scale or 0)
            # No declared precision: no fixed decimal fits every value. CSV and JSON keep the
            # exact text; Parquet gets a double.
            return pa.float64()
        return _ARROW_TYPES.get(self.pg_type, pa.string())


_ARROW_TYPES: dict[str, pa.DataType] = {
    "uuid": pa.string(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
}

_CATALOG = """
SELECT a.attname, t.typname, e.typname AS element,
       CASE WHEN t.typname = 'numeric' AND a.atttypmod >= 4
            THEN ((a.atttypmod - 4) >> 16) & 65535 END AS precision,
       CASE WHEN t.typname = 'numeric' AND a.atttypmod >= 4
            THEN (a.atttypmod - 4) & 65535 END AS scale
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def read_catalog(conn: psycopg.Connection[Any], mart: Mart) -> list[Column]:
    """The mart's columns in table order; MartNotBuilt when the table does not exist."""
    qualified = sql.Identifier(SCHEMA, mart.name).as_string(conn)
    rows = conn.execute(_CATALOG, (qualified,)).fetchall()
    if not rows:
        raise MartNotBuilt(f"the mart {mart.name} is not built in the warehouse yet")
    return [
        Column(name, typname, precision=precision, scale=scale, element=element)
        for name, typname, element, precision, scale in rows
    ]


# --------------------------------------------------------------------------- the statement


def select_statement(
    request: ExportRequest, columns: Sequence[Column]
) -> tuple[sql.Composed, list[Any]]:
    """`SELECT <columns> FROM marts.<mart> WHERE <tenant> AND <filters> [ORDER BY] [LIMIT]`,
    shaped for the format: JSON formats select one `row_to_json` per row; Parquet casts the
    columns Arrow's CSV reader cannot parse as such (arrays to JSON text, other types to text).
    """
    mart = request.mart
    m = sql.Identifier("m")
    where: list[sql.Composable] = []
    params: list[Any] = []
    if request.tenants is not None:
        where.append(sql.SQL("{}.provider_id = ANY({})").format(m, sql.Placeholder()))
        params.append(list(request.tenants))
    for column, values in request.filters.items():
        filt = FILTERS[column]
        cast = {FilterType.UUID: "uuid[]", FilterType.TEXT: "text[]", FilterType.INTEGER: "int8[]"}
        where.append(
            sql.SQL("{}.{} = ANY({}::{})").format(
                m, sql.Identifier(column), sql.Placeholder(), sql.SQL(cast[filt.type])
            )
        )
        params.append(list(values))
    if mart.date_column is not None:
        if request.date_from is not None:
            where.append(
                sql.SQL("{}.{} >= {}").format(
                    m, sql.Identifier(mart.date_column), sql.Placeholder()
                )
            )
            params.append(request.date_from)
        if request.date_to is not None:
            where.append(
                sql.SQL("{}.{} < {}").format(m, sql.Identifier(mart.date_column), sql.Placeholder())
            )
            params.append(request.date_to)

    if request.format is ExportFormat.PARQUET:
        items = [_parquet_item(m, c) for c in columns]
    else:
        items = [sql.SQL("{}.{}").format(m, sql.Identifier(c.name)) for c in columns]
    statement = sql.SQL("SELECT {} FROM {} AS {}").format(sql.SQL(", ").join(items), mart.table, m)
    if where:
        statement += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    if request.sorted:
        order = [sql.SQL("{}.{}").format(m, sql.Identifier(c)) for c in mart.order_by]
        statement += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order)
    if request.limit is not None:
        statement += sql.SQL(" LIMIT {}").format(sql.Placeholder())
        params.append(request.limit)
    if request.format in (ExportFormat.JSON, ExportFormat.NDJSON):
        # The JSON is made after the sort, which then moves the narrow rows, not their JSON
        # (measured 2.5x faster); a subquery with ORDER BY is never flattened, so its order is
        # what the outer scan returns.
        statement = sql.SQL("SELECT row_to_json(r) FROM ({}) AS r").format(statement)
    return statement, params


def _parquet_item(m: sql.Identifier, column: Column) -> sql.Composable:
    ref = sql.SQL("{}.{}").format(m, sql.Identifier(column.name))
    if column.element is not None:
        return sql.SQL("array_to_json({})::text AS {}").format(ref, sql.Identifier(column.name))
    if column.pg_type not in _ARROW_TYPES and column.pg_type != "numeric":
        return sql.SQL("{}::text AS {}").format(ref, sql.Identifier(column.name))
    return ref


def copy_statement(request: ExportRequest, select: sql.Composed) -> sql.Composed:
    """The COPY that streams `select`: CSV with a header, headerless CSV for Parquet, and raw
    lines for the JSON formats (a CSV COPY quoting with \\x01 and separating with \\x02, which
    `row_to_json` always escapes, so each JSON text comes out byte for byte)."""
    if request.format is ExportFormat.CSV:
        options = sql.SQL("FORMAT csv, HEADER true")
    elif request.format is ExportFormat.PARQUET:
        options = sql.SQL("FORMAT csv, HEADER false")
    else:
        options = sql.SQL("FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'")
    return sql.SQL("COPY ({}) TO STDOUT WITH ({})").format(select, options)


# --------------------------------------------------------------------------- the stream

# One statement sets the session up for exact, stable text: UTC times, ISO dates, the shortest
# exact float text, a read-only transaction, no JIT (see dbt_project.yml), and a time limit.
_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),"
    " set_config('IntervalStyle', 'iso_8601', true), set_config('extra_float_digits', '1', true),"
    " set_config('bytea_output', 'hex', true), set_config('jit', 'off', true),"
    " set_config('statement_timeout', %s, true),"
    " set_config('transaction_read_only', 'on', true)"
)


@dataclass
class ExportStats:
    rows: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.perf_counter)
    completed: bool = False


class ExportStream:
    """The bytes of one export, produced on demand by a worker thread.

    `open()` connects (a connection of its own: an export may last minutes and must not hold a
    slot of the pool that answers the insights), reads the catalog, checks the projection and
    starts the COPY, so a mart that does not exist or a bad column name is an error *before*
    any byte is sent. Iterating yields chunks; `close()` ends the COPY (psycopg cancels it when
    the stream is abandoned) and the connection, whatever state the stream is in.
    """

    def __init__(self, warehouse_url: str, request: ExportRequest) -> None:
        self.url = urls.libpq_url(warehouse_url)
        self.request = request
        self.stats = ExportStats()
        self.columns: list[Column] = []
        self._chunks: Iterator[bytes] | None = None

    def open(self) -> None:
        gen = self._produce()
        first = next(gen)  # runs up to the started COPY, or raises
        assert first == b""
        self._chunks = gen

    def next_chunk(self) -> bytes | None:
        """The next chunk, None at the end (for a caller pulling from another thread)."""
        assert self._chunks is not None, "open() first"
        return next(self._chunks, None)

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()  # type: ignore[attr-defined]
            self._chunks = None

    # -- the producer

    def _produce(self) -> Iterator[bytes]:
        request = self.request
        with psycopg.connect(
            self.url, connect_timeout=5, application_name="agent_mitra_export"
        ) as conn:
            conn.execute(_SESSION, (str(STATEMENT_TIMEOUT_MS),))
            catalog = read_catalog(conn, request.mart)
            self.columns = _project(request, catalog)
            select, params = select_statement(request, self.columns)
            statement = copy_statement(request, select)
            with conn.cursor() as cur, cur.copy(statement, params) as copy:
                yield b""  # started: the route may now answer 200
                if request.format is ExportFormat.PARQUET:
                    chunks = _parquet_chunks(copy, self.columns, self.stats)
                elif request.format is ExportFormat.JSON:
                    chunks = _json_array_chunks(copy, self.stats)
                else:
                    chunks = _line_chunks(
                        copy, self.stats, header=request.format is ExportFormat.CSV
                    )
                for chunk in chunks:
                    self.stats.bytes += len(chunk)
                    yield chunk
            self.stats.completed = True
        elapsed = time.perf_counter() - self.stats.started
        log.info(
            "export of %s as %s: %d rows, %d bytes in %.2f s",
            request.mart.name,
            request.format.value,
            self.stats.rows,
            self.stats.bytes,
            elapsed,
        )


def _project(request: ExportRequest, catalog: list[Column]) -> list[Column]:
    exportable = [c for c in catalog if c.name not in request.mart.hidden]
    if request.columns is None:
        return exportable
    by_name = {c.name: c for c in exportable}
    unknown = [name for name in request.columns if name not in by_name]
    if unknown:
        raise InvalidExport(
            f"{request.mart.name} has no column {', '.join(unknown)}",
            [
                {
                    "location": ["query", "columns"],
                    "message": f"unknown column {name!r}; {request.mart.name} has: "
                    + ", ".join(by_name),
                    "type": "unknown_column",
                }
                for name in unknown
            ],
        )
    return [by_name[name] for name in request.columns]


def _line_chunks(copy: psycopg.Copy, stats: ExportStats, *, header: bool) -> Iterator[bytes]:
    """COPY output as it comes (one row per read), in chunks of about CHUNK_BYTES."""
    buffer = bytearray()
    rows = -1 if header else 0
    for data in copy:
        buffer += data
        rows += 1
        if len(buffer) >= CHUNK_BYTES:
            stats.rows = rows
            yield bytes(buffer)
            buffer.clear()
    stats.rows = max(rows, 0)
    if buffer:
        yield bytes(buffer)


def _json_array_chunks(copy: psycopg.Copy, stats: ExportStats) -> Iterator[bytes]:
    """One JSON array, an object a line: `[`, the objects separated by `,`, `]`."""
    buffer = bytearray(b"[\n")
    rows = 0
    for data in copy:
        if rows:
            buffer += b",\n"
        buffer += memoryview(data)[:-1]  # the object, without its newline
        rows += 1
        if len(buffer) >= CHUNK_BYTES:
            stats.rows = rows
            yield bytes(buffer)
            buffer.clear()
    stats.rows = rows
    buffer += b"\n]\n" if rows else b"]\n"
    yield bytes(buffer)


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: kept until taken, so each row group goes out whole."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def parquet_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type()) for c in columns])


def _parquet_chunks(
    copy: psycopg.Copy, columns: Sequence[Column], stats: ExportStats
) -> Iterator[bytes]:
    """Row groups of up to PARQUET_ROWS_PER_GROUP rows (or PARQUET_GROUP_BYTES of CSV), each
    sent as soon as it is written; the footer last."""
    schema = parquet_schema(columns)
    names = [c.name for c in columns]
    # Arrow parses the CSV straight into the final types, except lists: they come as JSON text.
    csv_types = {
        c.name: (pa.string() if pa.types.is_list(t) else t)
        for c, t in zip(columns, schema.types, strict=True)
    }
    read_options = pa_csv.ReadOptions(column_names=names, use_threads=False)
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=csv_types,
        null_values=[""],
        true_values=["t"],
        false_values=["f"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,  # "" is an empty string, an empty field NULL
    )
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="snappy")
    try:
        batch = bytearray()  # one buffer, parsed in place: no list of rows, no join
        rows = 0
        for data in copy:
            batch += data
            rows += 1
            if rows == PARQUET_ROWS_PER_GROUP or len(batch) >= PARQUET_GROUP_BYTES:
                writer.write_table(
                    _parse(batch, schema, read_options, parse_options, convert_options)
                )
                stats.rows += rows
                rows = 0
                batch = bytearray()
                yield sink.take()
        if rows:
            writer.write_table(_parse(batch, schema, read_options, parse_options, convert_options))
            stats.rows += rows
    finally:
        writer.close()
    yield sink.take()


def _parse(
    csv_rows: bytearray,
    schema: pa.Schema,
    read_options: pa_csv.ReadOptions,
    parse_options: pa_csv.ParseOptions,
    convert_options: pa_csv.ConvertOptions,
) -> pa.Table:
    table = pa_csv.read_csv(
        pa.py_buffer(csv_rows),
        read_options=read_options,
        parse_options=parse_options,
        convert_options=convert_options,
    )
    for i, target in enumerate(schema.types):
        if pa.types.is_list(target):
            values = [None if v is None else orjson.loads(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, schema.field(i), pa.array(values, type=target))
    return table
