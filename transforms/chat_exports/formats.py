"""The time stamp that starts a record, in every shape phones write it, and the date order.

One pattern covers the shapes: Android `18/02/20, 14:05 - `, iOS `[18/02/20, 2:05:07 PM] `,
year-first `2020-02-18, 14:05 - ` and `[2019-04-16 02:09:33] `, Finnish `18.2.2020 klo 14.05 - `,
12-hour markers before or after the time in the phone's language, and digits in the phone's
script (Marathi and Bengali phones write Devanagari and Bengali digits). A file is written by one
phone in one locale, so only the file's most common *shape* starts records: a continuation line
that happens to look like another shape stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

# 12-hour markers as phones write them -> am/pm. Matching ignores case, dots and spaces.
MERIDIEM: dict[str, str] = {
    "am": "am", "pm": "pm", "a. m.": "am", "p. m.": "pm", "vorm.": "am", "nachm.": "pm",
    "vm.": "am", "nm.": "pm",
    "पूर्वाह्न": "am", "अपराह्न": "pm",  # Hindi
    "म.पू.": "am", "म.उ.": "pm",  # Marathi
    "முற்பகல்": "am", "பிற்பகல்": "pm",  # Tamil
    "పూర్వాహ్నం": "am", "అపరాహ్నం": "pm",  # Telugu
    "পূর্বাহ্ণ": "am", "অপরাহ্ণ": "pm",  # Bengali
    "પૂર્વ મધ્યાહ્ન": "am", "ઉત્તર મધ્યાહ્ન": "pm",  # Gujarati
    "ಪೂರ್ವಾಹ್ನ": "am", "ಅಪರಾಹ್ನ": "pm",  # Kannada
    "ਪੂ.ਦੁ.": "am", "ਬਾ.ਦੁ.": "pm",  # Punjabi
    "오전": "am", "오후": "pm", "上午": "am", "下午": "pm", "午前": "am", "午後": "pm",
    "ص": "am", "م": "pm",
}  # fmt: skip
_SPACE = "[ \u00a0\u202f]"
# The zero of each script whose digits phones write (Arabic-Indic, Persian, Devanagari, Bengali,
# Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam); the other nine follow it.
_NATIVE_ZEROS = (0x660, 0x6F0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66)
DIGITS = {chr(zero + i): str(i) for zero in _NATIVE_ZEROS for i in range(10)}


def _marker_key(marker: pl.Expr) -> pl.Expr:
    return marker.str.to_lowercase().str.replace_all(r"[.\s\u00a0\u202f]", "")


MERIDIEM_KEYS = {re.sub(r"[.\s]", "", k.lower()): v for k, v in MERIDIEM.items()}


def _marker_pattern() -> str:
    forms = sorted(MERIDIEM, key=len, reverse=True)
    return "(?i:" + "|".join(re.escape(f).replace(r"\ ", f"{_SPACE}?") for f in forms) + ")"


_MARK = _marker_pattern()
_D = r"\d"
STAMP = (
    r"^[\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]*(?P<open>\[)?"
    rf"(?:(?P<ya>{_D}{{4}})(?P<sa>[./-])(?P<ma>{_D}{{1,2}})[./-](?P<da>{_D}{{1,2}})"
    rf"|(?P<f1>{_D}{{1,2}})(?P<sb>[./-])(?P<f2>{_D}{{1,2}})[./-](?P<yb>{_D}{{4}}|{_D}{{2}}))"
    rf"(?P<between>,?{_SPACE}(?:(?:klo|kl\.|à|um|às|a las){_SPACE})?)"
    rf"(?:(?P<ap0>{_MARK}){_SPACE}?)?"
    rf"(?P<h>{_D}{{1,2}})(?P<ts>[:.])(?P<mi>{_D}{{2}})(?:[:.](?P<s>{_D}{{2}}))?"
    rf"(?:{_SPACE}?(?P<ap>{_MARK}))?"
    r"(?P<close>\] | - | \x{2013} |: )(?P<rest>.*)$"
)
STAMP_FIELDS = ("open", "ya", "sa", "ma", "da", "f1", "sb", "f2", "yb", "between")
STAMP_FIELDS += ("ap0", "h", "ts", "mi", "s", "ap", "close", "rest")
_NUMBERS = ("ya", "ma", "da", "f1", "f2", "yb", "h", "mi", "s")


def stamp_columns(line: pl.Expr) -> list[pl.Expr]:
    """The stamp's fields of `line` (nulls when it does not start with a stamp), digits ASCII."""
    groups = line.str.extract_groups(STAMP)
    fields = [groups.struct.field(f) for f in STAMP_FIELDS]
    fields = [
        f.str.replace_many(DIGITS).alias(f.meta.output_name()) if n in _NUMBERS else f
        for f, n in zip(fields, STAMP_FIELDS, strict=True)
    ]
    return fields


