"""Figures shared by the stages: predictions against truth, residuals, grid heatmaps."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def predicted_vs_true(y_true, y_pred, label="log_g", title="", ceiling=None):
    """Scatter of predicted against true values with the 1:1 line and the residuals beside it."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    lo, hi = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    axes[0].scatter(y_true, y_pred, s=4, alpha=0.5)
    axes[0].plot([lo, hi], [lo, hi], "k--", lw=1)
    axes[0].set_xlabel(f"true {label}")
    axes[0].set_ylabel(f"predicted {label}")
    axes[0].set_title(title)
    axes[1].scatter(y_true, y_pred - y_true, s=4, alpha=0.5)
    axes[1].axhline(0, color="k", lw=1)
    axes[1].set_xlabel(f"true {label}")
    axes[1].set_ylabel("predicted - true")
    axes[1].set_title("residuals")
    fig.tight_layout()
    return fig


def grid_heatmap(table: pd.DataFrame, rows: str, cols: str, value: str, title: str):
    """Heatmap of ``value`` over a rows x cols grid (e.g. layer x pooling -> test R^2)."""
    pivot = table.pivot_table(index=rows, columns=cols, values=value, aggfunc="max")
    fig, ax = plt.subplots(figsize=(1.6 * pivot.shape[1] + 3, 0.6 * pivot.shape[0] + 2))
    im = ax.imshow(pivot.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), pivot.columns, rotation=30, ha="right")
    ax.set_yticks(range(pivot.shape[0]), pivot.index)
    for (i, j), v in np.ndenumerate(pivot.to_numpy(dtype=float)):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < np.nanmax(pivot.values) * 0.7 else "k")
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(title)
    fig.tight_layout()
    return fig
