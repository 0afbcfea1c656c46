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


def residual_distribution(residuals: dict, label="log_g"):
    """Histograms of the error-only residual r per split (train: out-of-fold)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, r in residuals.items():
        ax.hist(r, bins=40, histtype="step", density=True, label=f"{split}: std {np.std(r):.3f}")
    ax.set_xlabel(f"r = {label} - error-only prediction")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    return fig


def residual_r2_bars(table: pd.DataFrame):
    """Test R^2 of the residual r (and of y directly, beside it) for each input."""
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["test_r2_residual"], 0.4, label="input -> r")
    ax.bar(x + 0.2, table["test_r2_direct"], 0.4, label="input -> y (direct)")
    ax.axhline(0.1, color="k", ls="--", lw=1, label="0.1: real extra information")
    ax.set_xticks(x, table["input"] + " / " + table["head"], rotation=20, ha="right")
    ax.set_ylabel("test R^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def variance_chart(parts: dict):
    """Var(y) against Var(y_hat) + Var(r) + 2 Cov for the error-only baseline on test."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.bar(["Var(y)"], [parts["var_y"]], color="0.5")
    bottom = 0.0
    for key, colour in (("var_y_hat", "C0"), ("var_r", "C1"), ("cov_term", "C2")):
        ax.bar(["decomposed"], [parts[key]], bottom=bottom, color=colour, label=key)
        bottom += parts[key]
    ax.set_ylabel("dex^2")
    ax.legend()
    fig.tight_layout()
    return fig


def curves(table: pd.DataFrame, axis: str, title: str, log_x=False):
    """Test R^2 against ``axis`` (noise level, training size) for each feature set in ``table``."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, part in table.groupby("features", sort=False):
        ax.plot(part[axis], part["test_r2"], "o-", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(axis.replace("_", " "))
    ax.set_ylabel("test R^2")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
