"""WhatsApp "Export chat" .txt files, as agents upload them, between an agent and a policyholder.

Why they look like this: the platform must parse what phones really write (DESIGN §5), so each
export carries the quirks of its phone, fixed per agent (one phone each):

- Android `DD/MM/YY, HH:MM - Name: text`, or `DD/MM/YY, h:mm am - Name: text` with a 12-hour
  clock; system lines have no name; media is `<Media omitted>`.
- iOS `[DD/MM/YY, HH:MM:SS] Name: text`, or `[DD/MM/YY, h:mm:ss PM]` with U+202F NARROW NO-BREAK
  SPACE before AM/PM; media lines start with U+200E LEFT-TO-RIGHT MARK and read
  `\u200eimage omitted`; the encryption notice is attributed to the chat's name and starts with
  U+200E, as iOS writes it.
- Day-first dates without a time zone (the agent's phone runs on IST), multi-line messages whose
  continuation lines have no timestamp, deleted and edited messages, unsaved contacts shown by
  number.

Numbers chosen: 1 + Poisson(min(agents / 25, 7)) exports a day, at most 8 (mvp: about 2); 75% of
agents on Android (India's market share, a little below the customers' 88%); 60% use a 12-hour
clock (the Indian default); a chat covers the last 1-30 days in 2-6 sittings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import polars as pl

from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder
from simulator.rng import stream
from simulator.whatsapp import CUSTOMER_TEXTS, NATIVE_SHARE, NATIVE_TEXTS, SEND_HOUR_WEIGHTS

SOURCE = "whatsapp_exports"
ANDROID_SHARE = 0.75
TWELVE_HOUR_SHARE = 0.6
MAX_EXPORTS_PER_DAY = 8
UNSAVED_CONTACT_SHARE = 0.1
DAY = timedelta(days=1)
LRM, NNBSP = "\u200e", "\u202f"
ENCRYPTION_NOTICE = (
    "Messages and calls are end-to-end encrypted. Only people in this chat can read, listen to,"
    " or share them. Learn more."
)
SECURITY_CODE_CHANGED = "Your security code with {name} changed. Tap to learn more."

# An agent's opening messages by topic; {first}, {plan}, {number}, {amount}, {due}, {agent} are
# filled from the world. Several are multi-line, as agents write them.
AGENT_OPENERS = (
    "Dear {first} ji,\nYour premium of Rs. {amount} for {plan} (policy {number}) is due on {due}."
    "\nPlease pay on time to keep your cover active.\nRegards,\n{agent}",
    "Namaste {first} ji 🙏 Premium due on {due}. Rs. {amount}. Shall I send the payment link?",
    "Hello {first}, please send your Aadhaar and PAN copy for the KYC update.",
    "Happy birthday {first} ji! 🎂\nWishing you good health and happiness.\n- {agent}",
    "Hello {first} ji. Watch this short video on tax saving under 80C:"
    " https://agentmitra.app/v/{number}",
    "{first} ji, your policy {number} has a bonus declared this year. Call me when free.",
)
AGENT_FOLLOW_UPS = (
    "Received, thank you 🙏",
    "Payment received. Receipt will come by SMS.",
    "Ok, I will call you in the evening.",
    "Please share a photo of the cheque.",
    "Noted 👍",
    "Next due date: {due}\nPremium: Rs. {amount} ({mode})\nNominee update form sent on email.",
)
MEDIA_KINDS = ("image", "document", "sticker", "video")
DOCUMENT_NAMES = ("Premium receipt.pdf", "Aadhaar.pdf", "PAN card.pdf", "Policy bond.pdf")


@dataclass(frozen=True)
class _Style:
    android: bool
    twelve_hour: bool


@dataclass(frozen=True)
class _Message:
    """One line (and its continuation lines) of a chat; `sender` None for a system notice."""

    at: datetime  # IST wall clock, as the phone shows it
    sender: str | None
    text: str = ""
    media: str | None = None  # "image", "document", ... for a media message
    deleted: bool = False
    edited: bool = False


# --------------------------------------------------------------------------- formatting


def _stamp(style: _Style, at: datetime) -> str:
    """The date and time as the phone writes them: day first, two-digit year, no time zone."""
    day = f"{at:%d/%m/%y}"
    seconds = f":{at:%S}" if not style.android else ""
    if not style.twelve_hour:
        return f"{day}, {at:%H:%M}{seconds}"
    hour = at.hour % 12 or 12
    if style.android:
        return f"{day}, {hour}:{at:%M} {'am' if at.hour < 12 else 'pm'}"
    return f"{day}, {hour}:{at:%M}{seconds}{NNBSP}{'AM' if at.hour < 12 else 'PM'}"


def _android_text(message: _Message, own: bool) -> str:
    if message.deleted:
        return "You deleted this message" if own else "This message was deleted"
    if message.media:
        return "<Media omitted>"
    return message.text + (" <This message was edited>" if message.edited else "")


def _ios_text(message: _Message, own: bool) -> str:
    if message.deleted:
        return LRM + ("You deleted this message." if own else "This message was deleted.")
    if message.media == "document":
        return f"{message.text} • {LRM}1 page {LRM}document omitted"
    if message.media:
        return f"{LRM}{message.media} omitted"
    return message.text + (f" {LRM}<This message was edited>" if message.edited else "")


def _render(style: _Style, message: _Message, chat_name: str, own_name: str) -> str:
    stamp = _stamp(style, message.at)
    own = message.sender == own_name
    if style.android:
        if message.sender is None:
            return f"{stamp} - {message.text}"
        return f"{stamp} - {message.sender}: {_android_text(message, own)}"
    if message.sender is None:
        return f"[{stamp}] {chat_name}: {LRM}{message.text}"
    prefix = LRM if message.media or message.deleted else ""
    return f"{prefix}[{stamp}] {message.sender}: {_ios_text(message, own)}"


def _file_name(contact: str, used: set[str]) -> str:
    """`WhatsApp Chat with <contact>.txt`, safe on every filesystem and unique in the folder."""
    safe = re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", contact).strip(" .") or "contact"
    name, n = f"WhatsApp Chat with {safe}.txt", 1
    while name in used:
        n += 1
        name = f"WhatsApp Chat with {safe} ({n}).txt"
    used.add(name)
    return name


# --------------------------------------------------------------------------- conversations


def _devices(config: SimulationConfig, agents: int) -> list[_Style]:
    """Each agent's phone, fixed for the whole run (independent of the day)."""
    rng = stream(config.seed, SOURCE, "devices")
    android = rng.random(agents) < ANDROID_SHARE
    twelve = rng.random(agents) < TWELVE_HOUR_SHARE
    return [_Style(bool(a), bool(t)) for a, t in zip(android, twelve, strict=True)]


