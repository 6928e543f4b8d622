"""The gradient-flow plot: mean ||dE_t / ds_{t-k}|| against k on a log scale, one line per model,
with the 10-90% band shaded. matplotlib is an optional extra (``pip install -e '.[diagnose]'``)."""
from __future__ import annotations

from pathlib import Path


def plot_lag_profiles(reports: list[dict], path: str | Path) -> None:
    """Write the PNG; raises ImportError with the install hint when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the plot needs matplotlib: pip install -e '.[diagnose]'") from exc
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for report in reports:
        rows = [row for row in report["lags"] if row.get("count")]
        lags = [row["lag"] for row in rows]
        line = axes.plot(lags, [row["mean"] for row in rows], marker="o", markersize=3, label=report["label"])[0]
        axes.fill_between(lags, [row["p10"] for row in rows], [row["p90"] for row in rows],
                          color=line.get_color(), alpha=0.15, linewidth=0)
    axes.set_yscale("log")
    axes.set_xlabel("k (steps back)")
    axes.set_ylabel("||dE_t / ds_{t-k}||  (mean; 10-90% shaded)")
    axes.set_title("Gradient flow on held-out sentences")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
