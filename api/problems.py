"""Errors as RFC 9457 `application/problem+json` (DESIGN §8), for every error the API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.json_limits import TOO_DEEP

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger(__name__)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; other members (errors, checks, rejected) may appear.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def problem_response(
    code: int, description: str | None = None, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One entry of a route's `responses`: an error documented as problem+json with an example."""
    example: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(code).phrase}
    example |= {"status": code, "detail": detail or HTTPStatus(code).description, **extra}
    return {
        "description": description or HTTPStatus(code).phrase,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA, "example": example}},
    }


def problem_responses(
    *codes: int, explained: dict[int, tuple[str, str]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the statuses in `codes` with their standard wording, and those in
    `explained` as `{status: (when it happens, example detail)}`."""
    responses: dict[int | str, dict[str, Any]] = {code: problem_response(code) for code in codes}
    for code, (description, detail) in (explained or {}).items():
        responses[code] = problem_response(code, description, detail)
    return responses


def problem(
    status: int, detail: str | None = None, *, title: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response; `extra` members (e.g. `checks`, `errors`) are added as they are."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI's body parse gave up on a body nested too deep for the decoder: the client's
        # input, not unreadable JSON.
        return problem(422, TOO_DEEP, instance=request.url.path)
    response = problem(
        exc.status_code, str(exc.detail) if exc.detail else None, instance=request.url.path
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "location": list(err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem(422, "the request is not valid", instance=request.url.path, errors=errors)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        500, "an unexpected error occurred; it has been logged", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled_error)


def document_body_problems(app: FastAPI) -> None:
    """Every operation that takes a body may answer 400 (the body is not parseable JSON, which
    FastAPI reports before validation): say so once in the OpenAPI document, not per route."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for methods in spec.get("paths", {}).values():
            for operation in methods.values():
                if "requestBody" in operation:
                    operation["responses"].setdefault(
                        "400",
                        problem_response(
                            400,
                            "the body could not be parsed",
                            "There was an error parsing the body",
                        ),
                    )
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
