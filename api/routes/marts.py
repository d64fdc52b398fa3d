"""`GET /v1/marts/{model}`: an analyst's export of one mart, streamed (CSV, NDJSON, JSON, Parquet).

Who: provider admins and callers granted the `analyst` permission get the rows of their tenants
(`api.marts_export` says how), super admins every row. What: only the marts of the allowed list
(`api.marts_export.MARTS`), with equality filters, a half-open date range, a projection and a
limit; anything else is a 404 (unknown mart) or a 422 (a filter the mart lacks, an unknown
column, a malformed value, an unknown query parameter), never a 5xx (503 only when the
warehouse does not answer).

Order of work, and why:
1. check the request against the allowed list (no database);
2. open the export: connect to the warehouse, read the mart's catalog, start the COPY: a mart
   not built yet or an unknown column is still a clean 404 / 422, as nothing has been sent;
3. write the audit row (action `export`) and commit it *before the first byte*: an export is a
   data access event, and a row written only at the end would be lost exactly when the client
   cuts the stream halfway or the process dies, i.e. when the rows have partly left. The row
   count is therefore not known to the audit row; the end of every export is logged with its
   row and byte counts instead. No audit, no export: if the row cannot be written the export
   is closed and the request fails;
4. stream: each chunk is pulled from a worker thread (the COPY and the Parquet encoding block),
   so memory stays at about one chunk (one row group for Parquet) whatever the mart's size.
   An error after the first byte cannot change the status any more: the connection is then
   closed without the final chunk, so the client sees a truncated transfer, never a short file
   that looks whole.

An export holds a warehouse connection and a read lock on its mart while it streams, which a
client can stretch by reading slowly. So each send of a chunk must finish within
`MITRA_EXPORT_SEND_TIMEOUT_SECONDS` (a client that stops reading is cut off, the COPY ended and
the connection closed), and one caller runs at most `MITRA_EXPORTS_PER_CALLER` exports at once
in a process (429 beyond; counted in the process, since a slot is held by a live connection
there: a dead process frees its own).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import anyio
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Message, Receive, Scope, Send

from api.audit import record
from api.context import RequestContext, RequestContextDep
from api.db import scoped_session
from api.deps import Engines, EnginesDep
from api.landing import IST
from api.marts_export import (
    CONTENT_TYPES,
    FILTERS,
    MARTS,
    MAX_FILTER_VALUES,
    MAX_LIMIT,
    ExportFormat,
    ExportRequest,
    ExportStream,
    InvalidExport,
    MartNotBuilt,
    NotAcceptable,
    check_request,
    negotiate,
)
from api.problems import problem, problem_responses
from api.ratelimit import RateLimit
from api.security.deps import role_or_permission
from api.security.tokens import Principal
from warehouse import urls
from warehouse.operational.enums import UserRole

log = logging.getLogger(__name__)
EXPORT_RETRY_AFTER = 10  # seconds: an export of a mart takes about that long

ANALYST_PERMISSION = "analyst"

router = APIRouter(prefix="/v1", tags=["marts"])

Exporter = Annotated[
    Principal, Depends(role_or_permission(ANALYST_PERMISSION, UserRole.PROVIDER_ADMIN))
]


def export_tenants(principal: Principal) -> tuple[uuid.UUID, ...] | None:
    """The tenants whose rows the caller may export; None for every tenant (super admin).

    A provider admin's tenants are those of its `tenant:admin` grants. An `analyst` grant is
    tenant-wide: it opens the tenants the caller already belongs to as staff, i.e. an agent's
    insurer (or a provider admin's). A policyholder's tenants are the insurers it buys from,
    which says nothing about working for them, so a policyholder account is refused even with
    the grant. A caller left with no tenant is refused (403), never sent an empty file.
    """
    if principal.all_tenants:
        return None
    if principal.role not in (UserRole.PROVIDER_ADMIN, UserRole.AGENT):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"exports are for insurer staff; a {principal.role.value} account may not export",
        )
    if not principal.tenant_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the caller belongs to no insurer")
    return tuple(principal.tenant_ids)


# --------------------------------------------------------------------------- parameters

FilterText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


_Uuids = list[uuid.UUID] | None
_Texts = list[FilterText] | None
_Integers = list[Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]] | None


def _filter_field(column: str) -> Any:
    """The query parameter of a filter, described from its one definition in FILTERS."""
    marts = [m.name for m in MARTS.values() if column in m.filter_columns]
    where = "every mart" if len(marts) == len(MARTS) else ", ".join(marts)
    return Field(
        None,
        max_length=MAX_FILTER_VALUES,
        description=f"{FILTERS[column].description} Repeat for several values (any of them)."
        f" Marts: {where}.",
    )


class ExportQuery(BaseModel):
    """The query string of an export. Unknown parameters are refused (422): a mistyped filter
    must not silently export everything."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    format: ExportFormat | None = Field(
        None,
        description="csv, ndjson, json (an array) or parquet; overrides `Accept`."
        " Without either: csv.",
    )
    columns: str | None = Field(
        None,
        max_length=4000,
        pattern=r"^\s*[A-Za-z0-9_]+\s*(,\s*[A-Za-z0-9_]+\s*)*$",
        description="Comma-separated columns to export, in this order; default: all.",
        examples=["agent_id,activity_date,new_business_ape"],
    )
    date_from: date | None = Field(
        None,
        alias="from",
        description="First day (inclusive) of the mart's date column; see the table above.",
    )
    date_to: date | None = Field(
        None,
        alias="to",
        description="Day after the last one (exclusive): `from=2026-09-01&to=2026-10-01` is"
        " September.",
    )
    limit: int | None = Field(
        None, ge=1, le=MAX_LIMIT, description="The first rows only, in the mart's order."
    )
    ordered: bool = Field(
        False,
        description="Rows in the mart's order (see the table above); default: as stored, which"
        " is about twice as fast on a large mart. Always on with `limit`.",
    )
    provider_id: _Uuids = _filter_field("provider_id")
    agent_id: _Uuids = _filter_field("agent_id")
    policyholder_id: _Uuids = _filter_field("policyholder_id")
    policy_id: _Uuids = _filter_field("policy_id")
    video_id: _Uuids = _filter_field("video_id")
    territory: _Texts = _filter_field("territory")
    agent_status: _Texts = _filter_field("agent_status")
    policy_type: _Texts = _filter_field("policy_type")
    premium_mode: _Texts = _filter_field("premium_mode")
    policy_status: _Texts = _filter_field("policy_status")
    outcome: _Texts = _filter_field("outcome")
    category: _Texts = _filter_field("category")
    language: _Texts = _filter_field("language")
    user_role: _Texts = _filter_field("user_role")
    direction: _Texts = _filter_field("direction")
    persistency_month: _Integers = _filter_field("persistency_month")
    financial_year: _Integers = _filter_field("financial_year")

    def filter_values(self) -> dict[str, list[Any]]:
        return {column: getattr(self, column) or [] for column in FILTERS}


