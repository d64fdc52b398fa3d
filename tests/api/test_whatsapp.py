"""WhatsApp webhook and chat-export uploads over HTTP against a real uvicorn server: signatures on
exact bytes, verbatim landing lines and files that ingestion's own parsers and asset read."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import socket
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from api.security.tokens import Principal, issue_access_token
from transforms.chat_exports import parse_chat_export
from transforms.whatsapp import parse_webhook_deliveries
from warehouse.operational.enums import UserRole
from warehouse.settings import Settings

HELLO = "नमस्ते 🙏 premium kab due hai?"
STORED_EXPORT = re.compile(r"^WhatsApp Chat with (?P<name>.+) \((?P<token>\d+)\)\.txt$")


def _secret(settings: Settings) -> bytes:
    return settings.whatsapp_app_secret.get_secret_value().encode()


def _pii(settings: Settings) -> bytes:
    return settings.pii_key.get_secret_value().encode()


def _sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _envelope(text: str = HELLO) -> dict[str, Any]:
    return {
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
                            "contacts": [{"profile": {"name": "आशा"}, "wa_id": "919876543210"}],
                            "messages": [
                                {
                                    "from": "919876543210",
                                    "id": f"wamid.{uuid.uuid4().hex}",
                                    "timestamp": "1741947302",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def _files(settings: Settings, source: str) -> list[Path]:
    return sorted((settings.landing_root / source).glob("dt=*/*"))


def _day(path: Path) -> date:
    return date.fromisoformat(path.parent.name.removeprefix("dt="))


def _post_hook(base: str, body: Any, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return httpx.post(f"{base}/v1/whatsapp/webhook", content=body, headers=headers)


# --------------------------------------------------------------------------- webhook


def test_a_signed_delivery_lands_verbatim_and_parses(settings: Settings, base: str) -> None:
    raw = json.dumps(_envelope(), ensure_ascii=False).encode()  # non-ASCII as UTF-8 bytes
    response = _post_hook(base, raw, _sign(raw, _secret(settings)))
    assert response.status_code == 200, response.text
    [path] = _files(settings, "whatsapp")
    assert path.name.endswith(".ndjson")
    data = path.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    line = json.loads(data)
    assert line["body"].encode("utf-8") == raw
    assert line["signature"] == _sign(raw, _secret(settings))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30", line["received_at"])

    parsed = parse_webhook_deliveries(data, _day(path), _secret(settings), _pii(settings))
    assert (parsed.read, parsed.accepted, parsed.rejected.height) == (1, 1, 0)
    assert parsed.messages["text_body"].to_list() == [HELLO]


def test_bad_signatures_are_401_and_store_nothing(settings: Settings, base: str) -> None:
    raw = json.dumps(_envelope(), ensure_ascii=False).encode()
    signature = _sign(raw, _secret(settings))
    reserialised = json.dumps(json.loads(raw)).encode()  # same JSON, \\u escapes: other bytes
    assert json.loads(reserialised) == json.loads(raw) and reserialised != raw
    for body, header in [
        (reserialised, signature),
        (raw, None),
        (raw, _sign(raw, b"rotated:" + _secret(settings))),
        (raw, "sha256=not-hex"),
    ]:
        response = _post_hook(base, body, header)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert _files(settings, "whatsapp") == []


def test_a_signed_body_that_is_not_utf8_is_400(settings: Settings, base: str) -> None:
    raw = b'{"object":"whatsapp_business_account","x":"\xff\xfe"}'
    response = _post_hook(base, raw, _sign(raw, _secret(settings)))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert _files(settings, "whatsapp") == []


def test_bodies_over_3_mb_are_413_and_store_nothing(settings: Settings, base: str) -> None:
    raw = json.dumps(_envelope("x" * (3 << 20))).encode()
    signature = _sign(raw, _secret(settings))
    response = _post_hook(base, raw, signature)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for start in range(0, len(raw), 256 << 10):
            yield raw[start : start + (256 << 10)]

    assert _post_hook(base, chunks(), signature).status_code == 413
    assert _files(settings, "whatsapp") == []


def test_a_declared_length_over_3_mb_is_refused_before_the_body_is_sent(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/whatsapp/webhook HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")  # not a byte of the body sent


def test_concurrent_deliveries_each_land_whole(settings: Settings, base: str) -> None:
    secret = _secret(settings)
    bodies = [json.dumps(_envelope(f"{HELLO} {n}"), ensure_ascii=False).encode() for n in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda raw: _post_hook(base, raw, _sign(raw, secret)), bodies))
    assert {r.status_code for r in statuses} == {200}
    paths = _files(settings, "whatsapp")
    assert len(paths) == 40 and all(p.suffix == ".ndjson" for p in paths)  # no temporaries
    data = b"".join(p.read_bytes() for p in paths)  # as the asset joins them
    parsed = parse_webhook_deliveries(data, _day(paths[0]), secret, _pii(settings))
    assert (parsed.accepted, parsed.messages.height) == (40, 40)


def test_the_verification_handshake(settings: Settings, base: str) -> None:
    token = settings.whatsapp_verify_token.get_secret_value()
    url = f"{base}/v1/whatsapp/webhook"
    good = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    response = httpx.get(url, params=good)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")
    for params in (
        {**good, "hub.verify_token": token + "x"},
        {**good, "hub.mode": "unsubscribe"},
        {"hub.challenge": "1"},
    ):
        response = httpx.get(url, params=params)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------- chat exports

AGENT_NAME, CUSTOMER, HINDI_CUSTOMER = "Ramesh Kulkarni", "Asha Verma", "आशा वर्मा"
ANDROID = (
    "14/03/25, 10:02 - Messages and calls are end-to-end encrypted. Only people in this chat can"
    " read, listen to, or share them. Learn more.\n"
    f"14/03/25, 10:15 - {AGENT_NAME}: Namaste Asha ji 🙏 Premium due on 20/03/25.\n"
    "Rs. 12,450 for Jeevan Anand.\n"
    f"14/03/25, 10:21 - {CUSTOMER}: नमस्ते, मैं कल भुगतान करूँगी\n"
    f"14/03/25, 10:22 - {CUSTOMER}: <Media omitted>\n"
    f"15/03/25, 18:05 - {AGENT_NAME}: Payment received. Receipt will come by SMS.\n"
)
IOS = (
    f"[14/03/25, 10:02:11] {HINDI_CUSTOMER}: \u200eMessages and calls are end-to-end encrypted.\n"
    f"[14/03/25, 10:15:40] {AGENT_NAME}: Hello Asha ji, your premium is due.\n"
    f"[14/03/25, 10:21:03] {HINDI_CUSTOMER}: ठीक है 👍\n"
    f"\u200e[14/03/25, 10:22:09] {HINDI_CUSTOMER}: \u200eimage omitted\n"
)


def _agent(settings: Settings, role: UserRole = UserRole.AGENT) -> dict[str, str]:
    principal = Principal(
        user_id=uuid.uuid4(),
        role=role,
        session_id=uuid.uuid4(),
        tenant_ids=(uuid.uuid4(),),
        agent_id=uuid.uuid4() if role is UserRole.AGENT else None,
    )
    return {"Authorization": f"Bearer {issue_access_token(settings, principal)}"}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _encrypted_zip() -> bytes:
    """A zip whose member says it is encrypted (general purpose flag bit 0), as phones never
    make them: zipfile refuses to read it without a password."""
    data = bytearray(_zip({"_chat.txt": ANDROID.encode()}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + offset
        data[at] |= 1
    return bytes(data)


def _upload(
    base: str, headers: dict[str, str], name: str, data: bytes, kind: str = "text/plain"
) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/whatsapp/exports", files={"file": (name, data, kind)}, headers=headers
    )


def _stored_export(settings: Settings, response: httpx.Response) -> tuple[Path, str]:
    assert response.status_code == 202, response.text
    txt = [p for p in _files(settings, "whatsapp_exports") if p.suffix == ".txt"]
    [path] = [p for p in txt if p.name == response.json()["file_name"]]
    return path, path.read_text(encoding="utf-8")


def test_a_txt_export_lands_under_a_name_the_parser_reads(settings: Settings, base: str) -> None:
    original = f"WhatsApp Chat with {CUSTOMER}.txt"
    response = _upload(base, _agent(settings), original, ANDROID.encode())
    path, text = _stored_export(settings, response)
    assert path.read_bytes() == ANDROID.encode()
    assert STORED_EXPORT.match(path.name).group("name") == CUSTOMER
    body = response.json()
    assert body["bytes"] == len(ANDROID.encode())
    assert (body["messages"], body["system_lines"], body["rejected_lines"]) == (4, 1, 0)

    day, pii = _day(path), _pii(settings)
    stored = parse_chat_export(text, path.name, day, pii)
    assert stored.messages.height == 4
    assert stored.messages["direction"].to_list() == ["outbound", "inbound", "inbound", "outbound"]
    # The same customer as under the phone's own name, so the same message ids (dedupe).
    as_exported = parse_chat_export(ANDROID, original, day, pii)
    assert stored.messages["wamid"].to_list() == as_exported.messages["wamid"].to_list()
    sidecar = json.loads(path.with_name(path.name + ".upload.json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(ANDROID.encode()).hexdigest()


def test_zip_exports_from_ios_and_android(settings: Settings, base: str) -> None:
    headers = _agent(settings)
    ios = _zip({"_chat.txt": IOS.encode(), "00000003-PHOTO-2025-03-14-10-22-09.jpg": b"\xff" * 64})
    name = f"WhatsApp Chat - {HINDI_CUSTOMER}.zip"
    response = _upload(base, headers, name, ios, "application/zip")
    path, text = _stored_export(settings, response)
    assert text == IOS
    assert STORED_EXPORT.match(path.name).group("name") == HINDI_CUSTOMER
    parsed = parse_chat_export(text, path.name, _day(path), _pii(settings))
    assert parsed.messages["direction"].to_list() == ["outbound", "inbound", "inbound"]

    android = _zip(
        {
            f"WhatsApp Chat with {CUSTOMER}.txt": ANDROID.encode(),
            "IMG-20250314-WA0001.jpg": b"\xff" * 64,
        }
    )
    response = _upload(base, headers, "export.zip", android, "application/zip")
    path, text = _stored_export(settings, response)
    assert text == ANDROID
    assert STORED_EXPORT.match(path.name).group("name") == CUSTOMER
    assert response.json()["messages"] == 4


def test_member_names_are_never_paths(settings: Settings, base: str) -> None:
    evil = _zip({"../../../../evil/_chat.txt": ANDROID.encode()})
    response = _upload(base, _agent(settings), "../../x/WhatsApp Chat with ../..zip", evil)
    path, _ = _stored_export(settings, response)
    assert path.parent.parent == settings.landing_root / "whatsapp_exports"
    root = settings.landing_root.parent
    assert not any(p.name == "evil" for p in root.rglob("*"))


def test_bad_uploads_are_4xx_problems(settings: Settings, base: str) -> None:
    headers = _agent(settings)
    bomb = _zip({"_chat.txt": ANDROID.encode() + b"\n" * (21 << 20)})
    assert len(bomb) < 1 << 20
    cases = [
        ("WhatsApp Chat with A.txt", b"just some notes\nnothing else\n", 422),
        ("WhatsApp Chat with A.txt", "14/03/25, 10:15 - A: hi\n".encode("utf-16"), 422),
        ("WhatsApp Chat with A.zip", b"PK\x03\x04" + b"\x00" * 200, 422),
        ("export.zip", _zip({"photo.jpg": b"\xff" * 10}), 422),
        ("export.zip", _zip({"a.txt": b"x", "b.txt": b"y"}), 422),
        ("export.zip", bomb, 413),
        ("export.zip", _encrypted_zip(), 422),
        ("export.zip", _zip({"_chat.txt": ANDROID.encode() * 50})[:400], 422),  # truncated
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415),
    ]
    for name, data, expected in cases:
        response = _upload(base, headers, name, data, "application/octet-stream")
        assert response.status_code == expected, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    huge = _upload(base, headers, "WhatsApp Chat with A.txt", b"x" * (33 << 20))
    assert huge.status_code == 413
    no_file = httpx.post(f"{base}/v1/whatsapp/exports", data={"x": "1"}, headers=headers)
    assert no_file.status_code == 422
    holder = _upload(base, _agent(settings, UserRole.POLICYHOLDER), "a.txt", ANDROID.encode())
    assert holder.status_code == 403
    assert _upload(base, {}, "a.txt", ANDROID.encode()).status_code == 401
    assert _files(settings, "whatsapp_exports") == []


def test_openapi_documents_the_endpoints(base: str) -> None:
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    hook, export = paths["/v1/whatsapp/webhook"], paths["/v1/whatsapp/exports"]["post"]
    assert "application/problem+json" in hook["post"]["responses"]["401"]["content"]
    assert "application/problem+json" in hook["get"]["responses"]["403"]["content"]
    assert "multipart/form-data" in export["requestBody"]["content"]
    for code in ("401", "403", "413", "415", "422"):
        assert "application/problem+json" in export["responses"][code]["content"]


# --------------------------------------------------------------------------- end to end


def test_the_ingestion_asset_loads_deliveries_and_exports(
    settings: Settings, base: str, own_warehouse: str
) -> None:
    from orchestration.defs.ingest.whatsapp import load_whatsapp_day
    from orchestration.resources import LandingResource

    secret = _secret(settings)
    for text in (HELLO, "second message"):
        raw = json.dumps(_envelope(text), ensure_ascii=False).encode()
        assert _post_hook(base, raw, _sign(raw, secret)).status_code == 200
    response = _upload(
        base, _agent(settings), f"WhatsApp Chat with {CUSTOMER}.txt", ANDROID.encode()
    )
    assert response.status_code == 202
    day = _day(_files(settings, "whatsapp")[0])
    landing = LandingResource(
        root=str(settings.landing_root),
        app_secret=secret.decode(),
        pii_key=_pii(settings).decode(),
    )
    result = load_whatsapp_day(day, landing, own_warehouse)
    assert result.counts["read"] == 2
    assert result.counts["loaded_lines"] == 2
    assert result.counts["chat_export_files"] == 1
    assert result.counts["chat_export_messages"] == 4
    assert result.counts["quarantined"] == 0
    reconciliation = [c for c in result.message_checks if c.name == "reconciliation"]
    assert reconciliation and all(c.passed for c in reconciliation)
