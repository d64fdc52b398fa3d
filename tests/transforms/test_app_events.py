"""App events transform: exact reconciliation against the simulator's planted faults, event time,
dedupe, the schemas, and hand-made edge cases, each run through both the fast and the exact path."""

from __future__ import annotations

import gzip
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from simulator import app_events as simulated
from simulator.app_events import generate_app_events_day
from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder
from simulator.world import build_world
from transforms.app_events import (
    APP_EVENTS_SCHEMA,
    QUARANTINE_SCHEMA,
    AppEventsParser,
    AppEventsResult,
    parse_app_events,
    parse_app_events_blocks,
)

START = date(2026, 9, 1)
DAYS = 4
# Rates well above the defaults, so every kind of fault shows up every day in the smallest tier.
NOISY = FaultRates(
    duplicate=0.05, late=0.08, truncated_json=0.01, missing_field=0.01, wrong_type=0.01
)
FAULT_REASONS = {"truncated_json": "invalid_json", "missing_field": "missing_field",
                 "wrong_type": "wrong_type"}  # fmt: skip
DAY = date(2026, 9, 3)  # receipt day of the hand-made lines


@dataclass
class Run:
    config: SimulationConfig
    faults: FaultLog

    def data(self, day: date) -> bytes:
        folder = day_folder(self.config.landing_root, simulated.SOURCE, day)
        return gzip.decompress((folder / simulated.FILE_NAME).read_bytes())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("app-events")
    config = SimulationConfig(
        tier="mvp", start=START, days=DAYS, landing_root=root / "landing", faults=NOISY
    )
    world, faults = build_world(config), FaultLog()
    for day in config.day_list():
        generate_app_events_day(world, day, config, faults)
    return Run(config, faults)


def parse_exactly(data: bytes, receipt_day: date) -> AppEventsResult:
    """Every line through the per-line path."""
    parser = AppEventsParser(receipt_day, fast_path=False)
    return AppEventsResult.concat([parser.feed(data), parser.finish()])


@pytest.fixture(params=["fast", "exact"])
def parse(request: pytest.FixtureRequest) -> Callable[[bytes, date], AppEventsResult]:
    """Each hand-made case runs through both paths: they must agree on every line."""
    return parse_app_events if request.param == "fast" else parse_exactly


def assert_same(left: AppEventsResult, right: AppEventsResult) -> None:
    assert_frame_equal(left.clean, right.clean)
    assert_frame_equal(left.rejected, right.rejected)
    assert (left.read, left.duplicates) == (right.read, right.duplicates)


