"""WhatsApp Cloud API webhook deliveries for the simulated agents, byte for byte as Meta posts them.

Why it is built this way:

- Every send day has a *plan* drawn from its own random stream (`stream(seed, "whatsapp", day)`):
  the messages agents send that day, every status Meta reports for them, the customers' replies
  and messages, and the moment each webhook reaches us. Statuses, replies and retries of a message
  sent in the evening arrive on the following days, so the file of receipt day D holds what the
  plans of D-2, D-1 and D deliver on D. A day can be generated alone, a rerun is byte-identical,
  and each fault is counted (`FaultLog`) on the day its delivery is received.
- Bodies are compact JSON with non-ASCII escaped as lowercase `\\uXXXX`, as Meta sends them. The
  signature covers exactly those bytes, so an ingester that verifies re-serialised JSON fails.
- Contacts carry the business-scoped `user_id` (BSUID) where the world gives one. For customers who
  do not share their phone number the phone (`wa_id`, `from`, `recipient_id`) is left out and the
  agent addresses them by BSUID, as the Cloud API does for username users.
- Only opted-in policyholders receive agent messages; anyone may write to their agent.

Volumes (numbers chosen, per opted-in policyholder and day): a premium reminder template three
days before each premium due date (70%), a grace-period alert ten days after it (20%), and an
engagement message (4% on weekdays, less at weekends, +30% in the January-March tax season, scaled
by the agent's productivity). At the mvp tier that is about 30 outbound messages and 100 webhook
deliveries a day; they grow linearly with the number of policyholders.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import numpy as np
import orjson
import polars as pl

from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder, write_gzip_lines
from simulator.rng import stream

SOURCE = "whatsapp"
FILE_NAME = "deliveries.ndjson.gz"
IST = timezone(timedelta(hours=5, minutes=30))
# Deliveries of a send day reach us at most this many days later (delays below are clipped so
# that practically everything lands inside; the rare rest is never delivered, like Meta giving up).
LOOKBACK_DAYS = 2
OUTBOUND_COLUMNS = (
    "wamid",
    "provider_id",
    "agent_id",
    "policyholder_id",
    "template_id",
    "phone_number_id",
    "sent_at",
)

# --------------------------------------------------------------------------- realism numbers

# IST hour weights for agents' messages: a late-morning business peak, an afternoon shoulder and
# an evening peak (19-21h) when customers are home; almost nothing at night.
SEND_HOUR_WEIGHTS = np.array(
    [0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.5, 3, 6, 9, 10, 8, 5, 6, 7, 7, 6, 6, 9, 10, 7, 3, 1]
)
# Customers writing first do it mostly after work.
INBOUND_HOUR_WEIGHTS = np.array(
    [0.3, 0.1, 0.05, 0.05, 0.1, 0.3, 1, 3, 4, 5, 6, 6, 6, 5, 5, 5, 5, 6, 7, 9, 10, 9, 6, 2]
)
WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.45)  # Monday .. Sunday
TAX_SEASON_FACTOR = 1.3  # January-March, when customers buy and pay for tax saving
ENGAGEMENT_SHARE = 0.04
REMINDER_LEAD_DAYS, REMINDER_SHARE = 3, 0.7
GRACE_LAG_DAYS, GRACE_SHARE = 10, 0.2
FOLLOW_UP_SHARE = 0.12  # a free-form text after the first message, within the hour or so
UNSOLICITED_SHARE = 0.015  # write to their agent unprompted on a given day: about every 2 months

# Outbound kinds. Engagement messages mix marketing templates, free text and interactive messages.
KIND_TEMPLATE, KIND_TEXT, KIND_BUTTONS, KIND_LIST = 0, 1, 2, 3
ENGAGEMENT_KINDS = np.array([0.35, 0.35, 0.18, 0.12])
ENGAGEMENT_TEMPLATES = (("new_video_share", 0.7), ("policy_revival_offer", 0.3))

# Statuses. 2.5% fail; 86% of phones are online (delivered in seconds), 11% are offline (hours),
# 3% never come back in time; 72% of delivered messages are read (median 25 minutes).
STATES = ("sent", "delivered", "read", "failed")
SENT, DELIVERED, READ, FAILED = 0, 1, 2, 3
FAILED_SHARE = 0.025
ONLINE_SHARE, OFFLINE_SHARE = 0.86, 0.11
DELIVERY_MEDIAN_S, OFFLINE_MEAN_S, OFFLINE_MAX_S = 4.0, 3 * 3600.0, 12 * 3600
READ_SHARE, READ_MEDIAN_S, READ_MAX_S = 0.72, 1500.0, 18 * 3600
FAIL_AFTER_SENT_SHARE = 0.35  # undeliverable messages that were first reported sent
# Replies, by outbound kind: interactive messages get the most answers.
REPLY_SHARE = {KIND_TEMPLATE: 0.25, KIND_TEXT: 0.35, KIND_BUTTONS: 0.6, KIND_LIST: 0.55}
TEMPLATE_BUTTON_REPLY_SHARE = 0.45
REPLY_MEDIAN_S, REPLY_MAX_S = 150.0, 6 * 3600
# Webhook latency after the event, Meta's retry delay for duplicates, and the extra delay of a
# status delivered out of order.
LATENCY_MS = (150, 2500)
RETRY_MEDIAN_S, RETRY_MIN_S, RETRY_MAX_S = 120.0, 5, 12 * 3600
OUT_OF_ORDER_DELAY_MS = (1_000, 90_000)

# Real Cloud API error codes: (code, title, details). Which ones can hit which kind of message.
ERRORS = (
    (131026, "Message undeliverable", "Message Undeliverable."),
    (
        131047,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last"
        " replied to this number.",
    ),
    (
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    (131051, "Unsupported message type", "Message type unknown is not currently supported."),
    (
        130472,
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment",
    ),
)
# 131049 (per-user marketing limit) and 130472 (experiment) only hit marketing templates; a
# utility template (premium reminder) fails only as undeliverable; free-form messages also fail
# outside the 24-hour window (131047).
MARKETING_ERRORS = np.array([0.4, 0.0, 0.45, 0.0, 0.15])
SESSION_ERRORS = np.array([0.45, 0.45, 0.0, 0.1, 0.0])
UNDELIVERABLE = 0  # row of 131026 in ERRORS

# Inbound message kinds.
MSG_TEXT, MSG_IMAGE, MSG_DOCUMENT, MSG_BUTTON_REPLY, MSG_LIST_REPLY, MSG_BUTTON, MSG_REACTION = (
    range(7)
)
MSG_TEXT_REPLY = 7  # a text quoting the agent's message (`context`)
GENERIC_REPLIES = {
    MSG_TEXT: 0.55,
    MSG_TEXT_REPLY: 0.17,
    MSG_REACTION: 0.12,
    MSG_IMAGE: 0.10,
    MSG_DOCUMENT: 0.06,
}
UNSOLICITED_KINDS = {MSG_TEXT: 0.72, MSG_IMAGE: 0.16, MSG_DOCUMENT: 0.12}
INTERACTIVE_ANSWER_SHARE = 0.85

# What customers write and send.
CUSTOMER_TEXTS = (
    "Ok sir", "Thank you", "Paid today", "Will pay by Friday", "Please send the payment link",
    "What is the due date?", "Ok ji, noted", "Can you call me in the evening?",
    "Premium kitna hai is baar?", "Done 👍", "Thanks for reminding 🙏", "Kal pay kar dunga",
    "I have changed my bank account, what to do?", "Please share the policy details",
    "Is my policy still active?", "Salary aane ke baad payment karunga",
    "Policy no. mentioned below\nPlease check status", "UPI payment failed twice\nPlease help",
    "Need tax certificate for 80C", "Can I add my wife as nominee?", "Good morning sir 🙏",
)  # fmt: skip
NATIVE_TEXTS = {
    "hi": ("धन्यवाद", "ठीक है जी", "कल भुगतान कर दूंगा", "प्रीमियम कितना है?"),
    "mr": ("धन्यवाद", "ठीक आहे", "उद्या पैसे भरतो"),
    "bn": ("ধন্যবাদ", "ঠিক আছে", "কাল টাকা দেব"),
    "ta": ("நன்றி", "சரி", "நாளை கட்டுகிறேன்"),
    "te": ("ధన్యవాదాలు", "సరే", "రేపు కడతాను"),
    "gu": ("આભાર", "બરાબર", "કાલે ભરી દઈશ"),
    "kn": ("ಧನ್ಯವಾದಗಳು", "ಸರಿ", "ನಾಳೆ ಕಟ್ಟುತ್ತೇನೆ"),
    "ml": ("നന്ദി", "ശരി", "നാളെ അടയ്ക്കാം"),
    "pa": ("ਧੰਨਵਾਦ", "ਠੀਕ ਹੈ", "ਕੱਲ੍ਹ ਭਰ ਦਿਆਂਗਾ"),
}
NATIVE_SHARE = 0.35  # of texts from customers whose language is not English
REACTIONS = ("👍", "🙏", "❤️", "😊", "👌")
IMAGE_CAPTIONS = ("Payment receipt", "Premium paid", "Screenshot of UPI payment", None, None, None)
DOCUMENTS = (
    ("Aadhaar.pdf", "application/pdf"),
    ("PAN card.pdf", "application/pdf"),
    ("Premium receipt.pdf", "application/pdf"),
    ("Medical report.pdf", "application/pdf"),
    ("Nominee form.docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
)  # fmt: skip
REPLY_BUTTONS = (
    ("pay_now", "Pay now"),
    ("remind_later", "Remind me later"),
    ("call_me", "Call me"),
)
LIST_ROWS = (
    ("premium_due", "Premium due date", "When my next premium is due"),
    ("policy_status", "Policy status", "Is my policy active"),
    ("claim_help", "Claim help", "How to make a claim"),
    ("update_nominee", "Update nominee", "Change my nominee"),
    ("tax_certificate", "Tax certificate", "Premium paid certificate for 80C"),
)
PREMIUM_STEP_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "annual": 12, "single": 0}


# --------------------------------------------------------------------------- world lookups


@dataclass(frozen=True)
class _Context:
    """What every plan needs from the world, as arrays, built once per generated day."""

    world: Any
    holder_agent: np.ndarray  # agent row of each policyholder
    opted_in: np.ndarray
    activity: np.ndarray  # the agent's messaging activity, mean about 1
    policy_holder: np.ndarray  # policyholder row of each premium-paying policy
    policy_issue: np.ndarray  # datetime64[D]
    policy_step: np.ndarray  # months between premiums
    policy_pay_months: np.ndarray
    policy_maturity: np.ndarray  # datetime64[D]
    agents: dict[str, list[str]]
    templates: dict[tuple[str, str, str], int]  # (provider_id, name, language) -> row


def _row_map(keys: pl.Series, universe: pl.Series) -> np.ndarray:
    """Row of each key in `universe` (ids are unique strings; every key must be there)."""
    rows = pl.Series(np.arange(universe.len(), dtype=np.int64))
    return keys.replace_strict(universe, rows, return_dtype=pl.Int64).to_numpy()


def _digits(number: str) -> str:
    """A phone number as WhatsApp writes it: country code and number, digits only."""
    digits = re.sub(r"\D", "", number)
    return "91" + digits if len(digits) == 10 else digits


def _waba_id(provider_id: str) -> str:
    """A stable 15-digit WhatsApp Business Account id per insurer (its agents' numbers share it)."""
    value = int.from_bytes(hashlib.blake2b(provider_id.encode(), digest_size=8).digest(), "big")
    return str(10**14 + value % (9 * 10**14))


def _context(world: Any) -> _Context:
    holders, agents, policies = world.policyholders, world.agents, world.policies
    holder_agent = _row_map(holders["agent_id"], agents["agent_id"])
    productivity = agents["productivity"].to_numpy() if "productivity" in agents.columns else None
    # Busy agents message more, but sub-linearly: a top seller does not send 20x the messages.
    activity = (np.ones(agents.height) if productivity is None else np.sqrt(productivity))[
        holder_agent
    ]
    activity = np.clip(activity / activity.mean(), 0.2, 3.0)  # mean 1 over policyholders
    step = policies["premium_mode"].replace_strict(PREMIUM_STEP_MONTHS, default=0).to_numpy()
    paying = step > 0
    return _Context(
        world=world,
        holder_agent=holder_agent,
        opted_in=holders["whatsapp_opt_in"].fill_null(False).to_numpy(),
        activity=activity,
        policy_holder=_row_map(policies["policyholder_id"], holders["policyholder_id"])[paying],
        policy_issue=policies["issue_date"].to_numpy()[paying].astype("datetime64[D]"),
        policy_step=step[paying],
        policy_pay_months=policies["premium_paying_term_years"].to_numpy()[paying] * 12,
        policy_maturity=policies["maturity_date"].to_numpy()[paying].astype("datetime64[D]"),
        agents={
            "agent_id": agents["agent_id"].to_list(),
            "provider_id": agents["provider_id"].to_list(),
            "phone_number_id": agents["whatsapp_phone_number_id"].cast(pl.String).to_list(),
            "display": [_digits(n) for n in agents["whatsapp_business_number"]],
            "waba": [_waba_id(p) for p in agents["provider_id"]],
        },
        templates={
            (p, n, lang): i
            for i, (p, n, lang) in enumerate(
                world.templates.select("provider_id", "name", "language").iter_rows()
            )
        },
    )


def _due_on(ctx: _Context, target: date) -> np.ndarray:
    """Which policyholders have a premium due on `target` (the issue day of month each period)."""
    issue = ctx.policy_issue
    months = (target.year - (issue.astype("datetime64[Y]").astype(int) + 1970)) * 12 + (
        target.month - (issue.astype("datetime64[M]").astype(int) % 12 + 1)
    )
    issue_day = (issue - issue.astype("datetime64[M]")).astype(int) + 1
    last_day = calendar.monthrange(target.year, target.month)[1]
    due = (
        (months > 0)
        & (months % np.maximum(ctx.policy_step, 1) == 0)
        & (months < ctx.policy_pay_months)
        & (np.minimum(issue_day, last_day) == target.day)
        & (np.datetime64(target) < ctx.policy_maturity)
    )
    holders = ctx.world.policyholders.height
    return np.bincount(ctx.policy_holder[due], minlength=holders) > 0


def _holder_info(world: Any, rows: np.ndarray) -> dict[str, list[Any]]:
    """The policyholder fields a body needs, for `rows` only (bounded memory at any tier)."""
    picked = world.policyholders[rows] if len(rows) else world.policyholders.head(0)
    info = picked.select(
        "policyholder_id",
        "full_name",
        "phone",
        "whatsapp_user_id",
        "contact_shares_phone",
        "language",
    ).to_dict(as_series=False)
    info["digits"] = [_digits(p) for p in info["phone"]]
    # Addressed by BSUID, with the phone hidden, when the customer does not share their number.
    info["hidden"] = [
        uid is not None and not shares
        for uid, shares in zip(info["whatsapp_user_id"], info["contact_shares_phone"], strict=True)
    ]
    info["who"] = [
        uid if hidden else digits
        for uid, hidden, digits in zip(
            info["whatsapp_user_id"], info["hidden"], info["digits"], strict=True
        )
    ]
    return info


def _profile_name(policyholder_id: str, full_name: str) -> str:
    """The WhatsApp profile name people set themselves: stable, often not their KYC name."""
    variant = hashlib.blake2b(policyholder_id.encode(), digest_size=1).digest()[0] % 10
    first = full_name.split(" ")[0]
    if variant < 5:
        return full_name
    if variant < 7:
        return first
    if variant == 7:
        return first.lower()
    if variant == 8:
        return f"{full_name} 🙏"
    return f"{first[0]}. {full_name.split(' ')[-1]}"


# --------------------------------------------------------------------------- the plan of a day


@dataclass(frozen=True)
class _Outbound:
    holder: np.ndarray  # policyholder row
    kind: np.ndarray  # KIND_*
    template: np.ndarray  # template row, -1 for none
    marketing: np.ndarray  # a marketing template (priced and limited differently)
    sent: np.ndarray  # unix seconds when the agent sent it
    wamid: list[str]
    info: dict[str, list[Any]]  # _holder_info of `holder`


@dataclass(frozen=True)
class _Statuses:
    ts: np.ndarray  # (4, n) unix seconds per state, -1 when Meta does not report it
    error: np.ndarray  # row in ERRORS for failed messages, -1 otherwise
    skipped: np.ndarray  # read without a delivered status


@dataclass(frozen=True)
class _Inbound:
    holder: np.ndarray
    kind: np.ndarray  # MSG_*
    ts: np.ndarray
    context: np.ndarray  # outbound row the message answers or reacts to, -1 for none
    choice: np.ndarray  # picks the text, button, file ... deterministically
    wamid: list[str]
    info: dict[str, list[Any]]


@dataclass(frozen=True)
class _Events:
    """One webhook delivery each: a status of an outbound message or an inbound message."""

    inbound: np.ndarray  # bool
    ref: np.ndarray  # row in _Outbound or _Inbound
    state: np.ndarray  # STATES index, -1 for inbound
    ts: np.ndarray
    recv_ms: np.ndarray
    duplicate: np.ndarray
    out_of_order: np.ndarray
    skipped: np.ndarray
    bad_signature: np.ndarray
    bad_variant: np.ndarray


@dataclass(frozen=True)
class _Plan:
    day: date
    outbound: _Outbound
    statuses: _Statuses
    inbound: _Inbound
    events: _Events


def _day_start(day: date) -> int:
    return int(datetime.combine(day, time(), IST).timestamp())


def _times_of_day(rng: np.random.Generator, day: date, n: int, weights: np.ndarray) -> np.ndarray:
    hours = rng.choice(24, size=n, p=weights / weights.sum())
    return _day_start(day) + hours * 3600 + rng.integers(0, 3600, size=n)


def _wamids(rng: np.random.Generator, who: list[str], inbound: bool) -> list[str]:
    """Meta-style message ids: base64 of the contact id and a random hex key (18 hex digits for
    business-sent messages, 20 for messages from a phone), as real wamids decode."""
    width, marker = (10, b"\x12\x18\x14") if inbound else (9, b"\x11\x18\x12")
    keys = rng.integers(0, 256, size=(len(who), width), dtype=np.uint8)
    out = []
    for ident, key in zip(who, keys, strict=True):
        raw = ident.encode()
        payload = (
            b"\x1c\x18"
            + bytes([len(raw)])
            + raw
            + b"\x15\x02\x00"
            + marker
            + key.tobytes().hex().upper().encode()
            + b"\x00"
        )
        out.append("wamid." + base64.b64encode(payload).decode())
    return out


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, size=n)


