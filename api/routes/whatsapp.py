"""WhatsApp intake: Meta's Cloud API webhook and agents' "Export chat" uploads (DESIGN §2, §5).

Why it works the way it does:

- **The webhook stores what Meta signed, and nothing unsigned.** `X-Hub-Signature-256` is an
  HMAC-SHA256 of the raw body bytes; it is checked on exactly those bytes, with the ingestion's own
  check (`transforms.whatsapp.signature_ok`, constant time), before anything is written. A body
  that passes lands verbatim as one landing line `{"received_at", "signature", "body"}`, the body
  being the bytes decoded as UTF-8 (JSON escapes it losslessly, so ingestion re-encodes the very
  bytes and verifies the signature again). Bodies are not parsed here: Meta retries any non-2xx
  for days, so a signed body ingestion cannot read is quarantined there, not refused here.
- **One file per delivery** (`api.landing.write_durably`): deliveries arrive concurrently on any
  number of workers, and ingestion may read the day's folder at any time; a per-delivery file
  written under a temporary name and renamed needs no lock and is never seen half-written. The
  cost is one small file per delivery for ingestion to open (measured: 390 deliveries/s from 16
  concurrent clients on 2 cores, p95 65 ms); past some 10^5 a day, compact a day's files.
- **Exports** are stored by `api.chat_exports` (names the parser reads, zip handling); this
  module caps the multipart upload at 32 MB, counted while it streams, before it is parsed.
"""

from __future__ import annotations

import hmac
from datetime import date
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from starlette.datastructures import UploadFile

from api.chat_exports import ChatExportStored, store_export, unprocessable
from api.deps import SettingsDep
from api.intake import MB, limited_request, read_body
from api.landing import IST, WHATSAPP, day_folder, now_utc, receipt_day, unique_stem, write_durably
from api.problems import problem_responses
from api.security.deps import roles
from api.security.tokens import Principal
from transforms.whatsapp import signature_ok
from warehouse.operational.enums import UserRole

MAX_WEBHOOK_BYTES = 3 * MB
MAX_UPLOAD_BYTES = 32 * MB

router = APIRouter(prefix="/v1/whatsapp", tags=["whatsapp"])
AgentPrincipal = Annotated[Principal, Depends(roles(UserRole.AGENT))]


# --------------------------------------------------------------------------- webhook


@router.get(
    "/webhook",
    response_class=PlainTextResponse,
    summary="Meta's webhook verification handshake",
    description="Meta calls this once when the webhook is configured: with `hub.mode=subscribe` "
    "and `hub.verify_token` equal to `WHATSAPP_VERIFY_TOKEN` (compared in constant time) the "
    "answer is `hub.challenge`, as text/plain; anything else is 403.",
    responses={
        200: {
            "description": "The challenge, echoed.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": "1158201444"}},
        },
        **problem_responses(
            explained={
                403: ("The mode or the verify token is wrong.", "webhook verification failed"),
                422: ("`hub.challenge` is missing or too long.", "the request is not valid"),
            }
        ),
    },
)
async def verify_webhook(
    settings: SettingsDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=256)] = None,
) -> PlainTextResponse:
    expected = settings.whatsapp_verify_token.get_secret_value().encode()
    given = (verify_token or "").encode()
    if mode != "subscribe" or not hmac.compare_digest(given, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "webhook verification failed")
    if challenge is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "hub.challenge is required")
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff"})


def _delivery_line(body: str, signature: str) -> tuple[bytes, date]:
    """The landing line of one delivery and the day it belongs to."""
    moment = now_utc()
    line = {
        "received_at": moment.astimezone(IST).isoformat(timespec="milliseconds"),
        "signature": signature,
        "body": body,
    }
    return orjson.dumps(line) + b"\n", receipt_day(moment)


