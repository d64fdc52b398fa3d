"""WhatsApp "Export chat" .txt files into the message table (`source='chat_export'`).

Records: a line that starts with the file's time stamp (see `formats`) plus the lines that follow
it without one (joined with "\n"); a non-blank line before the first stamp cannot belong to a
message and is rejected `no_timestamp`; a stamp that makes no date or time (31/02) is rejected
`bad_timestamp`. Every record is a message, a notice (`system_lines`) or rejected:
`read == messages.height + system_lines + rejected.height`.

Senders: `Name: text`, where a name may itself hold ": " (`Meena: LIC: hello`). Names are collected
from lines with a single ": " first; a line with several takes the longest prefix that is a name
seen in the file, else the shortest. Notices are recognised only where no sender is (Android; a
notice holds ": " only inside a quoted group name) or in text that starts with U+200E (iOS
attributes notices to the chat), so a customer who writes "Meena left" is still a message.

No time zone is written: the agent's phone runs on Asia/Kolkata, converted here to UTC.

Who is who: the phone that exports names the file `WhatsApp Chat with <counterpart>.txt`, so the
participant named there is the customer (`inbound`) and, in a 1:1 chat, the other one the agent
(`outbound`). Without that name (a renamed file) iOS still names the chat in its notices; in a
group chat or without a name, `direction` is null rather than a guess. Names are never stored: a
customer saved as a phone number gives `customer_phone_token` (in a 1:1 chat on every row, as
webhook rows carry the customer's; in a group only on that sender's rows), and the file name,
which names the customer, is stored only as a keyed token (`export_file`).

Message ids: exports have none, so `wamid` is `chat.` + sha256 of (chat, sender, time, text,
occurrence) truncated to 32 hex digits: the same message in a later re-export of the same chat
gets the same id, so overlapping exports dedupe on `wamid` (line numbers would differ).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

import polars as pl

from transforms.chat_exports.formats import (
    DMY,
    STAMP_FIELDS,
    date_order,
    local_time,
    stamp_columns,
    stamp_shape,
)
from transforms.chat_exports.placeholders import BIDI, EDITED, is_notice, message_type
from transforms.pii import keyed_token, phone_tokens
from transforms.whatsapp import MESSAGES_SCHEMA, QUARANTINE_SCHEMA, conform, with_id_tokens

AGENT_TIME_ZONE = "Asia/Kolkata"
NO_TIMESTAMP = "no_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
WAMID_PREFIX, WAMID_HEX = "chat.", 32
SEPARATOR = ": "
QUOTES = '["\u201c\u201d\u201e\u00ab\u00bb]'
EXPORT_FILE_NAME = re.compile(
    r"^(?:WhatsApp Chat (?:with|mit|-)|Chat de WhatsApp con|Conversa do WhatsApp com"
    r"|Discussion WhatsApp avec) (?P<name>.+?)(?: \(\d+\))?\.(?:txt|zip)$"
)
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


@dataclass(frozen=True)
class ChatExportResult:
    messages: pl.DataFrame  # MESSAGES_SCHEMA, source 'chat_export'
    rejected: pl.DataFrame  # QUARANTINE_SCHEMA
    read: int  # records: messages + system lines + rejected
    system_lines: int  # notices (encryption, security code, X added Y, ...): skipped
    date_order: str | None = None  # dmy | mdy | ymd; None for a file without stamps
    date_order_ambiguous: bool = False  # nothing in the file decided it: hint or day-first


# --------------------------------------------------------------------------- lines to records


def _split_lines(text: str) -> list[str]:
    """The file's lines; only "\n" separates (a message may hold U+2028 and friends), a BOM and
    the final newline are not content."""
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _stamped_lines(lines: list[str]) -> pl.DataFrame:
    """One row per line: its number, text, stamp fields, and the record it belongs to (0 before
    the first stamp). Only the file's most common stamp shape starts a record."""
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String}).with_row_index(
        "line_number", offset=1
    )
    frame = frame.with_columns(stamp_columns(pl.col("line"))).with_columns(stamp_shape())
    shapes = frame["shape"].drop_nulls()
    shape = shapes.mode().sort()[0] if shapes.len() else None
    header = (pl.col("shape") == shape).fill_null(False) if shape else pl.lit(False)
    return frame.with_columns(record=header.cast(pl.Int64).cum_sum(), header=header)


