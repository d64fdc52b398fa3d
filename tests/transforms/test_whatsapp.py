"""WhatsApp webhook transforms on simulator output: signatures, accounting, duplicates, final
states against the simulator's truth, and PII.

Two mvp runs of a week with raised fault rates: `run` has every fault (bad signatures included);
`kept` has the same rates without bad signatures, so that every planned status reaches the clean
frames and the folded states can be compared with the truth for every settled message.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.whatsapp import IST, generate_whatsapp_day, meta_json, sign, true_message_states
from simulator.world import World, build_world
from transforms.pii import normalise_e164, phone_token, phone_token_expr
from transforms.whatsapp import (
    MESSAGES_SCHEMA,
    QUARANTINE_SCHEMA,
    STATE_RANK,
    STATES_SCHEMA,
    STATUSES_SCHEMA,
    WhatsAppResult,
    id_token_expr,
    merge_states,
    message_states,
    parse_webhook_deliveries,
)

SECRET = b"test-app-secret"
PII_KEY = b"test-pii-key"
START = date(2026, 9, 1)
DAYS = 7
RAISED = FaultRates(
    duplicate=0.08, bad_signature=0.05, status_out_of_order=0.2, delivered_skipped=0.3
)
# Statuses reach us within seconds of their time (plus at most 90 s when delayed out of order):
# a message whose last planned status is this long before the window's end is fully observed.
SETTLE_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Line:
    day: date
    signature: str
    received_at: str
    raw: bytes  # the body bytes

    @property
    def verifies(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET, self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)

    @property
    def value(self) -> dict[str, Any]:
        return orjson.loads(self.raw)["entry"][0]["changes"][0]["value"]

    @property
    def keys(self) -> list[tuple[str, str | None]]:
        """(wamid, status) of each record of the body; status None for a message."""
        value = self.value
        return [(m["id"], None) for m in value.get("messages", [])] + [
            (s["id"], s["status"]) for s in value.get("statuses", [])
        ]


@dataclass(frozen=True)
class Run:
    config: SimulationConfig
    world: World
    faults: FaultLog
    lines: list[Line]  # in file order, day after day
    results: dict[date, WhatsAppResult]

    @property
    def messages(self) -> pl.DataFrame:
        return pl.concat([r.messages for r in self.results.values()])

    @property
    def statuses(self) -> pl.DataFrame:
        return pl.concat([r.statuses for r in self.results.values()])


def simulate(root: Path, faults: FaultRates) -> Run:
    config = SimulationConfig(
        tier="mvp",
        start=START,
        days=DAYS,
        faults=faults,
        landing_root=root / "landing",
        truth_root=root / "truth",
    )
    world, log = build_world(config), FaultLog()
    lines, results = [], {}
    for day in config.day_list():
        generate_whatsapp_day(world, day, config, log, SECRET)
        data = (
            config.landing_root / "whatsapp" / f"dt={day}" / "deliveries.ndjson.gz"
        ).read_bytes()
        results[day] = parse_webhook_deliveries(data, day, SECRET, PII_KEY)
        for raw_line in gzip.decompress(data).splitlines():
            record = orjson.loads(raw_line)
            lines.append(
                Line(day, record["signature"], record["received_at"], record["body"].encode())
            )
    return Run(config, world, log, lines, results)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return simulate(tmp_path_factory.mktemp("whatsapp"), RAISED)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Run:
    rates = FaultRates(**{**RAISED.__dict__, "bad_signature": 0.0})
    return simulate(tmp_path_factory.mktemp("whatsapp_kept"), rates)


# --------------------------------------------------------------------------- helpers


def delivery(body: dict[str, Any] | bytes, signature: str | None = None, **extra: Any) -> bytes:
    """One landing line for `body`, signed with SECRET unless told otherwise."""
    raw = body if isinstance(body, bytes) else meta_json(body)
    line: dict[str, Any] = {"received_at": "2026-09-01T10:00:00.000+05:30", "body": raw.decode()}
    line["signature"] = sign(raw, SECRET) if signature is None else signature
    return orjson.dumps({**line, **extra})


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": "919800000001", "phone_number_id": "123456789012345"}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [{"value": {"metadata": metadata, **value}, "field": "messages"}],
            }
        ],
    }


def text_message(wamid: str, phone: str = "919812345678") -> dict[str, Any]:
    return {"from": phone, "id": wamid, "timestamp": "1788240000", "type": "text",
            "text": {"body": "Paid today"}}  # fmt: skip


def status(wamid: str, state: str, ts: int, code: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(ts)}
    if code is not None:
        out["errors"] = [{"code": code, "title": "Message undeliverable"}]
    return out


def parse(*lines: bytes) -> WhatsAppResult:
    return parse_webhook_deliveries(b"\n".join(lines) + b"\n", START, SECRET, PII_KEY)


def fold(run: Run, days: list[date] | None = None) -> pl.DataFrame:
    states = None
    for day in days or run.config.day_list():
        states = merge_states(states, run.results[day].statuses)
    assert states is not None
    return states


def window_end(run: Run) -> datetime:
    return datetime.combine(run.config.end, time(), IST).astimezone(UTC)


# --------------------------------------------------------------------------- accounting


def test_frames_have_the_one_schema(run: Run) -> None:
    for result in run.results.values():
        assert result.messages.schema == pl.Schema(MESSAGES_SCHEMA)
        assert result.statuses.schema == pl.Schema(STATUSES_SCHEMA)
        assert result.rejected.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert fold(run).schema == pl.Schema(STATES_SCHEMA)


def test_every_line_is_accounted_for(run: Run) -> None:
    """read = loaded lines + duplicate lines + rejected lines; records = loaded + duplicates. The
    simulator puts one record in each body, so records = accepted lines too."""
    for day, result in run.results.items():
        counts = result.counts()
        on_day = [line for line in run.lines if line.day == day]
        assert result.read == len(on_day)
        assert (
            counts["read"]
            == counts["loaded_lines"] + counts["duplicate_lines"] + counts["rejected"]
        )
        assert result.accepted == result.read - result.rejected.height
        assert counts["records"] == (
            counts["loaded"] + counts["duplicates"] + counts["quarantined_records"]
        )
        assert counts["quarantined_records"] == 0  # the simulator sends only what Meta sends
        assert counts["records"] == sum(len(line.keys) for line in on_day if line.verifies)
        assert result.duplicate_lines == result.duplicates  # one record per body
        assert (result.rejected["received_day"] == day).all()


def test_bad_signatures_are_rejected_as_logged_each_day(run: Run) -> None:
    for day, result in run.results.items():
        assert set(result.rejected["reason"]) <= {"bad_signature"}
        assert result.rejected.height == run.faults.count("whatsapp", "bad_signature", day)
    assert sum(r.rejected.height for r in run.results.values()) > 0


def test_no_record_of_a_bad_signature_reaches_the_clean_frames(run: Run) -> None:
    """A record of a rejected line may still arrive in a good re-delivery, but never with the
    rejected line's receipt time."""
    bad = [line for line in run.lines if not line.verifies]
    received = {
        (wamid, state, datetime.fromisoformat(line.received_at))
        for line in bad
        for wamid, state in line.keys
    }
    clean = {
        (wamid, None, at) for wamid, at in run.messages.select("wamid", "received_at").iter_rows()
    } | set(run.statuses.select("wamid", "status", "received_at").iter_rows())
    assert bad and not received & clean
    for day, result in run.results.items():
        quarantined = {orjson.loads(r)["signature"] for r in result.rejected["raw"]}
        assert quarantined == {line.signature for line in bad if line.day == day}


