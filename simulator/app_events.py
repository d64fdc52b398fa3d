"""App events (DESIGN §5): what the mobile app's analytics SDK posts to `/v1/events`, one landing
file per day the platform *received* them, as gzipped NDJSON with Segment-spec fields.

The behaviour it plants, with the numbers chosen:

- **Who is active.** Agents work in the app: an agent's expected sessions a day run from 0.5 to
  4.5 with its productivity percentile (busier agents sell more); about 85% of agents are active
  on a weekday, 2.9 sessions each. Policyholders rarely open it: 0.005 + 0.12 x engagement^2
  sessions a day (a 0.8-engagement customer every two weeks, a 0.2 one every four months: the
  lapse model's "engagement" is visible only through these sessions), 2.5 times that while one
  of their premiums is due within a week or in its grace period, and only once they hold a
  policy; about 4.5% are active on a given day. Sundays carry 70% and Saturdays 85% of a weekday,
  the January-March tax season 125-140%.
- **When.** Session starts follow hourly IST profiles: agents peak in business hours (10-13 h)
  with a second evening peak; policyholders peak in the evening (19-22 h).
- **What.** A session opens with (a notification tap,) `login`, (an `identify`,) a home screen,
  then 1 + Poisson(4) actions for an agent (dashboard, customer and policy, dues list, lapse risk,
  video share, chatbot) and 1 + Poisson(0.5 + 2.5 x engagement) for a policyholder (policy,
  premium due and payment, video, chatbot, profile). Each action is a screen and its track
  events. Policyholders pick videos in their language or English with probability proportional
  to the square of their true affinity (`World.affinity`) and watch more of the ones they like
  (completion 10% + 70% x affinity, `video_progress` at 25/50/75%); agents preview popular
  videos and mostly share them on WhatsApp.
- **Clocks and delivery.** Each device keeps one clock error: within seconds for 75%, minutes
  for 20%, 1-30 hours for 5%. The SDK flushes every 30 s: `sentAt` is the device clock at the
  flush, `receivedAt` the server clock a network latency later, so `receivedAt - (sentAt -
  originalTimestamp)` recovers the event time. A session is queued offline with probability
  `faults.late` and arrives 1-5 days later (45/25/15/10/5%).

How it is generated, and why:

- **Receipt days without state.** Which sessions exist, and which are late and by how much, comes
  from a cheap per-day *session plan* (`stream(seed, "app_events", day, "plan")`); the events of
  a batch of sessions come from a stream keyed by the batch (origin day, group, chunk). So the
  file for day r is the on-time sessions of r, plus the late batches of r-5 .. r-1 whose delay
  lands them on r, plus the whole batches of r-1 that were re-sent on r; only those batches are
  regenerated. Any day can be generated alone, and reruns give the same bytes. (A cache keeps
  the catalogue and the last six plans for the next day of the same world; it saves time only.)
- **Speed and memory.** Sampling is vectorised with numpy over chunks of sessions (by user), and
  lines are assembled column-wise by polars string concatenation instead of one Python dict per
  event; only the few faulty lines go through orjson one by one. gzip runs on a second thread
  while the next chunk is generated (zlib releases the GIL). A chunk is at most
  `SESSIONS_PER_CHUNK` sessions, so memory does not grow with the tier. Lines are in arrival
  order within each chunk of sessions, as when several API workers append to one day's file.
- **Faults, recorded exactly** in the `FaultLog` under the receipt day: `duplicate` is every extra
  copy of a message (the same event re-sent seconds to minutes later the same day, or a whole
  session's batch re-sent the next day); `truncated_json` a line cut off; `missing_field` one
  required field dropped; `wrong_type` one field of the wrong JSON type; `late` every first
  delivery of an event from an earlier day (the first days of a run get late batches from before
  it, as a running app would). A line carries at most one of the first four; the originals of
  duplicates and re-sent batches carry none of them, and no batch from before the run is re-sent
  into it (its original would be in no file, so the duplicate could never be found).
"""

from __future__ import annotations

import functools
import io
import queue
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from simulator.config import FaultRates, SimulationConfig
from simulator.faults import FaultLog
from simulator.files import day_folder, write_gzip_lines
from simulator.names import LANGUAGES
from simulator.payments import GRACE_DAYS
from simulator.rng import stream
from simulator.world import PAYMENTS_PER_YEAR, World
from transforms.app_events import FIELDS_BY_TYPE, REQUIRED_FIELDS

SOURCE = "app_events"
FILE_NAME = "events.ndjson.gz"
FAULT_KINDS = ("duplicate", "late", "truncated_json", "missing_field", "wrong_type")

# The contract every good line meets is the ingestion's own (DESIGN §5; transforms/app_events.py):
# faults are planted against the one definition.
# Wrong types as client bugs produce them: epoch numbers for ISO strings, numeric ids, context
# sent as a JSON string.
WRONG_TYPE_FIELDS = ("originalTimestamp", "sentAt", "userId", "sessionId", "context")

DAY_MS = 86_400_000
IST_OFFSET_MS = 19_800_000
EPOCH = date(1970, 1, 1)
NEVER = 1 << 21  # a day number after any simulated day (policyholders without a policy)
MAX_LATE_DAYS = 5
LATE_DELAY_SHARES = np.array([0.45, 0.25, 0.15, 0.10, 0.05])  # 1, 2, ..., 5 days
RESEND_SHARE = 0.2  # of duplicate copies: whole batches re-sent the next day, not single events
FLUSH_SECONDS = 30  # the SDK's flush interval
LAST_START_MARGIN_S = 120  # sessions end before midnight IST, so on-time events stay on their day
SESSIONS_PER_CHUNK = 10_000

# Expected sessions on an ordinary weekday: a + b x productivity percentile (agents),
# a + b x engagement^2 (policyholders).
AGENT_SESSIONS = (0.5, 4.0)
HOLDER_SESSIONS = (0.005, 0.12)
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.70])  # Monday .. Sunday
TAX_SEASON_FACTOR = {1: 1.25, 2: 1.3, 3: 1.4}  # premiums for section 80C before 31 March
DUE_SOON_FACTOR = 2.5
DUE_SOON_AHEAD_DAYS = 7
AGENT_HOURS = np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.6, 1.5, 3.5, 5.5, 7.0, 7.5,
                        7.0, 6.0, 5.5, 6.0, 6.5, 6.5, 6.0, 6.5, 6.0, 4.5, 2.5, 1.0])  # fmt: skip
HOLDER_HOURS = np.array([0.5, 0.3, 0.15, 0.1, 0.1, 0.3, 0.9, 2.0, 3.5, 4.0, 4.5, 4.5,
                         4.5, 4.0, 3.5, 3.5, 3.5, 4.0, 5.0, 6.5, 7.5, 7.5, 5.5, 2.5])  # fmt: skip

# Devices, operating systems, app releases and mobile carriers, with their shares.
ANDROID_DEVICES = [("Samsung", "SM-A155F", 0.18), ("Xiaomi", "Redmi Note 13", 0.16),
                   ("vivo", "V2311", 0.14), ("OPPO", "CPH2591", 0.10), ("realme", "RMX3834", 0.10),
                   ("Samsung", "SM-M146B", 0.10), ("OnePlus", "CPH2609", 0.07),
                   ("motorola", "moto g54 5G", 0.07), ("Samsung", "SM-S911B", 0.05),
                   ("Google", "Pixel 7a", 0.03)]  # fmt: skip
IOS_DEVICES = [("Apple", "iPhone12,1", 0.15), ("Apple", "iPhone13,2", 0.30),
               ("Apple", "iPhone14,5", 0.35), ("Apple", "iPhone15,2", 0.20)]  # fmt: skip
