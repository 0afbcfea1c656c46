"""Figures shared by the stages: predictions against truth, residuals, grid heatmaps, the report's forest plot."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .thresholds import EXTRA_INFORMATION  # noqa: E402


def predicted_vs_true(y_true, y_pred, label="log_g", title="", ceiling=None):
    """Scatter of predicted against true values with the 1:1 line and the residuals beside it.

    ``ceiling``: the information ceiling R^2; its rms error sqrt((1 - R^2) Var(y)) is drawn as a band.
    """
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
    if ceiling is not None:
        rms = float(np.sqrt((1 - ceiling) * y_true.var()))
        axes[1].axhspan(-rms, rms, color="k", alpha=0.08, label=f"ceiling R^2 {ceiling:.2f}: rms {rms:.2f}")
        axes[1].legend(fontsize=8, loc="upper right")
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
    """Test R^2 of the residual r for each input and head; inputs that see sigma hatched."""
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(table))
    ax.bar(x, table["test_r2_residual"], 0.6, label="input -> r",
           hatch=["//" if s else "" for s in table["sees_sigma"]])
    ax.axhline(EXTRA_INFORMATION, color="k", ls="--", lw=1, label=f"{EXTRA_INFORMATION}: real extra information")
    names = table["input"] + np.where(table["sees_sigma"], " (sees sigma)", "") + " / " + table["head"]
    ax.set_xticks(x, names, rotation=20, ha="right")
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


def curves(table: pd.DataFrame, axis: str, title: str, log_x=False, ceiling=None, ylabel="test R^2"):
    """Test R^2 against ``axis`` (noise level, training size) for each feature set in ``table``.

    ``ceiling``: the information ceiling, one R^2 or a Series indexed by ``axis``, drawn dashed. Columns
    ``test_r2_lo`` / ``test_r2_hi``, when present, are drawn as each curve's 95 % band.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, part in table.groupby("features", sort=False):
        (line,) = ax.plot(part[axis], part["test_r2"], "o-", label=name)
        if "test_r2_lo" in part:
            ax.fill_between(part[axis], part["test_r2_lo"], part["test_r2_hi"], color=line.get_color(), alpha=0.15)
    if isinstance(ceiling, pd.Series):
        ax.plot(ceiling.index, ceiling.to_numpy(), "k--", lw=1.2, label="information ceiling (prior-aware)")
    elif ceiling is not None:
        ax.axhline(ceiling, color="k", ls="--", lw=1.2, label=f"information ceiling (prior-aware) {ceiling:.2f}")
    if log_x:
        ax.set_xscale("log")
    if ax.get_ylim()[0] < -1:  # an R^2 far below 0 (a reader fed inputs outside its training range) flattens the rest
        ax.set_ylim(bottom=-1)
        ylabel += " (axis cut at -1)"
    ax.set_xlabel(axis.replace("_", " "))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def crb_map(params: pd.DataFrame, bounds: pd.DataFrame, noise_level: float, label="log_g"):
    """The per-spectrum Cramer-Rao bound of ``label`` across the (T_eff, log g) plane, and its distribution."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    sd = np.sqrt(bounds["marginal"].to_numpy())
    shown = np.clip(sd, None, 10.0)
    im = axes[0].scatter(params["T_eff"], params["log_g"], c=np.log10(shown), s=10, cmap="viridis")
    fig.colorbar(im, ax=axes[0], label=f"log10 sqrt(CRB {label}) (unbiased, marginal; clipped at 10)")
    axes[0].invert_xaxis()
    axes[0].invert_yaxis()
    axes[0].set_xlabel("T_eff (K)")
    axes[0].set_ylabel("log g")
    axes[0].set_title(f"bound on {label} per spectrum, noise level {noise_level:g}")
    edges = np.geomspace(1e-3, 1e2, 60)
    for column in bounds:
        values = np.sqrt(bounds[column].to_numpy())
        axes[1].hist(np.clip(values, edges[0], edges[-1]), bins=edges, histtype="step",
                     label=f"{column}: median {np.median(values):.2f}")
    axes[1].set_xscale("log")
    axes[1].set_xlabel(f"sqrt(bound) on {label}")
    axes[1].set_ylabel("spectra")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def crb_ratio(table: pd.DataFrame, label="log_g"):
    """Mean squared error over mean Cramer-Rao bound in bins of each ``bin_by`` (``template_fit.crb_bins``), one
    panel each; 1 is an efficient estimator, below 1 a biased one that uses the prior or the label box."""
    kinds = list(dict.fromkeys(table["bin_by"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        part = table[table["bin_by"] == kind]
        mid = (part["lo"] + part["hi"]) / 2
        ax.plot(mid, part["ratio"], "o-", label="MSE / mean bound")
        ax.plot(mid, part["median_ratio"] / 0.455, "s--", label="median ratio / 0.455 (chi2_1 median)")
        ax.axhline(1, color="k", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel(kind.replace("_", " ") + (" (median per pixel)" if kind == "snr" else ""))
        ax.set_ylabel(f"squared error / Cramer-Rao bound, {label}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


SEES_SIGMA_MARK = " (sees sigma)"


def paired_differences(table: pd.DataFrame, xlabel="student - reader: test R^2 of log g (paired, 95 % interval)",
                       title=""):
    """A forest plot: one row per reader of ``table`` (columns reader, value, lo, hi, sees_sigma; the first on top),
    its paired difference as a marker with the 95 % interval as a horizontal bar, and a line at zero. Green: the
    interval lies above 0, red: below, grey: it includes 0. Readers that see sigma are hollow and labelled so."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.itertuples()):
        colour = "C2" if row.lo > 0 else "C3" if row.hi < 0 else "0.45"
        ax.errorbar(row.value, yi, xerr=[[row.value - row.lo], [row.hi - row.value]], fmt="o", ms=7, capsize=3,
                    color=colour, mec=colour, mfc="white" if row.sees_sigma else colour, mew=1.5)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(y, [r.reader + (SEES_SIGMA_MARK if r.sees_sigma and SEES_SIGMA_MARK not in r.reader else "")
                      for r in table.itertuples()])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title or "the student against every reader (hollow: sees sigma; the student does not)", fontsize=10)
    fig.tight_layout()
    return fig


def shuffled_labels_null(checks: dict, label="log_g"):
    """4.3, one panel per feature set and head (``checks``: name -> {"shuffled": the test correlation with the test
    labels of each head trained on shuffled labels, "observed": that of the head trained on the true labels,
    "p_value"}): the shuffled heads' correlations (the null values; about 0 on an honest pipeline) as a histogram,
    their mean (what the guard's t-test sets against 0) dashed, and the observed value as a solid line."""
    fig, axes = plt.subplots(1, len(checks), figsize=(6 * len(checks), 4.2), squeeze=False)
    for ax, (name, c) in zip(axes[0], checks.items()):
        null = np.asarray(c["shuffled"], dtype=float)
        ax.hist(null, bins=max(5, min(20, len(null) // 2)), color="0.65", label=f"{len(null)} label shuffles")
        ax.axvline(0, color="k", lw=1, label="0: nothing leaks")
        p = f", t-test p = {c['p_value']:.3g}" if c.get("p_value") is not None else ""
        ax.axvline(null.mean(), color="C1", ls="--", lw=1.5, label=f"shuffled mean {null.mean():+.3f}{p}")
        ax.axvline(c["observed"], color="C3", lw=2, label=f"observed (true labels) {c['observed']:+.3f}")
        ax.set_xlabel(f"correlation of test predictions with the test {label}")
        ax.set_ylabel("shuffles")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
