"""The simulated WhatsApp sources: webhook bodies as the Cloud API posts them, their signatures and
faults, the outbound rows they report on, and the chat exports' formats.

Runs the mvp tier for five days with raised fault rates, so every kind of fault occurs and the
counts in the `FaultLog` can be checked against what the files show.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from simulator.chat_exports import generate_chat_exports_day
from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.whatsapp import IST, OUTBOUND_COLUMNS, generate_whatsapp_day
from simulator.world import build_world

SECRET = b"test-app-secret"
START = date(2026, 9, 1)
DAYS = 5
RAISED = FaultRates(
    duplicate=0.08, bad_signature=0.05, status_out_of_order=0.2, delivered_skipped=0.3
)
DIGITS = re.compile(r"^\d{10,15}$")
RANK = {"sent": 0, "delivered": 1, "read": 2}
ERROR_CODES = {131026, 131047, 131049, 131051, 130472}
MESSAGE_FIELDS = {  # type -> fields of its object
    "text": {"body"},
    "image": {"mime_type", "sha256", "id"},
    "document": {"filename", "mime_type", "sha256", "id"},
    "button": {"payload", "text"},
    "reaction": {"message_id", "emoji"},
    "interactive": {"type"},
}


@dataclass(frozen=True)
class Delivery:
    day: date
    received_at: datetime
    signature: str
    raw: bytes
    body: dict[str, Any]

    @property
    def value(self) -> dict[str, Any]:
        return self.body["entry"][0]["changes"][0]["value"]


@dataclass(frozen=True)
class Run:
    config: SimulationConfig
    faults: FaultLog
    outbound: pl.DataFrame
    deliveries: list[Delivery]  # in receipt order, day after day


def simulate(root: Path, seed: int = 7, faults: FaultRates = RAISED) -> Run:
    config = SimulationConfig(
        tier="mvp",
        start=START,
        days=DAYS,
        seed=seed,
        faults=faults,
        landing_root=root / "landing",
        truth_root=root / "truth",
    )
    world, log = build_world(config), FaultLog()
    frames, deliveries = [], []
    for day in config.day_list():
        frames.append(generate_whatsapp_day(world, day, config, log, SECRET))
        generate_chat_exports_day(world, day, config, log)
        path = config.landing_root / "whatsapp" / f"dt={day}" / "deliveries.ndjson.gz"
        for line in gzip.decompress(path.read_bytes()).splitlines():
            record = orjson.loads(line)
            assert set(record) == {"received_at", "signature", "body"}
            raw = record["body"].encode()
            deliveries.append(
                Delivery(
                    day=day,
                    received_at=datetime.fromisoformat(record["received_at"]),
                    signature=record["signature"],
                    raw=raw,
                    body=orjson.loads(raw),
                )
            )
    return Run(config, log, pl.concat(frames), deliveries)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(tmp_path_factory.mktemp("whatsapp"))


def statuses(run: Run) -> list[tuple[int, dict[str, Any]]]:
    """(position in receipt order, status) of every status delivery."""
    return [
        (i, status) for i, d in enumerate(run.deliveries) for status in d.value.get("statuses", [])
    ]


def messages(run: Run) -> list[tuple[Delivery, dict[str, Any]]]:
    return [(d, m) for d in run.deliveries for m in d.value.get("messages", [])]


def verifies(delivery: Delivery) -> bool:
    expected = "sha256=" + hmac.new(SECRET, delivery.raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, delivery.signature)


# --------------------------------------------------------------------------- body structure


def check_contact(contact: dict[str, Any], message: dict[str, Any] | None) -> None:
    assert set(contact) <= {"profile", "wa_id", "user_id"}
    assert "wa_id" in contact or "user_id" in contact
    if "wa_id" in contact:
        assert DIGITS.match(contact["wa_id"])
    if "user_id" in contact:
        assert re.match(r"^[A-Z]{2}\.\w+$", contact["user_id"])
    if message is not None:
        assert isinstance(contact["profile"]["name"], str) and contact["profile"]["name"]
        assert message.get("from") == contact.get("wa_id")
        assert message.get("from_user_id") == contact.get("user_id")


def check_message(message: dict[str, Any]) -> None:
    assert message["id"].startswith("wamid.") and message["timestamp"].isdigit()
    kind = message["type"]
    assert set(message[kind]) >= MESSAGE_FIELDS[kind], message
    if kind == "interactive":
        reply = message["interactive"]["type"]
        assert reply in ("button_reply", "list_reply")
        assert {"id", "title"} <= set(message["interactive"][reply])
    if kind in ("button", "interactive"):
        assert set(message["context"]) == {"from", "id"}
    if "context" in message:
        assert DIGITS.match(message["context"]["from"])
        assert message["context"]["id"].startswith("wamid.")


def check_status(status: dict[str, Any]) -> None:
    assert status["id"].startswith("wamid.") and status["timestamp"].isdigit()
    assert status["status"] in ("sent", "delivered", "read", "failed")
    assert "recipient_id" in status or "recipient_user_id" in status
    if "recipient_id" in status:
        assert DIGITS.match(status["recipient_id"])
    if status["status"] == "failed":
        (error,) = status["errors"]
        assert error["code"] in ERROR_CODES
        assert error["title"] and error["message"] and error["error_data"]["details"]
        assert "pricing" not in status
    elif status["status"] == "read":
        assert "pricing" not in status and "errors" not in status
    else:
        pricing = status["pricing"]
        assert isinstance(pricing["billable"], bool) and pricing["pricing_model"] == "PMP"
        assert pricing["category"] in ("utility", "marketing", "service")
        assert status["conversation"]["origin"]["type"] == pricing["category"]


def test_every_body_has_the_cloud_api_shape(run: Run) -> None:
    assert run.deliveries
    for d in run.deliveries:
        assert d.received_at.utcoffset() == timedelta(hours=5, minutes=30)
        assert d.received_at.date() == d.day
        assert d.raw.isascii(), "Meta escapes non-ASCII as \\uXXXX"
        assert d.body["object"] == "whatsapp_business_account"
        (entry,) = d.body["entry"]
        (change,) = entry["changes"]
        assert entry["id"].isdigit() and change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert DIGITS.match(value["metadata"]["display_phone_number"])
        assert value["metadata"]["phone_number_id"].isdigit()
        assert ("messages" in value) != ("statuses" in value)
        for message in value.get("messages", []):
            (contact,) = value["contacts"]
            check_contact(contact, message)
            check_message(message)
        for status in value.get("statuses", []):
            for contact in value.get("contacts", []):
                check_contact(contact, None)
            check_status(status)


def test_all_message_kinds_and_contact_shapes_occur(run: Run) -> None:
    kinds = Counter(
        m["interactive"]["type"] if m["type"] == "interactive" else m["type"]
        for _, m in messages(run)
    )
    assert set(kinds) == {
        "text",
        "image",
        "document",
        "button_reply",
        "list_reply",
        "button",
        "reaction",
    }
    assert any("context" in m and m["type"] == "text" for _, m in messages(run))
    contacts = [d.value["contacts"][0] for d, _ in messages(run)]
    assert any("wa_id" not in c for c in contacts), "BSUID-only contacts"
    assert any("wa_id" in c and "user_id" in c for c in contacts)
    assert any("user_id" not in c for c in contacts)
    states = Counter(s["status"] for _, s in statuses(run))
    assert set(states) == {"sent", "delivered", "read", "failed"}
    assert any(b"\\ud83d" in d.raw for d in run.deliveries), "emoji escaped as surrogate pairs"


# --------------------------------------------------------------------------- signatures, faults


def test_good_signatures_verify_and_bad_ones_are_exactly_the_recorded_faults(run: Run) -> None:
    bad = [d for d in run.deliveries if not verifies(d)]
    assert all(d.signature.startswith("sha256=") for d in run.deliveries)
    assert len(bad) == run.faults.count("whatsapp", "bad_signature") > 0
    for day in run.config.day_list():
        on_day = sum(1 for d in bad if d.day == day)
        assert on_day == run.faults.count("whatsapp", "bad_signature", day)


def test_duplicates_are_identical_bodies_delivered_again(run: Run) -> None:
    seen: set[bytes] = set()
    again = 0
    for d in run.deliveries:
        again += d.raw in seen
        seen.add(d.raw)
    assert again == run.faults.count("whatsapp", "duplicate") > 0


def first_arrivals(run: Run) -> dict[str, list[tuple[int, int, str]]]:
    """wamid -> [(arrival position, timestamp, status)] of each status's first delivery."""
    out: dict[str, dict[str, tuple[int, int, str]]] = {}
    for position, s in statuses(run):
        out.setdefault(s["id"], {}).setdefault(
            s["status"], (position, int(s["timestamp"]), s["status"])
        )
    return {wamid: sorted(by_state.values()) for wamid, by_state in out.items()}