ANDROID_VERSIONS = [("11", 0.12), ("12", 0.18), ("13", 0.30), ("14", 0.30), ("15", 0.10)]
IOS_VERSIONS = [("16.7", 0.20), ("17.5", 0.45), ("18.1", 0.35)]
APP_RELEASES = [("3.4.0", "340", 0.55), ("3.3.2", "332", 0.30), ("3.2.1", "321", 0.15)]
CARRIERS = [("Jio", 0.45), ("Airtel", 0.35), ("Vi", 0.15), ("BSNL", 0.05)]
WIFI_SHARE = 0.45
AGENT_ANDROID_SHARE = 0.9
POPULARITY_SAMPLE = 2_000  # policyholders whose mean affinity makes a video's popularity

# Events: (type, name). Screens are named in CamelCase, track events in snake_case.
EVENTS: list[tuple[str, str]] = [
    ("track", "notification_opened"), ("track", "login"), ("identify", "identify"),
    ("screen", "Home"), ("screen", "Dashboard"), ("screen", "PolicyDetail"),
    ("track", "policy_viewed"), ("screen", "PremiumDue"), ("track", "premium_due_viewed"),
    ("track", "premium_paid"), ("screen", "VideoPlayer"), ("track", "video_started"),
    ("track", "video_progress"), ("track", "video_completed"),
    ("track", "video_shared_whatsapp"), ("screen", "Chatbot"), ("track", "chatbot_asked"),
    ("screen", "Profile"), ("track", "kpi_viewed"), ("screen", "CustomerDetail"),
    ("track", "customer_viewed"), ("screen", "PremiumDues"), ("screen", "LapseRisk"),
    ("track", "lapse_risk_viewed"),
]  # fmt: skip
CODE = {name: code for code, (_, name) in enumerate(EVENTS)}
# Mean seconds since the previous event of the session (video milestones follow the video).
GAP_SECONDS = {"identify": 0.3, "login": 1.5, "Home": 2.0, "Dashboard": 2.0}
DEFAULT_GAP_SECONDS = 9.0
VIDEO_MILESTONES = {"video_progress": 0.25, "video_completed": 0.25}

# Actions: a screen and what is done there, as template slots; optional slots are kept with the
# given probability (video and payment slots are decided by the simulation instead).
ACTIONS: dict[str, list[tuple[str, float]]] = {
    "start_holder": [("notification_opened", 0.2), ("login", 1.0), ("identify", 0.08),
                     ("Home", 1.0)],
    "start_agent": [("notification_opened", 0.15), ("login", 1.0), ("identify", 0.08),
                    ("Dashboard", 1.0)],
    "policy": [("PolicyDetail", 1.0), ("policy_viewed", 1.0)],
    "premium": [("PremiumDue", 1.0), ("premium_due_viewed", 1.0), ("premium_paid", 0.0)],
    "video": [("VideoPlayer", 1.0), ("video_started", 1.0), ("video_progress", 0.0),
              ("video_progress", 0.0), ("video_progress", 0.0), ("video_completed", 0.0),
              ("video_shared_whatsapp", 0.0)],
    "chatbot": [("Chatbot", 1.0), ("chatbot_asked", 1.0), ("chatbot_asked", 0.4),
                ("chatbot_asked", 0.15)],
    "profile": [("Profile", 1.0)],
    "dashboard": [("Dashboard", 1.0), ("kpi_viewed", 1.0)],
    "customer": [("CustomerDetail", 1.0), ("customer_viewed", 1.0), ("policy_viewed", 0.6)],
    "dues": [("PremiumDues", 1.0), ("premium_due_viewed", 1.0), ("premium_due_viewed", 0.5)],
    "lapse_risk": [("LapseRisk", 1.0), ("lapse_risk_viewed", 1.0)],
}  # fmt: skip
ACTION = {name: i for i, name in enumerate(ACTIONS)}
HOLDER_ACTION_SHARES = {"policy": 0.30, "premium": 0.15, "video": 0.30, "chatbot": 0.12,
                        "profile": 0.13}  # fmt: skip
AGENT_ACTION_SHARES = {"dashboard": 0.22, "customer": 0.28, "dues": 0.18, "video": 0.20,
                       "lapse_risk": 0.07, "chatbot": 0.05}  # fmt: skip
ROLE_ACTION_SHARES = np.array(  # row 0 policyholders, row 1 agents; columns: ACTIONS
    [[shares.get(name, 0.0) for name in ACTIONS] for shares in (HOLDER_ACTION_SHARES,
                                                                  AGENT_ACTION_SHARES)]
)  # fmt: skip
NEEDS_CUSTOMER = ("customer", "dues")  # agent actions about one of the agent's customers
AGENT_ACTIONS_MEAN = 4.0  # actions after the start: 1 + Poisson(mean)
HOLDER_ACTIONS = (0.5, 2.5)  # mean a + b x engagement
PREMIUM_WHEN_DUE = 4.0  # the premium screen's share is this many times higher when one is due
# premium_paid after viewing a due: when one is due within a week or in grace, and otherwise
PAY_WHEN_DUE, PAY_OTHERWISE = 0.35, 0.05
NOTIFICATION_WHEN_DUE = 0.45
# Videos: completion and sharing a + b x affinity for policyholders, fixed for agents.
COMPLETION, AGENT_COMPLETION = (0.1, 0.7), 0.25
SHARING, AGENT_SHARING = (0.02, 0.15), 0.75

# Per-event labels (property key, values and shares), numbers and the properties of each event.
LABELS: dict[str, tuple[str, dict[str, float]]] = {
    "notification_opened": ("notification_type", {"premium_due": 0.4, "new_video": 0.3,
                                                  "policy_update": 0.15, "kpi_digest": 0.15}),
    "login": ("method", {"biometric": 0.5, "pin": 0.3, "otp": 0.2}),
    "premium_paid": ("payment_method", {"upi": 0.72, "net_banking": 0.12, "debit_card": 0.06,
                                        "credit_card": 0.04, "wallet": 0.06}),
    "video_shared_whatsapp": ("share_target", {"individual": 0.8, "group": 0.2}),
    "chatbot_asked": ("topic", {"payments": 0.3, "grace": 0.15, "revival": 0.1, "tax": 0.2,
                                "claims": 0.15, "nominee": 0.1}),
    "kpi_viewed": ("period", {"day": 0.35, "month": 0.45, "financial_year": 0.2}),
}  # fmt: skip
NUMBERS = {"chatbot_asked": ("question_length", 42), "lapse_risk_viewed": ("customers_listed", 6)}
ANSWERED_SHARE = 0.82
PROPERTIES: dict[str, tuple[str, ...]] = {
    "notification_opened": ("notification_type",),
    "login": ("method",),
    "identify": ("role", "language", "platform", "app_version"),
    "policy_viewed": ("policy_id", "policy_type", "premium_mode"),
    "premium_due_viewed": ("policy_id", "due_date", "amount", "currency"),
    "premium_paid": ("policy_id", "amount", "currency", "payment_method"),
    "video_started": ("video_id", "category", "language", "duration_seconds"),
    "video_progress": ("video_id", "percent", "position_seconds"),
    "video_completed": ("video_id", "duration_seconds", "watch_seconds"),
    "video_shared_whatsapp": ("video_id", "share_target"),
    "chatbot_asked": ("topic", "question_length", "answered"),
    "kpi_viewed": ("period",),
    "customer_viewed": ("policyholder_id",),
    "lapse_risk_viewed": ("customers_listed",),
}