def _pick_templates(
    ctx: _Context, holders: np.ndarray, names: list[str], language: list[str]
) -> np.ndarray:
    """The template row for each message: the customer's language, else English, else none."""
    provider = ctx.agents["provider_id"]
    rows = np.full(len(holders), -1)
    for i, (agent, name, lang) in enumerate(
        zip(ctx.holder_agent[holders], names, language, strict=True)
    ):
        key = provider[agent], name
        rows[i] = ctx.templates.get((*key, lang), ctx.templates.get((*key, "en"), -1))
    return rows


def _draw_outbound(rng: np.random.Generator, ctx: _Context, day: date) -> _Outbound:
    world, n = ctx.world, ctx.world.policyholders.height
    factor = WEEKDAY_FACTOR[day.weekday()] * (TAX_SEASON_FACTOR if day.month <= 3 else 1.0)
    reminder = (
        ctx.opted_in
        & _due_on(ctx, day + timedelta(REMINDER_LEAD_DAYS))
        & (rng.random(n) < REMINDER_SHARE)
    )
    grace = (
        ctx.opted_in
        & _due_on(ctx, day - timedelta(GRACE_LAG_DAYS))
        & (rng.random(n) < GRACE_SHARE)
        & ~reminder
    )
    engage = (
        ctx.opted_in
        & (rng.random(n) < ENGAGEMENT_SHARE * factor * ctx.activity)
        & ~reminder
        & ~grace
    )
    holders = np.concatenate([np.flatnonzero(m) for m in (reminder, grace, engage)])
    n_rem, n_grace = int(reminder.sum()), int(grace.sum())
    kind = np.concatenate(
        [
            np.full(n_rem + n_grace, KIND_TEMPLATE),
            rng.choice(4, size=len(holders) - n_rem - n_grace, p=ENGAGEMENT_KINDS),
        ]
    )
    marketing = [name for name, _ in ENGAGEMENT_TEMPLATES]
    marketing_p = np.array([p for _, p in ENGAGEMENT_TEMPLATES])
    names = (
        ["premium_due_reminder"] * n_rem
        + ["grace_period_alert"] * n_grace
        + [marketing[i] for i in rng.choice(2, size=len(holders) - n_rem - n_grace, p=marketing_p)]
    )
    language = world.policyholders["language"].to_numpy()[holders].tolist()
    template = np.where(kind == KIND_TEMPLATE, _pick_templates(ctx, holders, names, language), -1)
    kind = np.where((kind == KIND_TEMPLATE) & (template < 0), KIND_TEXT, kind)
    sent = _times_of_day(rng, day, len(holders), SEND_HOUR_WEIGHTS)
    # Follow-ups: a free-form text later the same day (dropped if it would cross midnight).
    follow = rng.random(len(holders)) < FOLLOW_UP_SHARE
    follow_sent = sent + 60 + _lognormal(rng, 1800, 1.0, len(holders)).astype(np.int64)
    follow &= follow_sent < _day_start(day + timedelta(1))
    holders = np.concatenate([holders, holders[follow]])
    kind = np.concatenate([kind, np.full(int(follow.sum()), KIND_TEXT)])
    template = np.concatenate([template, np.full(int(follow.sum()), -1)])
    sent = np.concatenate([sent, follow_sent[follow]])
    order = np.lexsort((holders, sent))
    holders, kind, template, sent = holders[order], kind[order], template[order], sent[order]
    categories = world.templates["category"].to_numpy()
    marketing = (template >= 0) & (categories[np.maximum(template, 0)] == "marketing")
    info = _holder_info(world, holders)
    wamids = _wamids(rng, info["who"], False)
    return _Outbound(holders, kind, template, marketing, sent, wamids, info)


