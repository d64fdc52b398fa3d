"""List, read, create, update and soft-delete for one resource, built from its `Resource` spec.

Every operation runs in one transaction as the API's database role with the caller's tenants set
(`api.db.scoped_session`), so row-level security applies beneath the explicit filters here; a row
outside the caller's reach is a 404, never a 403, so ids of other tenants reveal nothing.
Every write adds its audit row in the same transaction.

(No `from __future__ import annotations` here: the endpoints are built in a closure and FastAPI
reads their annotations as objects.)
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, create_model
from sqlalchemy import ColumnElement, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from api import audit
from api.context import RequestContext, RequestContextDep
from api.db import CompiledQuery, compile_query, scoped_connection, scoped_rows, scoped_session
from api.deps import EnginesDep
from api.json_limits import NO_NUL
from api.problems import problem_responses
from api.resources import scoping
from api.resources.paging import DEFAULT_LIMIT, MAX_LIMIT, after_cursor, encode_cursor
from api.resources.versions import check_if_match, etag_of, request_hash
from api.security.deps import roles
from api.security.tokens import Principal
from warehouse.operational.enums import UserRole
from warehouse.operational.models import IdempotencyKey

_log = logging.getLogger(__name__)
IDEMPOTENCY_TTL = timedelta(hours=24)
PURGE_LIMIT = 100  # expired keys deleted by one keyed create, beside the caller's own
# The caller's key if it has expired (so it can be used afresh), and a few more expired ones, so
# the table stays about one TTL of keys. Run on the engine's own login (the tables' owner), not
# as the API role, which holds no DELETE here: no request can remove another's live keys. A
# login without DELETE on the table (a production login that is only a member of the API role)
# skips it: then an owner's job must purge (`DELETE ... WHERE expires_at <= now()`).
_PURGE_EXPIRED = text(
    "DELETE FROM idempotency_keys WHERE expires_at <= now() AND ((user_id = :user AND key = :key)"
    " OR (user_id, key) IN (SELECT user_id, key FROM idempotency_keys WHERE expires_at <= now()"
    " ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED))"
)
# PostgreSQL text cannot hold NUL: such a filter is the client's error, not a 500.
_FilterText = Annotated[str, Field(pattern=NO_NUL)]

# A scope sees only the caller's role; the caller's ids are parameters (api.resources.scoping).
Scope = Callable[[Any, UserRole, bool], list[ColumnElement[bool]]]
Prepare = Callable[[Session, Principal, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Resource:
    """What differs between resources; everything else is shared."""

    path: str  # URL segment, e.g. "policies"
    entity: str  # audit entity_type, e.g. "insurance_policy"
    model: Any
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    readers: tuple[UserRole, ...]
    writers: tuple[UserRole, ...]
    filters: dict[str, Any]  # query parameter -> its type (equality on the column of that name)
    live: Callable[[Any], ColumnElement[bool]]  # rows not soft-deleted
    deleted: Callable[[], dict[str, Any]]  # the values a soft delete sets
    scope: Scope  # ownership filters beyond the tenant (e.g. an agent's own customers)
    prepare: Prepare  # fill tenant and owner on create, check referenced rows; may raise
    tag: str = ""
    examples: dict[str, Any] = field(default_factory=dict)
    # One detail for every 409 of the resource, when which constraint clashed would tell a
    # tenant about another's rows (a phone registered elsewhere): None names the constraint.
    conflict: str | None = None


def _page_model(resource: Resource) -> type[BaseModel]:
    return create_model(
        f"{resource.read.__name__}Page",
        items=(list[resource.read], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, None),
    )


def _filter_model(resource: Resource) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: ((_FilterText if kind is str else kind) | None, None)
        for name, kind in resource.filters.items()
    }
    fields["limit"] = (Annotated[int, Query(ge=1, le=MAX_LIMIT)], DEFAULT_LIMIT)
    fields["cursor"] = (Annotated[str | None, Query(max_length=200)], None)
    model = create_model(
        f"{resource.read.__name__}Filters", __config__={"extra": "forbid"}, **fields
    )
    return model


def _dump(resource: Resource, row: Any) -> dict[str, Any]:
    return resource.read.model_validate(row).model_dump(mode="json")


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def _not_found(resource: Resource) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no such {resource.entity.replace('_', ' ')}")


def _visible_clauses(resource: Resource, role: UserRole, for_write: bool) -> Any:
    """Live, within the caller's scope, and the id in the URL (`scoping.row_id()`)."""
    return (
        resource.live(resource.model),
        *resource.scope(resource.model, role, for_write),
        resource.model.id == scoping.row_id(),
    )