def _contact_name(rng: np.random.Generator, holder: dict[str, Any]) -> str:
    """How the agent saved the customer: their name, sometimes with a note, or not at all."""
    if rng.random() < UNSAVED_CONTACT_SHARE:
        digits = re.sub(r"\D", "", holder["phone"])[-10:]
        return f"+91 {digits[:5]} {digits[5:]}"
    suffix = ("", "", "", " LIC", " Policy", " (Pune)")[int(rng.integers(0, 6))]
    return holder["full_name"] + suffix


def _facts(world: Any, holder: dict[str, Any], agent_name: str, due: date) -> dict[str, str]:
    """Values agents quote: the customer's first policy, its premium and the next due date."""
    policies = world.policies.filter(pl.col("policyholder_id") == holder["policyholder_id"])
    first = policies.row(0, named=True) if policies.height else {}
    return {
        "first": holder["full_name"].split(" ")[0],
        "plan": str(first.get("plan_name", "your policy")),
        "number": str(first.get("policy_number", "")),
        "amount": f"{float(first.get('premium_amount', 0.0)):,.0f}",
        "mode": str(first.get("premium_mode", "annual")).replace("_", "-"),
        "due": f"{due:%d/%m/%Y}",
        "agent": agent_name,
    }


def _customer_reply(rng: np.random.Generator, language: str) -> str:
    native = NATIVE_TEXTS.get(language)
    if native and rng.random() < NATIVE_SHARE:
        return native[int(rng.integers(0, len(native)))]
    return CUSTOMER_TEXTS[int(rng.integers(0, len(CUSTOMER_TEXTS)))]