def test_state_rank_increases_with_timestamp(run: Run) -> None:
    for wamid, arrivals in first_arrivals(run).items():
        by_time = sorted(arrivals, key=lambda a: a[1])
        ranks = [RANK[state] for _, _, state in by_time if state != "failed"]
        assert ranks == sorted(set(ranks)), wamid
        assert len({ts for _, ts, _ in by_time}) == len(by_time), "no ties between states"
        states = {state for _, _, state in by_time}
        assert not ("failed" in states and states & {"delivered", "read"}), wamid


def arrived_out_of_order(arrivals: list[tuple[int, int, str]]) -> bool:
    return [a[2] for a in arrivals] != [a[2] for a in sorted(arrivals, key=lambda a: a[1])]


def read_without_delivered(arrivals: list[tuple[int, int, str]]) -> bool:
    states = {a[2] for a in arrivals}
    return "read" in states and "delivered" not in states


def test_out_of_order_and_skipped_delivered_match_the_fault_log(run: Run) -> None:
    arrivals = first_arrivals(run).values()
    out_of_order = sum(arrived_out_of_order(a) for a in arrivals)
    skipped = sum(read_without_delivered(a) for a in arrivals)
    assert out_of_order == run.faults.count("whatsapp", "status_out_of_order") > 0
    assert skipped == run.faults.count("whatsapp", "delivered_skipped") > 0


