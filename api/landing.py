"""Writing intake files into the landing zone, durably and atomically (DESIGN §2).

Layout, as the ingestion assets read it: `<landing>/<source>/dt=YYYY-MM-DD/<file>`, the day being
the day (Asia/Kolkata) the platform received the data. The layout itself is
`warehouse.landing`, shared with ingestion and the simulator.

Why every file is written this way:

- **Nothing half-written is ever visible.** Ingestion globs a day's folder (`*.ndjson*`, `*.txt`)
  at any moment, possibly while requests are still landing. Each file is first written under a
  temporary name that matches neither pattern (`.<random>.tmp`), flushed and fsynced, then renamed
  to its final name (atomic within a folder) and the folder fsynced. A reader sees the whole file
  or nothing; a crash leaves at most an ignored `.tmp`.
- **Durable before the answer.** The caller answers 2xx only after `write_durably` returns, so an
  acknowledged event or delivery survives a power cut (the rename is made durable by the fsync of
  the folder, and a new `dt=` folder by the fsync of its parent).
- **Every write a new file, uniquely named** (time in nanoseconds + 128 random bits): one per
  request, or per group of concurrent event batches (`api.event_intake`). Writers on any number
  of workers or hosts sharing the landing zone never touch the same file, so no locks are
  needed and no line can interleave with another. The time prefix makes name order (the order
  ingestion reads) follow arrival order, which is the order dedupe keeps.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from warehouse.landing import (
    APP_EVENTS,
    IST,
    WHATSAPP,
    WHATSAPP_EXPORTS,
    day_folder,
    receipt_day,
)

__all__ = ["APP_EVENTS", "IST", "WHATSAPP", "WHATSAPP_EXPORTS", "day_folder", "receipt_day"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def unique_token() -> str:
    """Digits only, unique across processes and hosts, increasing with time: nanoseconds since
    the epoch, then 9 random digits (collisions need the same nanosecond and a 1 in 10^9 draw)."""
    return f"{time.time_ns():019d}{secrets.randbelow(10**9):09d}"


def unique_stem(prefix: str = "api") -> str:
    """A file stem for one request's file: `api-<time ns>-<random hex>`."""
    return f"{prefix}-{time.time_ns():019d}-{uuid.uuid4().hex}"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_folder(folder: Path) -> None:
    """Create `folder` and missing parents, each new entry made durable in its parent."""
    if folder.is_dir():
        return
    missing: list[Path] = []
    at = folder
    while not at.exists():
        missing.append(at)
        at = at.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)  # another request may create it at the same time: fine
        _fsync_folder(path.parent)


def write_durably(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` to `folder/name` atomically and durably (see the module docstring)."""
    if "/" in name or name.startswith(".") or name.endswith(".tmp"):
        raise ValueError(f"not a landing file name: {name!r}")
    ensure_folder(folder)
    temporary = folder / f".{uuid.uuid4().hex}.tmp"
    final = folder / name
    try:
        with temporary.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_folder(folder)
    return final
