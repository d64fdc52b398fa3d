"""Chat export parsing on the simulator's files (both platforms, both clocks) and on hand-written
files for what the simulator never writes: month-first dates, renamed files, unsaved contacts,
garbage, re-exports.

The expected values come from reading each file line by line with the simulator's own formats
(a stamped line starts a record, the simulator's notices are its only system lines, the first
message of every chat is the agent's opener), not from the parser under test.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from simulator.chat_exports import ENCRYPTION_NOTICE, generate_chat_exports_day
from simulator.config import SimulationConfig
from simulator.faults import FaultLog
from simulator.world import World, build_world
from tests.transforms.test_whatsapp import assert_no_clear_phone
from transforms.chat_exports import ChatExportResult, parse_chat_export
from transforms.pii import keyed_token, phone_token
from transforms.whatsapp import MESSAGES_SCHEMA, QUARANTINE_SCHEMA

PII_KEY = b"test-pii-key"
START = date(2026, 9, 1)
DAYS = 10
IST = timedelta(hours=5, minutes=30)
STAMPS = {  # (platform, clock) -> the stamp as the simulator writes it
    ("android", 24): re.compile(r"^(\d\d)/(\d\d)/(\d\d), (\d\d):(\d\d)()() - "),
    ("android", 12): re.compile(r"^(\d\d)/(\d\d)/(\d\d), (\d{1,2}):(\d\d)()( [ap]m) - "),
    ("ios", 24): re.compile(r"^\u200e?\[(\d\d)/(\d\d)/(\d\d), (\d\d):(\d\d):(\d\d)()\] "),
    ("ios", 12): re.compile(
        r"^\u200e?\[(\d\d)/(\d\d)/(\d\d), (\d{1,2}):(\d\d):(\d\d)(\u202f[AP]M)\] "
    ),
}
NOTICES = re.compile(re.escape(ENCRYPTION_NOTICE) + r"|^\u200e?Your security code with .* changed")
MEDIA = {
    "<Media omitted>": "media",
    "\u200eimage omitted": "image",
    "\u200evideo omitted": "video",
    "\u200esticker omitted": "sticker",
}
DELETED = ("This message was deleted", "You deleted this message")


@dataclass(frozen=True)
class Expected:
    """One record of a file as the test reads it."""

    local: datetime  # IST wall clock
    sender: str | None  # None for a notice
    text: str  # first line's text and continuation lines, joined


@dataclass(frozen=True)
class Export:
    day: date
    path: Path
    fmt: tuple[str, int]
    records: list[Expected]
    result: ChatExportResult

    @property
    def messages(self) -> list[Expected]:
        return [r for r in self.records if r.sender is not None]


def read_expected(text: str) -> tuple[tuple[str, int], list[Expected]]:
    lines = text.splitlines()
    fmt = next(key for key, rx in STAMPS.items() if rx.match(lines[0]))
    rx = STAMPS[fmt]
    records: list[Expected] = []
    for line in lines:
        match = rx.match(line)
        if match is None:
            last = records[-1]
            records[-1] = Expected(last.local, last.sender, last.text + "\n" + line)
            continue
        day, month, year, hour, minute = (int(g) for g in match.groups()[:5])
        second = int(match.group(6) or 0)
        if match.group(7):
            hour = hour % 12 + (12 if match.group(7).strip().lower() == "pm" else 0)
        rest = line[match.end() :]
        sender, _, body = rest.partition(": ")
        notice = NOTICES.search(body if fmt[0] == "ios" else rest)
        records.append(
            Expected(
                datetime(2000 + year, month, day, hour, minute, second),
                None if notice else sender,
                rest if notice else body,
            )
        )
    return fmt, records


@pytest.fixture(scope="module")
def world_and_exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, list[Export]]:
    root = tmp_path_factory.mktemp("exports")
    config = SimulationConfig(tier="mvp", start=START, days=DAYS, landing_root=root)
    world, exports = build_world(config), []
    for day in config.day_list():
        generate_chat_exports_day(world, day, config, FaultLog())
        for path in sorted((root / "whatsapp_exports" / f"dt={day}").glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            fmt, records = read_expected(text)
            result = parse_chat_export(text, path.name, day, PII_KEY)
            exports.append(Export(day, path, fmt, records, result))
    return world, exports


@pytest.fixture(scope="module")
def exports(world_and_exports: tuple[World, list[Export]]) -> list[Export]:
    return world_and_exports[1]


def parse(text: str, name: str = "WhatsApp Chat with Ravi Kumar.txt") -> ChatExportResult:
    return parse_chat_export(text, name, START, PII_KEY)


def local_times(result: ChatExportResult) -> list[datetime]:
    """sent_at back on the IST wall clock, naive, as the file wrote it."""
    return [(t + IST).replace(tzinfo=None) for t in result.messages["sent_at"]]


# --------------------------------------------------------------------------- simulator files


def test_every_format_occurs(exports: list[Export]) -> None:
    assert {e.fmt for e in exports} == set(STAMPS)


def test_no_rejected_lines_and_the_right_counts(exports: list[Export]) -> None:
    for export in exports:
        result = export.result
        assert result.rejected.is_empty(), export.path.name
        assert result.rejected.schema == pl.Schema(QUARANTINE_SCHEMA)
        assert result.messages.schema == pl.Schema(MESSAGES_SCHEMA)
        assert result.messages.height == len(export.messages), export.path.name
        assert result.system_lines == len(export.records) - len(export.messages) >= 1
        assert result.read == len(export.records)
        assert (result.messages["source"] == "chat_export").all()
        assert (result.messages["received_day"] == export.day).all()


def test_times_are_day_first_ist_converted_to_utc(exports: list[Export]) -> None:
    late_days = 0
    for export in exports:
        assert local_times(export.result) == [m.local for m in export.messages]
        assert export.result.messages["sent_at"].dtype == pl.Datetime("us", "UTC")
        late_days += any(m.local.day > 12 for m in export.messages)
    assert late_days > 0, "some dates only parse day-first"


def test_directions_follow_the_file_name(exports: list[Export]) -> None:
    for export in exports:
        agent = export.messages[0].sender  # every chat opens with the agent's message
        expected = ["outbound" if m.sender == agent else "inbound" for m in export.messages]
        assert export.result.messages["direction"].to_list() == expected, export.path.name
        assert "inbound" in expected or len(export.messages) == 1


def test_types_and_multi_line_bodies(exports: list[Export]) -> None:
    multi_line = 0
    for export in exports:
        rows = export.result.messages.select("message_type", "text_body").iter_rows()
        for (kind, body), expected in zip(rows, export.messages, strict=True):
            text = expected.text
            if text in MEDIA:
                assert (kind, body) == (MEDIA[text], None)
            elif text.endswith("document omitted"):
                assert (kind, body) == ("document", None)
            elif text.lstrip("\u200e").rstrip(".") in DELETED:
                assert (kind, body) == ("deleted", None)
            else:
                assert kind == "text"
                assert body == re.sub(r" \u200e?<This message was edited>$", "", text)
                multi_line += "\n" in body
    assert multi_line > 0
    kinds = set(pl.concat([e.result.messages for e in exports])["message_type"])
    assert kinds >= {"text", "media", "image", "document", "deleted"}


def test_wamids_are_unique_and_deterministic(exports: list[Export]) -> None:
    wamids = pl.concat([e.result.messages["wamid"] for e in exports])
    assert wamids.str.contains(r"^chat\.[0-9a-f]{32}$").all()
    assert wamids.n_unique() == wamids.len()
    again = exports[0]
    rerun = parse_chat_export(again.path.read_text(), again.path.name, again.day, PII_KEY)
    assert rerun.messages.equals(again.result.messages)


def test_no_names_or_phone_numbers_in_clear(
    world_and_exports: tuple[World, list[Export]],
) -> None:
    world, exports = world_and_exports
    messages = pl.concat([e.result.messages for e in exports])
    # Agents quote 10-digit policy numbers in their texts: the bodies are checked for the world's
    # phone numbers only.
    assert_no_clear_phone(messages, world, digit_runs_allowed=frozenset({"text_body"}))
    names = set(world.policyholders["full_name"]) | set(world.agents["full_name"])
    for name, dtype in messages.schema.items():
        if dtype == pl.String and name != "text_body":  # bodies stay in raw (DESIGN §5)
            assert not messages[name].drop_nulls().str.contains_any(list(names)).any(), name
    for export in exports:
        assert set(export.result.messages["export_file"]) == {
            keyed_token(export.path.name, PII_KEY)
        }


# --------------------------------------------------------------------------- hand-written files


ANDROID_CHAT = f"""\
05/06/26, 9:15 am - {ENCRYPTION_NOTICE}
05/06/26, 9:15 am - Asha Rao: Namaste Ravi ji
05/06/26, 12:05 am - Ravi Kumar: Ok ji
05/06/26, 12:30 pm - Ravi Kumar: Premium kitna hai?
Policy 1234
13/06/26, 7:45 pm - Asha Rao: <Media omitted>
"""


def test_android_twelve_hour_clock_and_day_first_proof() -> None:
    result = parse(ANDROID_CHAT)
    assert result.rejected.is_empty() and (result.read, result.system_lines) == (5, 1)
    assert local_times(result) == [
        datetime(2026, 6, 5, 9, 15),
        datetime(2026, 6, 5, 0, 5),  # 12:05 am is just after midnight
        datetime(2026, 6, 5, 12, 30),
        datetime(2026, 6, 13, 19, 45),
    ]
    assert result.messages["sent_at"][1] == datetime(2026, 6, 4, 18, 35, tzinfo=UTC)
    assert result.messages["direction"].to_list() == ["outbound", "inbound", "inbound", "outbound"]
    assert result.messages["text_body"][2] == "Premium kitna hai?\nPolicy 1234"


def test_dates_are_day_first_unless_the_file_proves_otherwise() -> None:
    ambiguous = "05/06/26, 10:00 - Asha Rao: Hello\n"
    assert local_times(parse(ambiguous)) == [datetime(2026, 6, 5, 10, 0)]
    us_phone = "05/06/26, 10:00 - Asha Rao: Hello\n05/13/26, 10:00 - Asha Rao: Again\n"
    assert local_times(parse(us_phone)) == [datetime(2026, 5, 6, 10), datetime(2026, 5, 13, 10)]
    four_digit_year = "13.06.2026, 22:10 - Asha Rao: Hello\n"
    assert local_times(parse(four_digit_year)) == [datetime(2026, 6, 13, 22, 10)]


def test_ios_twelve_hour_clock_notices_and_renamed_file() -> None:
    ios = (
        "[01/09/26, 9:05:07\u202fPM] Ravi Kumar: \u200eMessages and calls are end-to-end"
        " encrypted. Only people in this chat can read, listen to, or share them.\n"
        "[01/09/26, 9:06:00\u202fPM] Asha Rao: Hello Ravi ji\n"
        "\u200e[01/09/26, 9:07:30\u202fPM] Ravi Kumar: \u200eimage omitted\n"
        "\u200e[01/09/26, 9:08:00\u202fPM] Ravi Kumar: Receipt.pdf \u2022 \u200e1 page"
        " \u200edocument omitted\n"
        "[01/09/26, 12:01:02\u202fAM] Asha Rao: Thanks \u200e<This message was edited>\n"
    )
    result = parse(ios, name="_chat.txt")  # iOS zips the chat as _chat.txt: the notice names it
    assert result.rejected.is_empty() and result.system_lines == 1
    assert result.messages["direction"].to_list() == ["outbound", "inbound", "inbound", "outbound"]
    assert result.messages["message_type"].to_list() == ["text", "image", "document", "text"]
    assert result.messages["text_body"].to_list() == ["Hello Ravi ji", None, None, "Thanks"]
    assert result.messages["sent_at"][0] == datetime(2026, 9, 1, 15, 36, tzinfo=UTC)
    assert local_times(result)[-1] == datetime(2026, 9, 1, 0, 1, 2)


def test_without_the_counterpart_direction_is_unknown_not_guessed() -> None:
    result = parse("05/06/26, 10:00 - Asha Rao: Hello\n", name="chat.txt")
    assert result.messages["direction"].to_list() == [None]


def test_an_unsaved_contact_gives_the_phone_token() -> None:
    chat = "05/06/26, 10:00 - Asha Rao: Hello\n05/06/26, 10:01 - +91 98123 45678: Who is this?\n"
    result = parse(chat, name="WhatsApp Chat with +91 98123 45678.txt")
    expected = phone_token("919812345678", PII_KEY)
    # A 1:1 chat: every row is of the conversation with that customer, as in the webhooks.
    assert result.messages["customer_phone_token"].to_list() == [expected, expected]
    assert result.messages["direction"].to_list() == ["outbound", "inbound"]
    for name, dtype in result.messages.schema.items():
        if dtype == pl.String and name != "text_body":
            assert not result.messages[name].drop_nulls().str.contains("98123").any(), name
    assert result.messages["export_file"][0] == keyed_token(
        "WhatsApp Chat with +91 98123 45678.txt", PII_KEY
    )


def test_lines_that_cannot_be_placed_are_rejected_and_counted() -> None:
    text = "garbage before\n\n31/02/26, 10:00 - Asha Rao: No such day\n" + ANDROID_CHAT
    result = parse(text)
    assert result.rejected.select("line_number", "reason").rows() == [
        (1, "no_timestamp"),
        (3, "bad_timestamp"),
    ]
    assert result.rejected["raw"].to_list() == [
        "garbage before",
        "31/02/26, 10:00 - Asha Rao: No such day",
    ]
    assert result.read == result.messages.height + result.system_lines + result.rejected.height
    assert result.messages.height == 4
    empty = parse("")
    assert (empty.read, empty.messages.height) == (0, 0)


def test_a_re_export_gives_the_same_ids_to_the_same_messages() -> None:
    first = parse(ANDROID_CHAT)
    later = (
        ANDROID_CHAT
        + "14/06/26, 8:00 am - Ravi Kumar: Paid\n14/06/26, 8:00 am - Ravi Kumar: Paid\n"
    )
    second = parse(later, name="WhatsApp Chat with Ravi Kumar (2).txt")
    ids = second.messages["wamid"].to_list()
    assert ids[:4] == first.messages["wamid"].to_list()
    assert len(set(ids)) == len(ids) == 6, "the same text twice in a minute: two messages"


# --------------------------------------------------------------------------- the corpus
# tests/data/chat_exports/: one file per shape phones write, with its locale's placeholders and
# notices. The expected values are read off each file by hand: messages by type, notices,
# rejected lines, the first and last message in UTC, who is the customer.

CORPUS = Path(__file__).parents[1] / "data" / "chat_exports"


@dataclass(frozen=True)
class Case:
    file: str
    name: str  # the name the phone gave the export (it names the counterpart)
    types: dict[str, int]  # messages by message_type
    system: int
    rejected: int
    first: datetime  # UTC
    last: datetime
    directions: dict[str | None, int]
    order: str
    sample: str  # one line of the file, for the report


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


CASES = [
    Case("android_in_24h.txt", "WhatsApp Chat with Ravi 🙏 _D.txt",
         {"text": 6, "media": 1, "deleted": 1, "poll": 1, "location": 1, "waiting": 1}, 2, 0,
         utc(2020, 2, 18, 3, 31), utc(2020, 2, 19, 16, 2), {"outbound": 4, "inbound": 7}, "dmy",
         "18/02/20, 09:05 - Ravi 🙏 :D: namaste"),
    Case("android_hi_12h_nnbsp.txt", "WhatsApp Chat with Meena Iyer.txt",
         {"text": 3, "media": 1, "deleted": 2}, 1, 0,
         utc(2021, 3, 5, 3, 46), utc(2021, 3, 12, 18, 31), {"outbound": 3, "inbound": 3}, "dmy",
         "05/03/21, 12:05\u202fpm - Meena Iyer: <मीडिया के बिना>"),
    Case("android_us_month_first.txt", "WhatsApp Chat with Priya Banerjee.txt",
         {"text": 1, "image": 1, "audio": 1, "contacts": 1, "document": 1}, 2, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 3, 1, 4, 30), {"outbound": 2, "inbound": 3}, "mdy",
         "2/18/20, 2:10\u202fPM - Priya Banerjee: IMG-20200218-WA0003.jpg (file attached)"),
    Case("ios_en_12h.txt", "_chat.txt",
         {"text": 2, "image": 1, "document": 1, "contacts": 1, "deleted": 1, "location": 1,
          "video": 1, "audio": 1, "waiting": 1, "sticker": 1}, 2, 0,
         utc(2023, 1, 12, 4, 46), utc(2023, 1, 15, 18, 29, 59), {"outbound": 3, "inbound": 8},
         "dmy", "\u200e[12/01/23, 10:17:30\u202fAM] Lakshmi Narayanan: \u200eimage omitted"),
    Case("ios_de_24h.txt", "WhatsApp Chat mit Hans Müller.txt",
         {"text": 3, "image": 2, "deleted": 1}, 1, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 2, 19, 2, 31), {"outbound": 2, "inbound": 4}, "dmy",
         "[18.02.20, 14:06:00] Kiran Shetty: Guten Tag Herr Müller"),
    Case("android_iso_year_first.txt", "WhatsApp Chat with Ravi Kumar.txt",
         {"text": 2, "media": 1}, 1, 2,
         utc(2020, 2, 18, 8, 36), utc(2020, 3, 1, 3, 30), {"outbound": 1, "inbound": 2}, "ymd",
         "2020-02-18, 14:06 - Anders Lindqvist: Hej Ravi"),
    Case("ios_year_first.txt", "_chat.txt",
         {"text": 1, "poll": 1, "video": 1}, 1, 0,
         utc(2019, 4, 15, 20, 40), utc(2019, 5, 2, 3, 30), {"outbound": 2, "inbound": 1}, "ymd",
         "[2019-04-16 02:10:00] Tom Becker: Hi Meera"),
    Case("android_jp_slash_year_first.txt", "WhatsApp Chat with Takeshi Sato.txt",
         {"text": 2, "media": 1}, 1, 0,
         utc(2019, 1, 1, 8, 36), utc(2019, 1, 2, 3, 30), {"outbound": 1, "inbound": 2}, "ymd",
         "2019/01/01 14:06 - Takeshi Sato: あけましておめでとう"),
    Case("android_es_pm_nbsp.txt", "Chat de WhatsApp con Lucía Fernández.txt",
         {"text": 2, "media": 1, "deleted": 1, "image": 1}, 1, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 2, 19, 3, 30), {"outbound": 1, "inbound": 4}, "dmy",
         "18/2/20, 2:06\u00a0p.\u00a0m. - Lucía Fernández: Hola Arjun"),
    Case("android_hi_markers.txt", "WhatsApp Chat with +91 98765 43210.txt",
         {"text": 3, "media": 1}, 1, 0,
         utc(2020, 2, 18, 3, 36), utc(2020, 2, 20, 14, 30), {"outbound": 2, "inbound": 2}, "dmy",
         "18/02/20, 2:05 अपराह्न - +91 98765 43210: कौन?"),
    Case("android_fi_klo.txt", "WhatsApp Chat with Aino Virtanen.txt",
         {"text": 3}, 1, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 3, 1, 3, 30), {"outbound": 1, "inbound": 2}, "dmy",
         "18.2.2020 klo 14.06 - Aino Virtanen: Hei Rahul"),
    Case("android_de_vorm_nachm.txt", "WhatsApp Chat mit Sunita Joshi.txt",
         {"text": 1, "media": 1, "image": 1, "deleted": 1}, 1, 0,
         utc(2020, 2, 18, 3, 36), utc(2020, 2, 18, 18, 29), {"outbound": 2, "inbound": 2}, "dmy",
         "18.02.20, 12:30 nachm. - Sunita Joshi: <Medien ausgeschlossen>"),
    Case("android_mr_native_digits.txt", "WhatsApp Chat with Ganesh Kulkarni.txt",
         {"text": 2, "media": 1, "deleted": 1}, 1, 0,
         utc(2020, 2, 18, 3, 36), utc(2020, 2, 19, 4, 30), {"outbound": 2, "inbound": 2}, "dmy",
         "१८/०२/२०, २:०५ म.उ. - Ganesh Kulkarni: <मीडिया वगळले>"),
    Case("ios_ta_group.txt", "WhatsApp Chat with LIC Chennai Team.txt",
         {"text": 4, "image": 1, "deleted": 1}, 2, 0,
         utc(2020, 2, 18, 3, 40), utc(2020, 2, 19, 4, 30), {None: 6}, "dmy",
         "[18/02/20, 9:11:00 முற்பகல்] \u202a+91 98400 12345\u202c: நன்றி மேடம்"),
    Case("android_ambiguous_dates.txt", "WhatsApp Chat with Rohan Das.txt",
         {"text": 2}, 1, 0,
         utc(2024, 4, 3, 4, 31), utc(2024, 4, 3, 4, 35), {"outbound": 1, "inbound": 1}, "dmy",
         "03/04/24, 10:01 - Nisha Kapoor: Hello, is the premium paid?"),
    Case("ios_pt_br.txt", "Conversa do WhatsApp com João Silva.txt",
         {"text": 2, "image": 1, "deleted": 1, "sticker": 1}, 1, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 2, 18, 8, 40), {"outbound": 1, "inbound": 4}, "dmy",
         "[18/02/2020 14:06:00] Anita Desai: Olá João"),
    Case("android_fr_a.txt", "Discussion WhatsApp avec Marie Dubois.txt",
         {"text": 1, "media": 1, "deleted": 1, "poll": 1}, 1, 0,
         utc(2020, 2, 18, 8, 36), utc(2020, 2, 18, 8, 39), {"outbound": 1, "inbound": 3}, "dmy",
         "18/02/2020 à 14:06 - Marie Dubois: Bonjour Deepak"),
    Case("android_kn_12h.txt", "WhatsApp Chat with Manjunath Gowda.txt",
         {"text": 2, "media": 1, "deleted": 1}, 1, 0,
         utc(2020, 2, 18, 3, 36), utc(2020, 2, 18, 10, 2), {"outbound": 1, "inbound": 3}, "dmy",
         "18/02/20, 3:30 ಅಪರಾಹ್ನ - Manjunath Gowda: <ಮೀಡಿಯಾ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ>"),
]  # fmt: skip


def _corpus(case: Case) -> tuple[str, ChatExportResult]:
    text = (CORPUS / case.file).read_text(encoding="utf-8")
    return text, parse_chat_export(text, case.name, START, PII_KEY)


def test_the_corpus_covers_every_file_and_at_least_twelve_shapes() -> None:
    assert {c.file for c in CASES} == {p.name for p in CORPUS.glob("*.txt")}
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_each_format_loses_no_message(case: Case) -> None:
    text, result = _corpus(case)
    assert case.sample in text.splitlines()
    messages = result.messages
    assert messages.schema == pl.Schema(MESSAGES_SCHEMA)
    assert dict(Counter(messages["message_type"])) == case.types
    assert (result.system_lines, result.rejected.height) == (case.system, case.rejected)
    # every record of the file is a message, a notice or a quarantine row
    records = sum(bool(STAMPED.match(line)) for line in text.splitlines())
    orphans = sum(bool(line.strip()) for line in text.splitlines()[: _first_stamp(text)])
    assert result.read == messages.height + result.system_lines + result.rejected.height
    assert result.read == records + orphans
    assert (messages["sent_at"].min(), messages["sent_at"].max()) == (case.first, case.last)
    assert messages["sent_at"].to_list() == sorted(messages["sent_at"].to_list())
    assert dict(Counter(messages["direction"])) == case.directions
    assert (result.date_order, result.date_order_ambiguous) == (
        case.order,
        case.file == "android_ambiguous_dates.txt",
    )
    assert (messages["source"] == "chat_export").all()
    assert messages["wamid"].n_unique() == messages.height


# A line that starts a record in any of the corpus's shapes (written for the test, not the parser).
STAMPED = re.compile(
    r"^\u200e?\[?(?:\d{4}[-/]\d\d[-/]\d\d|\d{1,2}[./]\d{1,2}[./]\d{2,4})(?:,| à| klo)? "
    r"\d{1,2}[:.]\d\d"
)


def _first_stamp(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if STAMPED.match(line))


def test_corpus_values_bodies_edits_and_sender_names_with_colons() -> None:
    _, result = _corpus(CASES[0])
    bodies = result.messages["text_body"].to_list()
    assert bodies[:3] == [
        "Namaste Ravi ji, premium due on 25/02",
        "namaste",
        "Note: I will pay: tomorrow",  # the sender "Ravi 🙏 :D" is known from other lines
    ]
    assert bodies[5] == "Ok ji"  # the edit marker is not text
    assert (bodies[-3], bodies[-1]) == ("Paid ✅\nReceipt no. 4411", "\u200eThanks ji")
    _, marathi = _corpus(CASES[12])
    assert marathi.messages["text_body"].to_list() == ["नमस्कार", None, None, "धन्यवाद"]
    _, spanish = _corpus(CASES[8])
    assert spanish.messages["text_body"][3] == "Gracias"
    assert local_times(spanish)[3] == datetime(2020, 2, 19, 0, 15)  # 12:15 a. m.


def test_a_group_tokens_each_number_senders_rows_and_a_one_to_one_chat_every_row() -> None:
    _, group = _corpus(CASES[13])
    first = phone_token("+91 98400 12345", PII_KEY)
    second = phone_token("+919444454321", PII_KEY)
    assert group.messages["customer_phone_token"].to_list() == [
        None, first, first, None, second, None
    ]  # fmt: skip
    _, one_to_one = _corpus(CASES[9])
    customer = phone_token("+919876543210", PII_KEY)
    assert one_to_one.messages["customer_phone_token"].to_list() == [customer] * 4
    for result in (group, one_to_one):
        for name, dtype in result.messages.schema.items():
            if dtype == pl.String and name != "text_body":
                column = result.messages[name].drop_nulls()
                assert not column.str.contains("98400|94444|98765").any(), name


def test_an_undecidable_date_order_takes_the_hint_and_says_so() -> None:
    case = CASES[14]
    text = (CORPUS / case.file).read_text(encoding="utf-8")
    hinted = parse_chat_export(text, case.name, START, PII_KEY, day_first=False)
    assert (hinted.date_order, hinted.date_order_ambiguous) == ("mdy", True)
    assert local_times(hinted)[0] == datetime(2024, 3, 4, 10, 1)
    # Times that only go forward one way decide it: 1 Feb then 2 Jan cannot be day-first.
    forward = "01/02/24, 10:00 - Asha Rao: One\n02/01/24, 10:00 - Asha Rao: Two\n"
    result = parse(forward)
    assert (result.date_order, result.date_order_ambiguous) == ("mdy", False)
    assert local_times(result) == [datetime(2024, 1, 2, 10), datetime(2024, 2, 1, 10)]
    same = parse("05/05/24, 10:00 - Asha Rao: One\n")
    assert (same.date_order, same.date_order_ambiguous) == ("dmy", False)  # no difference


INDIAN_PLACEHOLDERS = {  # language -> (line text, expected type)
    "te": [("<మీడియా విస్మరించబడింది>", "media"), ("ఈ మెసేజ్ తొలగించబడింది", "deleted")],
    "bn": [("<মিডিয়া বাদ দেওয়া হয়েছে>", "media"), ("এই মেসেজটি মুছে ফেলা হয়েছে", "deleted")],
    "gu": [("<મીડિયા છોડી દેવાયું>", "media"), ("આ મેસેજ ડિલીટ કરવામાં આવ્યો હતો", "deleted")],
    "ml": [("<മീഡിയ ഒഴിവാക്കി>", "media"), ("\u200eചിത്രം ഒഴിവാക്കി", "image")],
    "ta": [("\u200eஸ்டிக்கர் தவிர்க்கப்பட்டது", "sticker"), ("வணக்கம்", "text")],
    "hi": [("Aadhaar.pdf • \u200e2 पेज \u200eदस्तावेज़ छोड़ा गया", "document")],
}


@pytest.mark.parametrize("language", sorted(INDIAN_PLACEHOLDERS))
def test_placeholders_in_more_indian_languages(language: str) -> None:
    rows = INDIAN_PLACEHOLDERS[language]
    text = "".join(f"18/02/20, 10:0{i} - Kiran: {body}\n" for i, (body, _) in enumerate(rows))
    result = parse(text)
    assert result.messages["message_type"].to_list() == [kind for _, kind in rows]


def test_a_notice_never_hides_a_message() -> None:
    chat = (
        "18/02/20, 10:00 - Asha Rao: Hello\n"
        "18/02/20, 10:01 - Ravi Kumar: Meena left\n"  # a customer's words, not a notice
        "18/02/20, 10:02 - Ravi Kumar added Meena\n"  # a notice: no sender
        '18/02/20, 10:03 - Ravi Kumar changed the subject from "A" to "B: C"\n'
    )
    chat += "\u200e18/02/20, 10:04 - Ravi Kumar: \u200e<Media omitted>\n"  # U+200E: still a message
    result = parse(chat)
    assert (result.messages.height, result.system_lines) == (3, 2)
    assert result.messages["text_body"].to_list() == ["Hello", "Meena left", None]
    assert result.messages["message_type"].to_list() == ["text", "text", "media"]


def test_wamid_tokens_are_keyed_tokens_of_the_ids() -> None:
    _, result = _corpus(CASES[0])
    # conform() keeps only MESSAGES_SCHEMA; when it gains wamid_token the column carries this.
    if "wamid_token" in result.messages.columns:
        assert result.messages["wamid_token"].to_list() == [
            keyed_token(w, PII_KEY) for w in result.messages["wamid"]
        ]


def test_a_long_export_parses_whole() -> None:
    text = (CORPUS / CASES[0].file).read_text(encoding="utf-8")
    big = (
        "".join(
            text.replace("18/02/20", f"{d:02d}/03/21").replace("19/02/20", f"{d:02d}/04/21")
            for d in range(1, 29)
        )
        * 50
    )
    result = parse(big)
    assert result.read == result.messages.height + result.system_lines + result.rejected.height
    assert result.messages.height == 11 * 28 * 50


def test_no_placeholder_text_means_two_kinds() -> None:
    from transforms.chat_exports import vocabulary

    seen: dict[str, str] = {}
    for table in vocabulary.EXACT.values():
        for kind, texts in table.items():
            assert kind in vocabulary.KINDS
            for text in texts:
                key = text.lower().rstrip(".")
                assert seen.setdefault(key, kind) == kind, text