_compiled_reads: dict[tuple[str, UserRole], CompiledQuery] = {}


def compiled_read(resource: Resource, role: UserRole) -> CompiledQuery:
    """The read of one row by a caller of `role`, compiled once per resource and role."""
    key = (resource.path, role)
    if key not in _compiled_reads:
        query = select(resource.model.__table__).where(*_visible_clauses(resource, role, False))
        _compiled_reads[key] = compile_query(query)
    return _compiled_reads[key]


async def read_visible(
    pool: AsyncConnectionPool, resource: Resource, principal: Principal, row_id: uuid.UUID
) -> dict[str, Any]:
    """The row as a mapping, or 404: one round trip on the event loop (the hot path)."""
    sql, params = compiled_read(resource, principal.role).statement(
        **scoping.scope_params(principal, **{scoping.ROW_ID: row_id})
    )
    rows = await scoped_rows(pool, principal, sql, params)
    if not rows:
        raise _not_found(resource)
    return rows[0]


def visible(
    session: Session,
    resource: Resource,
    principal: Principal,
    row_id: uuid.UUID,
    *,
    for_write: bool,
    lock: bool = False,
) -> Any:
    query = select(resource.model).where(*_visible_clauses(resource, principal.role, for_write))
    if lock:
        query = query.with_for_update()
    row = session.scalars(query, scoping.scope_params(principal, row_id=row_id)).first()
    if row is None:
        raise _not_found(resource)
    return row