def cross_day_duplicates(run: Run) -> int:
    """Records loaded on one day whose key was already loaded on an earlier day (staging's
    dedupe, which works across partitions)."""
    total = 0
    for name, key in (("messages", ["wamid"]), ("statuses", ["wamid", "status"])):
        frames = [getattr(r, name).select(key) for r in run.results.values()]
        seen = frames[0].head(0)
        for frame in frames:
            total += frame.join(seen, on=key, how="semi").height
            seen = pl.concat([seen, frame])
    return total


def test_duplicates_dropped_equal_the_fault_log_without_bad_signatures(kept: Run) -> None:
    """Each logged duplicate is a body delivered again; its one record is dropped, on the day of
    the re-delivery when the first copy came the same day, else by the cross-day dedupe."""
    within = sum(r.duplicates for r in kept.results.values())
    logged = kept.faults.count("whatsapp", "duplicate")
    assert logged > 0
    assert within + cross_day_duplicates(kept) == logged


def test_duplicates_dropped_with_bad_signatures(run: Run) -> None:
    """With bad signatures, a logged re-delivery is not a dropped duplicate when it is itself
    rejected, or when every earlier copy was rejected (it is then the first good copy)."""
    seen_any: set[bytes] = set()
    seen_good: set[bytes] = set()
    rejected_again = rescued = 0
    per_day: dict[date, int] = dict.fromkeys(run.config.day_list(), 0)
    first_good_day: dict[bytes, date] = {}
    for line in run.lines:
        again = line.raw in seen_any
        if again and not line.verifies:
            rejected_again += 1
        elif again and line.raw not in seen_good:
            rescued += 1
        elif again and first_good_day[line.raw] == line.day:
            per_day[line.day] += len(line.keys)
        seen_any.add(line.raw)
        if line.verifies:
            seen_good.add(line.raw)
            first_good_day.setdefault(line.raw, line.day)
    logged = run.faults.count("whatsapp", "duplicate")
    dropped = sum(r.duplicates for r in run.results.values()) + cross_day_duplicates(run)
    assert dropped == logged - rejected_again - rescued
    assert {day: r.duplicates for day, r in run.results.items()} == per_day


