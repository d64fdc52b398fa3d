"""schemathesis over every operation of `/openapi.json`: no 5xx, no response that breaks the
documented schema (status codes, content types, bodies, headers).

One test per operation (the list is read from the app's own OpenAPI document at collection,
which touches no database), each running schemathesis' generated cases, valid and invalid,
against the real app over HTTP as a super admin, who may reach every operation, with the
session's built warehouse behind it (so insights have their marts). (schemathesis'
own pytest loader, `from_fixture`, does not work with pytest 9, hence the explicit strategy.)

Besides schemathesis' own cases (which may hold NUL in strings: `allow_x00` is on by default),
a third of them are valid cases made hostile in one place, the inputs a security test found
answering 500: a NUL in a text, a value nested deeper than the body limit, a day at the ends of
the calendar. Each must still be a documented 4xx, never a 5xx.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.json_limits import MAX_JSON_DEPTH
from api.main import create_app
from tests.api.conftest import Api, World
from warehouse.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = int(os.environ.get("MITRA_FUZZ_EXAMPLES", "30"))  # more: a deeper search
HOSTILE = ("nul", "deep", "calendar")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def _hostile(case: Any, kind: str) -> Any:
    """`case` with one hostile value, where it has a place for it (else unchanged)."""
    body = case.body if isinstance(case.body, dict) else None
    query = case.query if isinstance(case.query, dict) else None
    if kind == "nul":
        for values in (body, query):
            texts = sorted(k for k, v in (values or {}).items() if isinstance(v, str))
            if values is not None and texts:
                values[texts[0]] += "\x00"
                break
    elif kind == "deep" and body:
        body[sorted(body)[0]] = _deep(MAX_JSON_DEPTH + 8)
    elif kind == "calendar":
        for name, value in (query or {}).items():
            if isinstance(value, str) and _DAY.match(value):
                query[name] = "0001-01-01"  # type: ignore[index]
    return case


OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in create_app(Settings()).openapi()["paths"].items()
    for method in methods
)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_keeps_its_contract(
    api_with_marts: Api, world: World, method: str, path: str
) -> None:
    api = api_with_marts
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {api.token(world.super_user)}"}
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        st.tuples(operation.as_strategy(GenerationMode.POSITIVE), st.sampled_from(HOSTILE)).map(
            lambda made: _hostile(*made)
        ),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a failure here is reproducible
        database=None,
    )
    def run(case) -> None:  # case: schemathesis' Case
        sent = {**(case.headers or {}), **headers}  # our token, not a generated one
        case.call_and_validate(base_url=api.base, headers=sent, checks=CHECKS)

    run()