# --------------------------------------------------------------------------- outbound rows


def test_outbound_rows_and_their_statuses(run: Run) -> None:
    out = run.outbound
    assert tuple(out.columns) == OUTBOUND_COLUMNS
    assert out.schema["sent_at"] == pl.Datetime("us", "UTC")
    assert out["wamid"].n_unique() == out.height > 0
    world = build_world(run.config)
    opted = world.policyholders.filter("whatsapp_opt_in")["policyholder_id"]
    assert out["policyholder_id"].is_in(opted.implode()).all()
    assert out["template_id"].drop_nulls().is_in(world.templates["template_id"].implode()).all()
    assert out["agent_id"].is_in(world.agents["agent_id"].implode()).all()
    reported = {s["id"] for _, s in statuses(run)}
    assert reported <= set(out["wamid"]), "statuses only for messages in whatsapp_outbound"
    window_end = datetime.combine(run.config.end, time(), IST).astimezone(UTC)
    settled = out.filter(pl.col("sent_at") < window_end - timedelta(seconds=10))["wamid"]
    assert set(settled) <= reported, "every outbound message gets statuses"


def test_replies_point_at_the_agents_messages(run: Run) -> None:
    wamids = set(run.outbound["wamid"])
    for d, message in messages(run):
        if "context" in message:
            assert message["context"]["id"] in wamids
            assert message["context"]["from"] == d.value["metadata"]["display_phone_number"]
        if message["type"] == "reaction":
            assert message["reaction"]["message_id"] in wamids


def test_no_faults_when_the_rates_are_zero(tmp_path: Path) -> None:
    clean = simulate(tmp_path, faults=FaultRates.none())
    assert clean.faults.as_dict() == {}
    assert all(verifies(d) for d in clean.deliveries)
    assert len({d.raw for d in clean.deliveries}) == len(clean.deliveries)