def _sitting(
    rng: np.random.Generator,
    start: datetime,
    opener: str,
    agent: str,
    customer: str,
    language: str,
    facts: dict[str, str],
) -> list[_Message]:
    """One exchange: the agent writes, the customer answers (text, media, several lines), and the
    agent follows up; minutes apart."""
    at = start
    messages = [_Message(at, agent, opener.format(**facts))]
    for _ in range(int(rng.integers(1, 4))):
        at += timedelta(seconds=int(rng.integers(20, 1500)))
        draw = rng.random()
        if draw < 0.15:
            media = MEDIA_KINDS[int(rng.integers(0, len(MEDIA_KINDS)))]
            name = DOCUMENT_NAMES[int(rng.integers(0, len(DOCUMENT_NAMES)))]
            messages.append(_Message(at, customer, name if media == "document" else "", media))
        elif draw < 0.2:
            messages.append(_Message(at, customer, deleted=True))
        else:
            messages.append(
                _Message(at, customer, _customer_reply(rng, language), edited=draw > 0.97)
            )
    if rng.random() < 0.7:
        at += timedelta(seconds=int(rng.integers(30, 3600)))
        follow = AGENT_FOLLOW_UPS[int(rng.integers(0, len(AGENT_FOLLOW_UPS)))].format(**facts)
        messages.append(_Message(at, agent, follow))
    return messages


def _conversation(
    rng: np.random.Generator,
    export_at: datetime,
    agent: str,
    customer: str,
    language: str,
    facts: dict[str, str],
) -> list[_Message]:
    """The chat up to the moment of export: the encryption notice, then 2-6 sittings on
    different days of the last 1-30 days at business and evening hours, sometimes a
    security-code notice."""
    span = int(rng.integers(2, 31))
    days_back = rng.choice(span, size=min(int(rng.integers(2, 7)), span), replace=False)
    starts = []
    for back in days_back:
        moment = datetime.combine(export_at.date() - timedelta(days=int(back)), _clock(rng))
        # A sitting needs up to three hours before the export; else it was the day before.
        starts.append(moment if moment < export_at - timedelta(hours=3) else moment - DAY)
    openers = rng.permutation(len(AGENT_OPENERS))  # a topic comes up once per chat
    messages: list[_Message] = []
    for i, start in enumerate(sorted(starts)):
        if messages and start <= messages[-1].at:
            start = messages[-1].at + timedelta(minutes=int(rng.integers(5, 120)))
        opener = AGENT_OPENERS[int(openers[i % len(openers)])]
        messages += _sitting(rng, start, opener, agent, customer, language, facts)
    messages = [m for m in messages if m.at <= export_at]  # the first sitting always fits
    opened = messages[0].at - timedelta(seconds=int(rng.integers(5, 60)))
    notice = _Message(opened, None, ENCRYPTION_NOTICE)
    if rng.random() < 0.15:
        middle = messages[len(messages) // 2]
        changed = SECURITY_CODE_CHANGED.format(name=customer)
        messages.insert(len(messages) // 2, _Message(middle.at, None, changed))
    return [notice, *messages]


def _clock(rng: np.random.Generator) -> time:
    """A time of day at the agents' business-hours and evening peaks (IST)."""
    hour = int(rng.choice(24, p=SEND_HOUR_WEIGHTS / SEND_HOUR_WEIGHTS.sum()))
    return time(hour, int(rng.integers(60)), int(rng.integers(60)))


def generate_chat_exports_day(
    world: Any, day: date, config: SimulationConfig, faults: FaultLog
) -> int:
    """Write the chat exports agents upload on `day` under
    `<landing>/whatsapp_exports/dt=<day>/` and return how many files were written.

    No faults are injected (`faults` is taken for a uniform generator signature): the quirks of
    the exports are the formats' own and are always present.
    """
    rng = stream(config.seed, SOURCE, day)
    agents, holders = world.agents, world.policyholders
    devices = _devices(config, agents.height)
    agent_row = dict(zip(agents["agent_id"].to_list(), range(agents.height), strict=True))
    count = min(
        1 + int(rng.poisson(min(agents.height / 25, MAX_EXPORTS_PER_DAY - 1))),
        MAX_EXPORTS_PER_DAY,
    )
    folder = day_folder(config.landing_root, SOURCE, day)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for holder_row in rng.integers(0, holders.height, size=count):
        holder = holders.row(int(holder_row), named=True)
        row = agent_row[holder["agent_id"]]
        agent_name = agents["full_name"][row]
        style = devices[row]
        contact = _contact_name(rng, holder)
        export_at = datetime.combine(day, _clock(rng))
        facts = _facts(world, holder, agent_name, day + timedelta(days=int(rng.integers(1, 20))))
        chat = _conversation(rng, export_at, agent_name, contact, holder["language"], facts)
        lines = [_render(style, message, contact, agent_name) for message in chat]
        (folder / _file_name(contact, used)).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count
