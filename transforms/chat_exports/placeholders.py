"""Message types from what a line says instead of the message (tables in `vocabulary`).

Matching is on a normalised body: bidi marks removed (iOS sprinkles U+200E into placeholders),
surrounding spaces and a final full stop dropped, lower case.
"""

from __future__ import annotations

import re

import polars as pl

from transforms.chat_exports import vocabulary as v

BIDI = "[\u200e\u200f\u202a-\u202e\u2066-\u2069]"
EXTENSION_TYPES = {
    **dict.fromkeys(("jpg", "jpeg", "png", "heic"), "image"),
    **dict.fromkeys(("mp4", "3gp", "mov", "gif", "mkv"), "video"),
    **dict.fromkeys(("opus", "ogg", "m4a", "aac", "mp3", "amr", "wav"), "audio"),
    "webp": "sticker",
    "vcf": "contacts",
}


def _alternation(texts: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(t.lower()) for t in sorted(texts, key=len, reverse=True))


EXACT_KINDS: dict[str, str] = {
    t.lower().rstrip("."): kind
    for table in v.EXACT.values()
    for kind, texts in table.items()
    for t in texts
}
_DOCUMENT = rf"(?:{_alternation(v.DOCUMENT_ENDINGS)})$"
_ATTACHED = (
    rf"^(?:<(?:{_alternation(v.ATTACHED_PREFIXES)}) ?: (?P<f1>[^>\n]*)>"
    rf"|(?P<f2>[^\n]+) \((?:{_alternation(v.ATTACHED_SUFFIXES)})\))$"
)
_POLL = rf"^(?:{_alternation(v.POLL_HEADS)}) ?:\n"
_LOCATION = rf"^(?:{_alternation(v.LOCATION_HEADS)}) ?: https?://"
EDITED = rf"[ \n]*{BIDI}*(?:{'|'.join(re.escape(m) for m in v.EDITED_MARKERS)})$"
NOTICE = "^(?:" + "|".join(p for patterns in v.NOTICES.values() for p in patterns) + ")$"


def normalised(body: pl.Expr) -> pl.Expr:
    return (
        body.str.replace_all(BIDI, "")
        .str.strip_chars()
        .str.to_lowercase()
        .str.strip_suffix(".")
        .str.strip_chars_end()
    )


def is_notice(body: pl.Expr) -> pl.Expr:
    """Whether `body` (a whole line after the stamp, or iOS text) is a notice of the vocabulary."""
    return body.str.replace_all(BIDI, "").str.strip_chars().str.contains(NOTICE)


def message_type(content: pl.Expr) -> pl.Expr:
    """`text`, or the kind the placeholder names (`media` where Android does not say which)."""
    norm = normalised(content)
    attached = norm.str.split("\n").list.first().str.extract_groups(_ATTACHED)
    file_name = pl.coalesce(attached.struct.field("f1"), attached.struct.field("f2"))
    by_extension = file_name.str.extract(r"\.(\w+)$", 1).replace_strict(
        EXTENSION_TYPES, default="document", return_dtype=pl.String
    )
    return (
        pl.when(norm.is_in(list(EXACT_KINDS)))
        .then(norm.replace_strict(EXACT_KINDS, default=None, return_dtype=pl.String))
        .when(norm.str.contains(_DOCUMENT))
        .then(pl.lit("document"))
        .when(file_name.is_not_null())
        .then(by_extension)
        .when(norm.str.contains(_POLL))
        .then(pl.lit("poll"))
        .when(norm.str.contains(_LOCATION))
        .then(pl.lit("location"))
        .otherwise(pl.lit("text"))
    )
