"""Limits on what a request may hold, checked before it reaches code that recurses over it or
a database that cannot store it.

A document nested hundreds deep makes recursive readers (the standard library's decoder, which
finds events' spans; encoders of responses and audit rows) raise RecursionError, a 500; a string
holding NUL cannot be stored in PostgreSQL text, also a 500. Both are the client's input, so they
answer 422. No app's event, payload or form nests anywhere near MAX_JSON_DEPTH.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32  # levels of objects and arrays in one request body, the body itself counted
TOO_DEEP = f"the body nests objects or arrays deeper than {MAX_JSON_DEPTH} levels"
HAS_NUL = "a text value holds a NUL character (\\u0000), which cannot be stored"
# For text parameters and fields, stated in the schema (OpenAPI shows it; schemathesis obeys it).
NO_NUL = r"^[^\x00]*$"


def nested_deeper(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the decoded JSON `value` nests objects and arrays deeper than `limit`. Walks one
    level at a time, looking only at containers (no recursion, and strings cost one type check)."""
    level, depth = ([value] if type(value) is dict or type(value) is list else []), 1
    while level:
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) is dict or type(child) is list
        ]
        depth += 1
    return False


def value_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why a decoded JSON value cannot be taken (`TOO_DEEP`, `HAS_NUL`), or None."""
    if not isinstance(value, dict | list):
        return HAS_NUL if isinstance(value, str) and "\x00" in value else None
    if nested_deeper(value, limit):
        return TOO_DEEP
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return HAS_NUL
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