def _records(stamped: pl.DataFrame) -> pl.DataFrame:
    """One row per record: the stamp of its first line, the continuation lines joined."""
    return (
        stamped.filter(pl.col("record") > 0)
        .group_by("record", maintain_order=True)
        .agg(
            pl.col("line_number", *STAMP_FIELDS).first(),
            more=pl.col("line").slice(1).str.join("\n"),
            lines=pl.len(),
            raw=pl.col("line").str.join("\n"),
        )
        .drop("record")
    )


# --------------------------------------------------------------------------- senders


def _longest_known(rest: str, known: set[str]) -> str:
    """The longest prefix of `rest` before a ": " that is a known sender, else the shortest."""
    cuts = [m.start() for m in re.finditer(re.escape(SEPARATOR), rest)]
    for cut in reversed(cuts):
        if rest[:cut] in known:
            return rest[:cut]
    return rest[: cuts[0]]


def _senders(records: pl.DataFrame, ios: bool) -> pl.DataFrame:
    """`sender` (null for a notice), `body` and `is_system` of every record (module docstring)."""
    rest = pl.col("rest")
    first = rest.str.extract_groups(r"^(?P<name>.*?): (?P<after>.*)$")
    records = records.with_columns(
        seps=rest.str.count_matches(SEPARATOR, literal=True),
        candidate=first.struct.field("name"),
        # Android notices hold ": " only inside a quoted group name or subject.
        quoted_notice=is_notice(rest) & first.struct.field("name").str.contains(QUOTES),
    )
    single = records.filter(pl.col("seps") == 1)
    if not ios:
        single = single.filter(~pl.col("quoted_notice").fill_null(False))
    known = set(single["candidate"].to_list())
    several = records.filter(pl.col("seps") > 1)
    chosen = dict(
        zip(
            several["line_number"].to_list(),
            [_longest_known(r, known) for r in several["rest"].to_list()],
            strict=True,
        )
    )
    sender = pl.when(pl.col("seps") > 1).then(
        pl.col("line_number").replace_strict(chosen, default=None, return_dtype=pl.String)
    )
    records = records.with_columns(sender=sender.otherwise(pl.col("candidate")))
    body = rest.str.slice(pl.col("sender").str.len_chars() + len(SEPARATOR))
    records = records.with_columns(body=pl.when(pl.col("sender").is_not_null()).then(body))
    if ios:  # notices come as `<chat>: \u200e<notice>`
        notice = pl.col("body").str.contains(f"^{BIDI}") & is_notice(pl.col("body"))
    else:  # notices have no sender; a known sender's line is a message whatever it says
        notice = ~pl.col("sender").is_in(list(known)) & pl.col("quoted_notice")
    system = pl.col("sender").is_null() | notice.fill_null(False)
    return records.with_columns(is_system=system)


# --------------------------------------------------------------------------- who and what


def safe_contact_name(name: str) -> str:
    """A contact name as phones put it into a file name (unsafe characters become "_")."""
    return _UNSAFE.sub("_", name).strip(" .")


def _counterpart(file_name: str, records: pl.DataFrame) -> str | None:
    """The customer's name as the file shows it: from `WhatsApp Chat with <name>.txt`, else from
    the iOS notices, which are attributed to the chat's name."""
    match = EXPORT_FILE_NAME.match(file_name.rsplit("/", 1)[-1])
    if match:
        return match.group("name")
    notices = records.filter(pl.col("sender").is_not_null() & pl.col("is_system"))
    return safe_contact_name(notices["sender"][0]) if notices.height else None


def _directions(messages: pl.DataFrame, counterpart: str | None) -> dict[str, str]:
    """sender -> `inbound` for the counterpart, `outbound` for the one other participant; any
    other sender (a group chat, an unknown counterpart) gets no direction rather than a guess."""
    if counterpart is None:
        return {}
    senders = messages["sender"].unique().to_list()
    out = {s: "inbound" for s in senders if safe_contact_name(s) == counterpart}
    others = [s for s in senders if s not in out]
    if len(out) == 1 and len(others) == 1:
        out[others[0]] = "outbound"
    return out


def _wamids(chat: str, messages: pl.DataFrame) -> list[str]:
    """`chat.<hash>` of (chat, sender, local time, text, occurrence of that triple)."""
    occurrence = pl.int_range(pl.len()).over("sender", "local_time", "content")
    keys = messages.select(
        pl.concat_str(
            pl.lit(chat),
            "sender",
            pl.col("local_time").cast(pl.String),
            "content",
            occurrence.cast(pl.String),
            separator="\x1f",
        )
    ).to_series()
    return [WAMID_PREFIX + hashlib.sha256(k.encode()).hexdigest()[:WAMID_HEX] for k in keys]