def database_error(exc: DBAPIError, conflict: str | None = None) -> HTTPException:
    """A constraint the database enforced, as the client's error (never a 5xx); a unique
    violation is a 409 saying `conflict` when given."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or "a constraint"
    if sqlstate == "23505":
        return HTTPException(status.HTTP_409_CONFLICT, conflict or f"already exists ({constraint})")
    if sqlstate in ("23503", "23514", "23502", "22001", "22003", "22007", "22008", "22P02"):
        return HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"the values break {constraint}"
        )
    if sqlstate == "42501":  # a row-level security WITH CHECK: another tenant's row
        return HTTPException(status.HTTP_403_FORBIDDEN, "outside your tenant")
    raise exc


def _audit(
    session: Session,
    context: RequestContext,
    principal: Principal,
    resource: Resource,
    action: str,
    row: Any,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    audit.record(
        session,
        context,
        principal=principal,
        action=action,
        entity_type=resource.entity,
        entity_id=str(row.id),
        provider_id=row.provider_id,
        old=old,
        new=new,
    )


def _replay(stored: IdempotencyKey) -> Response:
    return json_response(
        stored.response_body,
        stored.status_code,
        {**stored.response_headers, "Idempotency-Replayed": "true"},
    )


def _purge_expired_keys(engines: Any, principal: Principal, key: str) -> None:
    params = {"user": principal.user_id, "key": key, "limit": PURGE_LIMIT}
    try:
        with engines.operational.begin() as conn:
            conn.execute(_PURGE_EXPIRED, params)
    except ProgrammingError as exc:  # no DELETE for this login: housekeeping, never an error
        _log.warning("expired idempotency keys not purged: %s", exc.orig)


def _stored_answer(
    engines: Any, principal: Principal, key: str, digest: str, path: str
) -> Response | None:
    """The answer stored for the caller's `key`, replayed; None when there is none or it has
    expired (then the request runs as new)."""
    with scoped_session(engines.operational, principal) as session:
        stored = session.get(IdempotencyKey, (principal.user_id, key))
        if stored is None or stored.expires_at <= datetime.now(UTC):
            return None
        if stored.request_hash != digest or stored.path != path:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "this Idempotency-Key was used with a different request",
            )
        return _replay(stored)


def crud_router(resource: Resource) -> APIRouter:
    """The five operations of `resource` under `/v1/<path>`."""
    router = APIRouter(prefix=f"/v1/{resource.path}", tags=[resource.tag or resource.path])
    Read, Create, Update = resource.read, resource.create, resource.update
    Page, Filters = _page_model(resource), _filter_model(resource)
    Reader = Annotated[Principal, Depends(roles(*resource.readers))]
    Writer = Annotated[Principal, Depends(roles(*resource.writers))]
    noun = resource.entity.replace("_", " ")
    etag_header = {
        "ETag": {"description": "version of the row, for If-Match", "schema": {"type": "string"}}
    }

    @router.get(
        "",
        summary=f"List {resource.path}",
        response_model=Page,
        responses=problem_responses(400, 401, 403, 422),
    )
    def list_rows(
        principal: Reader, engines: EnginesDep, filters: Annotated[Filters, Query()]
    ) -> Response:
        """Rows visible to the caller, oldest first; `next_cursor` fetches the next page."""
        values = filters.model_dump()
        limit, cursor = values.pop("limit"), values.pop("cursor")
        query = select(resource.model.__table__).where(
            resource.live(resource.model), *resource.scope(resource.model, principal.role, False)
        )
        for name, value in values.items():
            if value is not None:
                query = query.where(getattr(resource.model, name) == value)
        with scoped_connection(engines.operational, principal) as conn:
            page = after_cursor(query, resource.model, cursor, limit)
            rows = [
                dict(row) for row in conn.execute(page, scoping.scope_params(principal)).mappings()
            ]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
        return json_response(
            {"items": [_dump(resource, r) for r in rows], "next_cursor": next_cursor}
        )

    @router.get(
        "/{row_id}",
        summary=f"Read one {noun}",
        response_model=Read,
        responses={200: {"headers": etag_header}, **problem_responses(401, 403, 404, 422)},
    )
    async def read_row(row_id: uuid.UUID, principal: Reader, engines: EnginesDep) -> Response:
        """The row, with its `ETag` for a later `If-Match`."""
        row = await read_visible(engines.operational_reads, resource, principal, row_id)
        body = _dump(resource, row)
        return json_response(body, headers={"ETag": etag_of(row["id"], row["updated_at"])})

    @router.post(
        "",
        status_code=201,
        summary=f"Create a {noun}",
        response_model=Read,
        responses={201: {"headers": etag_header}, **problem_responses(401, 403, 409, 422)},
    )
    async def create_row(
        request: Request,
        payload: Create,  # type: ignore[valid-type]
        principal: Writer,
        engines: EnginesDep,
        context: RequestContextDep,
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=255,
                pattern=r"^[\x21-\x7e]+$",
                description="retrying with the same key and body returns the first answer",
            ),
        ] = None,
    ) -> Response:
        """Creates the row and its audit entry. With `Idempotency-Key`, a retry of the same
        request within 24 hours returns the stored answer (`Idempotency-Replayed: true`)
        instead of a copy; the same key with another body is a 422. After 24 hours the key is
        forgotten and may be used afresh."""
        digest = request_hash(await request.body())
        return await run_in_threadpool(
            _create,
            resource,
            payload,
            principal,
            engines,
            context,
            idempotency_key,
            digest,
            request.url.path,
        )

    @router.patch(
        "/{row_id}",
        summary=f"Change a {noun}",
        response_model=Read,
        responses={
            200: {"headers": etag_header},
            **problem_responses(401, 403, 404, 409, 412, 422, 428),
        },
    )
    def update_row(
        row_id: uuid.UUID,
        payload: Update,  # type: ignore[valid-type]
        principal: Writer,
        engines: EnginesDep,
        context: RequestContextDep,
        if_match: Annotated[
            str | None, Header(description="the ETag of your last read; required")
        ] = None,
    ) -> Response:
        """Changes the fields sent. `If-Match` is required: 412 when the row changed since
        that read, 428 without it."""
        changes = payload.model_dump(exclude_unset=True)
        try:
            with scoped_session(engines.operational, principal) as session:
                row = visible(session, resource, principal, row_id, for_write=True, lock=True)
                check_if_match(if_match, etag_of(row.id, row.updated_at), required=True)
                old = {k: getattr(row, k) for k in changes}
                for key, value in changes.items():
                    setattr(row, key, value)
                session.flush()
                _audit(session, context, principal, resource, "update", row, old, changes)
                session.refresh(row)
                body = _dump(resource, row)
        except DBAPIError as exc:
            raise database_error(exc, resource.conflict) from exc
        return json_response(body, headers={"ETag": etag_of(row.id, row.updated_at)})

    @router.delete(
        "/{row_id}",
        status_code=204,
        summary=f"Delete a {noun} (soft)",
        responses=problem_responses(401, 403, 404, 412, 422),
    )
    def delete_row(
        row_id: uuid.UUID,
        principal: Writer,
        engines: EnginesDep,
        context: RequestContextDep,
        if_match: Annotated[str | None, Header(description="optional ETag check")] = None,
    ) -> Response:
        """Marks the row deleted (it stays in the database and the warehouse, and disappears
        from this API)."""
        with scoped_session(engines.operational, principal) as session:
            row = visible(session, resource, principal, row_id, for_write=True, lock=True)
            check_if_match(if_match, etag_of(row.id, row.updated_at), required=False)
            marks = resource.deleted()
            old = {k: getattr(row, k) for k in marks}
            for key, value in marks.items():
                setattr(row, key, value)
            session.flush()
            _audit(session, context, principal, resource, "delete", row, old, marks)
        return Response(status_code=204)

    return router


def _create(
    resource: Resource,
    payload: BaseModel,
    principal: Principal,
    engines: Any,
    context: RequestContext,
    key: str | None,
    digest: str,
    path: str,
) -> Response:
    if key is not None:
        _purge_expired_keys(engines, principal, key)
        stored = _stored_answer(engines, principal, key, digest, path)
        if stored is not None:
            return stored
    try:
        with scoped_session(engines.operational, principal) as session:
            values = resource.prepare(session, principal, payload.model_dump())
            row = resource.model(**values)
            session.add(row)
            session.flush()
            session.refresh(row)
            body = _dump(resource, row)
            _audit(session, context, principal, resource, "create", row, None, body)
            headers = {
                "ETag": etag_of(row.id, row.updated_at),
                "Location": f"/v1/{resource.path}/{row.id}",
            }
            if key is not None:
                session.add(
                    IdempotencyKey(
                        user_id=principal.user_id,
                        key=key,
                        method="POST",
                        path=path,
                        request_hash=digest,
                        status_code=201,
                        response_body=body,
                        response_headers=headers,
                        expires_at=datetime.now(UTC) + IDEMPOTENCY_TTL,
                    )
                )
                session.flush()
    except IntegrityError as exc:
        if key is not None:
            # A concurrent request with this key may have committed first (we waited on its row
            # or on its key): then answer as it did.
            stored = _stored_answer(engines, principal, key, digest, path)
            if stored is not None:
                return stored
        raise database_error(exc, resource.conflict) from exc
    except DBAPIError as exc:
        raise database_error(exc, resource.conflict) from exc
    return json_response(body, 201, headers)
