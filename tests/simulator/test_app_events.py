"""Simulated app events: the Segment contract, exact fault counts, late arrival, determinism and
views that follow the planted affinities."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from simulator import app_events
from simulator.app_events import (
    EVENTS,
    FAULT_KINDS,
    FIELDS_BY_TYPE,
    FILE_NAME,
    PROPERTIES,
    REQUIRED_FIELDS,
    SOURCE,
    generate_app_events_day,
)
from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder
from simulator.names import LANGUAGES
from simulator.world import World, build_world

START = date(2026, 9, 1)
DAYS = 4
IST = timedelta(hours=5, minutes=30)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Rates well above the defaults, so a few days of the smallest tier plant every fault.
NOISY = FaultRates(
    duplicate=0.05, late=0.08, truncated_json=0.01, missing_field=0.01, wrong_type=0.01
)
# Only late and duplicate deliveries: every line can be checked, so late counts are exact.
CLEAN = replace(FaultRates.none(), late=0.10, duplicate=0.05)


@dataclass
class Run:
    config: SimulationConfig
    world: World
    faults: FaultLog
    counts: dict[date, dict[str, int]]

    def raw(self, day: date) -> bytes:
        return (day_folder(self.config.landing_root, SOURCE, day) / FILE_NAME).read_bytes()

    def lines(self, day: date) -> list[bytes]:
        """The day's lines; none for a day outside the run."""
        if not self.config.start <= day < self.config.end:
            return []
        return gzip.decompress(self.raw(day)).split(b"\n")[:-1]

    def good(self, day: date) -> list[dict]:
        return [event for kind, event in map(classify, self.lines(day)) if kind == "good"]


def _run(root: Path, rates: FaultRates) -> Run:
    config = SimulationConfig(
        tier="mvp", start=START, days=DAYS, seed=7, landing_root=root / "landing",
        truth_root=root / "truth", faults=rates,
    )  # fmt: skip
    world, faults = build_world(config), FaultLog()
    counts = {day: generate_app_events_day(world, day, config, faults) for day in config.day_list()}
    return Run(config, world, faults, counts)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("noisy"), NOISY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("clean"), CLEAN)


def classify(raw: bytes) -> tuple[str, dict | None]:
    """Which fault a line shows, as ingestion would see it: unparseable, a required field
    missing, a field of the wrong type, or none ("good")."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "truncated_json", None
    expected = {**REQUIRED_FIELDS, **FIELDS_BY_TYPE.get(event.get("type"), {})}
    if any(name not in event for name in expected):
        return "missing_field", event
    if any(not isinstance(event[name], kind) for name, kind in expected.items()):
        return "wrong_type", event
    return "good", event


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event_time(event: dict) -> datetime:
    """Segment's event time: receivedAt corrected by the device's own clock difference."""
    return instant(event["receivedAt"]) - (
        instant(event["sentAt"]) - instant(event["originalTimestamp"])
    )


def ist_day(moment: datetime) -> date:
    return (moment.astimezone(UTC) + IST).date()


def test_good_lines_follow_the_segment_contract(noisy: Run) -> None:
    types = {name: kind for kind, name in EVENTS}
    for day in noisy.config.day_list():
        good = noisy.good(day)
        assert len(good) > 500
        for event in good:
            assert UUID.match(event["messageId"]) and UUID.match(event["sessionId"])
            name = event.get("event") or event.get("name") or "identify"
            assert types[name] == event["type"]
            assert ist_day(instant(event["receivedAt"])) == day
            assert instant(event["sentAt"]).tzinfo is not None
            properties = event["traits"] if name == "identify" else event["properties"]
            assert tuple(properties) == PROPERTIES.get(name, ())
            context = event["context"]
            assert {"app", "device", "os", "locale", "timezone", "network"} <= context.keys()
            assert context["timezone"] == "Asia/Kolkata"


def test_returned_counts_match_the_file(noisy: Run) -> None:
    for day, counts in noisy.counts.items():
        assert counts["lines"] == len(noisy.lines(day))
        assert counts["sessions"] > 0


def _duplicates(run: Run, day: date) -> int:
    """Lines whose messageId was already delivered: earlier in the day's file or the day before."""
    ids = Counter(event["messageId"] for event in run.good(day))
    yesterday = {event["messageId"] for event in run.good(day - timedelta(days=1))}
    return sum(n - 1 for n in ids.values()) + len(ids.keys() & yesterday)


def test_faults_in_the_files_equal_the_fault_log(noisy: Run) -> None:
    for day in noisy.config.day_list():
        seen = Counter(kind for kind, _ in map(classify, noisy.lines(day)))
        for fault in ("truncated_json", "missing_field", "wrong_type"):
            assert seen[fault] == noisy.faults.count(SOURCE, fault, day) > 0, fault
        assert _duplicates(noisy, day) == noisy.faults.count(SOURCE, "duplicate", day) > 0
    for day, counts in noisy.counts.items():
        assert {fault: counts[fault] for fault in FAULT_KINDS} == {
            fault: noisy.faults.count(SOURCE, fault, day) for fault in FAULT_KINDS
        }


