"""Reading a source's landing files for one receipt day."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import date
from pathlib import Path


def day_folder(root: Path, source: str, day: date) -> Path:
    """`<landing>/<source>/dt=YYYY-MM-DD`: the layout the API and the simulator write."""
    return root / source / f"dt={day.isoformat()}"


def day_files(root: Path, source: str, day: date, pattern: str) -> list[Path]:
    """The day's files of a source, in name order (so a reload reads them the same way)."""
    folder = day_folder(root, source, day)
    return sorted(folder.glob(pattern)) if folder.exists() else []


BLOCK_BYTES = 8 << 20


def read_blocks(paths: list[Path], block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The files' content in blocks (gunzipped), a newline between files that lack one, so a
    day of any size streams through in bounded memory."""
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        last = b"\n"
        with opener(path, "rb") as handle:
            while block := handle.read(block_bytes):
                yield block
                last = block[-1:]
        if last != b"\n":
            yield b"\n"


def read_bytes(path: Path) -> bytes:
    """A file's content, gunzipped when its name ends in .gz."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()