# Every filter of FILTERS is a query parameter, and nothing else is.
_OTHER_PARAMETERS = {"format", "columns", "date_from", "date_to", "limit", "ordered"}
if set(FILTERS) != set(ExportQuery.model_fields) - _OTHER_PARAMETERS:
    raise RuntimeError("api.marts_export.FILTERS and ExportQuery disagree")


# --------------------------------------------------------------------------- documentation


def _catalogue_table() -> str:
    lines = ["| mart | date column (`from`/`to`) | filters | order |", "|---|---|---|---|"]
    for mart in MARTS.values():
        lines.append(
            f"| `{mart.name}` | {f'`{mart.date_column}`' if mart.date_column else '—'} | "
            + ", ".join(f"`{c}`" for c in mart.filter_columns)
            + " | "
            + ", ".join(mart.order_by)
            + " |"
        )
    return "\n".join(lines)


DESCRIPTION = f"""Streams one mart of the warehouse's `marts` schema, scoped to the caller's
tenants: provider admins and holders of the `analyst` permission (insurer staff) get their
insurers' rows, super admins every row. Rows without a tenant are for super admins only.

**Format**: `format=` or else `Accept` (`text/csv`, `application/x-ndjson`, `application/json`,
`application/vnd.apache.parquet` or `application/octet-stream`); default CSV.
CSV is PostgreSQL's own (header row; UTC times as `2026-09-01 04:30:00+00`; booleans `t`/`f`;
NULL an empty field, an empty text `""`). NDJSON is one JSON object a line, JSON one array of
them (numbers exact, times ISO 8601 in UTC). Parquet is written in row groups of up to 65,536
rows (uuid as string, numeric(p,s) as decimal, numeric without a scale as double, timestamps in
UTC, text arrays as lists).
The body is streamed: a transfer that ends without its last chunk is incomplete.

**Filters**: repeat a filter for several values; `from` is inclusive and `to` exclusive on the
mart's date column; filters, `from`/`to` on a mart that lacks the column, unknown `columns`
or unknown parameters are refused with 422. Rows come as stored, or in the mart's order (below)
with `ordered=true`, and always with `limit`, which takes the first ones.

Every export is audited (action `export`, entity `mart`) before the first byte is sent.

{_catalogue_table()}
"""