def _draw_statuses(rng: np.random.Generator, out: _Outbound, rates: FaultRates) -> _Statuses:
    n = len(out.sent)
    failed = rng.random(n) < FAILED_SHARE
    marketing_error = rng.choice(len(ERRORS), size=n, p=MARKETING_ERRORS)
    session_error = rng.choice(len(ERRORS), size=n, p=SESSION_ERRORS)
    error = np.select(
        [out.marketing, out.kind == KIND_TEMPLATE], [marketing_error, UNDELIVERABLE], session_error
    )
    error = np.where(failed, error, -1)
    after_sent = failed & (error == UNDELIVERABLE) & (rng.random(n) < FAIL_AFTER_SENT_SHARE)
    sent_ts = out.sent + rng.integers(1, 4, size=n)
    link = rng.random(n)
    online, offline = (
        link < ONLINE_SHARE,
        (link >= ONLINE_SHARE) & (link < ONLINE_SHARE + OFFLINE_SHARE),
    )
    delay = np.where(
        online,
        1 + _lognormal(rng, DELIVERY_MEDIAN_S, 1.0, n),
        60 + rng.exponential(OFFLINE_MEAN_S, size=n),
    )
    delivered_ts = sent_ts + np.minimum(delay, OFFLINE_MAX_S).astype(np.int64)
    delivered = ~failed & (online | offline)
    read = delivered & (rng.random(n) < READ_SHARE)
    read_ts = delivered_ts + 1 + np.minimum(_lognormal(rng, READ_MEDIAN_S, 1.6, n), READ_MAX_S)
    # Read at once (the chat was open): Meta sends no `delivered`, only `read`.
    skipped = read & (rng.random(n) < rates.delivered_skipped)
    read_ts = np.where(skipped, delivered_ts, read_ts).astype(np.int64)
    failed_ts = np.where(after_sent, sent_ts + rng.integers(1, 60, size=n), out.sent + 2)
    ts = np.stack(
        [
            np.where(~failed | after_sent, sent_ts, -1),
            np.where(delivered & ~skipped, delivered_ts, -1),
            np.where(read, read_ts, -1),
            np.where(failed, failed_ts, -1),
        ]
    ).astype(np.int64)
    return _Statuses(ts=ts, error=error, skipped=skipped)