def assert_reconciles(result: AppEventsResult) -> None:
    assert result.clean.height + result.rejected.height + result.duplicates == result.read
    assert result.clean.schema == pl.Schema(APP_EVENTS_SCHEMA)
    assert result.rejected.schema == pl.Schema(QUARANTINE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# Simulated days


@pytest.mark.parametrize("offset", range(DAYS))
def test_rejects_and_duplicates_equal_the_planted_faults(run: Run, offset: int) -> None:
    day = START + timedelta(days=offset)
    result = parse_app_events(run.data(day), day)
    assert_reconciles(result)
    assert result.read == len(run.data(day).split(b"\n")) - 1  # newline-terminated lines
    reasons = Counter(reason.split(":")[0] for reason in result.rejected["reason"])
    expected = {fault: run.faults.count("app_events", fault, day) for fault in FAULT_REASONS}
    assert all(expected.values())  # every kind of fault is planted on every day
    assert reasons == Counter({FAULT_REASONS[f]: n for f, n in expected.items()})
    # The log counts every extra copy under its receipt day: repeats within the file, dropped
    # here, and whole batches re-sent from the day before, which only staging (across days) sees.
    resent = _loaded_on_both(run, day - timedelta(days=1), result) if offset else 0
    assert result.duplicates + resent == run.faults.count("app_events", "duplicate", day)
    assert result.duplicates > 0
    assert result.clean["message_id"].is_unique().all()
    assert (result.clean["received_day"] == day).all()


def _loaded_on_both(run: Run, before: date, result: AppEventsResult) -> int:
    earlier = parse_app_events(run.data(before), before).clean["message_id"]
    return result.clean["message_id"].is_in(earlier.implode()).sum()


def test_both_paths_and_any_blocks_give_the_same_result(run: Run) -> None:
    day = START + timedelta(days=1)
    data = run.data(day)
    whole = parse_app_events(data, day)
    assert_same(whole, parse_exactly(data, day))
    blocks = [data[at : at + 40_009] for at in range(0, len(data), 40_009)]  # lines straddle
    streamed = list(parse_app_events_blocks(blocks, day))
    assert len(streamed) == len(blocks) + 1
    assert_same(whole, AppEventsResult.concat(streamed))


def mangle(line: str, rng: random.Random) -> str:
    """The line with one small random change, or none: the kind of damage that must send a line
    to the exact path (or be read identically by both)."""
    at = rng.randrange(len(line) + 1)
    change = rng.randrange(5)
    if change == 0:
        return line[:at] + line[at + 1 :]
    if change == 1:
        return line[:at] + rng.choice('"\\,{}[]: \t\x00é\u2028') + line[at:]
    if change == 2:
        return line[:at] + line[at + 1 : at + 2] + line[at : at + 1] + line[at + 2 :]
    if change == 3:
        return line.replace('","', '", "', 1).replace(":", ": ", rng.randrange(3))
    return line


@pytest.mark.parametrize("seed", [11, 12])
def test_both_paths_agree_on_damaged_lines(run: Run, seed: int) -> None:
    rng = random.Random(seed)
    days = run.config.day_list()
    lines = [line for day in days for line in run.data(day).decode().splitlines()]
    data = "\n".join(mangle(line, rng) for line in lines).encode()
    fast, exact = parse_app_events(data, days[1]), parse_exactly(data, days[1])
    assert_same(fast, exact)
    assert fast.rejected.height > 2000 and fast.clean.height > 500


def test_clean_rows_carry_the_segment_fields(run: Run) -> None:
    day = START + timedelta(days=2)
    clean = parse_app_events(run.data(day), day).clean
    assert set(clean["type"]) == {"track", "screen", "identify"}
    assert clean.filter(pl.col("type") == "identify")["event_name"].is_null().all()
    assert clean.filter(pl.col("type") != "identify")["event_name"].is_not_null().all()
    for column in ("app_version", "os_name", "os_version", "device_model", "locale"):
        assert clean[column].is_not_null().all(), column
    sample = clean.row(0, named=True)
    assert orjson.loads(sample["context"])["app"]["version"] == sample["app_version"]
    orjson.loads(sample["properties"])  # JSON text


# ---------------------------------------------------------------------------------------------
# Hand-made lines


def event(**members: object) -> dict[str, object]:
    """A valid track event received on DAY, in the SDK's member order; `None` drops a member."""
    base: dict[str, object] = {
        "messageId": "m-1", "type": "track", "event": "login", "userId": "u-1",
        "anonymousId": "a-1", "sessionId": "s-1",
        "originalTimestamp": "2026-09-03T06:00:00.000Z", "sentAt": "2026-09-03T06:00:10.000Z",
        "receivedAt": "2026-09-03T06:00:10.500Z", "properties": {"method": "otp"},
        "context": {"app": {"version": "3.4.0"}, "os": {"name": "Android", "version": "14"},
                    "device": {"model": "SM-A155F"}, "locale": "hi-IN"},
    }  # fmt: skip
    merged = base | members
    return {name: value for name, value in merged.items() if value is not None}


def ndjson(*lines: dict | str | bytes) -> bytes:
    """Lines joined by newlines (with a final one); dicts rendered compactly as the SDK does."""
    encoded = [
        line if isinstance(line, bytes) else orjson.dumps(line) if isinstance(line, dict) else
        line.encode()
        for line in lines
    ]  # fmt: skip
    return b"".join(line + b"\n" for line in encoded)


def test_event_time_corrects_the_device_clock(parse) -> None:
    # Device clock 3 days behind, then 5 hours ahead, then right; sent 10 s after it happened.
    lines = [
        event(messageId="behind", originalTimestamp="2026-08-31T06:00:00Z",
              sentAt="2026-08-31T06:00:10Z", receivedAt="2026-09-03T06:00:10.250Z"),
        event(messageId="ahead", originalTimestamp="2026-09-03T16:00:00+05:00",
              sentAt="2026-09-03T16:00:10.000+05:00", receivedAt="2026-09-03T06:00:10Z"),
        event(messageId="offline", originalTimestamp="2026-09-01T18:20:00.123456Z",
              sentAt="2026-09-03T01:00:00Z", receivedAt="2026-09-03T01:00:01Z"),
    ]  # fmt: skip
    result = parse(ndjson(*lines), DAY)
    assert_reconciles(result)
    rows = {row["message_id"]: row for row in result.clean.iter_rows(named=True)}
    assert rows["behind"]["event_timestamp"] == datetime(2026, 9, 3, 6, 0, 0, 250_000, UTC)
    assert rows["ahead"]["event_timestamp"] == datetime(2026, 9, 3, 6, 0, 0, tzinfo=UTC)
    offline = datetime(2026, 9, 1, 18, 20, 1, 123_456, UTC)
    assert rows["offline"]["event_timestamp"] == offline
    assert rows["offline"]["event_day"] == date(2026, 9, 1)  # 23:50 IST: the IST day
    assert rows["ahead"]["sent_at"] == datetime(2026, 9, 3, 11, 0, 10, tzinfo=UTC)


def test_event_day_is_the_indian_calendar_day(parse) -> None:
    late_evening = event(originalTimestamp="2026-09-02T18:40:00Z", sentAt="2026-09-02T18:40:00Z",
                         receivedAt="2026-09-02T18:40:01Z")  # fmt: skip
    clean = parse(ndjson(late_evening), DAY).clean  # 00:10 IST on the 3rd
    assert clean["event_day"].to_list() == [DAY]


def test_lines_received_on_another_day_are_quarantined(parse) -> None:
    lines = [
        event(messageId="before", receivedAt="2026-09-02T18:29:59.999Z"),  # 23:59 IST, the 2nd
        event(messageId="first", receivedAt="2026-09-02T18:30:00Z"),  # 00:00 IST, the 3rd
        event(messageId="after", receivedAt="2026-09-03T18:30:00Z"),  # 00:00 IST, the 4th
    ]
    result = parse(ndjson(*lines), DAY)
    assert result.clean["message_id"].to_list() == ["first"]
    assert result.rejected["reason"].to_list() == ["received_outside_partition"] * 2
    assert result.rejected["line_number"].to_list() == [1, 3]


def test_duplicates_keep_the_first_valid_copy(parse) -> None:
    lines = [
        event(messageId="x", userId=42),  # invalid: claims no id
        event(messageId="x", userId="first"),
        event(messageId="y"),
        event(messageId="x", userId="second"),
        event(messageId="x", userId="third"),
    ]
    result = parse(ndjson(*lines), DAY)
    assert_reconciles(result)
    assert result.clean.select("message_id", "user_id").rows() == [("x", "first"), ("y", "u-1")]
    assert result.duplicates == 2
    assert result.rejected["reason"].to_list() == ["wrong_type:userId"]


def test_duplicates_are_found_across_blocks() -> None:
    data = ndjson(event(messageId="x"), event(messageId="y"), event(messageId="x"))
    results = list(parse_app_events_blocks([data[:10], data[10:300], data[300:]], DAY))
    combined = AppEventsResult.concat(results)
    assert combined.clean["message_id"].to_list() == ["x", "y"]
    assert combined.duplicates == 1


def test_a_last_block_of_rejects_after_loaded_ones() -> None:
    results = list(parse_app_events_blocks([ndjson(event()), b"{oops"], DAY))
    combined = AppEventsResult.concat(results)
    assert_reconciles(combined)
    assert (combined.clean.height, combined.rejected["reason"].to_list()) == (1, ["invalid_json"])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"messageId":"m-1","type":"track"', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"   ", "invalid_json"),
        (event(userId=None), "missing_field:userId"),
        (event(sessionId=None, userId=None), "missing_field:userId"),  # the first in order
        (event(event=None), "missing_field:event"),
        (event(userId=None) | {"userId": None}, "missing_field:userId"),  # null is absent
        (event(sentAt=1788415210000), "wrong_type:sentAt"),
        (event(userId=12345), "wrong_type:userId"),
        (event(context='{"app":{}}'), "wrong_type:context"),
        (event(properties=[1]), "wrong_type:properties"),
        (event(type="page"), "invalid_value:type"),
        (event(userId="a\u0000b"), "invalid_value:userId"),
        (event(sentAt="2026-09-03 06:00:10"), "invalid_value:sentAt"),  # no zone
        (event(originalTimestamp="yesterday"), "invalid_value:originalTimestamp"),
        (
            event(originalTimestamp="0001-01-01T00:00:00Z", sentAt="9999-01-01T00:00:00Z"),
            "out_of_range:event_timestamp",  # more than 2026 years back
        ),
        (b'{"messageId":"m-1","type":"track","sentAt":NaN}', "invalid_json"),
        (b'{"messageId":"\\ud800"}', "invalid_json"),  # a lone surrogate
    ],
)
def test_each_fault_has_its_reason(parse, line: dict | bytes, reason: str) -> None:
    result = parse(ndjson(line), DAY)
    assert_reconciles(result)
    assert result.rejected.rows() == [(DAY, 1, _raw(line), reason)]


