"""`make bench`: run every benchmark and print its ratios."""

from __future__ import annotations

import argparse

from bench import partition_swap


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000, help="rows per partition load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method")
    args = parser.parse_args()
    partition_swap.run(rows=args.rows, repeat=args.repeat)


if __name__ == "__main__":
    main()