_SUCCESS = {
    "description": "The mart's rows, streamed, as an attachment.",
    "headers": {
        "Content-Disposition": {
            "description": '`attachment; filename="<mart>-<IST date>.<csv|ndjson|json|parquet>"`',
            "schema": {"type": "string"},
        },
    },
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "agent_id,activity_date,new_business_ape\n6f1c...,2026-09-01,12000.00\n",
        },
        "application/x-ndjson": {
            "schema": {"type": "string"},
            "example": '{"agent_id":"6f1c...","activity_date":"2026-09-01"}\n',
        },
        "application/json": {
            "schema": {"type": "array", "items": {"type": "object"}},
            "example": [{"agent_id": "6f1c...", "activity_date": "2026-09-01"}],
        },
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


# --------------------------------------------------------------------------- the response


class _Stalled(Exception):
    """The client took no part of the answer within the send timeout."""


class ExportSlots:
    """The exports each caller is running in this process, so one caller cannot hold many
    warehouse connections and mart locks at once."""

    def __init__(self) -> None:
        self._running: dict[str, int] = {}

    def take(self, caller: str, limit: int) -> bool:
        if self._running.get(caller, 0) >= limit:
            return False
        self._running[caller] = self._running.get(caller, 0) + 1
        return True

    def give_back(self, caller: str) -> None:
        left = self._running.pop(caller, 1) - 1
        if left > 0:
            self._running[caller] = left


def _slots(request: Request) -> ExportSlots:
    state = request.app.state
    if not hasattr(state, "export_slots"):
        state.export_slots = ExportSlots()
    return state.export_slots


class ExportResponse(StreamingResponse):
    """A streaming answer whose chunks come from `stream` in a worker thread, and which always
    closes the stream (ending the COPY and the connection) and gives back the caller's export
    slot however the answer ends: completed, failed, abandoned or stalled by the client."""

    def __init__(
        self,
        stream: ExportStream,
        *,
        media_type: str,
        headers: dict[str, str],
        send_timeout: float,
        release: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.send_timeout = send_timeout
        self.release = release
        super().__init__(self._chunks(), media_type=media_type, headers=headers)

    async def _chunks(self):  # type: ignore[no-untyped-def]
        while (chunk := await anyio.to_thread.run_sync(self.stream.next_chunk)) is not None:
            if chunk:
                yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_in_time(message: Message) -> None:
            with anyio.move_on_after(self.send_timeout) as waited:
                await send(message)
            if waited.cancelled_caught:
                raise _Stalled

        try:
            await super().__call__(scope, receive, send_in_time)
        except _Stalled:  # returning without the last chunk makes the server drop the connection
            log.warning(
                "export of %s cut off: the client took nothing for %s s",
                self.stream.request.mart.name,
                self.send_timeout,
            )
        finally:
            self.release()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.stream.close)
            if not self.stream.stats.completed:
                log.warning(
                    "export of %s ended early after %d bytes",
                    self.stream.request.mart.name,
                    self.stream.stats.bytes,
                )


def _audit(
    engines: Engines, principal: Principal, context: RequestContext, request: ExportRequest
) -> None:
    """One audit row per tenant exported (so each insurer's trail shows it), committed now;
    for an export across every tenant one row without a tenant."""
    tenants: tuple[uuid.UUID | None, ...] = request.tenants if request.tenants else (None,)
    if request.tenants is None and len(request.filters.get("provider_id", ())) == 1:
        tenants = request.filters["provider_id"]
    with scoped_session(engines.operational, principal) as session:
        for tenant in tenants:
            record(
                session,
                context,
                principal=principal,
                action="export",
                entity_type="mart",
                entity_id=request.mart.name,
                provider_id=tenant,
                new=request.audit_values(),
            )


