"""How far a score distribution moved from the previous run's: the population stability index.

PSI = sum over bins of (a - e) * ln(a / e), with `e` and `a` the shares of the previous and the
current scores in each bin; bins are the previous scores' deciles, so each holds a tenth of them.
The usual reading (credit-risk practice): under 0.1 stable, 0.1 to 0.25 a shift worth a look,
over 0.25 a different population or a broken input. Empty bins get a small floor so the logarithm
stays finite.
"""

from __future__ import annotations

import numpy as np

PSI_ALERT = 0.25
_FLOOR = 1e-4


def population_stability_index(previous: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of `current` against `previous` over the previous scores' quantile bins."""
    previous = np.asarray(previous, dtype=float)
    current = np.asarray(current, dtype=float)
    if previous.size == 0 or current.size == 0:
        return float("nan")
    inner_edges = np.unique(np.quantile(previous, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = (
        np.bincount(
            np.searchsorted(inner_edges, previous, side="right"), minlength=inner_edges.size + 1
        )
        / previous.size
    )
    actual = (
        np.bincount(
            np.searchsorted(inner_edges, current, side="right"), minlength=inner_edges.size + 1
        )
        / current.size
    )
    expected = np.maximum(expected, _FLOOR)
    actual = np.maximum(actual, _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
