"""WhatsApp "Export chat" .txt files into the message table (DESIGN §5, `source='chat_export'`).

What phones write, and so what this accepts:

- Android `DD/MM/YY, HH:MM - Name: text`, or `h:mm am` / `h:mm pm` with a 12-hour clock;
  system lines (`DD/MM/YY, HH:MM - Messages and calls are end-to-end encrypted...`) have no name.
- iOS `[DD/MM/YY, HH:MM:SS] Name: text`, or `h:mm:ss PM` with U+202F before AM/PM; media and
  deleted lines start with U+200E, and iOS attributes its notices to the chat's name with the
  text starting with U+200E.
- A line that does not start with a time stamp continues the previous message (joined with "\n").
- Dates are day-first unless the file proves otherwise: some first field above 12 proves
  day-first, some second field above 12 (and no first) proves month-first; nothing proves either
  in the first 12 days of a month, and India writes day-first. Years may have 2 or 4 digits.
- No time zone is written: the agent's phone runs on Asia/Kolkata, converted here to UTC.

Who is who: the file alone cannot say which participant is the agent, but the export is named
`WhatsApp Chat with <counterpart>.txt` by the phone that exported it, i.e. the agent's phone, so
the participant named there is the customer (`inbound`) and the other one is the agent
(`outbound`). Without that name (a renamed file) iOS still names the chat in its notices; failing
both, `direction` is null rather than a guess. Neither name is stored (DESIGN §5): a counterpart
saved as a phone number becomes `customer_phone_token`, and the file name itself, which holds the
customer's name, is stored only as a keyed token (`export_file`).

Message ids: exports have none, so `wamid` is `chat.` + sha256 of (chat, sender, time, text,
occurrence) truncated to 32 hex digits. It is deterministic, and the same message in a later
re-export of the same chat gets the same id, so overlapping exports dedupe on `wamid` instead of
counting a conversation twice. (Line numbers would differ between exports, so they are not used.)

Counting: a *record* is a line that starts with a time stamp plus its continuation lines, or a
non-blank line before the first time stamp (which cannot belong to a message: rejected
`no_timestamp`). `read == messages.height + system_lines + rejected.height`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

import polars as pl

from transforms.pii import keyed_token, normalise_e164, phone_token
from transforms.whatsapp import MESSAGES_SCHEMA, QUARANTINE_SCHEMA, conform

AGENT_TIME_ZONE = "Asia/Kolkata"
NO_TIMESTAMP = "no_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
WAMID_PREFIX, WAMID_HEX = "chat.", 32

_DATE = r"(?P<d1>\d{1,2})[./-](?P<d2>\d{1,2})[./-](?P<y>\d{4}|\d{2})"
_TIME = (
    r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?:[:.](?P<s>\d{2}))?"
    r"(?:[ \x{202f}\x{a0}]?(?P<ap>[AaPp]\.?[Mm]\.?))?"
)
STAMPS = {  # platform -> a line that starts a message or notice
    "ios": rf"^\x{{200e}}?\[{_DATE},? {_TIME}\] (?P<rest>.*)$",
    "android": rf"^\x{{200e}}?{_DATE},? {_TIME} - (?P<rest>.*)$",
}
_STAMP_FIELDS = ("d1", "d2", "y", "h", "mi", "s", "ap", "rest")
_SENDER = r"^(?P<sender>[^:]{1,100}?): (?P<body>.*)$"
EXPORT_FILE_NAME = re.compile(r"^WhatsApp Chat (?:with|-) (?P<name>.+?)(?: \(\d+\))?\.(?:txt|zip)$")
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')

LRM = "\u200e"
_EDITED = r"\s*\x{200e}?<This message was edited>$"
_DELETED = r"^\x{200e}?(?:This message was deleted|You deleted this message)\.?$"
_OMITTED = r"^\x{200e}?(image|video|audio|sticker|GIF) omitted$"
_DOCUMENT = r"\x{200e}?document omitted$"
_ATTACHED = r"^\x{200e}?(?:<attached: [^>]*\.(\w+)>|.*\.(\w+) \(file attached\))$"
EXTENSION_TYPES = {
    **dict.fromkeys(("jpg", "jpeg", "png", "heic"), "image"),
    **dict.fromkeys(("mp4", "3gp", "mov", "gif"), "video"),
    **dict.fromkeys(("opus", "ogg", "m4a", "aac", "mp3"), "audio"),
    "webp": "sticker",
}


@dataclass(frozen=True)
class ChatExportResult:
    messages: pl.DataFrame  # MESSAGES_SCHEMA, source 'chat_export'
    rejected: pl.DataFrame  # QUARANTINE_SCHEMA
    read: int  # records: messages + system lines + rejected
    system_lines: int  # notices without a sender (encryption, security code, ...): skipped


# --------------------------------------------------------------------------- lines to records


def _split_lines(text: str) -> list[str]:
    """The file's lines; only "\n" separates (a message may hold U+2028 and friends), a BOM and
    the final newline are not content."""
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _platform(lines: pl.Series) -> str:
    """The format of the first stamped line: one file, one phone. Only that format starts
    records, so a continuation line that happens to look like the other format stays text."""
    first: dict[str, int] = {}
    for platform, pattern in STAMPS.items():
        matches = lines.str.contains(pattern).arg_true()
        if matches.len():
            first[platform] = int(matches[0])
    return min(first, key=first.__getitem__) if first else "android"


def _stamped_lines(lines: list[str]) -> pl.DataFrame:
    """One row per line: its number, text, the stamp's fields when it starts a record, and the
    record it belongs to (0 for lines before the first stamp)."""
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String}).with_row_index(
        "line_number", offset=1
    )
    stamp = pl.col("line").str.extract_groups(STAMPS[_platform(frame["line"])])
    frame = frame.with_columns(stamp.struct.field(*_STAMP_FIELDS))
    header = pl.col("d1").is_not_null()
    sender = pl.col("rest").str.extract_groups(_SENDER)
    return frame.with_columns(
        record=header.cast(pl.Int64).cum_sum(),
        sender=sender.struct.field("sender"),
        content=pl.when(header)
        .then(pl.coalesce(sender.struct.field("body"), pl.col("rest")))
        .otherwise(pl.col("line")),
    )


def _records(stamped: pl.DataFrame) -> pl.DataFrame:
    """One row per record: the stamp and sender of its first line, its lines joined."""
    return (
        stamped.filter(pl.col("record") > 0)
        .group_by("record", maintain_order=True)
        .agg(
            pl.col("line_number", *_STAMP_FIELDS, "sender").first(),
            pl.col("content").str.join("\n"),
            raw=pl.col("line").str.join("\n"),
        )
        .drop("record")
    )


# --------------------------------------------------------------------------- time stamps


def _day_first(records: pl.DataFrame) -> bool:
    """Day-first unless only the second field ever exceeds 12 (see the module docstring)."""
    first_over = records.select((pl.col("d1").cast(pl.Int32) > 12).any()).item()
    second_over = records.select((pl.col("d2").cast(pl.Int32) > 12).any()).item()
    return bool(first_over) or not second_over


def _local_time(day_first: bool) -> pl.Expr:
    """The wall-clock time of a record (null when the fields make no valid date or time)."""
    d1, d2 = pl.col("d1").cast(pl.Int32), pl.col("d2").cast(pl.Int32)
    day, month = (d1, d2) if day_first else (d2, d1)
    year = pl.col("y").cast(pl.Int32)
    year = pl.when(year < 100).then(year + 2000).otherwise(year)
    hour = pl.col("h").cast(pl.Int32)
    twelve = pl.col("ap").is_not_null()
    pm = pl.col("ap").str.to_lowercase().str.starts_with("p")
    hour = pl.when(twelve).then(hour % 12 + pm.cast(pl.Int32) * 12).otherwise(hour)
    valid_clock = ~twelve | pl.col("h").cast(pl.Int32).is_between(1, 12)
    seconds = pl.col("s").fill_null("00").cast(pl.Int32)
    parts = [year, month, day, hour, pl.col("mi").cast(pl.Int32), seconds]
    text = pl.format("{}-{}-{} {}:{}:{}", *(p.cast(pl.String).str.zfill(2) for p in parts))
    parsed = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    return pl.when(valid_clock).then(parsed)


def _to_utc(local: pl.Expr) -> pl.Expr:
    return local.dt.replace_time_zone(AGENT_TIME_ZONE).dt.convert_time_zone("UTC")


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


def _directions(records: pl.DataFrame, counterpart: str | None) -> dict[str, str]:
    """sender -> `inbound` for the counterpart, `outbound` for the one other participant; any
    other sender (a group chat, an unknown counterpart) gets no direction rather than a guess."""
    if counterpart is None:
        return {}
    senders = records.filter(~pl.col("is_system"))["sender"].unique().to_list()
    out = {s: "inbound" for s in senders if safe_contact_name(s) == counterpart}
    others = [s for s in senders if s not in out]
    if len(others) == 1:
        out[others[0]] = "outbound"
    return out


def _message_type() -> pl.Expr:
    """text, deleted, or the media kind the line names ('media' when Android does not say)."""
    body = pl.col("content")
    attached = body.str.extract_groups(_ATTACHED)
    extension = pl.coalesce(attached.struct.field("1"), attached.struct.field("2"))
    by_extension = extension.str.to_lowercase().replace_strict(
        EXTENSION_TYPES, default="document", return_dtype=pl.String
    )
    omitted = body.str.extract(_OMITTED, 1).str.to_lowercase().replace("gif", "video")
    return (
        pl.when(body.str.contains(_DELETED))
        .then(pl.lit("deleted"))
        .when(body == "<Media omitted>")
        .then(pl.lit("media"))
        .when(omitted.is_not_null())
        .then(omitted)
        .when(body.str.contains(_DOCUMENT))
        .then(pl.lit("document"))
        .when(extension.is_not_null())
        .then(by_extension)
        .otherwise(pl.lit("text"))
    )


def _classified(records: pl.DataFrame) -> pl.DataFrame:
    """Records with `message_type` and `is_system`: no sender, or (iOS) text that starts with
    U+200E and is not a media or deleted line."""
    typed = records.with_columns(
        content=pl.col("content").str.replace(_EDITED, ""), message_type=_message_type()
    )
    notice = pl.col("content").str.starts_with(LRM) & (pl.col("message_type") == "text")
    return typed.with_columns(is_system=pl.col("sender").is_null() | notice)


def _wamids(chat: str, messages: pl.DataFrame) -> pl.Series:
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
    return pl.Series(
        [WAMID_PREFIX + hashlib.sha256(k.encode()).hexdigest()[:WAMID_HEX] for k in keys],
        dtype=pl.String,
    )


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


def _customer_phone_token(counterpart: str | None, pii_key: bytes) -> str | None:
    """The counterpart's token when the agent never saved the contact (the name is a number)."""
    if counterpart is None or normalise_e164(counterpart) is None:
        return None
    return phone_token(counterpart, pii_key)