_WEBHOOK_EXAMPLE = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "919812345678",
                            "phone_number_id": "106540352242922",
                        },
                        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
                        "messages": [
                            {
                                "from": "919876543210",
                                "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgg",
                                "timestamp": "1741947302",
                                "type": "text",
                                "text": {"body": "नमस्ते 🙏"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


@router.post(
    "/webhook",
    summary="Receive a WhatsApp Cloud API webhook delivery",
    description="Meta posts messages and statuses here, signed with the app secret in "
    "`X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the raw body). A delivery whose "
    "signature verifies on its exact bytes is stored verbatim in the landing zone, durably, "
    "before the 200; anything else is refused and nothing is stored. No bearer token: Meta's "
    "signature is the authentication. At most 3 MB.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": "Meta's envelope, as sent"},
                    "example": _WEBHOOK_EXAMPLE,
                }
            },
        },
        "parameters": [
            {
                "name": "X-Hub-Signature-256",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                "description": "HMAC-SHA256 of the raw body with the app secret",
            }
        ],
    },
    responses={
        200: {
            "description": "Stored; Meta will not retry.",
            "content": {"application/json": {"example": {"status": "received"}}},
        },
        **problem_responses(
            explained={
                400: ("The body is not UTF-8.", "the body is not UTF-8"),
                401: (
                    "The signature is missing or does not match the body.",
                    "X-Hub-Signature-256 does not match the body",
                ),
                413: ("The body is over 3 MB.", "the request body is larger than 3145728 bytes"),
            }
        ),
    },
)
async def receive_webhook(request: Request, settings: SettingsDep) -> dict[str, str]:
    raw = await read_body(request, MAX_WEBHOOK_BYTES)
    signature = request.headers.get("x-hub-signature-256")
    secret = settings.whatsapp_app_secret.get_secret_value().encode()
    if signature is None or not signature_ok(raw, signature, secret):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "X-Hub-Signature-256 does not match the body"
        )
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not UTF-8") from exc
    line, day = _delivery_line(body, signature)
    folder = day_folder(settings.landing_root, WHATSAPP, day)
    await run_in_threadpool(write_durably, folder, f"{unique_stem()}.ndjson", line)
    return {"status": "received"}


# --------------------------------------------------------------------------- chat exports


@router.post(
    "/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChatExportStored,
    summary="Upload a WhatsApp 'Export chat' file",
    description="An agent uploads the `.txt` that WhatsApp's Export chat makes, or the `.zip` "
    "holding it (with or without media; only the chat text is kept), as the multipart field "
    "`file`. It is checked with the ingestion's parser, stored in the landing zone under the "
    "receipt day (IST) and loaded by the next ingestion run; the answer says what the parser "
    "read. Limits: 32 MB upload, 20 MB of chat text. Re-uploading a chat is safe: its messages "
    "keep their ids and load once.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "WhatsApp Chat with <name>.txt, or the .zip",
                            }
                        },
                    }
                }
            },
        }
    },
    responses={
        202: {
            "description": "Stored; it will be ingested with its receipt day.",
            "content": {
                "application/json": {
                    "example": {
                        "file_name": "WhatsApp Chat with Asha Verma (1741947302123456789"
                        "042117311).txt",
                        "bytes": 18234,
                        "sha256": "9f2c…",
                        "received_day": "2025-03-14",
                        "messages": 212,
                        "system_lines": 1,
                        "rejected_lines": 0,
                    }
                }
            },
        },
        **problem_responses(
            explained={
                400: ("The multipart body is malformed.", "Too many files. Maximum: 1"),
                401: ("No valid access token.", "an access token is required"),
                403: ("The caller is not an agent.", "role policyholder may not do this"),
                413: ("Upload over 32 MB or chat over 20 MB.", "the chat text is over 20971520"),
                415: (
                    "Not a .txt or .zip.",
                    "upload the .txt or .zip that WhatsApp's Export chat makes",
                ),
                422: (
                    "No `file` field, not a chat export, not UTF-8, or a broken zip.",
                    "not a WhatsApp chat export: no line starts with a date and time",
                ),
            }
        ),
    },
)
async def upload_export(
    request: Request, principal: AgentPrincipal, settings: SettingsDep
) -> ChatExportStored:
    form = await limited_request(request, MAX_UPLOAD_BYTES).form(max_files=1, max_fields=8)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise unprocessable("send the export as the multipart file field `file`")
        return await run_in_threadpool(
            store_export,
            upload.file,
            upload.filename,
            upload.content_type,
            principal,
            settings,
        )
    finally:
        await form.close()