def _raw(line: dict | bytes) -> str:
    return (line if isinstance(line, bytes) else orjson.dumps(line)).decode()


def test_screens_and_identifies(parse) -> None:
    screen = event(messageId="s", type="screen", event=None, name="Home", properties={})
    identify = event(messageId="i", type="identify", event=None, properties=None,
                     traits={"role": "agent", "language": "ta"})  # fmt: skip
    clean = parse(ndjson(screen, identify), DAY).clean
    assert clean.select("type", "event_name", "properties").rows() == [
        ("screen", "Home", "{}"),
        ("identify", None, '{"role":"agent","language":"ta"}'),
    ]


def test_edge_cases_of_the_file(parse) -> None:
    good = orjson.dumps(event(messageId="crlf"))
    data = (
        b"\xef\xbb\xbf" + orjson.dumps(event(messageId="bom")) + b"\r\n"  # BOM, CRLF
        + good + b"\r\n"
        + b"\n"  # a blank line between records is a record
        + b"\xff\xfe{}\n"  # not UTF-8
        + orjson.dumps(event(messageId="last"))  # no final newline
        + b"\n\n\r\n"  # blank lines at the end are not records
    )  # fmt: skip
    result = parse(data, DAY)
    assert_reconciles(result)
    assert result.read == 5
    assert result.clean["message_id"].to_list() == ["bom", "crlf", "last"]
    assert result.rejected.select("line_number", "raw", "reason").rows() == [
        (3, "", "empty_line"),
        (4, "\ufffd\ufffd{}", "invalid_utf8"),
    ]