def _label_vocabulary() -> tuple[list[str], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """All label values in one list, and per event code the indices into it and their shares."""
    values: list[str] = []
    by_code: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for name, (_, shares) in LABELS.items():
        first = len(values)
        values.extend(shares)
        weights = np.array(list(shares.values()))
        by_code[CODE[name]] = (np.arange(first, len(values)), weights / weights.sum())
    return values, by_code


LABEL_VALUES, LABEL_CHOICES = _label_vocabulary()


def _template_tables() -> tuple[np.ndarray, np.ndarray]:
    """ACTIONS as arrays: event code per (action, slot) (-1 = no slot) and keep probability."""
    width = max(len(slots) for slots in ACTIONS.values())
    codes = np.full((len(ACTIONS), width), -1, dtype=np.int16)
    keep = np.zeros((len(ACTIONS), width))
    for row, slots in enumerate(ACTIONS.values()):
        for slot, (name, probability) in enumerate(slots):
            codes[row, slot] = CODE[name]
            keep[row, slot] = probability
    return codes, keep


SLOT_CODES, SLOT_KEEP = _template_tables()


def _slot(action: str, event: str) -> int:
    """Where `event` first comes in the template of `action`."""
    return [name for name, _ in ACTIONS[action]].index(event)


# The slots the simulation decides: video milestones reached, share, payment, notification.
WATCH_MILESTONES = np.array([0.25, 0.5, 0.75, 1.0])  # video_progress x 3, video_completed
WATCH_SLOTS = slice(_slot("video", "video_progress"), _slot("video", "video_completed") + 1)
SHARE_SLOT = _slot("video", "video_shared_whatsapp")
PAY_SLOT = _slot("premium", "premium_paid")
NOTIFICATION_SLOT = _slot("start_holder", "notification_opened")  # the same in start_agent
GAP_MEAN = np.array([GAP_SECONDS.get(name, DEFAULT_GAP_SECONDS) for _, name in EVENTS])


def _month_table() -> tuple[np.ndarray, np.ndarray]:
    """First day (day number) and length of every month from 1950 to 2199."""
    months = np.arange("1950-01", "2200-02", dtype="datetime64[M]")
    starts = months.astype("datetime64[D]").astype(np.int64)
    return starts[:-1], np.diff(starts)


MONTH_START, MONTH_LENGTH = _month_table()


def _weights(choices: Iterable[tuple]) -> np.ndarray:
    """The last element of each choice, normalised to shares."""
    weights = np.array([choice[-1] for choice in choices], dtype=float)
    return weights / weights.sum()


def _day_number(day: date) -> int:
    return (day - EPOCH).days


def _midnight_ms(day: date) -> int:
    """Epoch milliseconds of 00:00 Asia/Kolkata on `day`."""
    return _day_number(day) * DAY_MS - IST_OFFSET_MS


# ---------------------------------------------------------------------------------------------
# Vectorised building blocks


HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)


def uuid_strings(rng: np.random.Generator, n: int) -> pl.Series:
    """`n` version-4 UUID strings drawn from `rng`, built as bytes in numpy (not one
    `uuid.UUID` per row, which costs more than everything else an event needs)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + end - start] = hexed[:, start:end]
    return pl.Series(out.view("S36").ravel(), dtype=pl.Binary).cast(pl.String)


def _iso_ms(epoch_ms: np.ndarray) -> pl.Series:
    """ISO-8601 UTC timestamps with milliseconds, as the SDKs send them."""
    return pl.from_epoch(pl.Series(epoch_ms, dtype=pl.Int64), time_unit="ms").dt.strftime(
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    )


def _draw_rows(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A column per row, with probability proportional to the row's weights (u uniform in
    [0, 1)): one binary search over the rows' normalised cumulative weights laid end to end
    (row i spanning (i, i + 1]), rather than a comparison with every cell."""
    rows, columns = weights.shape
    offsets = np.arange(rows)
    cumulative = np.cumsum(weights, axis=1)
    cumulative /= cumulative[:, -1:]
    cumulative += offsets[:, None]
    flat = np.searchsorted(cumulative.ravel(), offsets + u, side="right")
    return np.minimum(flat - offsets * columns, columns - 1)


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    """Where each segment begins when segments of `counts` items are laid end to end."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


@dataclass(frozen=True)
class _Members:
    """Rows grouped by an owner and ordered by the day they began, so a random member that
    already existed on a given day (a policy of a customer, a customer of an agent) is one
    binary search away."""

    rows: np.ndarray
    keys: np.ndarray
    starts: np.ndarray

    SPAN = 1 << 22  # days

    @classmethod
    def build(cls, owner: np.ndarray, began: np.ndarray, owners: int) -> _Members:
        keys = owner.astype(np.int64) * cls.SPAN + began
        order = np.argsort(keys, kind="stable")
        starts = np.searchsorted(keys[order], np.arange(owners + 1, dtype=np.int64) * cls.SPAN)
        return cls(rows=order, keys=keys[order], starts=starts)

    def count(self, owners: np.ndarray, day: int) -> np.ndarray:
        ends = np.searchsorted(self.keys, owners.astype(np.int64) * self.SPAN + day, side="right")
        return ends - self.starts[owners]

    def pick(self, owners: np.ndarray, day: int, u: np.ndarray) -> np.ndarray:
        """A random member of each owner begun by `day` (u uniform in [0, 1)), -1 if none."""
        count = self.count(owners, day)
        position = self.starts[owners] + (u * count).astype(np.int64)
        return np.where(count > 0, self.rows[np.minimum(position, len(self.rows) - 1)], -1)


# ---------------------------------------------------------------------------------------------
# What does not change from day to day: app users, their devices, the catalogue


@dataclass(frozen=True)
class _Catalogue:
    """The world's users, devices, policies and videos as arrays, built once per call."""

    world: World
    seed: int
    rates: FaultRates
    # users: agents first, then policyholders
    user_ids: pl.Series
    anonymous_ids: pl.Series
    is_agent: np.ndarray
    holder: np.ndarray  # policyholder row; -1 for agents
    agent: np.ndarray  # agent row: the agent's own, or the policyholder's agent
    language: np.ndarray  # index into LANGUAGES
    engagement: np.ndarray  # agents: productivity percentile
    base_rate: np.ndarray  # expected sessions on an ordinary weekday
    first_day: np.ndarray  # first day the user can use the app
    skew_ms: np.ndarray  # the device clock's error
    device: np.ndarray  # index of (model, os version, app release, language), see _context_json
    carrier: np.ndarray
    platform: np.ndarray  # 0 android, 1 ios
    # policies
    policy_holder: np.ndarray
    policy_issue: np.ndarray  # day number
    policy_issue_month: np.ndarray  # index into MONTH_START
    policy_day_of_month: np.ndarray  # 0-based
    policy_months: np.ndarray  # months between dues (0: single premium)
    policy_maturity: np.ndarray
    policies_of: _Members  # per policyholder row
    customers_of: _Members  # per agent row
    # videos
    video_language: np.ndarray
    video_duration: np.ndarray
    video_popularity: np.ndarray
    video_allowed: np.ndarray  # per language: the videos in it or in English
    video_popular_cumulative: np.ndarray  # per language: cumulative shares of allowed videos

    @classmethod
    def build(cls, world: World, config: SimulationConfig) -> _Catalogue:
        holder_agent = _rows_of(world.policyholders["agent_id"], world.agents["agent_id"])
        policies = _policy_tables(world)
        first_issue = np.full(world.policyholders.height, NEVER)
        np.minimum.at(first_issue, policies["policy_holder"], policies["policy_issue"])
        return cls(
            world=weakref.proxy(world),  # the cache below must not keep a world alive
            seed=config.seed,
            rates=config.faults,
            **_user_tables(
                world, holder_agent, first_issue, stream(config.seed, SOURCE, "devices")
            ),
            **policies,
            policies_of=_Members.build(
                policies["policy_holder"], policies["policy_issue"], world.policyholders.height
            ),
            customers_of=_Members.build(holder_agent, first_issue, world.agents.height),
            **_video_tables(world),
        )


def _rows_of(keys: pl.Series, table_keys: pl.Series) -> np.ndarray:
    """The row of each key in `table_keys` (e.g. the agent row of each policyholder)."""
    rows = pl.Series(np.arange(len(table_keys), dtype=np.int64))
    return keys.replace_strict(table_keys, rows).to_numpy()


def _language_index(languages: pl.Series) -> np.ndarray:
    return languages.replace_strict({c: i for i, c in enumerate(LANGUAGES)}, default=0).to_numpy()


