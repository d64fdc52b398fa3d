"""Event intake as a group commit: the batches of concurrent requests checked by one parser call
and landed as one durable file, each request still answered with exactly its own outcome.

Why: ingestion's parser (`api.event_batches.apply_parser`) costs ~7 ms a call whatever the
size, against ~0.01 ms an event, and the durable write costs an fsync of a file and of its
folder. Paid per request, they held intake to ~150 requests/s on 2 cores at 50 connections
(p95 376 ms, `bench/api_operational.py`). Databases solve the same problem for their logs the
same way: while one group is being checked and written, the requests that arrive wait
together and go as the next group. There is no timer: a lone request goes at once (no added
latency when idle), and under load a group holds what arrived while the last one was busy.

What each request keeps, as if it were alone:

- **Its own answer**: its events' indexes and rejection reasons (each line's verdict depends on
  that line only), and its own 4xx when its body is not a batch, which touches no other request.
- **Durable before its 202**: a request is answered only after the file holding its lines is
  fsynced (`api.landing.write_durably`); if that write fails, every request whose lines it held
  gets the error, and none of them was acknowledged.
- **Isolation from the others' input**: when the group's parser call fails, each batch is
  checked again alone, so only the batch that breaks the parser fails (with a 500: a fault of
  ours, its events not acknowledged); the others land as usual.
- **Its own receipt time**: `receivedAt` is taken when the request's body has arrived, not when
  its group runs; the group is split by receipt day (IST), one file per day folder.
- **Arrival order**: lines are written in arrival order and file names increase with time, the
  order in which ingestion reads and dedupes them.

A group is capped at `GROUP_MAX_BYTES` of bodies, so one group's latency stays bounded when
many large batches arrive at once; the rest wait for the next group.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from api.event_batches import Checked, apply_parser, event_lines
from api.landing import APP_EVENTS, day_folder, now_utc, receipt_day, unique_stem, write_durably

GROUP_MAX_BYTES = 8 << 20  # 8 one-megabyte batches at most per group


@dataclass
class _Waiting:
    """One request's body, waiting for its group, and where its outcome goes."""

    raw: bytes
    caller: str
    moment: datetime
    outcome: asyncio.Future[Checked] = field(repr=False)


class EventIntake:
    """Lands the event batches of one process's requests into `landing_root`, a group at a
    time (see the module docstring). One per application, made by its lifespan."""

    def __init__(self, landing_root: Path, *, group_max_bytes: int = GROUP_MAX_BYTES) -> None:
        self.landing_root = landing_root
        self.group_max_bytes = group_max_bytes
        self._waiting: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None

    async def land(self, raw: bytes, caller: str) -> Checked:
        """The outcome of one batch from `caller`, once its accepted events are durable.
        Raises the batch's own 4xx (`api.event_batches.batch_events`), or the write's error."""
        outcome: asyncio.Future[Checked] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(raw, caller, now_utc(), outcome))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await outcome

    async def aclose(self) -> None:
        """Wait for the groups already taken to be written (shutdown)."""
        if self._draining is not None:
            await asyncio.shield(self._draining)

    async def _drain(self) -> None:
        """Land groups until nobody waits: each group is whatever waited when the last ended."""
        try:
            while self._waiting:
                group = self._next_group()
                try:
                    outcomes = await run_in_threadpool(self._land_group, group)
                except Exception as exc:  # a fault of ours: every waiter hears of it
                    outcomes = [exc] * len(group)
                except BaseException:  # shutdown: nobody of this group was answered
                    for waiting in group:
                        waiting.outcome.cancel()
                    raise
                _settle(group, outcomes)
        finally:
            self._draining = None

    def _next_group(self) -> list[_Waiting]:
        """The oldest waiting requests, up to `group_max_bytes` of bodies (at least one)."""
        size, taken = 0, 0
        for waiting in self._waiting:
            size += len(waiting.raw)
            if taken and size > self.group_max_bytes:
                break
            taken += 1
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group

    def _land_group(self, group: list[_Waiting]) -> list[Checked | Exception]:
        """Check every batch of `group`, write the accepted lines of each receipt day as one
        durable file, and say what happened to each request (in a worker thread)."""
        outcomes: list[Checked | Exception] = []
        by_day: dict[date, dict[int, Checked]] = defaultdict(dict)
        for position, waiting in enumerate(group):
            try:
                checked = event_lines(waiting.raw, waiting.caller, waiting.moment)
            except Exception as exc:  # this request's own 4xx, no one else's
                outcomes.append(exc)
                continue
            outcomes.append(checked)
            by_day[receipt_day(waiting.moment)][position] = checked
        for day, batches in by_day.items():
            for position, exc in _check_apart(day, batches).items():
                outcomes[position] = exc
                del batches[position]
            try:
                self._write_day(day, list(batches.values()))
            except Exception as exc:  # nothing of this day was acknowledged
                for position in batches:
                    outcomes[position] = exc
        return outcomes

    def _write_day(self, day: date, batches: list[Checked]) -> None:
        """Write the accepted lines of `batches` (received on `day`) as one durable file."""
        data = b"".join(line + b"\n" for batch in batches for line in batch.lines.values())
        if data:
            folder = day_folder(self.landing_root, APP_EVENTS, day)
            write_durably(folder, f"{unique_stem()}.ndjson", data)


def _check_apart(day: date, batches: dict[int, Checked]) -> dict[int, Exception]:
    """Run the parser over `batches` (by position in the group) together, and when that call
    fails, over each batch alone: one request's input must never fail another's. Returns the
    error of each batch that fails on its own (its request alone is answered with it)."""
    try:
        apply_parser(list(batches.values()), day)
        return {}
    except Exception as exc:  # which batch broke it is not known: find out, one call each
        if len(batches) == 1:
            return dict.fromkeys(batches, exc)
    failed: dict[int, Exception] = {}
    for position, checked in batches.items():
        try:
            apply_parser([checked], day)
        except Exception as exc:
            failed[position] = exc
    return failed


def _settle(group: list[_Waiting], outcomes: list[Checked | Exception]) -> None:
    """Hand each request its outcome (unless it stopped waiting: a client that went away)."""
    for waiting, outcome in zip(group, outcomes, strict=True):
        if waiting.outcome.done():
            continue
        if isinstance(outcome, Exception):
            waiting.outcome.set_exception(outcome)
        else:
            waiting.outcome.set_result(outcome)