def test_late_events_arrive_days_after_they_happened(clean: Run) -> None:
    total_late = 0
    for day in clean.config.day_list():
        yesterday = {event["messageId"] for event in clean.good(day - timedelta(days=1))}
        late: set[str] = set()
        for event in clean.good(day):
            assert ist_day(instant(event["receivedAt"])) == day
            happened = ist_day(event_time(event))
            if event["messageId"] in yesterday:  # a batch of yesterday re-sent today
                assert happened == day - timedelta(days=1)
            elif happened != day:
                assert 1 <= (day - happened).days <= 5
                late.add(event["messageId"])
        assert len(late) == clean.faults.count(SOURCE, "late", day)
        assert _duplicates(clean, day) == clean.faults.count(SOURCE, "duplicate", day)
        total_late += len(late)
    assert total_late > 0


def test_each_message_lands_on_one_day_or_on_two_when_re_sent(clean: Run) -> None:
    """A late event is in the file of the day it arrived only; a message is in two files only
    when its whole batch was re-sent the next day, and then it happened on the first."""
    days_of: dict[str, set[date]] = {}
    happened: dict[str, date] = {}
    for day in clean.config.day_list():
        for event in clean.good(day):
            days_of.setdefault(event["messageId"], set()).add(day)
            happened[event["messageId"]] = ist_day(event_time(event))
    twice = {m: sorted(days) for m, days in days_of.items() if len(days) > 1}
    assert twice
    for message_id, days in twice.items():
        assert len(days) == 2 and days[1] - days[0] == timedelta(days=1)
        assert happened[message_id] == days[0]


def test_same_seed_same_bytes_other_seed_differs(noisy: Run, tmp_path: Path) -> None:
    """A day generated alone, from a world built afresh, is byte-identical to the same day
    generated in sequence; another seed gives another file."""
    day = START + timedelta(days=2)
    files = {}
    for seed in (7, 8):
        config = replace(noisy.config, seed=seed, landing_root=tmp_path / str(seed))
        generate_app_events_day(build_world(config), day, config, FaultLog())
        files[seed] = (day_folder(config.landing_root, SOURCE, day) / FILE_NAME).read_bytes()
    assert files[7] == noisy.raw(day)
    assert files[8] != files[7]


def _views(run: Run) -> list[tuple[int, int, bool]]:
    """(policyholder row, video column, completed) of every video a policyholder started."""
    holder_row = {u: i for i, u in enumerate(run.world.policyholders["user_id"].to_list())}
    video_column = {v: j for j, v in enumerate(run.world.videos["video_id"].to_list())}
    started, completed = set(), set()
    for day in run.config.day_list():
        for event in run.good(day):
            if event["userId"] in holder_row and event.get("event") in (
                "video_started",
                "video_completed",
            ):
                key = (holder_row[event["userId"]], video_column[event["properties"]["video_id"]])
                (started if event["event"] == "video_started" else completed).add(key)
    return [(row, column, (row, column) in completed) for row, column in sorted(started)]


def test_policyholders_watch_what_they_like_in_their_language(noisy: Run) -> None:
    views = _views(noisy)
    assert len(views) > 30
    rows = np.array([row for row, _, _ in views])
    columns = np.array([column for _, column, _ in views])
    done = np.array([finished for _, _, finished in views])
    affinity = noisy.world.affinity(rows)
    viewed = affinity[np.arange(len(views)), columns]
    assert viewed.mean() > affinity.mean() + 0.1
    assert viewed[done].mean() > viewed[~done].mean()
    holder_language = noisy.world.policyholders["language"].to_numpy()[rows]
    video_language = noisy.world.videos["language"].to_numpy()[columns]
    assert ((video_language == holder_language) | (video_language == "en")).all()
    assert set(video_language) <= set(LANGUAGES)


def test_engaged_policyholders_open_the_app_more(noisy: Run) -> None:
    holders = noisy.world.policyholders
    engagement = dict(
        zip(holders["user_id"].to_list(), holders["engagement"].to_list(), strict=True)
    )
    sessions = {
        (event["userId"], event["sessionId"])
        for day in noisy.config.day_list()
        for event in noisy.good(day)
        if event["userId"] in engagement
    }
    median = float(np.median(list(engagement.values())))
    high = sum(engagement[user] > median for user, _ in sessions)
    assert high > 2 * (len(sessions) - high)


def test_a_failed_day_leaves_no_file(
    noisy: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_: object) -> Iterator[memoryview]:
        yield memoryview(b'{"messageId": "half a day"}')
        raise RuntimeError("generation failed")

    monkeypatch.setattr(app_events, "day_chunks", failing)
    config = replace(noisy.config, landing_root=tmp_path)
    with pytest.raises(RuntimeError, match="generation failed"):
        generate_app_events_day(noisy.world, START, config, FaultLog())
    assert not any(day_folder(tmp_path, SOURCE, START).iterdir())