def _reply_kinds(
    rng: np.random.Generator, out: _Outbound, rows: np.ndarray, ctx: _Context
) -> np.ndarray:
    """The kind of each reply: the button or list row for interactive and template messages, a
    generic mix (text, quoted text, reaction, photo, document) otherwise."""
    generic = rng.choice(list(GENERIC_REPLIES), size=len(rows), p=list(GENERIC_REPLIES.values()))
    answers = rng.random(len(rows))
    buttons = ctx.world.templates["buttons"].to_list()
    has_buttons = np.array([t >= 0 and bool(buttons[t]) for t in out.template[rows]], dtype=bool)
    kind = out.kind[rows]
    return np.select(
        [
            (kind == KIND_BUTTONS) & (answers < INTERACTIVE_ANSWER_SHARE),
            (kind == KIND_LIST) & (answers < INTERACTIVE_ANSWER_SHARE),
            has_buttons & (answers < TEMPLATE_BUTTON_REPLY_SHARE),
        ],
        [MSG_BUTTON_REPLY, MSG_LIST_REPLY, MSG_BUTTON],
        generic,
    )


def _draw_inbound(
    rng: np.random.Generator, ctx: _Context, day: date, out: _Outbound, st: _Statuses
) -> _Inbound:
    read = st.ts[READ] >= 0
    reply_p = np.array([REPLY_SHARE[k] for k in out.kind]) if len(out.kind) else np.zeros(0)
    replied = np.flatnonzero(read & (rng.random(len(out.kind)) < reply_p))
    reply_ts = (
        st.ts[READ, replied]
        + 2
        + np.minimum(_lognormal(rng, REPLY_MEDIAN_S, 1.2, len(replied)), REPLY_MAX_S).astype(
            np.int64
        )
    )
    reply_kind = _reply_kinds(rng, out, replied, ctx)
    n = ctx.world.policyholders.height
    writers = np.flatnonzero(rng.random(n) < UNSOLICITED_SHARE)
    writer_kind = rng.choice(
        list(UNSOLICITED_KINDS), size=len(writers), p=list(UNSOLICITED_KINDS.values())
    )
    writer_ts = _times_of_day(rng, day, len(writers), INBOUND_HOUR_WEIGHTS)
    holders = np.concatenate([out.holder[replied], writers]).astype(np.int64)
    kind = np.concatenate([reply_kind, writer_kind]).astype(np.int64)
    ts = np.concatenate([reply_ts, writer_ts]).astype(np.int64)
    context = np.concatenate([replied, np.full(len(writers), -1)]).astype(np.int64)
    choice = rng.integers(0, 2**31, size=len(holders))
    info = _holder_info(ctx.world, holders)
    return _Inbound(holders, kind, ts, context, choice, _wamids(rng, info["who"], True), info)