def test_nothing_but_blank_lines_reads_nothing(parse) -> None:
    for data in (b"", b"\n", b"\n\n\r\n", b"\xef\xbb\xbf"):
        result = parse(data, DAY)
        assert (result.read, result.clean.height, result.rejected.height) == (0, 0, 0)


def test_unicode_escapes_and_other_layouts_read_the_same(parse) -> None:
    hindi = event(messageId="hi", userId="उपयोगकर्ता-१", properties={"title": "बीमा क्या है?"})
    escaped = ('{"messageId":"esc","type":"track","event":"caf\\u00e9","userId":"u-1",'
               '"anonymousId":"a-1","sessionId":"s-1",'
               '"originalTimestamp":"2026-09-03T06:00:00Z","sentAt":"2026-09-03T06:00:10Z",'
               '"receivedAt":"2026-09-03T06:00:10Z","properties":{"q":"a \\"b\\""},'
               '"context":{}}')  # fmt: skip
    spaced = orjson.dumps(event(messageId="spaced"), option=orjson.OPT_INDENT_2).replace(b"\n", b"")
    reordered = {"type": "track", **event(messageId="reordered", integrations={"All": True})}
    nested = event(messageId="nested", properties={"a": 1, "context": {"x": [1, {"y": None}]}})
    result = parse(ndjson(hindi, escaped, spaced, reordered, nested), DAY)
    assert_reconciles(result)
    rows = {row["message_id"]: row for row in result.clean.iter_rows(named=True)}
    assert list(rows) == ["hi", "esc", "spaced", "reordered", "nested"]
    assert rows["hi"]["user_id"] == "उपयोगकर्ता-१"
    assert orjson.loads(rows["hi"]["properties"]) == {"title": "बीमा क्या है?"}
    assert rows["esc"]["event_name"] == "café"
    assert rows["esc"]["properties"] == '{"q":"a \\"b\\""}'  # JSON text kept verbatim
    assert rows["spaced"]["properties"] == '{    "method": "otp"  }'
    assert rows["nested"]["properties"] == '{"a":1,"context":{"x":[1,{"y":null}]}}'
    assert rows["nested"]["app_version"] == "3.4.0"


def test_context_columns_and_deep_nesting(parse) -> None:
    # Nested past Python's recursion limit, within orjson's (1024): valid, and kept verbatim.
    deep = '{"a":' * 1020 + '["}]{\\"",1]' + "}" * 1020
    lines = [
        event(messageId="odd", context={"app": {"version": 3}, "os": {"name": None},
                                        "device": {"model": {"id": 7}}, "locale": True}),
        orjson.dumps(event(messageId="deep")).decode().replace('{"method":"otp"}', deep),
    ]  # fmt: skip
    result = parse(ndjson(*lines), DAY)
    assert_reconciles(result)
    odd, deep_row = result.clean.iter_rows(named=True)
    assert (odd["app_version"], odd["os_name"], odd["os_version"]) == ("3", None, None)
    assert (odd["device_model"], odd["locale"]) == ('{"id":7}', "true")
    assert deep_row["properties"] == deep


def test_quarantine_keeps_the_raw_line_storable(parse) -> None:
    result = parse(b'{"messageId":\x00"broken\n', DAY)
    assert result.rejected["raw"].to_list() == ['{"messageId":\ufffd"broken']
