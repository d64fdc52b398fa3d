"""What the intake routes (events, WhatsApp webhook, chat exports) share: bodies read with a size
limit.

Why limits are enforced here and not left to a proxy: the API is the one place that knows each
route's limit, and a body must be refused *before* it is held in memory or parsed. A declared
`Content-Length` above the limit is refused at once, without reading anything; a body without
one (chunked) is counted while it streams and refused as soon as it passes the limit.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from starlette.types import Message

MB = 1 << 20


def too_large(max_bytes: int, what: str = "the request body") -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"{what} is larger than {max_bytes} bytes"
    )


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or 413 problem+json once it is known to exceed `max_bytes`."""
    _check_declared_length(request, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def limited_request(request: Request, max_bytes: int) -> Request:
    """The same request, whose body raises 413 once more than `max_bytes` arrive: for bodies
    parsed by Starlette itself (multipart forms), which would otherwise read any size."""
    _check_declared_length(request, max_bytes)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise too_large(max_bytes)
        return message

    return Request(request.scope, receive)