def _status_receipts(
    rng: np.random.Generator, st: _Statuses, rates: FaultRates
) -> tuple[np.ndarray, np.ndarray]:
    """Receipt times (ms) of each status, in the order of the states, then some delayed past the
    next state: Meta's out-of-order deliveries. Returns (recv_ms, out_of_order) shaped like ts."""
    present = st.ts >= 0
    recv = (
        st.ts * 1000
        + rng.integers(0, 1000, size=st.ts.shape)
        + rng.integers(*LATENCY_MS, size=st.ts.shape)
    )
    gap = rng.integers(20, 400, size=st.ts.shape)
    last = np.full(st.ts.shape[1], -1, dtype=np.int64)
    for state in range(len(STATES)):
        bumped = np.maximum(recv[state], last + gap[state])
        recv[state] = np.where(present[state] & (last >= 0), bumped, recv[state])
        last = np.where(present[state], recv[state], last)
    index = np.arange(len(STATES))[:, None]
    latest = np.where(present, index, -1).max(axis=0)
    before = np.where(present & (index < latest), index, -1).max(axis=0)
    chosen = (before >= 0) & (rng.random(st.ts.shape[1]) < rates.status_out_of_order)
    delay = rng.integers(*OUT_OF_ORDER_DELAY_MS, size=st.ts.shape[1])
    out_of_order = np.zeros(st.ts.shape, dtype=bool)
    cols = np.flatnonzero(chosen)
    recv[before[cols], cols] = recv[latest[cols], cols] + delay[cols]
    out_of_order[before[cols], cols] = True
    return recv, out_of_order