# --------------------------------------------------------------------------- states


def rank(state: str | None) -> int:
    return STATE_RANK.get(state or "", 0)


def compare_with_truth(run: Run, exclude: set[str]) -> tuple[int, int]:
    """Assert the folded states equal the truth for every settled message not in `exclude`, and
    are never beyond it for the others; returns (compared exactly, compared as a bound)."""
    truth = true_message_states(run.world, run.config).with_columns(
        wamid_token=id_token_expr("wamid", PII_KEY)
    )
    states = fold(run)
    assert "wamid" not in states.columns, "the states table holds no raw wamid"
    assert set(states["wamid_token"]) <= set(truth["wamid_token"]), "statuses only for outbound"
    joined = truth.join(states, on="wamid_token", how="left")
    settled = pl.col("settled_at") < window_end(run) - SETTLE_MARGIN
    exact = joined.filter(settled & ~pl.col("wamid").is_in(list(exclude)))
    mismatched = exact.filter(  # truth on the left, what ingestion folded on the right
        pl.col("state").ne_missing(pl.col("final_state"))
        | pl.col("failed").ne_missing(pl.col("failed_right"))
        | pl.col("error_code").ne_missing(pl.col("error_code_right"))
    )
    assert mismatched.is_empty(), mismatched
    bounded = joined.filter(~pl.col("wamid").is_in(exact["wamid"].implode()))
    for seen, true in bounded.select("state", "final_state").iter_rows():
        assert rank(seen) <= rank(true)
    return exact.height, bounded.height


def test_folded_states_equal_the_truth(kept: Run) -> None:
    """Despite duplicates, statuses out of order and skipped `delivered`, the state folded day by
    day is the true final state of every message whose statuses have all arrived."""
    for fault in ("duplicate", "status_out_of_order", "delivered_skipped"):
        assert kept.faults.count("whatsapp", fault) > 0, fault
    exact, bounded = compare_with_truth(kept, exclude=set())
    assert exact > 10 * bounded, "only the last hours' messages are still in flight"


def test_folded_states_with_bad_signatures(run: Run) -> None:
    """A status whose only delivery was rejected is lost (Meta would retry after our 401; the
    simulator does not): those messages are compared as a bound, all others exactly."""
    touched = {wamid for line in run.lines if not line.verifies for wamid, _ in line.keys}
    exact, _ = compare_with_truth(run, exclude=touched)
    assert exact > 0