def _user_tables(
    world: World, holder_agent: np.ndarray, first_issue: np.ndarray, rng: np.random.Generator
) -> dict[str, object]:
    """App users (agents, then policyholders), their activity and their devices."""
    agents, holders = world.agents, world.policyholders
    n_agents, n_holders = agents.height, holders.height
    n = n_agents + n_holders
    productivity = agents["productivity"].rank().to_numpy() / max(n_agents, 1)
    engagement = holders["engagement"].to_numpy()
    language = _language_index(pl.concat([agents["language"], holders["language"]]))
    platform = np.concatenate(
        [
            (rng.random(n_agents) > AGENT_ANDROID_SHARE).astype(np.int8),
            (holders["platform"] == "ios").to_numpy().astype(np.int8),
        ]
    )
    return {
        "user_ids": pl.concat([agents["user_id"], holders["user_id"]]),
        "anonymous_ids": uuid_strings(rng, n),
        "is_agent": np.arange(n) < n_agents,
        "holder": np.concatenate([np.full(n_agents, -1), np.arange(n_holders)]),
        "agent": np.concatenate([np.arange(n_agents), holder_agent]),
        "language": language,
        "engagement": np.concatenate([productivity, engagement]),
        "base_rate": np.concatenate(
            [
                AGENT_SESSIONS[0] + AGENT_SESSIONS[1] * productivity,
                HOLDER_SESSIONS[0] + HOLDER_SESSIONS[1] * engagement**2,
            ]
        ),
        "first_day": np.concatenate([np.zeros(n_agents, dtype=np.int64), first_issue]),
        "skew_ms": _clock_skews(rng, n),
        "device": _devices(rng, platform, language),
        "carrier": rng.choice(len(CARRIERS), size=n, p=_weights(CARRIERS)),
        "platform": platform,
    }


def _policy_tables(world: World) -> dict[str, np.ndarray]:
    """Owner, dates and premium frequency of every policy."""
    policies = world.policies
    issue = policies["issue_date"].cast(pl.Date).cast(pl.Int64).to_numpy()
    months = {
        mode: 12 // per_year if per_year else 0 for mode, per_year in PAYMENTS_PER_YEAR.items()
    }
    return {
        "policy_holder": _rows_of(
            policies["policyholder_id"], world.policyholders["policyholder_id"]
        ),
        "policy_issue": issue,
        "policy_issue_month": _month_of(issue),
        "policy_day_of_month": issue - MONTH_START[_month_of(issue)],
        "policy_months": policies["premium_mode"].replace_strict(months).to_numpy(),
        "policy_maturity": policies["maturity_date"].cast(pl.Date).cast(pl.Int64).to_numpy(),
    }


def _video_tables(world: World) -> dict[str, np.ndarray]:
    """Per video its language and duration; per user language the videos allowed (in it or in
    English) and, for agents, the cumulative shares of each by popularity squared. Popularity is
    the mean true affinity over a fixed sample of policyholders: what customers like."""
    language = _language_index(world.videos["language"])
    allowed = (language[None, :] == np.arange(len(LANGUAGES))[:, None]) | (
        language[None, :] == LANGUAGES.index("en")
    )
    n_holders = world.policyholders.height
    sample = np.linspace(0, n_holders - 1, num=min(POPULARITY_SAMPLE, n_holders)).astype(np.int64)
    popularity = world.affinity(sample).mean(axis=0)
    cumulative = np.cumsum(np.where(allowed, popularity**2, 0.0) + 1e-12, axis=1)
    return {
        "video_language": language,
        "video_duration": world.videos["duration_seconds"].to_numpy().astype(np.int64),
        "video_popularity": popularity,
        "video_allowed": allowed,
        "video_popular_cumulative": cumulative / cumulative[:, -1:],
    }


def _clock_skews(rng: np.random.Generator, n: int) -> np.ndarray:
    """Device clock errors in ms: seconds for 75% of devices, minutes for 20%, hours for 5%."""
    kind = rng.choice(3, size=n, p=[0.75, 0.20, 0.05])
    seconds = rng.normal(0.0, 3.0, size=n)
    minutes = rng.normal(0.0, 6 * 60.0, size=n)
    hours = rng.choice([-1.0, 1.0], size=n) * rng.uniform(1.0, 30.0, size=n) * 3600.0
    return (np.choose(kind, [seconds, minutes, hours]) * 1000.0).astype(np.int64)


DEVICE_MODELS = ANDROID_DEVICES + IOS_DEVICES
OS_VERSIONS = ANDROID_VERSIONS + IOS_VERSIONS


def _devices(rng: np.random.Generator, platform: np.ndarray, language: np.ndarray) -> np.ndarray:
    """A device per user, as one index over (model, os version, app release, language)."""
    n = len(platform)
    ios = platform == 1
    model = np.where(
        ios,
        len(ANDROID_DEVICES) + rng.choice(len(IOS_DEVICES), size=n, p=_weights(IOS_DEVICES)),
        rng.choice(len(ANDROID_DEVICES), size=n, p=_weights(ANDROID_DEVICES)),
    )
    os_version = np.where(
        ios,
        len(ANDROID_VERSIONS) + rng.choice(len(IOS_VERSIONS), size=n, p=_weights(IOS_VERSIONS)),
        rng.choice(len(ANDROID_VERSIONS), size=n, p=_weights(ANDROID_VERSIONS)),
    )
    release = rng.choice(len(APP_RELEASES), size=n, p=_weights(APP_RELEASES))
    return ((model * len(OS_VERSIONS) + os_version) * len(APP_RELEASES) + release) * len(
        LANGUAGES
    ) + language


def _device_parts(device: np.ndarray | int) -> tuple:
    """(model, os version, app release, language) of a `_devices` index."""
    rest, language = divmod(device, len(LANGUAGES))
    rest, release = divmod(rest, len(APP_RELEASES))
    model, os_version = divmod(rest, len(OS_VERSIONS))
    return model, os_version, release, language


@functools.cache  # a few thousand devices and networks at most
def _context_json(device: int, network: int) -> str:
    """The Segment `context` of one device on one network (0 wifi, else 1 + carrier)."""
    model, os_version, release, language = _device_parts(device)
    manufacturer, model_name, _ = DEVICE_MODELS[model]
    ios = model >= len(ANDROID_DEVICES)
    version, build, _ = APP_RELEASES[release]
    locale = LANGUAGES[language]
    net = (
        {"wifi": True, "cellular": False}
        if network == 0
        else {"wifi": False, "cellular": True, "carrier": CARRIERS[network - 1][0]}
    )
    return orjson.dumps(
        {
            "app": {"name": "Agent Mitra", "version": version, "build": build},
            "device": {
                "manufacturer": manufacturer,
                "model": model_name,
                "type": "ios" if ios else "android",
            },
            "os": {"name": "iOS" if ios else "Android", "version": OS_VERSIONS[os_version][0]},
            "locale": f"{locale}-IN",
            "timezone": "Asia/Kolkata",
            "network": net,
        }
    ).decode()


# ---------------------------------------------------------------------------------------------
# The plan of a day: who opens the app when, and how each session is delivered


@dataclass(frozen=True)
class _Plan:
    """Every session that happened on `day` (IST), in user order."""

    day: date
    user: np.ndarray
    start_s: np.ndarray  # seconds after midnight IST
    delay: np.ndarray  # 0: delivered at once; 1..5: queued offline for that many days
    resend: np.ndarray  # the whole batch is delivered again the next day
    network: np.ndarray  # 0 wifi, else 1 + carrier
    latency_ms: np.ndarray
    arrival_s: np.ndarray  # time of day a late batch (or a re-sent one) arrives
    session_ids: pl.Series
    due_soon: np.ndarray  # per policyholder row: a premium due within a week or in grace


def _month_of(days: np.ndarray | int) -> np.ndarray:
    """Index into MONTH_START of the month holding each day number."""
    return np.searchsorted(MONTH_START, days, side="right") - 1


