"""Real-shaped Cloud API webhook bodies (tests/data/whatsapp_webhooks, one file per payload kind,
written from Meta's reference and real clients' types), each signed with the app secret and
parsed through `parse_webhook_deliveries`: the rows each kind becomes, column by column."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from simulator.whatsapp import meta_json, sign
from transforms.pii import keyed_token, phone_token
from transforms.whatsapp import WhatsAppResult, parse_webhook_deliveries

CORPUS = Path(__file__).parents[1] / "data" / "whatsapp_webhooks"
SECRET = b"test-app-secret"
PII_KEY = b"test-pii-key"
DAY = date(2026, 9, 1)
RECEIVED_AT = "2026-09-01T10:00:00.000+05:30"
CUSTOMER = "919812345678"


def body(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


def landing_line(payload: dict[str, Any], received_at: str = RECEIVED_AT) -> bytes:
    raw = meta_json(payload)
    return orjson.dumps(
        {"received_at": received_at, "signature": sign(raw, SECRET), "body": raw.decode()}
    )


def parse(*names: str) -> WhatsAppResult:
    data = b"\n".join(landing_line(body(name)) for name in names) + b"\n"
    return parse_webhook_deliveries(data, DAY, SECRET, PII_KEY)


def row(frame: pl.DataFrame, **where: Any) -> dict[str, Any]:
    rows = frame.filter(**where).to_dicts()
    assert len(rows) == 1, (where, rows)
    return rows[0]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def token(value: str) -> str:
    return keyed_token(value, PII_KEY)


def assert_balanced(result: WhatsAppResult) -> None:
    counts = result.counts()
    assert counts["read"] == counts["loaded_lines"] + counts["duplicate_lines"] + counts["rejected"]
    assert counts["records"] == (
        counts["loaded"] + counts["duplicates"] + counts["quarantined_records"]
    )


def only(result: WhatsAppResult, table: str, rows: int) -> pl.DataFrame:
    """The one table `result` filled (with `rows` rows); every other table is empty."""
    assert {name: f.height for name, f in result.frames.items() if f.height} == {table: rows}
    assert result.quarantine.is_empty()
    assert_balanced(result)
    return result.frames[table]


# --------------------------------------------------------------------------- messages


def test_text_with_a_click_to_whatsapp_referral() -> None:
    messages = only(parse("message_text_referral"), "messages", 1)
    text = row(messages, wamid="wamid.TXT1")
    assert (text["source"], text["direction"]) == ("webhook", "inbound")
    assert text["message_type"] == "text"
    assert text["text_body"] == "Is my policy renewed?"
    assert text["sent_at"] == at(1788236000)
    assert text["customer_phone_token"] == phone_token(CUSTOMER, PII_KEY)
    assert text["customer_user_id"] == "IN.1234567890123456"
    assert text["wamid_token"] == token("wamid.TXT1")
    assert (text["context_wamid"], text["context_wamid_token"]) == (
        "wamid.OUT1",
        token("wamid.OUT1"),
    )
    assert text["forwarded"] is False
    assert text["referral_source_type"] == "ad"
    assert text["referral_source_id"] == "120212345678"
    assert text["referral_source_url"] == "https://fb.me/3cr4Wqqkp"
    assert text["referral_headline"] == "Term plans from Rs 500"
    assert text["referral_media_type"] == "image"
    assert text["referral_ctwa_clid"].startswith("ARAkLkA8")
    assert "Kavita" not in str(messages.row(0)), "profile names never leave the parser"


def test_media_messages_keep_id_type_caption_and_flags() -> None:
    messages = only(parse("message_media"), "messages", 5)
    image = row(messages, wamid="wamid.IMG1")
    assert (image["message_type"], image["media_id"], image["mime_type"], image["text_body"]) == (
        "image",
        "1003383421387256",
        "image/jpeg",
        "Receipt",
    )
    assert row(messages, wamid="wamid.VID1")["mime_type"] == "video/mp4"
    audio = row(messages, wamid="wamid.AUD1")
    assert (audio["message_type"], audio["voice"]) == ("audio", True)
    document = row(messages, wamid="wamid.DOC1")
    assert (document["media_filename"], document["text_body"]) == ("proposal_form.pdf", "Form")
    sticker = row(messages, wamid="wamid.STK1")
    assert (sticker["message_type"], sticker["animated"]) == ("sticker", True)


def test_interactive_replies_of_every_kind() -> None:
    messages = only(parse("message_interactive"), "messages", 4)
    button = row(messages, wamid="wamid.INT1")
    assert (button["interactive_type"], button["reply_id"], button["reply_title"]) == (
        "button_reply",
        "renew_yes",
        "Yes, renew",
    )
    assert button["context_wamid"] == "wamid.OUT2"
    listed = row(messages, wamid="wamid.INT2")
    assert (listed["interactive_type"], listed["reply_id"], listed["text_body"]) == (
        "list_reply",
        "plan_term",
        "Pure cover",
    )
    flow = row(messages, wamid="wamid.INT3")
    assert (flow["interactive_type"], flow["flow_name"], flow["text_body"]) == (
        "nfm_reply",
        "flow",
        "Sent",
    )
    assert json.loads(flow["flow_response_json"]) == {
        "flow_token": "tok-1",
        "sum_assured": "5000000",
        "smoker": "no",
    }
    permission = row(messages, wamid="wamid.INT4")
    assert (permission["interactive_type"], permission["permission_response"]) == (
        "call_permission_reply",
        "accept",
    )
    assert permission["reply_title"] == "user_action"


def test_template_button_reply() -> None:
    button = row(only(parse("message_button"), "messages", 1), wamid="wamid.BTN1")
    assert (button["message_type"], button["button_payload"], button["text_body"]) == (
        "button",
        "PAY_NOW",
        "Pay now",
    )
    assert button["context_wamid_token"] == token("wamid.TPL1")


def test_order_keeps_catalog_and_items() -> None:
    order = row(only(parse("message_order"), "messages", 1), wamid="wamid.ORD1")
    assert (order["message_type"], order["order_catalog_id"], order["order_item_count"]) == (
        "order",
        "838275294768322",
        2,
    )
    items = json.loads(order["order_product_items_json"])
    assert [i["product_retailer_id"] for i in items] == ["TERM-1CR", "RIDER-ADB"]
    assert order["text_body"] == "Please add rider"


def test_location_and_contact_cards_keep_no_personal_data() -> None:
    messages = only(parse("message_location_contacts"), "messages", 2)
    location = row(messages, wamid="wamid.LOC1")
    assert location["message_type"] == "location"
    cards = row(messages, wamid="wamid.CON1")
    assert (cards["message_type"], cards["shared_contact_count"]) == ("contacts", 2)
    flat = str(messages.to_dicts())
    for personal in ("19.076", "72.877", "Marine Drive", "Ravi", "98111", "98444", "Anita"):
        assert personal not in flat, personal


def test_reactions_and_a_removed_reaction() -> None:
    messages = only(parse("message_reaction"), "messages", 2)
    added = row(messages, wamid="wamid.REA1")
    assert (added["reaction_emoji"], added["reaction_to_wamid"]) == ("\U0001f44d", "wamid.OUT1")
    assert added["reaction_to_wamid_token"] == token("wamid.OUT1")
    removed = row(messages, wamid="wamid.REA2")
    assert removed["message_type"] == "reaction" and removed["reaction_emoji"] is None


def test_unsupported_message_keeps_its_error() -> None:
    unsupported = row(only(parse("message_unsupported"), "messages", 1), wamid="wamid.UNS1")
    assert (unsupported["message_type"], unsupported["error_code"]) == ("unsupported", 131051)
    assert unsupported["error_title"] == "Message type unknown"
    assert json.loads(unsupported["errors_json"])[0]["error_data"]["details"].startswith("Message")


def test_an_unknown_message_type_is_quarantined_beside_the_loaded_one() -> None:
    result = parse("message_unknown_type")
    assert result.messages["wamid"].to_list() == ["wamid.TXT9"]
    quarantined = row(result.quarantine, reason="unhandled_type:hologram")
    assert (quarantined["line_number"], quarantined["record_index"]) == (1, 0)
    assert orjson.loads(quarantined["raw"])["id"] == "wamid.NEW1"
    assert result.rejected.is_empty()
    assert_balanced(result)


# --------------------------------------------------------------------------- statuses


def test_statuses_of_every_kind_with_conversation_pricing_and_errors() -> None:
    statuses = only(parse("statuses"), "statuses", 7)
    assert statuses.sort("status_at")["status"].to_list() == [
        "sent",
        "delivered",
        "failed",
        "deleted",
        "pending_review",  # unknown: loaded as data
        "read",
        "played",
    ]
    sent = row(statuses, wamid="wamid.OUT1", status="sent")
    assert sent["conversation_id"] == "4b0a1a2f0c7e3bd5b0d8f8c2a1e0f9d1"
    assert sent["conversation_origin_type"] == "utility"
    assert sent["conversation_expires_at"] == at(1788322400)
    assert (sent["pricing_billable"], sent["pricing_model"]) == (True, "PMP")
    assert (sent["pricing_category"], sent["pricing_type"]) == ("utility", "regular")
    assert sent["recipient_phone_token"] == phone_token(CUSTOMER, PII_KEY)
    assert sent["wamid_token"] == token("wamid.OUT1")
    failed = row(statuses, status="failed")
    assert (failed["error_code"], failed["error_title"]) == (
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
    )
    assert [e["code"] for e in json.loads(failed["errors_json"])] == [131049, 131026]


# --------------------------------------------------------------------------- other fields


def test_calls_go_to_their_own_table_never_to_statuses() -> None:
    calls = only(parse("calls"), "calls", 3)
    wacid = "wacid.HBgMOTE5ODEyMzQ1Njc4FQIAEhggQUY3"
    connect = row(calls, event="connect")
    assert (connect["call_id"], connect["call_id_token"]) == (wacid, token(wacid))
    assert (connect["direction"], connect["event_at"]) == ("USER_INITIATED", at(1788236000))
    assert connect["customer_phone_token"] == phone_token(CUSTOMER, PII_KEY)
    terminate = row(calls, event="terminate")
    assert (terminate["status"], terminate["duration_s"]) == ("COMPLETED", 90)
    assert (terminate["started_at"], terminate["ended_at"]) == (at(1788236010), at(1788236100))
    ringing = row(calls, event="status")
    assert (ringing["status"], ringing["customer_phone_token"]) == (
        "RINGING",
        phone_token(CUSTOMER, PII_KEY),
    )
    assert "sdp" not in str(calls.to_dicts())


def test_echoes_are_the_agents_outbound_messages() -> None:
    messages = only(parse("echoes"), "messages", 2)
    assert set(messages["source"]) == {"echo"} and set(messages["direction"]) == {"outbound"}
    text = row(messages, wamid="wamid.ECH1")
    assert text["text_body"] == "Your premium is due on the 5th"
    assert text["customer_phone_token"] == phone_token(CUSTOMER, PII_KEY)  # `to`, not `from`
    assert row(messages, wamid="wamid.ECH2")["media_id"] == "1122334455"


def test_edit_is_a_change_to_the_original_not_a_new_message() -> None:
    edit = row(only(parse("edit"), "edits", 1), wamid="wamid.EDT1")
    assert (edit["action"], edit["original_wamid"], edit["new_text"]) == (
        "edit",
        "wamid.TXT1",
        "Is my policy renewed for 2027?",
    )
    assert edit["original_wamid_token"] == token("wamid.TXT1")
    assert (edit["new_message_type"], edit["source"]) == ("text", "webhook")
    assert edit["edited_at"] == at(1788236400)


def test_revoke_names_the_message_to_delete() -> None:
    revoke = row(only(parse("revoke"), "edits", 1), wamid="wamid.RVK1")
    assert (revoke["action"], revoke["original_wamid_token"], revoke["new_text"]) == (
        "revoke",
        token("wamid.IMG1"),
        None,
    )


def test_system_messages_are_contact_changes_with_tokens_only() -> None:
    changes = only(parse("system"), "contact_changes", 2)
    moved = row(changes, action="user_changed_number")
    assert moved["contact_phone_token"] == phone_token(CUSTOMER, PII_KEY)
    assert moved["new_phone_token"] == phone_token("919877766655", PII_KEY)
    assert (moved["source"], moved["event_wamid_token"]) == ("system", token("wamid.SYS1"))
    identity = row(changes, action="customer_identity_changed")
    assert identity["contact_phone_token"] == phone_token(CUSTOMER, PII_KEY)
    assert "9198777" not in str(changes.to_dicts())


def test_app_state_sync_keeps_the_action_and_the_token() -> None:
    changes = only(parse("app_state_sync"), "contact_changes", 2)
    added = row(changes, action="add")
    assert (added["source"], added["contact_phone_token"]) == (
        "app_state_sync",
        phone_token(CUSTOMER, PII_KEY),
    )
    assert added["changed_at"] == at(1788236700)
    assert row(changes, action="remove")["contact_phone_token"] == phone_token(
        "919811122233", PII_KEY
    )
    assert "Kavita" not in str(changes.to_dicts())


def test_history_loads_past_messages_in_both_directions() -> None:
    messages = only(parse("history"), "messages", 2)
    assert set(messages["source"]) == {"history"}
    assert row(messages, wamid="wamid.HIS1")["direction"] == "inbound"
    outbound = row(messages, wamid="wamid.HIS2")
    assert outbound["direction"] == "outbound"
    assert outbound["customer_phone_token"] == phone_token(CUSTOMER, PII_KEY)


def test_account_level_fields_are_kept_whole() -> None:
    events = only(parse("account_fields"), "account_events", 9)
    assert set(events["field"]) == {
        "account_update",
        "message_template_status_update",
        "message_template_quality_update",
        "phone_number_quality_update",
        "phone_number_name_update",
        "account_review_update",
        "business_capability_update",
        "template_category_update",
        "security",
    }
    status = row(events, field="message_template_status_update")
    assert status["event"] == "APPROVED" and status["waba_id"] == "102290129340398"
    assert json.loads(status["value_json"])["message_template_name"] == "premium_reminder"
    assert status["event_at"] == at(1788236800)
    assert row(events, field="account_review_update")["event"] == "APPROVED"  # its `decision`


def test_errors_at_the_top_of_a_value_are_data() -> None:
    error = row(only(parse("value_errors"), "account_events", 1), field="messages")
    assert (error["event"], error["error_code"]) == ("errors", 131000)
    assert error["phone_number_id"] == "123456789012345"


def test_an_unknown_field_is_quarantined_by_name() -> None:
    result = parse("unknown_field")
    assert result.loaded == 0 and result.rejected.is_empty()
    quarantined = row(result.quarantine, reason="unhandled_field:group_lifecycle_update")
    assert orjson.loads(quarantined["raw"])["value"]["group_id"] == "Y2FwaV9ncm91cDox"
    assert_balanced(result)


def test_implausible_timestamps_are_quarantined_the_rest_loads() -> None:
    result = parse("implausible_timestamps")
    assert result.messages["wamid"].to_list() == ["wamid.NOW1"]
    assert result.statuses.is_empty()
    assert result.quarantined.select("record_index", "reason").rows() == [
        (0, "implausible_timestamp"),  # 2001: before WhatsApp
        (1, "implausible_timestamp"),  # a week after its receipt
        (3, "implausible_timestamp"),  # a status three days ahead
    ]
    assert_balanced(result)


def test_one_bad_record_does_not_take_its_neighbours_down() -> None:
    result = parse("mixed_with_bad_record")
    assert result.messages["wamid"].to_list() == ["wamid.MIX1", "wamid.MIX2"]
    assert result.statuses.select("wamid", "status").rows() == [("wamid.OUT7", "sent")]
    assert result.quarantined.select("record_index", "reason").rows() == [
        (1, "missing_field:id"),
        (3, "unexpected_shape:message"),
        (5, "missing_field:status"),
    ]
    assert orjson.loads(result.quarantined["raw"][1]) == "not an object"
    counts = result.counts()
    assert (counts["records"], counts["loaded"], counts["quarantined_records"]) == (6, 3, 3)
    assert_balanced(result)


# --------------------------------------------------------------------------- all together


ALL = sorted(path.stem for path in CORPUS.glob("*.json"))


def test_the_whole_corpus_in_one_file_twice_reconciles() -> None:
    """Every kind, then every kind re-delivered: the second copy of each line is a duplicate
    line, every record of it a duplicate, and nothing is lost or invented."""
    once = parse(*ALL)
    twice = parse(*ALL, *ALL)
    assert {n: f.height for n, f in twice.frames.items()} == {
        n: f.height for n, f in once.frames.items()
    }
    assert twice.duplicates == once.loaded
    # Quarantined records are quarantined on each delivery (they are not deduplicated), so a
    # line holding one is never a duplicate line.
    assert twice.quarantined.height == 2 * once.quarantined.height
    with_quarantine = once.quarantined["line_number"].n_unique()
    assert with_quarantine == 4
    assert twice.duplicate_lines == len(ALL) - with_quarantine
    assert_balanced(once)
    assert_balanced(twice)


@pytest.mark.parametrize("name", ALL)
def test_no_phone_number_in_clear_in_any_table(name: str) -> None:
    result = parse(name)
    for frame in result.frames.values():
        for column, dtype in frame.schema.items():
            if dtype == pl.String and column not in ("value_json",):
                values = frame[column].drop_nulls()
                assert not values.str.contains("98123|98111|98777|98444").any(), (name, column)
