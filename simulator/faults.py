"""The exact count of every fault the simulator injects, per source, day and kind.

Generators call `FaultLog.add` for each fault they plant; the run writes the totals to
`<truth>/faults.json`, so ingestion tests can check that quarantine and dedupe counts match.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path


class FaultLog:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, source: str, day: date, fault: str, n: int = 1) -> None:
        """Record `n` faults of kind `fault` in `source` (e.g. "app_events") for receipt `day`."""
        if n:
            self._counts[(source, day.isoformat(), fault)] += n

    def count(self, source: str, fault: str, day: date | None = None) -> int:
        return sum(
            n
            for (s, d, f), n in self._counts.items()
            if s == source and f == fault and (day is None or d == day.isoformat())
        )

    def as_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        """{source: {day: {fault: n}}}, sorted, for the truth file."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (source, day, fault), n in sorted(self._counts.items()):
            out.setdefault(source, {}).setdefault(day, {})[fault] = n
        return out

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")
