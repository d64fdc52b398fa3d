"""Reading a source's landing files for one receipt day."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from queue import Queue
from typing import TypeVar

from warehouse.landing import day_folder


def day_files(root: Path, source: str, day: date, pattern: str) -> list[Path]:
    """The day's files of a source, in name order (so a reload reads them the same way)."""
    folder = day_folder(root, source, day)
    return sorted(folder.glob(pattern)) if folder.exists() else []


BLOCK_BYTES = 8 << 20
T = TypeVar("T")
_DONE = object()


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


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """`items`, produced one ahead in a worker thread: while the caller parses a block, the next
    one is read and gunzipped (zlib lets go of the GIL), so decompression overlaps the work it
    feeds. At most two items are held at a time; an error in the worker is raised here."""
    queue: Queue = Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put((item, None))
        except BaseException as error:  # handed to the consumer
            queue.put((_DONE, error))
            return
        queue.put((_DONE, None))

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting to put, then let it end
            while not queue.empty():
                queue.get_nowait()
            worker.join(timeout=0.01)