async def _open(
    request: Request,
    engines: Engines,
    principal: Principal,
    context: RequestContext,
    export: ExportRequest,
) -> ExportStream | JSONResponse:
    """The started export, audited, or the problem that stopped it before any byte."""
    stream = ExportStream(urls.libpq_url(engines.warehouse.url), export)
    try:
        await run_in_threadpool(stream.open)
    except MartNotBuilt as exc:
        return problem(404, str(exc), instance=request.url.path)
    except InvalidExport as exc:
        return problem(422, exc.detail, instance=request.url.path, errors=exc.errors)
    except psycopg.OperationalError as exc:
        log.warning("warehouse unavailable for an export of %s: %s", export.mart.name, exc)
        response = problem(
            503, "the warehouse is unavailable; retry later", instance=request.url.path
        )
        response.headers["Retry-After"] = "30"
        return response
    try:
        await run_in_threadpool(_audit, engines, principal, context, export)
    except BaseException:
        await run_in_threadpool(stream.close)
        raise
    return stream


@router.get(
    "/marts/{model}",
    summary="Export a mart (CSV, NDJSON, JSON or Parquet), streamed",
    description=DESCRIPTION,
    # After authentication, before the warehouse is touched. A request rate does not bound
    # exports running at once (each holds a warehouse connection and a read lock on its mart
    # while it streams): the per-caller cap and the send timeout do (module docstring).
    dependencies=[Depends(RateLimit("marts_export", lambda s: s.export_rate_limit_per_minute))],
    response_class=StreamingResponse,
    responses={
        200: _SUCCESS,
        **problem_responses(
            401,
            429,
            explained={
                403: (
                    "The caller is neither a provider admin nor an analyst of an insurer.",
                    "this needs role provider_admin or permission analyst",
                ),
                404: (
                    "No such mart in the allowed list (`allowed` lists them), or it is not built"
                    " in the warehouse yet.",
                    "no mart named dim_users",
                ),
                406: (
                    "`Accept` names no export format (and no `format=` was given).",
                    "no export format matches Accept",
                ),
                503: (
                    "The warehouse does not answer (`Retry-After` says when to retry).",
                    "the warehouse is unavailable; retry later",
                ),
                422: (
                    "A malformed or unknown parameter, a filter the mart lacks, an unknown"
                    " column, or `to` before `from` (`errors` says which).",
                    "the export request does not fit the mart",
                ),
            },
        ),
    },
)
async def export_mart(
    request: Request,
    model: Annotated[
        str,
        Path(
            description="The mart, one of the allowed list.",
            json_schema_extra={"enum": sorted(MARTS)},
            max_length=100,
        ),
    ],
    query: Annotated[ExportQuery, Query()],
    principal: Exporter,
    engines: EnginesDep,
    context: RequestContextDep,
) -> Any:
    mart = MARTS.get(model)
    if mart is None:
        return problem(
            404,
            f"no mart named {model}; the allowed marts are: {', '.join(sorted(MARTS))}",
            instance=request.url.path,
            allowed=sorted(MARTS),
        )
    tenants = export_tenants(principal)
    try:
        fmt, media_type = negotiate(query.format, request.headers.get("accept"))
    except NotAcceptable as exc:
        return problem(406, str(exc), instance=request.url.path)
    try:
        filters, columns = check_request(
            mart,
            filters=query.filter_values(),
            date_from=query.date_from,
            date_to=query.date_to,
            columns=query.columns,
        )
    except InvalidExport as exc:
        return problem(422, exc.detail, instance=request.url.path, errors=exc.errors)
    export = ExportRequest(
        mart=mart,
        format=fmt,
        tenants=tenants,
        filters=filters,
        date_from=query.date_from,
        date_to=query.date_to,
        columns=columns,
        limit=query.limit,
        ordered=query.ordered,
    )

    settings = request.app.state.settings
    slots, caller = _slots(request), principal.rate_key
    if not slots.take(caller, settings.exports_per_caller):
        response = problem(
            429,
            f"at most {settings.exports_per_caller} exports at once per caller;"
            " retry when one has finished",
            instance=request.url.path,
        )
        response.headers["Retry-After"] = str(EXPORT_RETRY_AFTER)
        return response
    try:
        opened = await _open(request, engines, principal, context, export)
    except BaseException:
        slots.give_back(caller)
        raise
    if isinstance(opened, JSONResponse):
        slots.give_back(caller)
        return opened
    day = datetime.now(IST).date().isoformat()
    return ExportResponse(
        opened,
        media_type=CONTENT_TYPES[media_type],
        headers={
            "Content-Disposition": f'attachment; filename="{mart.name}-{day}.{fmt.extension}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
        send_timeout=settings.export_send_timeout_seconds,
        release=lambda: slots.give_back(caller),
    )
