"""Query parameters declared once as a pydantic model and read without FastAPI's per-request
machinery, for the hottest routes.

Why: FastAPI (0.165) spends ~10 µs of CPU a request on every declared query parameter, present
or not (it re-inspects each parameter's annotation, looks up parameter models and validates
field by field on every request). On the cached performance answer, its two (`period`, `on`)
cost 19 µs of 123 µs in process, against 7 µs read here (111 µs); over HTTP the answer went from
0.48 to 0.54 of the bare endpoint's throughput (bench/api_insights.py).

What stays as with FastAPI's own parameters:

- **Validation**: the model's compiled pydantic validator, in the same lax mode; a bad value is
  the same `RequestValidationError` (each error located at `("query", name)`), so the same 422
  problem+json. Unknown parameters are ignored and a repeated one counts once (its last value),
  as FastAPI does.
- **Documentation**: `openapi_extra` gives the route's OpenAPI operation the model's parameters,
  with their schema, default and description (definitions inlined, so the document needs no
  component for them); schemathesis checks the route against it like any other.

Use it only where the saving matters (an answer served from cache in ~0.1 ms); elsewhere,
FastAPI's declarations are simpler to read.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class QueryModel(Generic[M]):
    """The query parameters of `model`'s fields: `read(request)` and `openapi_extra`."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._names = tuple(model.model_fields)
        self.openapi_extra: dict[str, Any] = {"parameters": _parameters(model)}

    def read(self, request: Request) -> M:
        """The request's parameters as the model, or the 422 FastAPI would give."""
        # Parsed as Starlette's `request.query_params` parses them, into a plain dict (the last
        # of a repeated name wins there too): its multi-dict and the `Mapping` lookups on it
        # cost a cached answer more than this whole read (bench/api_insights.py profile).
        query = request.scope["query_string"].decode("latin-1")
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            return self.model.model_validate({n: params[n] for n in self._names if n in params})
        except ValidationError as exc:
            errors = [
                {**error, "loc": ("query", *error["loc"])}
                for error in exc.errors(include_url=False)
            ]
            raise RequestValidationError(errors) from None


def _parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameter objects of the model's fields, in declaration order."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _inlined(field_schema, definitions),
        }
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameters.append(parameter)
    return parameters


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with every local `$ref` replaced by its definition."""
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = definitions[schema["$ref"].removeprefix("#/$defs/")]
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return _inlined(target, definitions) | _inlined(rest, definitions)
    return {key: _inlined(value, definitions) for key, value in schema.items()}
