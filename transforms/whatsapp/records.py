"""One webhook record into one row of its table, or a `Quarantine` naming why it cannot be.

A record is one element Meta sends inside a change's value: a message, a status, a call event,
an address-book sync item, a history message, an account-level change. Rows use the tables'
column names, except that times are `<column>_s` (unix seconds) and phone numbers are clear
in helper columns (`customer_phone`, ...), which `parse` turns into typed times and tokens.

Personal data kept out on purpose: profile names, contact-card numbers (only their count),
a location's coordinates, name and address (only that a location was shared: its position is
the customer's whereabouts, and no mart needs it), `context.from` and the agent's display number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MIN_PLAUSIBLE_S = int(datetime(2009, 1, 1, tzinfo=UTC).timestamp())  # WhatsApp's first year
MAX_AHEAD_S = 24 * 3600  # a record time more than a day after its receipt is not a clock skew
_MAX_TIMESTAMP_DIGITS = 12

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
MESSAGE_TYPES = frozenset(
    {"text", "reaction", "interactive", "button", "location", "contacts", "order", "unsupported"}
    | set(MEDIA_TYPES)
)
EDIT_TYPES = frozenset({"edit", "revoke"})
CONTACT_SYSTEM_TYPES = frozenset({"user_changed_number", "customer_identity_changed"})


class Quarantine(Exception):
    """A record that cannot be loaded, with the quarantine reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Change:
    """What every record of one change shares."""

    field: str
    received_s: int  # receipt time, for the plausibility window
    waba_id: str | None
    phone_number_id: str | None
    display_number: str | None  # the agent's own number: tells outbound history apart
    contacts: list[dict[str, Any]]


def obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def as_json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def required(record: dict[str, Any], key: str) -> str:
    value = text(record.get(key))
    if value is None:
        raise Quarantine(f"missing_field:{key}")
    return value


def seconds(value: object) -> int | None:
    """Unix seconds of a Meta timestamp (a digit string or an int), or None."""
    given = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not given.isascii() or not given.isdigit() or len(given) > _MAX_TIMESTAMP_DIGITS:
        return None
    return int(given)


def when(value: object, change: Change, name: str = "timestamp") -> int:
    """A record's own time, quarantined when absent, malformed or outside the window."""
    if value is None:
        raise Quarantine(f"missing_field:{name}")
    stamp = seconds(value)
    if stamp is None:
        raise Quarantine(f"invalid_timestamp:{name}")
    if not MIN_PLAUSIBLE_S <= stamp <= change.received_s + MAX_AHEAD_S:
        raise Quarantine("implausible_timestamp")
    return stamp


def errors_columns(errors: object) -> dict[str, Any]:
    """The first error's code and title as columns, every error as JSON text."""
    if not isinstance(errors, list) or not errors:
        return {}
    first = obj(errors[0])
    return {
        "error_code": integer(first.get("code")),
        "error_title": text(first.get("title")) or text(first.get("message")),
        "errors_json": as_json(errors),
    }


