"""SeenKeys against a Python set: same answers, block after block, runs merged."""

from __future__ import annotations

import random

import polars as pl

from transforms.seen_keys import SeenKeys


def test_matches_a_set_across_many_blocks() -> None:
    rng = random.Random(7)
    universe = [f"{rng.getrandbits(128):032x}" for _ in range(5_000)]
    seen, oracle = SeenKeys(), set()
    for _ in range(40):
        block = pl.Series("id", [*rng.choices(universe, k=300), None])
        expected = [key is not None and key in oracle for key in block.to_list()]
        assert seen.contains(block).to_list() == expected
        seen.add(block)
        oracle.update(key for key in block.to_list() if key is not None)
    assert seen.count == 40 * 300
    assert len(seen._runs) <= 6  # log2(12000 / 300) + 1: merged, not one run per block
    assert seen.nbytes == 16 * seen.count


def test_empty_and_null_only_blocks() -> None:
    seen = SeenKeys()
    assert seen.contains(pl.Series("id", [], pl.String)).to_list() == []
    seen.add(pl.Series("id", [None], pl.String))
    assert seen.count == 0
    seen.add(pl.Series("id", ["a"]))
    assert seen.contains(pl.Series("id", ["a", "b", None])).to_list() == [True, False, False]
