"""Reading landing files ahead of the parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestration.defs.ingest.landing import read_ahead


def test_read_ahead_yields_every_item_in_order() -> None:
    assert list(read_ahead(iter(range(100)))) == list(range(100))
    assert list(read_ahead(iter([]))) == []


def test_an_error_while_reading_reaches_the_consumer_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    produced = []

    def counting() -> Iterator[int]:
        for i in range(1_000):
            produced.append(i)
            yield i

    for item in read_ahead(counting()):
        if item == 3:
            break
    assert len(produced) < 10  # one ahead, not the whole input