def _contact_for(
    contacts: list[dict[str, Any]], phone: str | None, user_id: str | None
) -> dict[str, Any]:
    """The contact a record refers to: matched on wa_id or user_id, or the only one there is."""
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (
            user_id and contact.get("user_id") == user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


# --------------------------------------------------------------------------- messages


def _interactive(payload: dict[str, Any]) -> dict[str, Any]:
    kind = text(payload.get("type"))
    reply = obj(payload.get(kind)) if kind else {}
    out: dict[str, Any] = {"interactive_type": kind}
    if kind == "nfm_reply":
        response = reply.get("response_json")
        out |= {
            "flow_name": text(reply.get("name")),
            "text_body": text(reply.get("body")),
            "flow_response_json": response if isinstance(response, str) else as_json(response),
        }
    elif kind == "call_permission_reply":
        out |= {
            "permission_response": text(reply.get("response")),
            "reply_title": text(reply.get("response_source")),
        }
    else:  # button_reply, list_reply and subtypes not yet known: their id and title if any
        out |= {
            "reply_id": text(reply.get("id")),
            "reply_title": text(reply.get("title")),
            "text_body": text(reply.get("description")),
        }
    return out


def _payload(message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The type-specific columns of a message (see the module docstring for what is left out)."""
    if message_type == "text":
        return {"text_body": text(payload.get("body"))}
    if message_type == "reaction":
        return {  # an empty emoji is Meta's way of saying the reaction was removed
            "reaction_emoji": text(payload.get("emoji")),
            "reaction_to_wamid": text(payload.get("message_id")),
        }
    if message_type == "interactive":
        return _interactive(payload)
    if message_type == "button":
        return {
            "button_payload": text(payload.get("payload")),
            "text_body": text(payload.get("text")),
        }
    if message_type == "order":
        items = payload.get("product_items")
        return {
            "order_catalog_id": text(payload.get("catalog_id")),
            "order_product_items_json": as_json(items),
            "order_item_count": len(items) if isinstance(items, list) else None,
            "text_body": text(payload.get("text")),
        }
    if message_type in MEDIA_TYPES:
        return {
            "media_id": text(payload.get("id")),
            "mime_type": text(payload.get("mime_type")),
            "text_body": text(payload.get("caption")),
            "media_filename": text(payload.get("filename")),
            "voice": payload.get("voice") if isinstance(payload.get("voice"), bool) else None,
            "animated": payload.get("animated")
            if isinstance(payload.get("animated"), bool)
            else None,
        }
    return {}


def _contacts_payload(message: dict[str, Any]) -> dict[str, Any]:
    cards = message.get("contacts")
    return {"shared_contact_count": len(cards) if isinstance(cards, list) else 0}


def _referral(message: dict[str, Any]) -> dict[str, Any]:
    referral = obj(message.get("referral"))
    if not referral:
        return {}
    return {
        "referral_source_type": text(referral.get("source_type")),
        "referral_source_id": text(referral.get("source_id")),
        "referral_source_url": text(referral.get("source_url")),
        "referral_ctwa_clid": text(referral.get("ctwa_clid")),
        "referral_headline": text(referral.get("headline")),
        "referral_media_type": text(referral.get("media_type")),
    }


def message_row(
    message: dict[str, Any],
    change: Change,
    *,
    source: str,
    direction: str,
    customer_phone: str | None,
    customer_user_id: str | None,
) -> dict[str, Any]:
    """A message of a known type into a MESSAGES row; the caller routed edits and system
    messages elsewhere."""
    message_type = required(message, "type")
    if message_type not in MESSAGE_TYPES:
        raise Quarantine(f"unhandled_type:{message_type}")
    context = obj(message.get("context"))
    contact = _contact_for(change.contacts, customer_phone, customer_user_id)
    flags = [context.get(k) for k in ("forwarded", "frequently_forwarded")]
    flags = [flag for flag in flags if isinstance(flag, bool)]
    row = {
        "wamid": required(message, "id"),
        "sent_at_s": when(message.get("timestamp"), change),
        "source": source,
        "direction": direction,
        "phone_number_id": change.phone_number_id,
        "customer_phone": customer_phone or text(contact.get("wa_id")),
        "customer_user_id": customer_user_id or text(contact.get("user_id")),
        "message_type": message_type,
        "context_wamid": text(context.get("id")),
        "forwarded": any(flags) if flags else None,
        **_referral(message),
        **errors_columns(message.get("errors")),
    }
    if message_type == "contacts":
        return row | _contacts_payload(message)
    return row | _payload(message_type, obj(message.get(message_type)))


def edit_row(
    message: dict[str, Any],
    change: Change,
    *,
    source: str,
    customer_phone: str | None,
    customer_user_id: str | None,
) -> dict[str, Any]:
    """An `edit` or `revoke`: a change to an earlier message, not a new one."""
    action = required(message, "type")
    payload = obj(message.get(action))
    original = text(payload.get("original_message_id"))
    if original is None:
        raise Quarantine(f"missing_field:{action}.original_message_id")
    edited = obj(payload.get("message"))
    edited_type = text(edited.get("type"))
    new_text = None
    if edited_type:
        inner = obj(edited.get(edited_type))
        new_text = text(inner.get("body")) or text(inner.get("caption"))
    contact = _contact_for(change.contacts, customer_phone, customer_user_id)
    return {
        "wamid": required(message, "id"),
        "original_wamid": original,
        "action": action,
        "new_text": new_text,
        "new_message_type": edited_type,
        "edited_at_s": when(message.get("timestamp"), change),
        "source": source,
        "phone_number_id": change.phone_number_id,
        "customer_phone": customer_phone or text(contact.get("wa_id")),
        "customer_user_id": customer_user_id or text(contact.get("user_id")),
    }


def system_row(message: dict[str, Any], change: Change) -> dict[str, Any]:
    """A `system` message: a change to who the customer is, not something they wrote."""
    system = obj(message.get("system"))
    kind = text(system.get("type"))
    if kind not in CONTACT_SYSTEM_TYPES:
        raise Quarantine(f"unhandled_type:system.{kind}")
    return {
        "source": "system",
        "action": kind,
        "contact_phone": text(message.get("from")) or text(system.get("customer")),
        "new_phone": text(system.get("wa_id")) if kind == "user_changed_number" else None,
        "customer_user_id": text(message.get("from_user_id")) or text(system.get("user_id")),
        "event_wamid": text(message.get("id")),
        "changed_at_s": when(message.get("timestamp"), change),
        "phone_number_id": change.phone_number_id,
    }


# --------------------------------------------------------------------------- statuses, calls


def status_row(status: dict[str, Any], change: Change) -> dict[str, Any]:
    phone, user_id = text(status.get("recipient_id")), text(status.get("recipient_user_id"))
    contact = _contact_for(change.contacts, phone, user_id)
    conversation = obj(status.get("conversation"))
    pricing = obj(status.get("pricing"))
    expires = seconds(conversation.get("expiration_timestamp"))
    billable = pricing.get("billable")
    return {
        "wamid": required(status, "id"),
        "status": required(status, "status"),
        "status_at_s": when(status.get("timestamp"), change),
        "phone_number_id": change.phone_number_id,
        "recipient_phone": phone or text(contact.get("wa_id")),
        "recipient_user_id": user_id or text(contact.get("user_id")),
        "conversation_id": text(conversation.get("id")),
        "conversation_origin_type": text(obj(conversation.get("origin")).get("type")),
        "conversation_expires_at_s": expires,
        "pricing_billable": billable if isinstance(billable, bool) else None,
        "pricing_model": text(pricing.get("pricing_model")),
        "pricing_category": text(pricing.get("category")),
        "pricing_type": text(pricing.get("type")),
        **errors_columns(status.get("errors")),
    }


def is_call_status(status: dict[str, Any]) -> bool:
    """Call status updates come as `statuses` too: never rows of the message statuses."""
    record_id = status.get("id")
    return status.get("type") == "call" or (
        isinstance(record_id, str) and record_id.startswith("wacid.")
    )


def call_row(call: dict[str, Any], change: Change, *, event: str | None = None) -> dict[str, Any]:
    """A call connect / terminate event, or (with `event='status'`) a call status update."""
    is_status = event == "status"
    business = change.display_number
    caller, callee = text(call.get("from")), text(call.get("to"))
    counterpart = callee if caller == business else caller
    phone = text(call.get("recipient_id")) if is_status else counterpart
    user_id = text(call.get("from_user_id")) or text(call.get("recipient_user_id"))
    contact = _contact_for(change.contacts, phone, user_id)
    return {
        "call_id": required(call, "id"),
        "event": event or required(call, "event"),
        "status": text(call.get("status")),
        "direction": text(call.get("direction")),
        "event_at_s": when(call.get("timestamp"), change),
        "started_at_s": seconds(call.get("start_time")),
        "ended_at_s": seconds(call.get("end_time")),
        "duration_s": integer(call.get("duration")),
        "phone_number_id": change.phone_number_id,
        "customer_phone": phone or text(contact.get("wa_id")),
        "customer_user_id": user_id or text(contact.get("user_id")),
        **errors_columns(call.get("errors")),
    }


# --------------------------------------------------------------------------- the rest


def state_sync_row(item: dict[str, Any], change: Change) -> dict[str, Any]:
    """An address-book change on the agent's phone: the action and the number's token only."""
    contact = obj(item.get("contact"))
    action = required(item, "action")
    stamp = obj(item.get("metadata")).get("timestamp", item.get("timestamp"))
    return {
        "source": "app_state_sync",
        "action": action,
        "contact_phone": text(contact.get("phone_number")) or text(contact.get("wa_id")),
        "customer_user_id": text(contact.get("user_id")),
        "changed_at_s": when(stamp, change),
        "phone_number_id": change.phone_number_id,
    }


def account_row(
    field: str, value: dict[str, Any], change: Change, entry_time: object, event: str | None = None
) -> dict[str, Any]:
    """A change the platform keeps as it came: its field, event and value as JSON text."""
    stamp = value.get("timestamp", entry_time)
    errors = value.get("errors")
    first = obj(errors[0]) if isinstance(errors, list) and errors else {}
    return {
        "field": field,
        "event": event or text(value.get("event")) or text(value.get("decision")),
        "waba_id": change.waba_id,
        "phone_number_id": change.phone_number_id,
        "event_at_s": None if stamp is None else when(stamp, change),
        "error_code": integer(first.get("code")),
        "value_json": as_json(value),
    }