def _assemble_events(
    rng: np.random.Generator, st: _Statuses, inb: _Inbound, rates: FaultRates
) -> _Events:
    recv, out_of_order = _status_receipts(rng, st, rates)
    state, ref = np.nonzero(st.ts >= 0)
    inbound_recv = inb.ts * 1000 + rng.integers(0, 1000, size=len(inb.ts))
    inbound_recv += rng.integers(*LATENCY_MS, size=len(inb.ts))
    base = {
        "inbound": np.concatenate([np.zeros(len(ref), bool), np.ones(len(inb.ts), bool)]),
        "ref": np.concatenate([ref, np.arange(len(inb.ts))]),
        "state": np.concatenate([state, np.full(len(inb.ts), -1)]),
        "ts": np.concatenate([st.ts[state, ref], inb.ts]),
        "recv_ms": np.concatenate([recv[state, ref], inbound_recv]),
        "out_of_order": np.concatenate([out_of_order[state, ref], np.zeros(len(inb.ts), bool)]),
        "skipped": np.concatenate([(state == READ) & st.skipped[ref], np.zeros(len(inb.ts), bool)]),
    }
    # At-least-once delivery: Meta posts some bodies again, unchanged, after a retry delay.
    again = np.flatnonzero(rng.random(len(base["ref"])) < rates.duplicate)
    retry_s = np.clip(_lognormal(rng, RETRY_MEDIAN_S, 1.8, len(again)), RETRY_MIN_S, RETRY_MAX_S)
    retry_ms = 1000 * retry_s.astype(np.int64)
    columns = {key: np.concatenate([values, values[again]]) for key, values in base.items()}
    columns["recv_ms"][len(base["ref"]) :] += retry_ms
    for flag in ("out_of_order", "skipped"):  # a fault is counted once, on the first delivery
        columns[flag][len(base["ref"]) :] = False
    total = len(columns["ref"])
    columns["duplicate"] = np.arange(total) >= len(base["ref"])
    columns["bad_signature"] = rng.random(total) < rates.bad_signature
    columns["bad_variant"] = rng.integers(0, 2, size=total)
    return _Events(**columns)


def _plan(ctx: _Context, day: date, config: SimulationConfig) -> _Plan:
    """Everything that follows from the messages sent on `day`, wherever it is received."""
    rng = stream(config.seed, SOURCE, day)
    out = _draw_outbound(rng, ctx, day)
    statuses = _draw_statuses(rng, out, config.faults)
    inbound = _draw_inbound(rng, ctx, day, out, statuses)
    events = _assemble_events(rng, statuses, inbound, config.faults)
    return _Plan(day, out, statuses, inbound, events)


# --------------------------------------------------------------------------- bodies

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def meta_json(value: Any) -> bytes:
    """Compact JSON with non-ASCII escaped as lowercase `\\uXXXX` (surrogate pairs above the BMP):
    the bytes Meta signs and posts."""
    text = orjson.dumps(value).decode()
    return (text if text.isascii() else _NON_ASCII.sub(_escape, text)).encode()


def sign(body: bytes, app_secret: bytes) -> str:
    """The `X-Hub-Signature-256` header value: HMAC-SHA256 of the raw body bytes."""
    return "sha256=" + hmac.digest(app_secret, body, "sha256").hex()


def _bad_signature(body: bytes, app_secret: bytes, variant: int) -> str:
    """Signatures that do not verify, as they happen: a rotated secret, or a sender (or proxy) that
    signed a re-formatted body."""
    if variant == 0:
        return sign(body, b"rotated:" + app_secret)
    return sign(orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2), app_secret)