def test_merge_states_is_associative(run: Run) -> None:
    days = run.config.day_list()
    everything = message_states(run.statuses)
    assert fold(run).equals(everything)
    assert fold(run, list(reversed(days))).equals(everything)
    shuffled = run.statuses.sample(fraction=1.0, shuffle=True, seed=3)
    halves = shuffled.head(shuffled.height // 3), shuffled.tail(-(shuffled.height // 3))
    assert merge_states(message_states(halves[0]), halves[1]).equals(everything)
    assert merge_states(merge_states(None, halves[1]), halves[0]).equals(everything)


def test_message_states_rules() -> None:
    at = datetime(2026, 9, 1, 10, tzinfo=UTC)
    rows = [
        ("a", "read", at + timedelta(seconds=30), None),  # read arrives first, delivered skipped
        ("a", "sent", at, None),
        ("a", "read", at + timedelta(seconds=90), None),  # a second read: the first one counts
        ("b", "sent", at, None),
        ("b", "failed", at + timedelta(seconds=5), 131026),
        ("c", "failed", at, 131049),  # failed before it was ever sent
        ("d", "delivered", at + timedelta(seconds=3), None),
        ("d", "sent", at + timedelta(seconds=1), None),
        ("d", "deleted", at + timedelta(seconds=9), None),  # apart, like a failure
        ("e", "read", at + timedelta(seconds=20), None),
        ("e", "played", at + timedelta(seconds=40), None),  # a voice note: beyond read
        ("e", "delivered", at + timedelta(seconds=10), None),
        ("e", "pending_review", at + timedelta(seconds=50), None),  # unknown: only last_status_at
    ]
    statuses = pl.DataFrame(
        rows, schema=["wamid_token", "status", "status_at", "error_code"], orient="row"
    ).with_columns(pl.col("status_at").dt.cast_time_unit("us"))
    states = {row["wamid_token"]: row for row in message_states(statuses).iter_rows(named=True)}
    assert (states["a"]["state"], states["a"]["state_at"]) == ("read", at + timedelta(seconds=30))
    assert states["a"]["last_status_at"] == at + timedelta(seconds=90)
    assert (states["b"]["state"], states["b"]["failed"], states["b"]["error_code"]) == (
        "sent",
        True,
        131026,
    )
    assert (states["c"]["state"], states["c"]["failed"], states["c"]["error_code"]) == (
        None,
        True,
        131049,
    )
    assert states["d"]["state"] == "delivered" and not states["d"]["failed"]
    assert (states["d"]["deleted"], states["d"]["deleted_at"]) == (True, at + timedelta(seconds=9))
    assert states["d"]["last_status_at"] == at + timedelta(seconds=9)
    assert (states["e"]["state"], states["e"]["state_at"]) == ("played", at + timedelta(seconds=40))
    assert not states["e"]["deleted"] and not states["e"]["failed"]
    assert states["e"]["last_status_at"] == at + timedelta(seconds=50)


# --------------------------------------------------------------------------- PII


ID_COLUMNS = {  # the columns that hold long digit runs by design: ids, not phone numbers
    "wamid",
    "context_wamid",
    "reaction_to_wamid",
    "phone_number_id",
    "media_id",
    "customer_user_id",
    "recipient_user_id",
    "conversation_id",  # Meta's hex id of the billing conversation
}
TOKEN_COLUMNS = {
    "customer_phone_token",
    "recipient_phone_token",
    "export_file",
    "wamid_token",
    "context_wamid_token",
    "reaction_to_wamid_token",
}


def clear_numbers(world: World) -> list[str]:
    """Every phone number of the world, as the 10 national digits any format contains."""
    phones = pl.concat(
        [
            world.policyholders["phone"],
            world.agents["phone"],
            world.agents["whatsapp_business_number"],
        ]
    )
    return [re.sub(r"\D", "", p)[-10:] for p in phones.to_list()]


def assert_no_clear_phone(
    frame: pl.DataFrame, world: World, digit_runs_allowed: frozenset[str] = frozenset()
) -> None:
    """No phone number of the world in any string column; no run of 10+ digits outside the id
    columns and `digit_runs_allowed`; tokens are 64 hex digits."""
    numbers = clear_numbers(world)
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame[name].drop_nulls()
        assert not values.str.contains_any(numbers).any(), f"a phone number in {name}"
        if name in TOKEN_COLUMNS:
            assert values.str.contains(r"^[0-9a-f]{64}$").all(), name
        elif name not in ID_COLUMNS | digit_runs_allowed:
            assert not values.str.contains(r"\d{10,}").any(), f"a long digit run in {name}"


def test_no_phone_number_in_clear(run: Run) -> None:
    assert_no_clear_phone(run.messages, run.world)
    assert_no_clear_phone(run.statuses, run.world)
    assert_no_clear_phone(fold(run), run.world)
    names = run.world.policyholders["full_name"].to_list()
    for frame in (run.messages, run.statuses):
        for name in frame.columns:
            if frame[name].dtype == pl.String and name != "text_body":
                assert not frame[name].drop_nulls().is_in(names).any(), name


def test_phone_tokens_are_the_hmac_of_the_e164_number(run: Run) -> None:
    expected_messages, expected_statuses = {}, {}
    for line in run.lines:
        value = line.value
        for m in value.get("messages", []):
            expected_messages[m["id"]] = m.get("from")
        for s in value.get("statuses", []):
            expected_statuses[(s["id"], s["status"])] = s.get("recipient_id")
    world_phones = set(run.world.policyholders["phone"])
    tokens = 0
    for wamid, token in run.messages.select("wamid", "customer_phone_token").iter_rows():
        phone = expected_messages[wamid]
        assert token == (None if phone is None else phone_token("+" + phone, PII_KEY))
        if phone is not None:
            assert "+" + phone in world_phones
            tokens += 1
    for wamid, state, token in run.statuses.select(
        "wamid", "status", "recipient_phone_token"
    ).iter_rows():
        phone = expected_statuses[(wamid, state)]
        assert token == (None if phone is None else phone_token(phone, PII_KEY))
    assert tokens > 0
    assert run.messages["customer_phone_token"].null_count() > 0, "BSUID-only customers"
    assert run.messages["customer_user_id"].null_count() < run.messages.height


def test_phone_token_normalises_to_e164() -> None:
    expected = hmac.new(PII_KEY, b"+919812345678", hashlib.sha256).hexdigest()
    for form in ("919812345678", "+91 98123 45678", "+919812345678", "9812345678",
                 "09812345678", "0091-98123-45678", "\u200e+91 98123\u00a045678"):  # fmt: skip
        assert phone_token(form, PII_KEY) == expected, form
    assert normalise_e164("14155550123") == "+14155550123"
    assert phone_token("+91 98123 45678", b"other key") != expected
    for bad in ("", "abc", "12345", "+91 98123 4567x"):
        with pytest.raises(ValueError, match="phone"):
            phone_token(bad, PII_KEY)
    with pytest.raises(ValueError, match="key"):
        phone_token("919812345678", b"")
    frame = pl.DataFrame({"p": ["919812345678", None, "not a phone", "+91 98123 45678"]})
    tokens = frame.select(phone_token_expr("p", PII_KEY))["p"].to_list()
    assert tokens == [expected, None, None, expected]


# --------------------------------------------------------------------------- flattening


def test_every_message_kind_is_flattened(run: Run) -> None:
    bodies = {
        m["id"]: m for line in run.lines if line.verifies for m in line.value.get("messages", [])
    }
    rows = run.messages.iter_rows(named=True)
    kinds = set()
    for row in rows:
        body = bodies[row["wamid"]]
        kind = body["type"]
        kinds.add(body["interactive"]["type"] if kind == "interactive" else kind)
        assert row["message_type"] == kind and row["source"] == "webhook"
        assert row["direction"] == "inbound" and row["export_file"] is None
        assert row["sent_at"] == datetime.fromtimestamp(int(body["timestamp"]), UTC)
        assert row["customer_user_id"] == body.get("from_user_id")
        assert row["context_wamid"] == body.get("context", {}).get("id")
        payload = body[kind]
        if kind == "text":
            assert row["text_body"] == payload["body"]
        elif kind in ("image", "document"):
            assert (row["media_id"], row["mime_type"]) == (payload["id"], payload["mime_type"])
            assert row["text_body"] == payload.get("caption")
        elif kind == "interactive":
            reply = payload[payload["type"]]
            assert (row["interactive_type"], row["reply_id"], row["reply_title"]) == (
                payload["type"],
                reply["id"],
                reply["title"],
            )
        elif kind == "button":
            assert (row["button_payload"], row["text_body"]) == (
                payload["payload"],
                payload["text"],
            )
        elif kind == "reaction":
            assert (row["reaction_emoji"], row["reaction_to_wamid"]) == (
                payload["emoji"],
                payload["message_id"],
            )
    assert kinds == {
        "text",
        "image",
        "document",
        "button_reply",
        "list_reply",
        "button",
        "reaction",
    }
    failed = run.statuses.filter(pl.col("status") == "failed")
    assert failed.height > 0 and failed["error_code"].is_not_null().all()
    assert run.statuses.filter(pl.col("status") == "sent")["pricing_category"].is_not_null().all()


def test_received_at_and_day(run: Run) -> None:
    for day, result in run.results.items():
        for frame in (result.messages, result.statuses):
            local = frame["received_at"].dt.convert_time_zone("Asia/Kolkata").dt.date()
            assert (local == day).all() and (frame["received_day"] == day).all()


# --------------------------------------------------------------------------- edge cases


def test_each_kind_of_bad_line_is_rejected_with_its_reason() -> None:
    good = envelope({"messages": [text_message("wamid.A")]})
    raw = meta_json(good)
    tampered = raw.replace(b"Paid today", b"Paid twice")
    result = parse(
        delivery(good),
        b"{not json",
        delivery(tampered, signature=sign(raw, SECRET)),
        delivery(good, signature="sha256=" + "0" * 64),
        orjson.dumps({"received_at": "2026-09-01T10:00:00+05:30", "body": raw.decode()}),
        delivery(b"{broken"),
        delivery({"object": "page", "entry": []}),
        delivery(envelope({"statuses": [{"id": "wamid.B"}]})),
        delivery(envelope({})),
        delivery(good, received_at="yesterday"),
        delivery({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]}),
    )
    assert result.rejected["reason"].to_list() == [
        "invalid_json",
        "bad_signature",
        "bad_signature",
        "bad_signature",
        "invalid_json",
        "unexpected_shape",
        "unexpected_shape",
        "no_records",
    ]
    assert result.rejected["line_number"].to_list() == [2, 3, 4, 5, 6, 7, 10, 11]
    # Inside a verified WhatsApp envelope, a bad record is quarantined on its own.
    assert result.quarantined.select("line_number", "record_index", "reason").rows() == [
        (8, 0, "missing_field:status"),
        (9, 0, "no_records:messages"),
    ]
    assert orjson.loads(result.quarantined["raw"][0]) == {"id": "wamid.B"}
    assert result.messages["wamid"].to_list() == ["wamid.A"]
    assert result.messages["text_body"].to_list() == ["Paid today"]
    assert (result.read, result.accepted, result.duplicates) == (11, 3, 0)
    counts = result.counts()
    assert counts["read"] == counts["loaded_lines"] + counts["duplicate_lines"] + counts["rejected"]
    assert counts["records"] == 3 == counts["loaded"] + counts["quarantined_records"]


