"""Independent, reproducible random streams.

Every part of the simulation draws from its own stream, keyed by name (and by day where it
generates day by day), so adding a draw to one part never shifts another, a day can be generated
alone, and the same seed gives byte-identical output.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np


def stream(seed: int, *keys: object) -> np.random.Generator:
    """A generator for (seed, keys...), e.g. `stream(7, "app_events", date(2026, 9, 1))`."""
    digest = hashlib.sha256("/".join(str(k) for k in keys).encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words])))


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` version-4 UUID strings drawn from `rng` (deterministic, unlike uuid.uuid4)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return [str(uuid.UUID(bytes=row.tobytes())) for row in raw]
