"""Who sent a request from where: what the audit trail records with every write."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None
    user_agent: str | None
    request_id: str


def _valid_ip(host: str | None) -> str | None:
    """The peer address when it parses as IP (test clients may report a name)."""
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def get_request_context(request: Request) -> RequestContext:
    """The peer's address (the socket's: a proxy in front must be configured in uvicorn's
    `--forwarded-allow-ips`, which then rewrites it, never a header trusted blindly here), the
    user agent (truncated), and the caller's `X-Request-ID` or a new one."""
    user_agent = request.headers.get("user-agent")
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    return RequestContext(
        ip_address=_valid_ip(request.client.host if request.client else None),
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
        request_id=request_id[:128],
    )


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]