def stamp_shape() -> pl.Expr:
    """What must be the same on every record of one file (null for a line without a stamp)."""
    return pl.concat_str(
        [
            pl.col("open").fill_null(""),
            pl.coalesce("sa", "sb"),
            pl.col("ya").is_not_null().cast(pl.String),
            pl.col("between"),
            pl.col("ts"),
            pl.col("close"),
        ],
        separator="|",
    ).alias("shape")


# --------------------------------------------------------------------------- date order

DMY, MDY, YMD = "dmy", "mdy", "ymd"


@dataclass(frozen=True)
class DateOrder:
    order: str | None  # dmy | mdy | ymd; None for a file without stamps
    ambiguous: bool  # nothing in the file decided it: the hint (or day-first) was used


def local_time(order: str) -> pl.Expr:
    """The wall-clock time of a record read in `order` (null when no such date or time)."""
    if order == YMD:
        year, month, day = pl.col("ya"), pl.col("ma"), pl.col("da")
    else:
        year = pl.col("yb")
        day, month = (pl.col("f1"), pl.col("f2")) if order == DMY else (pl.col("f2"), pl.col("f1"))
    year = year.cast(pl.Int32)
    year = pl.when(year < 100).then(year + 2000).otherwise(year)
    marker = _marker_key(pl.coalesce("ap0", "ap")).replace_strict(
        MERIDIEM_KEYS, default=None, return_dtype=pl.String
    )
    hour = pl.col("h").cast(pl.Int32)
    twelve = marker.is_not_null()
    hour = pl.when(twelve).then(hour % 12 + (marker == "pm").cast(pl.Int32) * 12).otherwise(hour)
    valid_clock = ~twelve | pl.col("h").cast(pl.Int32).is_between(0, 12)
    seconds = pl.col("s").fill_null("00").cast(pl.Int32)
    parts = [year, month.cast(pl.Int32), day.cast(pl.Int32), hour, pl.col("mi").cast(pl.Int32)]
    text = pl.format(
        "{}-{}-{} {}:{}:{}", *(p.cast(pl.String).str.zfill(2) for p in [*parts, seconds])
    )
    parsed = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    return pl.when(valid_clock).then(parsed)


def _decreases(records: pl.DataFrame, order: str) -> int:
    times = local_time(order).drop_nulls()
    return records.select((times.diff() < pl.duration(microseconds=0)).sum()).item()


def date_order(records: pl.DataFrame, day_first: bool | None = None) -> DateOrder:
    """The file's date order from evidence: a year-first file is year-month-day; a field over 12
    is a day; else the order whose times never go back (exports are chronological). When neither
    decides and the orders give different dates, the caller's hint, else day-first (India)."""
    if records.is_empty():
        return DateOrder(None, False)
    if records["ya"].is_not_null().all():
        return DateOrder(YMD, False)
    f1, f2 = records["f1"].cast(pl.Int32), records["f2"].cast(pl.Int32)
    over1, over2 = int((f1 > 12).sum()), int((f2 > 12).sum())
    if over1 != over2:  # a contradictory file keeps the order fewer records contradict
        return DateOrder(DMY if over1 > over2 else MDY, False)
    if over1 == 0:
        backs = {order: _decreases(records, order) for order in (DMY, MDY)}
        if backs[DMY] != backs[MDY]:
            return DateOrder(min(backs, key=backs.__getitem__), False)
    default = DMY if day_first is None or day_first else MDY
    return DateOrder(default, not (f1 == f2).all())