def _content() -> list[pl.Expr]:
    """The message text (continuation lines included, edit marker stripped) and its facts."""
    text = pl.when(pl.col("lines") > 1).then(
        pl.concat_str(pl.col("body"), pl.lit("\n"), pl.col("more"))
    )
    text = text.otherwise(pl.col("body"))
    return [
        text.str.replace(EDITED, "").alias("content"),
        text.str.contains(EDITED).alias("edited"),
    ]


# --------------------------------------------------------------------------- the result


def _rejected(stamped: pl.DataFrame, bad: pl.DataFrame, receipt_day: date) -> pl.DataFrame:
    orphans = stamped.filter((pl.col("record") == 0) & (pl.col("line").str.strip_chars() != ""))
    return conform(
        pl.concat(
            [
                orphans.select("line_number", raw="line", reason=pl.lit(NO_TIMESTAMP)),
                bad.select("line_number", "raw", reason=pl.lit(BAD_TIMESTAMP)),
            ]
        ).with_columns(received_day=pl.lit(receipt_day)),
        QUARANTINE_SCHEMA,
    )


def _to_utc(local: pl.Expr) -> pl.Expr:
    return local.dt.replace_time_zone(AGENT_TIME_ZONE).dt.convert_time_zone("UTC")


def _customer_phone_tokens(
    senders: pl.Series, directions: dict[str, str], pii_key: bytes
) -> pl.Series | pl.Expr:
    """The customer's token on each row: in a 1:1 chat with a counterpart saved as a number,
    that number's on every row (as webhook rows carry the customer's, whoever wrote); otherwise
    a sender saved as a number on its own rows only, never the agent's."""
    customer = [sender for sender, way in directions.items() if way == "inbound"]
    if "outbound" in directions.values() and customer:
        return pl.lit(phone_tokens(pl.Series([customer[0]]), pii_key)[0], pl.String)
    tokens = phone_tokens(senders, pii_key)
    return pl.when(pl.col("direction").fill_null("") != "outbound").then(tokens)


def parse_chat_export(
    text: str,
    file_name: str,
    receipt_day: date,
    pii_key: bytes,
    day_first: bool | None = None,
) -> ChatExportResult:
    """Parse one export into MESSAGES_SCHEMA rows (`source='chat_export'`), the lines it could not
    place (QUARANTINE_SCHEMA) and the counts that reconcile them. Never raises on content.

    `day_first` is the uploader's locale (day before month), used only when the file itself
    cannot decide its date order; the result says when that happened.
    """
    stamped = _stamped_lines(_split_lines(text))
    records = _records(stamped)
    order = date_order(records, day_first)
    ios = records.height > 0 and records["open"][0] == "["
    records = _senders(records, ios).with_columns(local_time=local_time(order.order or DMY))
    bad = records.filter(pl.col("local_time").is_null())
    records = records.filter(pl.col("local_time").is_not_null())
    counterpart = _counterpart(file_name, records)
    messages = records.filter(~pl.col("is_system")).with_columns(_content())
    messages = messages.with_columns(message_type=message_type(pl.col("content")))
    wamids = _wamids(counterpart or file_name, messages)
    directions = _directions(messages, counterpart)
    messages = messages.with_columns(
        wamid=pl.Series(wamids, dtype=pl.String),
        received_day=pl.lit(receipt_day),
        sent_at=_to_utc(pl.col("local_time")),
        source=pl.lit("chat_export"),
        direction=pl.col("sender").replace_strict(directions, default=None, return_dtype=pl.String),
        text_body=pl.when(pl.col("message_type") == "text").then(pl.col("content")),
        export_file=pl.lit(keyed_token(file_name, pii_key)),
    )
    messages = messages.with_columns(
        customer_phone_token=_customer_phone_tokens(messages["sender"], directions, pii_key)
    )
    rejected = _rejected(stamped, bad, receipt_day)
    system_lines = records.height - messages.height
    return ChatExportResult(
        messages=with_id_tokens(conform(messages, MESSAGES_SCHEMA), pii_key),
        rejected=rejected,
        read=messages.height + system_lines + rejected.height,
        system_lines=system_lines,
        date_order=order.order,
        date_order_ambiguous=order.ambiguous,
    )
