"""`POST /v1/events`: the mobile app's analytics batches into the landing zone (DESIGN §2, §5).

How each event is checked and what lands is `api.event_batches`'s job (the ingestion's own
parser, the app's bytes plus the server's `receivedAt`, `userId` must be the caller). Here:
the body is capped at 1 MB before it is parsed, and the accepted lines land durably
(`api.event_intake`: with those of the requests that arrived at the same time, as one new file)
*before* the answer, so an acknowledged event is never lost; a retried batch only adds
duplicates, which ingestion drops on `messageId`.

Statuses: 202 when at least one event is accepted (the others listed with reasons); 422 with the
same `accepted` / `rejected` members when none is (nothing to retry: the app should drop them);
413 for a body over 1 MB or a batch over 500 events (the app splits it, whichever limit it hit);
400 when the body is not UTF-8 JSON; 422 when it is JSON but not `{"batch": [...]}`, or nests
deeper than `api.json_limits.MAX_JSON_DEPTH`; 429 over the caller's batches a minute.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from api.deps import EventIntakeDep
from api.event_batches import MAX_EVENTS, Checked
from api.intake import MB, read_body
from api.problems import PROBLEM_SCHEMA, problem, problem_responses
from api.ratelimit import RateLimit
from api.security.deps import CurrentPrincipal
from transforms.app_events import FIELDS_BY_TYPE, REQUIRED_FIELDS

MAX_BODY_BYTES = 1 * MB
# Counted on the principal the route verifies anyway (no second token check): each accepted
# batch is disk in the landing zone, so one account must not be able to fill it.
EVENTS_LIMIT = RateLimit("events", lambda settings: settings.events_rate_limit_per_minute)

router = APIRouter(prefix="/v1", tags=["events"])


class Rejection(BaseModel):
    index: int = Field(description="0-based position of the event in `batch`")
    reason: str = Field(description="why it was refused, as ingestion's quarantine names it")


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events written to the landing zone")
    rejected: list[Rejection] = Field(description="events refused, in batch order")


def _answer(checked: Checked) -> EventsAccepted:
    return EventsAccepted(
        accepted=len(checked.lines),
        rejected=[Rejection(index=i, reason=checked.rejected[i]) for i in sorted(checked.rejected)],
    )


# --------------------------------------------------------------------------- the route

# Documentation derived from the contract's one definition, not a second schema.
_MEMBERS = REQUIRED_FIELDS | {
    n: k for by_type in FIELDS_BY_TYPE.values() for n, k in by_type.items()
}
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Segment-spec event (DESIGN §5). `receivedAt` is set by the server; `userId`"
    " must be the caller's user id; `track` needs `event` and `properties`, `screen` `name` and"
    " `properties`, `identify` `traits`; timestamps are ISO-8601 with a zone.",
    "required": [name for name in REQUIRED_FIELDS if name != "receivedAt"],
    "properties": {
        name: {"type": "object" if kind is dict else "string"}
        | ({"enum": list(FIELDS_BY_TYPE)} if name == "type" else {})
        for name, kind in _MEMBERS.items()
    },
}
_EXAMPLE_EVENT = {
    "messageId": "4f7f2f3c-5b0a-4c39-9a43-3b1b0e1f2a77",
    "type": "track",
    "event": "video_shared_whatsapp",
    "userId": "9b1d2c5e-8f0a-4b7e-a1c3-2d4e6f8a0b1c",
    "anonymousId": "0c7e6a52-1f9d-4a8b-b3e2-6d5c4b3a2f10",
    "sessionId": "b8e1f6d2-3c4a-4e5f-8a9b-0c1d2e3f4a5b",
    "originalTimestamp": "2025-03-14T10:15:02.120Z",
    "sentAt": "2025-03-14T10:15:30.004Z",
    "properties": {"video_id": "v-80c-tax-saving", "language": "hi"},
    "context": {
        "app": {"version": "3.4.0", "build": "340"},
        "os": {"name": "Android", "version": "14"},
        "device": {"manufacturer": "Samsung", "model": "SM-A155F"},
        "locale": "hi-IN",
    },
}


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    summary="Take a batch of app events",
    description="Validates each event against the ingestion contract, writes the accepted ones "
    "to the landing zone (durably, before answering) and lists the refused ones with the "
    "reason. Up to 500 events and 1 MB per request. Any signed-in role may send events, each "
    "naming the caller as `userId`. Retrying a batch is safe: ingestion drops repeated "
    "`messageId`s.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["batch"],
                        "properties": {
                            "batch": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_EVENTS,
                                "items": _EVENT_SCHEMA,
                            }
                        },
                    },
                    "example": {"batch": [_EXAMPLE_EVENT]},
                }
            },
        }
    },
    responses={
        202: {
            "description": "At least one event was accepted and is durably stored.",
            "content": {
                "application/json": {
                    "example": {
                        "accepted": 1,
                        "rejected": [{"index": 1, "reason": "missing_field:sentAt"}],
                    }
                }
            },
        },
        **problem_responses(
            explained={
                400: ("The body is not UTF-8 JSON.", "the body is not UTF-8 JSON"),
                401: ("No valid access token.", "an access token is required"),
                429: (
                    "Over the caller's batches a minute (MITRA_EVENTS_RATE_LIMIT).",
                    "more than 120 requests a minute (events); retry in 12 s",
                ),
                413: (
                    "The body is over 1 MB, or the batch over 500 events: split it.",
                    "the request body is larger than 1048576 bytes",
                ),
            }
        ),
        422: {
            "description": 'The body is not `{"batch": [...]}` with 1 to 500 events, nests '
            "objects or arrays deeper than 32 levels (the body itself counted), or no event "
            "was accepted (then `accepted` and `rejected` say why, per event).",
            "content": {
                "application/problem+json": {
                    "schema": PROBLEM_SCHEMA,
                    "example": {
                        "type": "about:blank",
                        "title": "Unprocessable Content",
                        "status": 422,
                        "detail": "no event was accepted",
                        "accepted": 0,
                        "rejected": [{"index": 0, "reason": "forbidden:userId"}],
                    },
                }
            },
        },
    },
)
async def post_events(request: Request, principal: CurrentPrincipal, intake: EventIntakeDep) -> Any:
    await EVENTS_LIMIT.count(request, principal.rate_key)
    raw = await read_body(request, MAX_BODY_BYTES)
    result = _answer(await intake.land(raw, str(principal.user_id)))
    if result.accepted == 0:
        return problem(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "no event was accepted",
            instance=request.url.path,
            **result.model_dump(),
        )
    return result
