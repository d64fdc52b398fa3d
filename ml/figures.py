"""ROC and calibration curves of a lapse model's holdout, as PNG bytes for the asset's metadata.

Rendered with matplotlib's Agg backend (no display needed); returns bytes, writes nothing.
"""

from __future__ import annotations

import io

import numpy as np


def roc_and_calibration_png(
    y_true: np.ndarray,
    curves: dict[str, np.ndarray],
    bins: int = 10,
    title: str = "Lapse model, holdout",
) -> bytes:
    """Two panels: ROC curves and a reliability diagram (mean predicted probability against the
    observed rate in `bins` quantile bins) of each named probability array in `curves`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true, dtype=bool)
    figure, (roc_axes, calibration_axes) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=100)
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    top = 0.0
    for name, probability in curves.items():
        probability = np.asarray(probability, dtype=float)
        false_positive, true_positive, _ = roc_curve(y_true, probability)
        auc = roc_auc_score(y_true, probability)
        roc_axes.plot(false_positive, true_positive, label=f"{name} (AUC {auc:.3f})")
        edges = np.unique(np.quantile(probability, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, len(edges) - 2)
        predicted = np.array([probability[which == b].mean() for b in np.unique(which)])
        observed = np.array([y_true[which == b].mean() for b in np.unique(which)])
        calibration_axes.plot(predicted, observed, marker="o", label=name)
        top = max(top, predicted.max(initial=0.0), observed.max(initial=0.0))
    roc_axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC")
    roc_axes.legend(loc="lower right", fontsize=8)
    top = min(1.0, top * 1.1 or 1.0)
    calibration_axes.plot([0, top], [0, top], linestyle=":", color="grey", linewidth=1)
    calibration_axes.set(
        xlabel="Mean predicted probability",
        ylabel="Observed unpaid rate",
        title=f"Calibration ({bins} quantile bins)",
        xlim=(0, top),
        ylim=(0, top),
    )
    calibration_axes.legend(loc="upper left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