def _day_in_month(month: np.ndarray, day_of_month: np.ndarray) -> np.ndarray:
    """Day number of a day of month (0-based), clamped to the month's end (31 Jan -> 28 Feb)."""
    return MONTH_START[month] + np.minimum(day_of_month, MONTH_LENGTH[month] - 1)


def _due_dates(cat: _Catalogue, policies: np.ndarray, day: int) -> np.ndarray:
    """Each policy's first due date (day number) not yet past its grace period on `day`; in
    integer month arithmetic, as this runs over every policy for every day planned."""
    months = cat.policy_months[policies]
    step = np.maximum(months, 1)
    monthly = step == 1
    floor = np.where(monthly, day - GRACE_DAYS["monthly"], day - GRACE_DAYS["annual"])
    floor_month = np.where(
        monthly, _month_of(day - GRACE_DAYS["monthly"]), _month_of(day - GRACE_DAYS["annual"])
    )
    issue_month, day_of_month = cat.policy_issue_month[policies], cat.policy_day_of_month[policies]
    k = np.maximum(-(-(floor_month - issue_month) // step), 0) * step
    due = _day_in_month(issue_month + k, day_of_month)
    due = np.where(due < floor, _day_in_month(issue_month + k + step, day_of_month), due)
    return np.where(months > 0, due, cat.policy_issue[policies])


def _due_soon(cat: _Catalogue, day: int) -> np.ndarray:
    """Per policyholder: a regular premium of an in-force policy due within a week or in grace."""
    live = np.flatnonzero(
        (cat.policy_months > 0) & (cat.policy_issue < day) & (cat.policy_maturity > day)
    )
    soon = live[_due_dates(cat, live, day) <= day + DUE_SOON_AHEAD_DAYS]
    flags = np.zeros(len(cat.world.policyholders), dtype=bool)
    flags[cat.policy_holder[soon]] = True
    return flags


def _hours(rng: np.random.Generator, is_agent: np.ndarray) -> np.ndarray:
    """Seconds after midnight IST from the agents' or the policyholders' hourly profile."""
    hour = np.where(
        is_agent,
        rng.choice(24, size=len(is_agent), p=AGENT_HOURS / AGENT_HOURS.sum()),
        rng.choice(24, size=len(is_agent), p=HOLDER_HOURS / HOLDER_HOURS.sum()),
    )
    return hour * 3600.0 + rng.random(len(is_agent)) * 3600.0


def _plan_day(cat: _Catalogue, day: date) -> _Plan:
    """Who opens the app on `day`, when, and how each session will be delivered: one cheap
    stream per day, so the days after can re-draw it to find the late batches landing on them."""
    rng = stream(cat.seed, SOURCE, day, "plan")
    number = _day_number(day)
    due_soon = _due_soon(cat, number)
    factor = WEEKDAY_FACTOR[day.weekday()] * TAX_SEASON_FACTOR.get(day.month, 1.0)
    holder_boost = np.ones(len(cat.user_ids))
    holder_boost[~cat.is_agent] = np.where(due_soon, DUE_SOON_FACTOR, 1.0)
    rate = np.where(cat.first_day <= number, cat.base_rate * factor * holder_boost, 0.0)
    user = np.repeat(np.arange(len(rate)), rng.poisson(rate))
    n = len(user)
    late = rng.random(n) < cat.rates.late
    delay = np.where(late, 1 + rng.choice(MAX_LATE_DAYS, size=n, p=LATE_DELAY_SHARES), 0)
    resend = ~late & (rng.random(n) < cat.rates.duplicate * RESEND_SHARE)
    wifi = rng.random(n) < WIFI_SHARE
    return _Plan(
        day=day,
        user=user,
        start_s=_hours(rng, cat.is_agent[user]),
        delay=delay,
        resend=resend,
        network=np.where(wifi, 0, 1 + cat.carrier[user]),
        latency_ms=np.clip(rng.lognormal(np.log(250.0), 0.8, size=n), 40, 10_000).astype(np.int64),
        arrival_s=np.minimum(_hours(rng, cat.is_agent[user]), 86_400 - 15),
        session_ids=uuid_strings(rng, n),
        due_soon=due_soon,
    )


# ---------------------------------------------------------------------------------------------
# The events of a batch of sessions


@dataclass
class _Events:
    """Events of a batch of sessions, in session order; one array element per event."""

    session: np.ndarray  # index into the batch's sessions
    code: np.ndarray
    user: np.ndarray
    time_ms: np.ndarray  # true time (epoch ms)
    start_ms: np.ndarray  # true start of the event's session
    end_ms: np.ndarray  # true time of the session's last event
    customer: np.ndarray  # policyholder row the event is about
    policy: np.ndarray
    video: np.ndarray
    label: np.ndarray  # index into LABEL_VALUES
    number: np.ndarray  # percent, position or a count, by event
    seconds: np.ndarray  # watch seconds (video_completed)
    day: int  # the day number the sessions happened on
    answered: np.ndarray
    message_ids: pl.Series


def _action_types(
    cat: _Catalogue, plan: _Plan, users: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Actions of each session: its index in the batch and the action type, session by session."""
    agent = cat.is_agent[users]
    holder_mean = HOLDER_ACTIONS[0] + HOLDER_ACTIONS[1] * cat.engagement[users]
    per_session = 2 + rng.poisson(np.where(agent, AGENT_ACTIONS_MEAN, holder_mean))
    session = np.repeat(np.arange(len(users)), per_session)  # the start action, then 1 or more
    first = np.zeros(len(session), dtype=bool)
    first[_segment_starts(per_session)] = True
    shares = ROLE_ACTION_SHARES[agent[session].astype(np.int64)]
    due = _holder_flag(cat, plan.due_soon, users)[session]
    shares[:, ACTION["premium"]] *= np.where(due, PREMIUM_WHEN_DUE, 1.0)
    action = _draw_rows(rng.random(len(session)), shares)
    start = np.where(agent[session], ACTION["start_agent"], ACTION["start_holder"])
    return session, np.where(first, start, action)


def _holder_flag(cat: _Catalogue, per_holder: np.ndarray, users: np.ndarray) -> np.ndarray:
    holder = cat.holder[users]
    return np.where(holder >= 0, per_holder[np.maximum(holder, 0)], False)


@dataclass(frozen=True)
class _Videos:
    """The video of each video action, how much of it was watched and whether it was shared."""

    video: np.ndarray
    fraction: np.ndarray
    shared: np.ndarray


def _watch_videos(cat: _Catalogue, users: np.ndarray, rng: np.random.Generator) -> _Videos:
    """Policyholders choose among videos in their language or English with weight affinity^2
    and watch more of those they like; agents preview popular videos to share them. (A tiny
    weight on every video only matters if no video is in the user's language or English.)"""
    n = len(users)
    u = rng.random(n)
    holder = cat.holder[users]
    video, chosen = np.zeros(n, dtype=np.int64), np.zeros(n)
    viewers = np.flatnonzero(holder >= 0)
    if len(viewers):
        affinity = cat.world.affinity(holder[viewers])
        allowed = cat.video_allowed[cat.language[users[viewers]]]
        video[viewers] = _draw_rows(u[viewers], np.where(allowed, affinity**2, 0.0) + 1e-12)
        chosen[viewers] = affinity[np.arange(len(viewers)), video[viewers]]
    agents = np.flatnonzero(holder < 0)
    language = cat.language[users[agents]]
    for code in np.unique(language):
        at = agents[language == code]
        video[at] = np.searchsorted(cat.video_popular_cumulative[code], u[at], side="right")
    chosen[agents] = cat.video_popularity[video[agents]]
    is_holder = holder >= 0
    completes = rng.random(n) < np.where(
        is_holder, COMPLETION[0] + COMPLETION[1] * chosen, AGENT_COMPLETION
    )
    partial = rng.beta(1.0 + 2.0 * chosen, 3.0) * 0.999  # how far the others got, before the end
    shared = rng.random(n) < np.where(is_holder, SHARING[0] + SHARING[1] * chosen, AGENT_SHARING)
    return _Videos(video=video, fraction=np.where(completes, 1.0, partial), shared=shared)


def _expand(
    action: np.ndarray,
    videos: _Videos,
    video_rows: np.ndarray,
    pays: np.ndarray,
    notified: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Events of the actions from their templates: (action index, slot) of every event kept."""
    keep = rng.random(SLOT_KEEP[action].shape) < SLOT_KEEP[action]
    keep[video_rows, WATCH_SLOTS] = videos.fraction[:, None] >= WATCH_MILESTONES[None, :]
    keep[video_rows, SHARE_SLOT] = videos.shared
    premium = action == ACTION["premium"]
    keep[premium, PAY_SLOT] = pays[premium]
    starts = (action == ACTION["start_holder"]) | (action == ACTION["start_agent"])
    keep[starts, NOTIFICATION_SLOT] |= notified[starts]
    keep &= SLOT_CODES[action] >= 0
    return np.nonzero(keep)


def _session_events(
    cat: _Catalogue, plan: _Plan, sessions: np.ndarray, rng: np.random.Generator
) -> _Events:
    """The events of `sessions` (indices into the plan), drawn from `rng` alone."""
    day = _day_number(plan.day)
    users = plan.user[sessions]
    a_session, action = _action_types(cat, plan, users, rng)
    a_user = users[a_session]
    # who and what each action is about
    customer = np.where(
        cat.is_agent[a_user],
        cat.customers_of.pick(cat.agent[a_user], day, rng.random(len(action))),
        cat.holder[a_user],
    )
    orphan = np.isin(action, [ACTION[name] for name in NEEDS_CUSTOMER]) & (customer < 0)
    action = np.where(orphan, ACTION["dashboard"], action)
    policy = np.where(
        customer >= 0,
        cat.policies_of.pick(np.maximum(customer, 0), day, rng.random(len(action))),
        -1,
    )
    video_rows = np.flatnonzero(action == ACTION["video"])
    videos = _watch_videos(cat, a_user[video_rows], rng)
    video = np.full(len(action), -1)
    video[video_rows] = videos.video
    fraction = np.zeros(len(action))
    fraction[video_rows] = videos.fraction
    due_soon = _holder_flag(cat, plan.due_soon, a_user)
    pays = rng.random(len(action)) < np.where(due_soon, PAY_WHEN_DUE, PAY_OTHERWISE)
    notified = due_soon & (rng.random(len(action)) < NOTIFICATION_WHEN_DUE)
    ev_action, slot = _expand(action, videos, video_rows, pays, notified, rng)
    code = SLOT_CODES[action[ev_action], slot].astype(np.int64)
    ev_session = a_session[ev_action]
    duration = np.where(video[ev_action] >= 0, cat.video_duration[video[ev_action]], 0)
    times = _timeline(plan, sessions, ev_session, code, duration, rng)
    return _Events(
        session=ev_session,
        code=code,
        user=users[ev_session],
        **times,
        customer=customer[ev_action],
        policy=policy[ev_action],
        video=video[ev_action],
        **_event_values(code, slot, duration, fraction[ev_action], rng),
        day=day,
        message_ids=uuid_strings(rng, len(code)),
    )


def _timeline(
    plan: _Plan,
    sessions: np.ndarray,
    ev_session: np.ndarray,
    code: np.ndarray,
    duration: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """True times: exponential gaps between events, video milestones a quarter of the video
    apart; a session that would run past midnight starts earlier, so it stays on its day."""
    gap = rng.exponential(1.0, size=len(code)) * GAP_MEAN[code]
    for name, share in VIDEO_MILESTONES.items():
        at = code == CODE[name]
        gap[at] = duration[at] * share
    counts = np.bincount(ev_session, minlength=len(sessions))
    first = _segment_starts(counts)
    gap[first[counts > 0]] = 0.0
    elapsed = np.cumsum(gap)
    offset = elapsed - elapsed[first[ev_session]]
    length = np.zeros(len(sessions))
    np.maximum.at(length, ev_session, offset)
    start = np.minimum(plan.start_s[sessions], 86_400 - LAST_START_MARGIN_S - length)
    midnight = _midnight_ms(plan.day)
    start_ms = midnight + np.round(start * 1000).astype(np.int64)
    return {
        "time_ms": start_ms[ev_session] + np.round(offset * 1000).astype(np.int64),
        "start_ms": start_ms[ev_session],
        "end_ms": (start_ms + np.round(length * 1000).astype(np.int64))[ev_session],
    }


def _event_values(
    code: np.ndarray,
    slot: np.ndarray,
    duration: np.ndarray,
    fraction: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Labels, numbers and flags of the events' properties (each used only where it applies)."""
    n = len(code)
    label = np.zeros(n, dtype=np.int64)
    for event_code, (values, shares) in LABEL_CHOICES.items():
        at = np.flatnonzero(code == event_code)
        label[at] = rng.choice(values, size=len(at), p=shares)
    number = np.zeros(n, dtype=np.int64)
    for name, (_, mean) in NUMBERS.items():
        at = np.flatnonzero(code == CODE[name])
        number[at] = 1 + rng.poisson(mean, size=len(at))
    progress = code == CODE["video_progress"]
    percent = np.round(100 * WATCH_MILESTONES[np.clip(slot - WATCH_SLOTS.start, 0, 3)])
    number[progress] = percent[progress]
    seconds = np.where(progress, np.round(duration * percent / 100.0), 0).astype(np.int64)
    completed = code == CODE["video_completed"]
    watched = duration * np.where(completed, rng.uniform(0.88, 1.0, size=n), fraction)
    seconds[completed] = np.round(watched[completed])
    return {
        "label": label,
        "number": number,
        "seconds": seconds,
        "answered": rng.random(n) < ANSWERED_SHARE,
    }


# ---------------------------------------------------------------------------------------------
# Delivery: clocks, batches, duplicates and faults


@dataclass(frozen=True)
class _Delivery:
    """One line per delivered copy of an event, in arrival order."""

    event: np.ndarray  # index into _Events
    sent_ms: np.ndarray  # true time the batch was sent
    received_ms: np.ndarray
    copy: np.ndarray  # a duplicate delivery


def _deliver(
    plan: _Plan,
    sessions: np.ndarray,
    events: _Events,
    arrival_ms: np.ndarray | None,
    duplicate_rate: float,
    day_end_ms: int,
    rng: np.random.Generator,
) -> _Delivery:
    """Send times (30-second flushes during the session, or the arrival of a queued batch),
    network latency, and same-day duplicates re-sent seconds to minutes later."""
    if arrival_ms is None:
        waited = (events.time_ms - events.start_ms + 500) // (FLUSH_SECONDS * 1000) + 1
        flush = events.start_ms + waited * FLUSH_SECONDS * 1000
        sent = np.minimum(flush, events.end_ms + 1000)
    else:
        sent = arrival_ms[events.session]
    received = sent + plan.latency_ms[sessions][events.session]
    n = len(sent)
    source = np.flatnonzero(rng.random(n) < duplicate_rate)
    retry = np.minimum(
        rng.lognormal(np.log(20_000.0), 1.5, size=len(source)).astype(np.int64),
        day_end_ms - 1 - received[source],
    )
    event = np.concatenate([np.arange(n), source])
    shift = np.concatenate([np.zeros(n, dtype=np.int64), retry])
    copy = np.concatenate([np.zeros(n, dtype=bool), np.ones(len(source), dtype=bool)])
    order = np.argsort(received[event] + shift, kind="stable")
    event, shift, copy = event[order], shift[order], copy[order]
    return _Delivery(
        event=event, sent_ms=sent[event] + shift, received_ms=received[event] + shift, copy=copy
    )


def _property_columns(
    cat: _Catalogue, ev: _Events, rows: np.ndarray, code: int
) -> dict[str, Callable[[], pl.Series]]:
    """How to get each property of the events at `rows` (all of event `code`) as a Series."""
    world = cat.world
    policy, video = np.maximum(ev.policy[rows], 0), np.maximum(ev.video[rows], 0)
    users = ev.user[rows]
    return {
        "policy_id": lambda: world.policies["policy_id"].gather(policy),
        "policy_type": lambda: world.policies["policy_type"].gather(policy),
        "premium_mode": lambda: world.policies["premium_mode"].gather(policy),
        "amount": lambda: world.policies["premium_amount"].gather(policy).cast(pl.Int64),
        "currency": lambda: pl.Series(["INR"]).gather(np.zeros(len(rows), dtype=np.int64)),
        "due_date": lambda: (
            pl.Series(_due_dates(cat, policy, ev.day)).cast(pl.Date).cast(pl.String)
        ),
        "video_id": lambda: world.videos["video_id"].gather(video),
        "category": lambda: world.videos["category"].gather(video),
        "language": lambda: (
            pl.Series(LANGUAGES).gather(cat.language[users])
            if code == CODE["identify"]  # the user's language, else the video's
            else world.videos["language"].gather(video)
        ),
        "duration_seconds": lambda: pl.Series(cat.video_duration[video]),
        "percent": lambda: pl.Series(ev.number[rows]),
        "position_seconds": lambda: pl.Series(ev.seconds[rows]),
        "watch_seconds": lambda: pl.Series(ev.seconds[rows]),
        "question_length": lambda: pl.Series(ev.number[rows]),
        "customers_listed": lambda: pl.Series(ev.number[rows]),
        "answered": lambda: pl.Series(ev.answered[rows]),
        "policyholder_id": lambda: world.policyholders["policyholder_id"].gather(
            np.maximum(ev.customer[rows], 0)
        ),
        "role": lambda: pl.Series(["policyholder", "agent"]).gather(
            cat.is_agent[users].astype(np.int64)
        ),
        "platform": lambda: pl.Series(["android", "ios"]).gather(cat.platform[users]),
        "app_version": lambda: pl.Series([r[0] for r in APP_RELEASES]).gather(
            _device_parts(cat.device[users])[2]
        ),
        **{
            key: (lambda: pl.Series(LABEL_VALUES).gather(ev.label[rows]))
            for key, _ in LABELS.values()
        },
    }


def _json_value(column: pl.Series) -> pl.Expr:
    """A column as JSON values: strings quoted (ours never need escaping), the rest as text."""
    expr = pl.col(column.name)
    if column.dtype == pl.String:
        return pl.concat_str([pl.lit('"'), expr, pl.lit('"')])
    return expr.cast(pl.String)


def _properties(cat: _Catalogue, ev: _Events, lines: np.ndarray) -> pl.Series:
    """The `"properties":{...}` (or identify's `"traits":{...}`) fragment of every line, built
    event kind by event kind so each kind only computes its own columns."""
    codes = ev.code[lines]
    parts: list[pl.DataFrame] = []
    for code in np.unique(codes):
        at = np.flatnonzero(codes == code)
        kind, name = EVENTS[code]
        keys = PROPERTIES.get(name, ())
        getters = _property_columns(cat, ev, lines[at], int(code))
        columns = [getters[key]().alias(key) for key in keys]
        pieces: list[pl.Expr] = [pl.lit('"traits":{' if kind == "identify" else '"properties":{')]
        for i, column in enumerate(columns):
            pieces += [pl.lit(("," if i else "") + f'"{column.name}":'), _json_value(column)]
        pieces.append(pl.lit("}"))
        frame = pl.DataFrame([pl.Series("line", at), *columns])
        parts.append(frame.select("line", pl.concat_str(pieces).alias("fragment")))
    return pl.concat(parts).sort("line")["fragment"]


def _kind_fragment(kind: str, name: str) -> str:
    """`"type":"track","event":"login"`, `"type":"screen","name":"Home"` or `"type":"identify"`."""
    fields = {"type": kind}
    if kind != "identify":
        fields["event" if kind == "track" else "name"] = name
    return orjson.dumps(fields).decode()[1:-1]


KIND_FRAGMENTS = pl.Series([_kind_fragment(kind, name) for kind, name in EVENTS])


def _contexts(
    cat: _Catalogue, ev: _Events, plan: _Plan, sessions: np.ndarray, lines: np.ndarray
) -> pl.Series:
    """The context JSON of every line, rendered once per distinct (device, network)."""
    keys = (
        cat.device[ev.user[lines]] * (1 + len(CARRIERS)) + plan.network[sessions][ev.session[lines]]
    )
    distinct, inverse = np.unique(keys, return_inverse=True)
    rendered = [_context_json(*divmod(int(k), 1 + len(CARRIERS))) for k in distinct]
    return pl.Series(rendered, dtype=pl.String).gather(inverse)


def _encode(
    cat: _Catalogue, plan: _Plan, sessions: np.ndarray, ev: _Events, delivery: _Delivery
) -> pl.Series:
    """The NDJSON lines (without newline) of a delivery, assembled column-wise."""
    lines = delivery.event
    skew = cat.skew_ms[ev.user[lines]]
    frame = pl.DataFrame(
        {
            "messageId": ev.message_ids.gather(lines),
            "kind": KIND_FRAGMENTS.gather(ev.code[lines]),
            "userId": cat.user_ids.gather(ev.user[lines]),
            "anonymousId": cat.anonymous_ids.gather(ev.user[lines]),
            "sessionId": plan.session_ids.gather(sessions[ev.session[lines]]),
            "originalTimestamp": _iso_ms(ev.time_ms[lines] + skew),
            "sentAt": _iso_ms(delivery.sent_ms + skew),
            "receivedAt": _iso_ms(delivery.received_ms),
            "properties": _properties(cat, ev, lines),
            "context": _contexts(cat, ev, plan, sessions, lines),
        }
    )
    quoted = ("messageId", "userId", "anonymousId", "sessionId", "originalTimestamp", "sentAt")
    pieces: list[pl.Expr] = [
        pl.lit('{"messageId":"'),
        pl.col("messageId"),
        pl.lit('",'),
        pl.col("kind"),
    ]
    for name in quoted[1:]:
        pieces += [pl.lit(f',"{name}":"'), pl.col(name), pl.lit('"')]
    pieces += [
        pl.lit(',"receivedAt":"'),
        pl.col("receivedAt"),
        pl.lit('",'),
        pl.col("properties"),
        pl.lit(',"context":'),
        pl.col("context"),
        pl.lit("}"),
    ]
    return frame.select(pl.concat_str(pieces).alias("line"))["line"]


def _corrupt(
    lines: pl.Series, candidates: np.ndarray, rates: FaultRates, rng: np.random.Generator
) -> tuple[pl.Series, Counter[str]]:
    """Truncate, drop a required field from, or mistype at most one fault per candidate line."""
    bounds = np.cumsum([rates.truncated_json, rates.missing_field, rates.wrong_type])
    kind = np.searchsorted(bounds, rng.random(len(candidates)), side="right")
    hit = candidates[kind < 3]
    kind = kind[kind < 3]
    details = rng.random((len(hit), 2))
    corrupted = [
        _corrupt_line(text, int(k), tuple(d))
        for text, k, d in zip(lines.gather(hit).to_list(), kind, details, strict=True)
    ]
    counts = Counter({name: int((kind == i).sum()) for i, name in enumerate(FAULT_KINDS[2:])})
    if len(hit):
        lines = lines.scatter(hit, pl.Series(corrupted, dtype=pl.String))
    return lines, counts


def _corrupt_line(text: str, kind: int, details: tuple[float, float]) -> str:
    """One fault: 0 cut off mid-write, 1 a required field dropped, 2 a field of the wrong type."""
    if kind == 0:
        return text[: 1 + int(details[0] * (len(text) - 2))]
    event = orjson.loads(text)
    if kind == 1:
        fields = (*REQUIRED_FIELDS, *FIELDS_BY_TYPE[event["type"]])
        required = [name for name in fields if name != "receivedAt"]  # set by the server
        del event[required[int(details[0] * len(required))]]
    else:
        field = WRONG_TYPE_FIELDS[int(details[0] * len(WRONG_TYPE_FIELDS))]
        number = int(details[1] * 10**12)
        event[field] = orjson.dumps(event[field]).decode() if field == "context" else number
    return orjson.dumps(event).decode()


# ---------------------------------------------------------------------------------------------
# Batches and the day's file


@dataclass(frozen=True)
class _Batch:
    """Sessions of one plan whose events are drawn from one stream and delivered together."""

    plan: _Plan
    sessions: np.ndarray
    key: tuple[str, int]  # the stream's key after (seed, SOURCE, origin day): group and chunk
    arrival_day: date | None = None  # late and re-sent batches: the day they arrive
    resent: bool = False  # delivered twice, on its day and the next, and otherwise clean
    copy: bool = False  # the second delivery of a re-sent batch: every line a duplicate


def _chunks(plan: _Plan, mask: np.ndarray, group: str, **batch: object) -> Iterator[_Batch]:
    """The sessions of `plan` selected by `mask` in fixed-size chunks, each with its own stream."""
    sessions = np.flatnonzero(mask)
    for i, first in enumerate(range(0, len(sessions), SESSIONS_PER_CHUNK)):
        yield _Batch(plan, sessions[first : first + SESSIONS_PER_CHUNK], (group, i), **batch)


def _batches(plans: dict[date, _Plan], day: date, start: date) -> Iterator[_Batch]:
    """Everything received on `day`: late batches of the five days before, yesterday's batches
    re-sent today, then today's sessions (the re-sent ones kept apart, to be redrawn tomorrow).
    Late batches may come from before the simulated window (`start`), as they would in a running
    app; re-sent copies may not, since their originals, in no file, could never be found."""
    for delay in range(MAX_LATE_DAYS, 0, -1):
        plan = plans[day - timedelta(days=delay)]
        yield from _chunks(plan, plan.delay == delay, f"late{delay}", arrival_day=day)
    yesterday = plans[day - timedelta(days=1)]
    if yesterday.day >= start:
        yield from _chunks(
            yesterday, yesterday.resend, "resent", arrival_day=day, resent=True, copy=True
        )
    today = plans[day]
    yield from _chunks(today, (today.delay == 0) & ~today.resend, "sessions")
    yield from _chunks(today, today.resend, "resent", resent=True)


def _arrivals(batch: _Batch) -> np.ndarray | None:
    """When each session of a late or re-sent batch arrives (epoch ms); None if on time."""
    if batch.arrival_day is None:
        return None
    seconds = batch.plan.arrival_s[batch.sessions]
    return _midnight_ms(batch.arrival_day) + np.round(seconds * 1000).astype(np.int64)


def _deliver_batch(cat: _Catalogue, batch: _Batch, day: date) -> tuple[pl.Series, Counter[str]]:
    """The lines of one batch as received on `day`, with their faults counted."""
    plan, sessions = batch.plan, batch.sessions
    rng = stream(cat.seed, SOURCE, plan.day, *batch.key)
    events = _session_events(cat, plan, sessions, rng)
    if batch.resent:  # both deliveries draw the same events, then each its own timing
        rng = stream(cat.seed, SOURCE, plan.day, *batch.key, "delivery", batch.copy)
    duplicate_rate = 0.0 if batch.resent else cat.rates.duplicate * (1 - RESEND_SHARE)
    day_end = _midnight_ms(day) + DAY_MS
    delivery = _deliver(plan, sessions, events, _arrivals(batch), duplicate_rate, day_end, rng)
    lines = _encode(cat, plan, sessions, events, delivery)
    if batch.resent:
        return lines, Counter({"duplicate": len(lines) if batch.copy else 0})
    touched = delivery.copy | np.isin(delivery.event, delivery.event[delivery.copy])
    lines, counts = _corrupt(lines, np.flatnonzero(~touched), cat.rates, rng)
    counts["duplicate"] = int(delivery.copy.sum())
    if batch.arrival_day is not None:
        counts["late"] = int((~delivery.copy).sum())
    return lines, counts


def _ndjson(lines: pl.Series) -> memoryview:
    """The lines joined by newlines (no final one), serialised by polars rather than Python."""
    buffer = io.BytesIO()
    pl.DataFrame({"line": lines}).write_csv(buffer, include_header=False, quote_style="never")
    return buffer.getbuffer()[:-1]


class _Cache:
    """The catalogue and the last days' plans of the world generated last, reused when the next
    day of the same world comes (a day needs the plans of the five before it). Only a cache: both
    are pure functions of the world, the config and the day, so output never depends on it."""

    def __init__(self) -> None:
        self._world: weakref.ref[World] | None = None
        self._config: SimulationConfig | None = None
        self._catalogue: _Catalogue | None = None
        self._plans: dict[date, _Plan] = {}
        self._lock = threading.Lock()

    def get(
        self, world: World, config: SimulationConfig, day: date
    ) -> tuple[_Catalogue, dict[date, _Plan]]:
        """The catalogue, and the plans of `day` and the MAX_LATE_DAYS days before it."""
        with self._lock:
            fresh = self._world is None or self._world() is not world or self._config != config
            if fresh or self._catalogue is None:
                self._world, self._config = weakref.ref(world), config
                self._catalogue, self._plans = _Catalogue.build(world, config), {}
            days = [day - timedelta(days=back) for back in range(MAX_LATE_DAYS + 1)]
            self._plans = {
                d: self._plans[d] if d in self._plans else _plan_day(self._catalogue, d)
                for d in days
            }
            return self._catalogue, self._plans


_CACHE = _Cache()


def day_chunks(
    world: World, day: date, config: SimulationConfig, counts: Counter[str]
) -> Iterator[memoryview]:
    """The day's file as NDJSON blocks (lines joined by newlines, none at the end), adding to
    `counts` the lines, sessions and faults of each block; `generate_app_events_day` writes them,
    the benchmark times them without compression."""
    cat, plans = _CACHE.get(world, config, day)
    counts["sessions"] += len(plans[day].user)
    for batch in _batches(plans, day, config.start):
        lines, batch_counts = _deliver_batch(cat, batch, day)
        if len(lines):
            counts.update(batch_counts)
            counts["lines"] += len(lines)
            yield _ndjson(lines)


def _write_in_background(path: Path, blocks: Iterator[memoryview]) -> None:
    """Write the blocks with `write_gzip_lines` on a second thread, so compressing one block
    (zlib releases the GIL) overlaps generating the next. At most two blocks wait in memory."""
    pending: queue.Queue[memoryview | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []
    finished = threading.Event()

    def drain() -> Iterator[memoryview]:
        while (block := pending.get()) is not None:
            yield block
        finished.set()

    def write() -> None:
        try:
            write_gzip_lines(path, drain())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
            while not finished.is_set() and pending.get() is not None:  # unblock the producer
                pass

    writer = threading.Thread(target=write, name="app-events-gzip", daemon=True)
    writer.start()
    try:
        for block in blocks:
            if failure:  # the writer gave up: stop generating
                break
            pending.put(block)
    finally:
        pending.put(None)
        writer.join()
    if failure:
        raise failure[0]


def generate_app_events_day(
    world: World, day: date, config: SimulationConfig, faults: FaultLog
) -> dict[str, int]:
    """Write `<landing>/app_events/dt=<day>/events.ndjson.gz`: every event received on `day`
    (IST), and record its faults under that day. Returns the counts: lines, sessions begun on the
    day, and lines by fault."""
    counts: Counter[str] = Counter()
    path = day_folder(config.landing_root, SOURCE, day) / FILE_NAME
    partial = path.with_name(path.name + ".partial")  # a failure leaves no half-written day
    try:
        _write_in_background(partial, day_chunks(world, day, config, counts))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    for fault in FAULT_KINDS:
        faults.add(SOURCE, day, fault, counts[fault])
    return {
        "lines": counts["lines"],
        "sessions": counts["sessions"],
        **{fault: counts[fault] for fault in FAULT_KINDS},
    }
