"""Point-in-time look-ups: what a set of dated facts added up to on each as-of day.

Every lapse feature that summarises history (late payments, sessions, an agent's lapses, the
last payment day) is a sum, maximum or minimum of facts, each with the first day it could have
been known (`known_on`: the day after the payment, the session, the grace end...). Instead of
filtering the whole history once per as-of day, `Running` accumulates the facts per key in
`known_on` order once (running sum, max or min); each (key, day) question is then a binary
search in that sorted history. The cost is one sort of the history plus a search per question,
whatever the number of as-of days, which keeps training over years of snapshots fast; a
trailing window is the difference of two look-ups.

A fact counts on day `d` when `known_on <= d`: a payment made on day `p` is known from `p + 1`,
so a feature for as-of `d` never sees anything that happened on or after `d`.

Keys are integer codes (callers encode their ids once, see `ml.lapse.features`), so the
history is searched as one sorted array of `key x 2^21 + day`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

KNOWN_ON = "known_on"
Accumulate = Literal["sum", "max", "min"]
_DAY_SPAN = 1 << 21  # days are shifted by 2^20, so any date from 840 to 4840 fits
_DAY_SHIFT = 1 << 20


def _days(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Date).cast(pl.Int64).to_numpy() + _DAY_SHIFT


def _keys(series: pl.Series | None, rows: int) -> np.ndarray:
    if series is None:
        return np.zeros(rows, dtype=np.int64)
    return series.cast(pl.Int64).to_numpy()


class Running:
    """Facts accumulated per key in the order they became known, for as-of look-ups.

    `facts` has `key` (an integer code; `None` for one running total over all facts),
    `KNOWN_ON` (a date) and the `values` columns. `how` is "sum" (counts and totals) or "max"
    / "min" (e.g. the latest payment day, dates allowed).
    """

    def __init__(
        self, facts: pl.DataFrame, key: str | None, values: Sequence[str], how: Accumulate = "sum"
    ) -> None:
        self.values = tuple(values)
        self.how = how
        self._dtypes = {v: facts.schema[v] for v in self.values}
        facts = facts.filter(pl.col(KNOWN_ON).is_not_null())
        keys = _keys(facts[key] if key else None, facts.height)
        composite = keys * _DAY_SPAN + _days(facts[KNOWN_ON])
        order = np.argsort(composite, kind="stable")
        self._sorted = composite[order]
        self._keys = keys[order]
        # Where each row's key starts in the sorted history: running values restart there.
        block_start = np.searchsorted(self._keys, self._keys, side="left")
        self._running: dict[str, np.ndarray] = {}
        for v in self.values:
            column = facts[v].to_physical().cast(pl.Float64)
            if how == "sum":
                total = np.cumsum(column.fill_null(0.0).to_numpy()[order])
                before = np.concatenate([[0.0], total])[block_start]
                self._running[v] = total - before
            else:
                frame = pl.DataFrame({"key": self._keys, "value": column.gather(order)})
                value = pl.col("value")
                running = (value.cum_max() if how == "max" else value.cum_min()).forward_fill()
                self._running[v] = frame.select(running.over("key"))["value"].to_numpy()

    def at(self, keys: pl.Series | None, days: pl.Series, lag_days: int = 0) -> pl.DataFrame:
        """The running values known on each `days[i]` (less `lag_days`) for `keys[i]`.

        One row per question, in order, one column per value: sums are 0 where nothing was
        known yet, maxima and minima null (and of the facts' own type, e.g. dates).
        """
        query_keys = _keys(keys, len(days))
        query = query_keys * _DAY_SPAN + _days(days) - lag_days
        index = np.searchsorted(self._sorted, query, side="right") - 1
        found = index >= 0
        found[found] = self._keys[index[found]] == query_keys[found]
        safe = np.where(found, index, 0)
        columns = {}
        for v in self.values:
            picked = self._running[v][safe] if len(self._sorted) else np.zeros(len(days))
            if self.how == "sum":
                columns[v] = pl.Series(v, np.where(found, picked, 0.0))
            else:
                column = pl.Series(v, np.where(found, picked, np.nan)).fill_nan(None)
                dtype = self._dtypes[v]
                columns[v] = column.cast(pl.Int64).cast(dtype) if dtype.is_temporal() else column
        return pl.DataFrame(columns, schema={v: columns[v].dtype for v in self.values})

    def trailing(self, keys: pl.Series | None, days: pl.Series, window_days: int) -> pl.DataFrame:
        """Sums over the facts known in the `window_days` before each day: a fact known on day
        `k` counts for day `d` when `d - window_days < k <= d` (for a fact known the day after
        it happened: it happened in `[d - window_days, d)`)."""
        if self.how != "sum":
            raise ValueError("trailing windows are differences of running sums")
        now = self.at(keys, days)
        then = self.at(keys, days, window_days)
        return now.select(pl.col(v) - then[v] for v in self.values)
