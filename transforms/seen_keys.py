"""The keys already kept from earlier blocks of one input, in 16 bytes a key.

Why not a set of strings: a Python set holds a string object and a slot per key, about 120
bytes for a 36-character messageId, so the memory of a day's dedupe grew with the day (an
enterprise day of a million events held over 100 MB of ids). Here a key is two independent
64-bit hashes (polars' hash with two seeds): 16 bytes, and two different keys share both with a
probability of about 2^-128 per pair, some 10^-27 for a day of a million events, far below the
rate of undetected memory errors, so a hit is treated as the same key.

Why sorted runs: the hashes of each block are sorted into a run; a run at least as long as the
one before it is merged with it (the binary-counter scheme of log-structured merges), so there
are at most log2(keys / block) runs, adding a block costs O(block log keys) amortised, and
checking a block is a binary search per run.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_SEEDS = (0x5EED, 0xC0FFEE)  # any two different seeds give independent hashes


class SeenKeys:
    """A set of string keys that only grows, checked and extended a block at a time."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (first, second) sorted by both
        self.count = 0

    @property
    def nbytes(self) -> int:
        return sum(first.nbytes + second.nbytes for first, second in self._runs)

    def contains(self, keys: pl.Series) -> pl.Series:
        """Whether each key was added before (Boolean, null keys never were)."""
        found = np.zeros(len(keys), dtype=bool)
        if self._runs and len(keys):
            first, second = _hashes(keys)
            for run_first, run_second in self._runs:
                found |= _in_run(first, second, run_first, run_second)
        return pl.Series(keys.name, found) & keys.is_not_null()

    def add(self, keys: pl.Series) -> None:
        """Add the block's (non-null) keys."""
        keys = keys.drop_nulls()
        if not len(keys):
            return
        self._runs.append(_sorted(*_hashes(keys)))
        self.count += len(keys)
        while len(self._runs) > 1 and len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(
                _sorted(np.concatenate([older[0], newer[0]]), np.concatenate([older[1], newer[1]]))
            )


def _hashes(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    return tuple(keys.hash(seed).to_numpy() for seed in _SEEDS)


def _sorted(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((second, first))
    return first[order], second[order]


def _in_run(
    first: np.ndarray, second: np.ndarray, run_first: np.ndarray, run_second: np.ndarray
) -> np.ndarray:
    """Whether each (first, second) pair is in the run: the first hash's range of equal values
    found by binary search, then the second hash searched inside that range."""
    low = np.searchsorted(run_first, first, side="left")
    high = np.searchsorted(run_first, first, side="right")
    found = np.zeros(len(first), dtype=bool)
    for index in np.flatnonzero(high > low):  # only keys whose first hash is in the run
        start, end = low[index], high[index]
        at = start + np.searchsorted(run_second[start:end], second[index])
        found[index] = at < end and run_second[at] == second[index]
    return found
