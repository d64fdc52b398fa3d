"""`api.query.QueryModel` on its own: it reads, refuses and documents query parameters as
FastAPI's own declarations do (the HTTP side is in test_insights.py)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from api.query import QueryModel


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Wanted(BaseModel):
    colour: Colour = Colour.RED
    on: date | None = Field(None, description="a day")
    size: int = Field(10, ge=1, le=100)
    shape: Literal["round", "square"] = "round"
    name: str


WANTED = QueryModel(Wanted)


def _request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


def test_values_defaults_and_repeats() -> None:
    read = WANTED.read(_request("name=a&on=2026-11-25&colour=blue&colour=red&other=x"))
    assert read == Wanted(name="a", on=date(2026, 11, 25), colour=Colour.RED)  # the last colour
    assert WANTED.read(_request("name=b")).size == 10


@pytest.mark.parametrize(
    "query", ["name=a%20b+c%26d", "name=%E0%A4%A8%E0%A4%AE", "name=&name=x%3Dy", "name=%zz;"]
)
def test_values_decode_as_starlettes_query_params(query: str) -> None:
    """Percent-escapes, `+`, empty values and stray bytes read as `request.query_params`."""
    request = _request(query)
    assert WANTED.read(request).name == request.query_params["name"]


def test_bad_values_are_request_validation_errors_located_in_the_query() -> None:
    with pytest.raises(RequestValidationError) as raised:
        WANTED.read(_request("size=0&colour=green&on=2026-02-30"))
    located = sorted(tuple(error["loc"]) for error in raised.value.errors())
    assert located == [("query", "colour"), ("query", "name"), ("query", "on"), ("query", "size")]


def test_the_document_lists_what_fastapi_would() -> None:
    """The same parameters as FastAPI's own declarations give, definitions inlined."""
    app = FastAPI()

    @app.get("/declared")
    def declared(
        name: str,
        colour: Colour = Colour.RED,
        on: date | None = Query(None, description="a day"),  # noqa: B008 - FastAPI's idiom
        size: int = Query(10, ge=1, le=100),
        shape: Literal["round", "square"] = "round",
    ) -> None: ...

    @app.get("/read", openapi_extra=WANTED.openapi_extra)
    def read() -> None: ...

    paths = app.openapi()["paths"]
    fastapi_params = {p["name"]: p for p in paths["/declared"]["get"]["parameters"]}
    ours = {p["name"]: p for p in paths["/read"]["get"]["parameters"]}
    assert set(ours) == set(fastapi_params)
    assert fastapi_params["colour"]["schema"] == {
        "$ref": "#/components/schemas/Colour",
        "default": "red",
    }
    assert ours["colour"]["schema"] == {
        "enum": ["red", "blue"],
        "title": "Colour",
        "type": "string",
        "default": "red",
    }
    for name in ("on", "size", "shape", "name"):
        assert ours[name]["required"] == fastapi_params[name]["required"], name
        assert ours[name]["schema"] == fastapi_params[name]["schema"], name
    assert ours["on"]["description"] == "a day"