def parse_chat_export(
    text: str, file_name: str, receipt_day: date, pii_key: bytes
) -> ChatExportResult:
    """Parse one export into MESSAGES_SCHEMA rows (`source='chat_export'`), the lines it could not
    place (QUARANTINE_SCHEMA) and the counts that reconcile them. Never raises on content."""
    stamped = _stamped_lines(_split_lines(text))
    records = _records(stamped)
    records = _classified(records).with_columns(local_time=_local_time(_day_first(records)))
    bad = records.filter(pl.col("local_time").is_null())
    records = records.filter(pl.col("local_time").is_not_null())
    counterpart = _counterpart(file_name, records)
    messages = records.filter(~pl.col("is_system"))
    messages = messages.with_columns(
        wamid=_wamids(counterpart or file_name, messages),
        received_day=pl.lit(receipt_day),
        sent_at=_to_utc(pl.col("local_time")),
        source=pl.lit("chat_export"),
        direction=pl.col("sender").replace_strict(
            _directions(records, counterpart), default=None, return_dtype=pl.String
        ),
        customer_phone_token=pl.lit(_customer_phone_token(counterpart, pii_key), pl.String),
        text_body=pl.when(pl.col("message_type") == "text").then(pl.col("content")),
        export_file=pl.lit(keyed_token(file_name, pii_key)),
    )
    rejected = _rejected(stamped, bad, receipt_day)
    system_lines = records.height - messages.height
    return ChatExportResult(
        messages=conform(messages, MESSAGES_SCHEMA),
        rejected=rejected,
        read=messages.height + system_lines + rejected.height,
        system_lines=system_lines,
    )
