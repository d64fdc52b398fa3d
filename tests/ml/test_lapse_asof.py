"""Point-in-time look-ups (`ml.lapse.asof.Running`) on a handful of facts."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml.lapse.asof import KNOWN_ON, Running

FACTS = pl.DataFrame(
    {
        "key": [1, 1, 1, 2],
        KNOWN_ON: [date(2025, 1, 2), date(2025, 1, 2), date(2025, 1, 10), date(2025, 1, 5)],
        "n": [1.0, 2.0, 4.0, 8.0],
        "day": [date(2024, 12, 31), date(2025, 1, 1), date(2025, 1, 9), date(2025, 1, 4)],
    }
)


def _days(*days: date) -> pl.Series:
    return pl.Series(list(days), dtype=pl.Date)


def test_sums_count_facts_known_on_or_before_the_day() -> None:
    running = Running(FACTS, "key", ["n"])
    keys = pl.Series([1, 1, 1, 2, 3])
    days = _days(date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 10), date(2025, 1, 4),
                 date(2025, 2, 1))  # fmt: skip
    assert running.at(keys, days)["n"].to_list() == [0.0, 3.0, 7.0, 0.0, 0.0]


def test_trailing_window() -> None:
    running = Running(FACTS, "key", ["n"])
    # Known in (day - 5, day]: on 10 Jan that is 6..10 Jan, only the fact known on 10 Jan.
    out = running.trailing(pl.Series([1, 1]), _days(date(2025, 1, 10), date(2025, 1, 6)), 5)
    assert out["n"].to_list() == [4.0, 3.0]


def test_maxima_and_minima_keep_their_type() -> None:
    latest = Running(FACTS, "key", ["day"], "max").at(
        pl.Series([1, 1, 2]), _days(date(2025, 1, 3), date(2025, 1, 10), date(2025, 1, 4))
    )
    assert latest["day"].dtype == pl.Date
    assert latest["day"].to_list() == [date(2025, 1, 1), date(2025, 1, 9), None]
    first = Running(FACTS, None, ["day"], "min").at(None, _days(date(2025, 1, 1), date(2025, 1, 6)))
    assert first["day"].to_list() == [None, date(2024, 12, 31)]


def test_no_facts() -> None:
    empty = Running(FACTS.head(0), "key", ["n"])
    assert empty.at(pl.Series([1]), _days(date(2025, 1, 1)))["n"].to_list() == [0.0]
    with pytest.raises(ValueError, match="running sums"):
        Running(FACTS, "key", ["day"], "max").trailing(pl.Series([1]), _days(date(2025, 1, 1)), 3)
