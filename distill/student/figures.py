"""Figures of distillation: training curves and the Stage 3.1 per-bin comparison."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..thresholds import COSINE_PASS  # noqa: E402


def training_curves(history: list):
    """Loss per epoch, and (when distilling) the validation cosine similarity to z* against the Stage 2.1 bar."""
    epochs = np.arange(1, len(history) + 1)
    cosine = [h.get("epoch_val_latent_cosine") for h in history]
    fig, axes = plt.subplots(1, 2 if cosine[0] is not None else 1, figsize=(11 if cosine[0] is not None else 6, 4),
                             squeeze=False)
    axes[0, 0].plot(epochs, [h["train_loss"] for h in history], "o-", label="train (fresh noise)")
    axes[0, 0].plot(epochs, [h["val_loss"] for h in history], "o-", label="validation (fixed noise)")
    axes[0, 0].set_ylabel("loss (standardised units)")
    if cosine[0] is not None:
        axes[0, 1].plot(epochs, cosine, "o-")
        axes[0, 1].axhline(COSINE_PASS, color="k", ls="--", lw=1, label=f"{COSINE_PASS}: Stage 2.1 pass")
        axes[0, 1].set_ylabel("validation cosine(z_s, z*)")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig


def per_bin_comparison(bins: pd.DataFrame, label: str, head: str):
    """Test MAE per log g and T_eff bin for the student and each baseline with the same head."""
    kinds = list(dict.fromkeys(bins["bin_by"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    for ax, by in zip(axes[0], kinds):
        for name, part in bins[bins["bin_by"] == by].groupby("features", sort=False):
            ax.plot((part["lo"] + part["hi"]) / 2, part["mae"], "o-", label=name)
        ax.set_xlabel(f"{by} bin centre")
        ax.set_ylabel(f"test MAE of {label}")
        ax.set_title(f"{head} head")
        ax.legend()
    fig.tight_layout()
    return fig
