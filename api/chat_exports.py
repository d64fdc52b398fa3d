"""Storing an agent's WhatsApp "Export chat" upload in the landing zone (DESIGN §2, §5).

Why it works the way it does:

- **The stored name is the one the parser reads.** Ingestion takes the customer from the file
  name `WhatsApp Chat with <name>.txt` (`transforms.chat_exports.EXPORT_FILE_NAME`), where the phone
  put it. The stored name is `WhatsApp Chat with <name> (<unique digits>).txt`: the parser drops a
  ` (<digits>)` suffix as phones add one to repeated exports, so it reads the same `<name>` and
  derives the same message ids, while every upload gets a file of its own. The name is made safe
  as phones make it (`safe_contact_name`) and checked to read back unchanged; otherwise the file is
  stored as `chat-export-<digits>.txt` and the parser falls back to the chat's own notices.
- **Client names are never paths.** The upload's file name and a zip's member names are only
  matched against that pattern; nothing is extracted, and the stored name is built here.
- **Bounded work for any upload.** The chat text is capped at 20 MB however small the zip that
  inflates to it (read at most cap + 1 bytes), and a zip's entries at 10,000 (the upload itself
  is capped by the route). Every way a zip can be broken (corrupt, truncated, encrypted, exotic
  compression, wrong CRC) is a 422, never a 500.
- **Checked with the ingestion's parser before it is stored**: a file in which no line starts
  with a date and time is not an export (422), and the answer reports what ingestion will read.
- **Who uploaded it** is not part of the export format, so a sidecar
  (`<stored name>.upload.json`, which no ingestion glob matches) records the uploader, agent,
  tenants, receipt time and checksum, written before the export itself.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
import zlib
from typing import IO

import orjson
from fastapi import HTTPException, status
from pydantic import BaseModel, Field

from api.landing import (
    IST,
    WHATSAPP_EXPORTS,
    day_folder,
    now_utc,
    receipt_day,
    unique_token,
    write_durably,
)
from api.security.tokens import Principal
from transforms.chat_exports import EXPORT_FILE_NAME, parse_chat_export, safe_contact_name
from warehouse.settings import Settings

MAX_CHAT_BYTES = 20 << 20
MAX_ZIP_MEMBERS = 10_000
MAX_NAME_BYTES = 150  # of the contact's name: the whole file name stays under 255 bytes
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive


class ChatExportStored(BaseModel):
    file_name: str = Field(description="the landing file, named as the parser expects")
    bytes: int = Field(description="size of the stored chat text")
    sha256: str = Field(description="hex SHA-256 of the stored chat text")
    received_day: str = Field(description="the partition (IST day) it will be ingested in")
    messages: int = Field(description="messages the ingestion parser reads from it")
    system_lines: int = Field(description="notices without a sender (encryption, ...)")
    rejected_lines: int = Field(description="lines ingestion will quarantine")


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _base_name(name: str) -> str:
    return re.split(r"[/\\]", name)[-1]


def _read_capped(handle: IO[bytes], declared: int | None = None) -> bytes:
    """At most MAX_CHAT_BYTES of chat text, else 413: a zip's declared size is checked first,
    then the bytes actually read (a declared size can lie)."""
    if declared is None or declared <= MAX_CHAT_BYTES:
        data = handle.read(MAX_CHAT_BYTES + 1)
        if len(data) <= MAX_CHAT_BYTES:
            return data
    raise HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the chat text is over {MAX_CHAT_BYTES} bytes"
    )


def _is_chat_name(base: str) -> bool:
    return base == "_chat.txt" or (
        base.endswith(".txt") and EXPORT_FILE_NAME.match(base) is not None
    )


def _chat_from_zip(handle: IO[bytes]) -> tuple[bytes, str]:
    """(the chat text, its member's base name) of an export zip: `_chat.txt` (iOS) or
    `WhatsApp Chat with <name>.txt` (Android), else its only `.txt`."""
    try:
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise unprocessable(f"the zip holds over {MAX_ZIP_MEMBERS} files")
            files = [m for m in members if not m.is_dir()]
            named = {m: _base_name(m.filename) for m in files}
            candidates = {m: n for m, n in named.items() if not n.startswith(".")}
            chats = [m for m, n in candidates.items() if _is_chat_name(n)]
            chats = chats or [m for m, n in candidates.items() if n.lower().endswith(".txt")]
            if len(chats) != 1:
                raise unprocessable(
                    "the zip must hold one chat export (_chat.txt or WhatsApp Chat with "
                    f"<name>.txt); it holds {len(chats)}"
                )
            with archive.open(chats[0]) as member:
                return _read_capped(member, chats[0].file_size), named[chats[0]]
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        RuntimeError,  # encrypted
        NotImplementedError,  # a compression method zipfile lacks
        EOFError,
        OSError,
        ValueError,
        zlib.error,
    ) as exc:
        raise unprocessable(
            "the zip is corrupt, encrypted or uses unsupported compression"
        ) from exc


def _contact(*file_names: str | None) -> str | None:
    """The customer's name as the export's file names give it, made safe as phones make it."""
    for file_name in file_names:
        match = EXPORT_FILE_NAME.match(_base_name(file_name or ""))
        if match:
            name = safe_contact_name(match.group("name"))
            name = name.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore").strip(" .")
            if name:
                return name
    return None


def _stored_name(contact: str | None) -> str:
    """A unique `.txt` name from which the parser reads back exactly `contact`."""
    token = unique_token()
    if contact:
        name = f"WhatsApp Chat with {contact} ({token}).txt"
        match = EXPORT_FILE_NAME.match(name)
        if match and match.group("name") == contact:
            return name
    return f"chat-export-{token}.txt"


def store_export(
    handle: IO[bytes],
    file_name: str | None,
    content_type: str | None,
    principal: Principal,
    settings: Settings,
) -> ChatExportStored:
    """Check an uploaded `.txt` or `.zip` (4xx problems otherwise), store its chat text and a
    sidecar durably under today's (IST) folder, and say what ingestion will read from it."""
    head = handle.read(4)
    handle.seek(0)
    name = (file_name or "").lower()
    inner: str | None = None
    if head in ZIP_MAGIC or name.endswith(".zip"):
        data, inner = _chat_from_zip(handle)
    elif name.endswith(".txt") or (content_type or "").startswith("text/plain"):
        data = _read_capped(handle)
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "upload the .txt or .zip that WhatsApp's Export chat makes",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise unprocessable("the chat export is not UTF-8 text") from exc
    moment = now_utc()
    day = receipt_day(moment)
    stored = _stored_name(_contact(inner, file_name))
    parsed = parse_chat_export(text, stored, day, settings.pii_key.get_secret_value().encode())
    if parsed.messages.height + parsed.system_lines == 0:
        raise unprocessable("not a WhatsApp chat export: no line starts with a date and time")
    digest = hashlib.sha256(data).hexdigest()
    upload = {
        "file_name": stored,
        "received_at": moment.astimezone(IST).isoformat(timespec="milliseconds"),
        "user_id": str(principal.user_id),
        "agent_id": str(principal.agent_id) if principal.agent_id else None,
        "tenant_ids": [str(t) for t in principal.tenant_ids],
        "uploaded_as": "zip" if inner is not None else "txt",
        "bytes": len(data),
        "sha256": digest,
    }
    folder = day_folder(settings.landing_root, WHATSAPP_EXPORTS, day)
    write_durably(folder, f"{stored}.upload.json", orjson.dumps(upload) + b"\n")
    write_durably(folder, stored, data)
    return ChatExportStored(
        file_name=stored,
        bytes=len(data),
        sha256=digest,
        received_day=day.isoformat(),
        messages=parsed.messages.height,
        system_lines=parsed.system_lines,
        rejected_lines=parsed.rejected.height,
    )