def test_a_day_outside_the_window_is_refused(run: Run) -> None:
    with pytest.raises(ValueError, match="outside"):
        generate_whatsapp_day(
            build_world(run.config), run.config.end, run.config, FaultLog(), SECRET
        )


# --------------------------------------------------------------------------- determinism


def landing_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_and_other_seed_differs(run: Run, tmp_path: Path) -> None:
    first = landing_files(run.config.landing_root)
    again = simulate(tmp_path / "again")
    assert landing_files(again.config.landing_root) == first
    assert again.outbound.equals(run.outbound)
    other = landing_files(simulate(tmp_path / "other", seed=8).config.landing_root)
    for name in ("whatsapp", "whatsapp_exports"):
        mine = {k: v for k, v in first.items() if k.startswith(name)}
        theirs = {k: v for k, v in other.items() if k.startswith(name)}
        assert mine != theirs


# --------------------------------------------------------------------------- chat exports

STAMPS = {  # (platform, clock) -> the start of a line that begins a message or notice
    ("android", 24): re.compile(r"^(\d{2})/(\d{2})/(\d{2}), (\d{2}):(\d{2}) - "),
    ("android", 12): re.compile(r"^(\d{2})/(\d{2})/(\d{2}), (\d{1,2}):(\d{2}) ([ap]m) - "),
    ("ios", 24): re.compile(r"^\u200e?\[(\d{2})/(\d{2})/(\d{2}), (\d{2}):(\d{2}):(\d{2})\] "),
    ("ios", 12): re.compile(
        r"^\u200e?\[(\d{2})/(\d{2})/(\d{2}), (\d{1,2}):(\d{2}):(\d{2})\u202f([AP]M)\] "
    ),
}
NOTICE = "Messages and calls are end-to-end encrypted."


def parse_export(path: Path) -> tuple[tuple[str, int], list[tuple[datetime, str]]]:
    """(format, [(time, first line of each message)]): every line must begin a message in the
    file's one format or continue the previous message."""
    lines = path.read_text(encoding="utf-8").splitlines()
    formats = [key for key, rx in STAMPS.items() if rx.match(lines[0])]
    assert len(formats) == 1, lines[0]
    fmt, rx = formats[0], STAMPS[formats[0]]
    parsed: list[tuple[datetime, str]] = []
    for line in lines:
        match = rx.match(line)
        if match is None:
            assert parsed and not any(r.match(line) for r in STAMPS.values()), line
            continue
        day, month, year, hour, minute = (int(g) for g in match.groups()[:5])
        if fmt[1] == 12:
            hour = hour % 12 + (12 if match.groups()[-1].lower() == "pm" else 0)
        parsed.append((datetime(2000 + year, month, day, hour, minute), line[match.end() :]))
    return fmt, parsed


def test_chat_exports_parse_in_both_formats_and_clocks(tmp_path: Path) -> None:
    config = SimulationConfig(tier="mvp", start=START, days=10, landing_root=tmp_path)
    world, formats, texts = build_world(config), set(), []
    for day in config.day_list():
        written = generate_chat_exports_day(world, day, config, FaultLog())
        files = sorted((tmp_path / "whatsapp_exports" / f"dt={day}").glob("*.txt"))
        assert written == len(files) >= 1
        for path in files:
            assert path.name.startswith("WhatsApp Chat with ") and path.suffix == ".txt"
            fmt, parsed = parse_export(path)
            formats.add(fmt)
            assert NOTICE in parsed[0][1]
            times = [t for t, _ in parsed]
            assert times == sorted(times) and times[-1].date() <= day
            assert times[0].date() >= day - timedelta(days=31)
            texts.append((fmt, path.read_text(encoding="utf-8")))
    assert {p for p, _ in formats} == {"android", "ios"}
    assert {c for _, c in formats} == {12, 24}
    android = "".join(t for (p, _), t in texts if p == "android")
    ios = "".join(t for (p, _), t in texts if p == "ios")
    assert "<Media omitted>" in android and "\u200eimage omitted" in ios
    assert re.search(r"\n\u200e\[", ios), "iOS media lines start with U+200E"
    assert any(re.search(r"\n[^\[\d\u200e]", t) for _, t in texts), "multi-line messages"