def _envelope(ctx: _Context, agent: int, value: dict[str, Any]) -> dict[str, Any]:
    metadata = {
        "display_phone_number": ctx.agents["display"][agent],
        "phone_number_id": ctx.agents["phone_number_id"][agent],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": ctx.agents["waba"][agent],
                "changes": [
                    {
                        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _contact(info: dict[str, list[Any]], row: int, profile: bool) -> dict[str, Any]:
    contact: dict[str, Any] = {}
    if profile:
        contact["profile"] = {
            "name": _profile_name(info["policyholder_id"][row], info["full_name"][row])
        }
    if not info["hidden"][row]:
        contact["wa_id"] = info["digits"][row]
    if info["whatsapp_user_id"][row] is not None:
        contact["user_id"] = info["whatsapp_user_id"][row]
    return contact


def _pricing_category(ctx: _Context, out: _Outbound, row: int) -> str:
    template = int(out.template[row])
    return ctx.world.templates["category"][template] if template >= 0 else "service"


def _status_body(ctx: _Context, plan: _Plan, row: int, state: int, ts: int) -> dict[str, Any]:
    out, info = plan.outbound, plan.outbound.info
    status: dict[str, Any] = {"id": out.wamid[row], "status": STATES[state], "timestamp": str(ts)}
    uid = info["whatsapp_user_id"][row]
    if not info["hidden"][row]:
        status["recipient_id"] = info["digits"][row]
    if uid is not None and (state != FAILED or info["hidden"][row]):
        status["recipient_user_id"] = uid
    if state == FAILED:
        code, title, details = ERRORS[int(plan.statuses.error[row])]
        status["errors"] = [
            {"code": code, "title": title, "message": title, "error_data": {"details": details}}
        ]
    elif state in (SENT, DELIVERED):
        category = _pricing_category(ctx, out, row)
        agent = int(ctx.holder_agent[out.holder[row]])
        key = f"{ctx.agents['phone_number_id'][agent]}/{info['who'][row]}/{plan.day}/{category}"
        conversation_id = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        conversation: dict[str, Any] = {"id": conversation_id}
        if state == SENT:
            conversation["expiration_timestamp"] = str(int(out.sent[row]) + 24 * 3600)
        conversation["origin"] = {"type": category}
        billable = category != "service"
        status["conversation"] = conversation
        status["pricing"] = {
            "billable": billable,
            "pricing_model": "PMP",
            "category": category,
            "type": "regular" if billable else "free_customer_service",
        }
    value: dict[str, Any] = {}
    if state != FAILED and uid is not None:  # BSUID era: contacts on sent/delivered/read only
        value["contacts"] = [_contact(info, row, profile=False)]
    value["statuses"] = [status]
    return _envelope(ctx, int(ctx.holder_agent[out.holder[row]]), value)


def _media(wamid: str) -> tuple[str, str]:
    """A media id and the file's sha256 (base64), stable per message."""
    digest = hashlib.sha256(wamid.encode()).digest()
    return str(10**15 + int.from_bytes(digest[:8], "big") % (9 * 10**15)), base64.b64encode(
        digest
    ).decode()


def _customer_text(language: str, choice: int) -> str:
    native = NATIVE_TEXTS.get(language)
    if native and choice % 100 < NATIVE_SHARE * 100:
        return native[(choice // 100) % len(native)]
    return CUSTOMER_TEXTS[(choice // 100) % len(CUSTOMER_TEXTS)]


def _message_payload(
    ctx: _Context, plan: _Plan, kind: int, choice: int, language: str, wamid: str, context: int
) -> dict[str, Any]:
    """The type-specific part of an inbound message."""
    out = plan.outbound
    if kind in (MSG_TEXT, MSG_TEXT_REPLY):
        return {"type": "text", "text": {"body": _customer_text(language, choice)}}
    if kind == MSG_IMAGE:
        media_id, sha = _media(wamid)
        image: dict[str, Any] = {"mime_type": "image/jpeg", "sha256": sha, "id": media_id}
        caption = IMAGE_CAPTIONS[choice % len(IMAGE_CAPTIONS)]
        return {"type": "image", "image": {"caption": caption, **image} if caption else image}
    if kind == MSG_DOCUMENT:
        media_id, sha = _media(wamid)
        filename, mime = DOCUMENTS[choice % len(DOCUMENTS)]
        document = {"filename": filename, "mime_type": mime, "sha256": sha, "id": media_id}
        return {"type": "document", "document": document}
    if kind == MSG_BUTTON_REPLY:
        button_id, title = REPLY_BUTTONS[choice % len(REPLY_BUTTONS)]
        reply = {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}
        return {"type": "interactive", "interactive": reply}
    if kind == MSG_LIST_REPLY:
        row_id, title, description = LIST_ROWS[choice % len(LIST_ROWS)]
        reply = {"id": row_id, "title": title, "description": description}
        return {"type": "interactive", "interactive": {"type": "list_reply", "list_reply": reply}}
    if kind == MSG_BUTTON:
        buttons = ctx.world.templates["buttons"][int(out.template[context])]
        text = buttons[choice % len(buttons)]
        return {"type": "button", "button": {"payload": text, "text": text}}
    reaction = {"message_id": out.wamid[context], "emoji": REACTIONS[choice % len(REACTIONS)]}
    return {"type": "reaction", "reaction": reaction}


def _inbound_body(ctx: _Context, plan: _Plan, row: int) -> dict[str, Any]:
    inb, info = plan.inbound, plan.inbound.info
    agent = int(ctx.holder_agent[inb.holder[row]])
    kind, context = int(inb.kind[row]), int(inb.context[row])
    message: dict[str, Any] = {}
    if context >= 0 and kind not in (MSG_TEXT, MSG_REACTION, MSG_IMAGE, MSG_DOCUMENT):
        quoted = plan.outbound.wamid[context]
        message["context"] = {"from": ctx.agents["display"][agent], "id": quoted}
    if not info["hidden"][row]:
        message["from"] = info["digits"][row]
    if info["whatsapp_user_id"][row] is not None:
        message["from_user_id"] = info["whatsapp_user_id"][row]
    message["id"] = inb.wamid[row]
    message["timestamp"] = str(int(inb.ts[row]))
    message.update(
        _message_payload(
            ctx, plan, kind, int(inb.choice[row]), info["language"][row], inb.wamid[row], context
        )
    )
    value = {"contacts": [_contact(info, row, profile=True)], "messages": [message]}
    return _envelope(ctx, agent, value)


def _body(ctx: _Context, plan: _Plan, event: int) -> bytes:
    ev = plan.events
    ref = int(ev.ref[event])
    if ev.inbound[event]:
        return meta_json(_inbound_body(ctx, plan, ref))
    return meta_json(_status_body(ctx, plan, ref, int(ev.state[event]), int(ev.ts[event])))


def _received_at(recv_ms: int) -> str:
    moment = datetime.fromtimestamp(recv_ms // 1000, IST) + timedelta(milliseconds=recv_ms % 1000)
    return moment.isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- the day's file


def _outbound_frame(ctx: _Context, plan: _Plan) -> pl.DataFrame:
    out = plan.outbound
    agents = ctx.holder_agent[out.holder]
    template_ids = ctx.world.templates["template_id"].to_list()
    return pl.DataFrame(
        {
            "wamid": out.wamid,
            "provider_id": [ctx.agents["provider_id"][a] for a in agents],
            "agent_id": [ctx.agents["agent_id"][a] for a in agents],
            "policyholder_id": out.info["policyholder_id"],
            "template_id": [template_ids[t] if t >= 0 else None for t in out.template],
            "phone_number_id": [ctx.agents["phone_number_id"][a] for a in agents],
            "sent_at": pl.Series(out.sent, dtype=pl.Int64),
        },
        schema_overrides={"template_id": pl.String, "policyholder_id": pl.String},
    ).with_columns(
        pl.from_epoch("sent_at", time_unit="s").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    )


def _record_faults(faults: FaultLog, day: date, events: _Events, mask: np.ndarray) -> None:
    faults.add(SOURCE, day, "duplicate", int((events.duplicate & mask).sum()))
    faults.add(SOURCE, day, "bad_signature", int((events.bad_signature & mask).sum()))
    faults.add(SOURCE, day, "status_out_of_order", int((events.out_of_order & mask).sum()))
    faults.add(SOURCE, day, "delivered_skipped", int((events.skipped & mask).sum()))


def _lines(
    ctx: _Context, plan: _Plan, received: np.ndarray, app_secret: bytes
) -> list[tuple[int, int, bytes]]:
    """(receipt ms, event, line) of the plan's deliveries selected by the `received` mask."""
    ev = plan.events
    out = []
    for event in np.flatnonzero(received):
        body = _body(ctx, plan, int(event))
        signature = (
            _bad_signature(body, app_secret, int(ev.bad_variant[event]))
            if ev.bad_signature[event]
            else sign(body, app_secret)
        )
        recv_ms = int(ev.recv_ms[event])
        line = {"received_at": _received_at(recv_ms), "signature": signature, "body": body.decode()}
        out.append((recv_ms, int(event), orjson.dumps(line)))
    return out


def generate_whatsapp_day(
    world: Any, day: date, config: SimulationConfig, faults: FaultLog, app_secret: bytes
) -> pl.DataFrame:
    """Write the webhook deliveries received on `day` to
    `<landing>/whatsapp/dt=<day>/deliveries.ndjson.gz`, one JSON line each:
    `{"received_at": ISO-8601 +05:30, "signature": "sha256=<hex>", "body": "<raw body>"}`, in
    receipt order; record the injected faults; and return the outbound messages sent on `day`
    (the `whatsapp_outbound` rows).
    """
    if not config.start <= day < config.end:
        raise ValueError(f"{day} is outside the simulated window {config.start}..{config.end}")
    ctx = _context(world)
    window = (_day_start(day) * 1000, _day_start(day + timedelta(1)) * 1000)
    send_days = [day - timedelta(back) for back in range(LOOKBACK_DAYS, -1, -1)]
    plans = [_plan(ctx, d, config) for d in send_days if d >= config.start]
    received: list[tuple[int, int, int, bytes]] = []
    for order, plan in enumerate(plans):
        on_day = (plan.events.recv_ms >= window[0]) & (plan.events.recv_ms < window[1])
        _record_faults(faults, day, plan.events, on_day)
        received += [
            (ms, order, event, line) for ms, event, line in _lines(ctx, plan, on_day, app_secret)
        ]
    received.sort(key=lambda item: item[:3])
    path = day_folder(config.landing_root, SOURCE, day) / FILE_NAME
    write_gzip_lines(path, (item[3] for item in received))
    return _outbound_frame(ctx, plans[-1]).select(OUTBOUND_COLUMNS)


# --------------------------------------------------------------------------- truth

TRUE_STATE_COLUMNS = ("wamid", "final_state", "failed", "error_code", "sent_at", "settled_at")


def _true_states(plan: _Plan) -> pl.DataFrame:
    """The planned outcome of each message of one send day (its plan's `statuses.ts`)."""
    ts, error = plan.statuses.ts, plan.statuses.error
    ranked = np.arange(FAILED)[:, None]  # SENT, DELIVERED, READ: the rank order
    best = np.where(ts[:FAILED] >= 0, ranked, -1).max(axis=0, initial=-1)
    return pl.DataFrame(
        {
            "wamid": plan.outbound.wamid,
            "final_state": [STATES[b] if b >= 0 else None for b in best],
            "failed": ts[FAILED] >= 0,
            "error_code": [ERRORS[e][0] if e >= 0 else None for e in error],
            "sent_at": pl.Series(plan.outbound.sent, dtype=pl.Int64),
            "settled_at": pl.Series(ts.max(axis=0, initial=-1), dtype=pl.Int64),
        },
        schema_overrides={"wamid": pl.String, "final_state": pl.String, "error_code": pl.Int64},
    ).with_columns(
        pl.from_epoch(column, time_unit="s").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        for column in ("sent_at", "settled_at")
    )


def true_message_states(world: Any, config: SimulationConfig) -> pl.DataFrame:
    """The true final state of every outbound message sent on the run's days, for
    `<truth>/whatsapp_states.parquet`.

    Computed from each send day's plan (the same `_plan` the deliveries are written from, so it
    agrees with them by construction) *before* delivery faults: duplicates, out-of-order arrivals
    and bad signatures change what an ingester sees, never what happened. Columns:

    - `final_state`: the furthest of sent < delivered < read that Meta reports (a `read` whose
      `delivered` is skipped is `read`); null for a message that failed before it was sent.
    - `failed`, `error_code`: whether Meta reports a failure, and its Cloud API code.
    - `sent_at`: when the agent sent it; `settled_at`: the time of its last planned status. A
      message whose `settled_at` is within a few minutes of the window's end (or after it) may
      have statuses still in flight when the run stops: compare those as "not beyond the truth".
    """
    ctx = _context(world)
    frames = [_true_states(_plan(ctx, day, config)) for day in config.day_list()]
    return pl.concat(frames).select(TRUE_STATE_COLUMNS)