def test_a_body_with_several_records_counts_each_record() -> None:
    """Meta may batch records in one body: its re-delivery drops every record (duplicates) but is
    one duplicate line."""
    body = envelope(
        {
            "messages": [text_message("wamid.A"), text_message("wamid.B")],
            "statuses": [status("wamid.X", "sent", 1788240000)],
        }
    )
    again = envelope(
        {"statuses": [status("wamid.X", "sent", 1788240000), status("wamid.X", "read", 1788240060)]}
    )
    result = parse(delivery(body), b"", delivery(body), delivery(again))
    assert (result.read, result.accepted) == (3, 3)
    assert (result.duplicates, result.duplicate_lines, result.loaded_lines) == (4, 1, 2)
    assert result.counts()["records"] == 8 == result.loaded + result.duplicates
    assert result.statuses["status"].to_list() == ["sent", "read"]


def test_gzip_and_plain_input_give_the_same_frames() -> None:
    data = delivery(envelope({"messages": [text_message("wamid.A")]})) + b"\n"
    plain = parse_webhook_deliveries(data, START, SECRET, PII_KEY)
    zipped = parse_webhook_deliveries(gzip.compress(data), START, SECRET, PII_KEY)
    assert plain.messages.equals(zipped.messages) and plain.read == zipped.read == 1


def test_empty_input() -> None:
    result = parse_webhook_deliveries(b"", START, SECRET, PII_KEY)
    assert result.messages.is_empty() and result.statuses.is_empty() and result.read == 0
    assert result.messages.schema == pl.Schema(MESSAGES_SCHEMA)
    assert message_states(result.statuses).schema == pl.Schema(STATES_SCHEMA)
