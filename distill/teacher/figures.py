"""Figures of teacher training and of the teacher study: loss curves, denoised spectra of a dwarf and a giant,
latent log g against spectra seen."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import study  # noqa: E402
from .train import CA_TRIPLET  # noqa: E402


def loss_curves(history: list):
    epochs = np.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    axes[0].plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
    axes[0].set_ylabel("negative log-likelihood per pixel")
    axes[1].plot(epochs, [h["val_snr_noisy"] for h in history], "--", label="noisy")
    axes[1].plot(epochs, [h["val_snr_denoised"] for h in history], "o-", label="denoised")
    axes[1].plot(epochs, [h["val_snr_denoised_ca_triplet"] for h in history], "o-", label="denoised, Ca II triplet")
    axes[1].set_ylabel("median S/N against the clean flux")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    return fig


def dwarf_and_giant(wave, clean, noisy, denoised, log_g, teff):
    """Noisy / clean / denoised for the highest- and lowest-gravity star given (whole arm and Ca II triplet)."""
    pick = [int(np.argmax(log_g)), int(np.argmin(log_g))]
    zoom = (wave > CA_TRIPLET[0]) & (wave < CA_TRIPLET[1])
    fig, axes = plt.subplots(2, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [2, 1]})
    for row, k in enumerate(pick):
        for col, sel in enumerate((slice(None), zoom)):
            ax = axes[row, col]
            ax.plot(wave[sel], noisy[k][sel], lw=0.4, color="0.6", label="noisy")
            ax.plot(wave[sel], clean[k][sel], lw=0.8, color="k", label="clean")
            ax.plot(wave[sel], denoised[k][sel], lw=0.8, color="C3", label="denoised")
            ax.set_xlabel("wavelength (A)")
        axes[row, 0].set_title(f"{'dwarf' if row == 0 else 'giant'}: log g {log_g[k]:.2f}, T_eff {teff[k]:.0f} K")
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def study_curves(table: pd.DataFrame, raw: dict, ceiling=None, error_only=None, target=None):
    """Latent log g test R^2 against training spectra seen, one curve per teacher setting (column ``cell``), one
    panel per head of ``raw`` (columns ``latent_r2_{head}``); the raw-flux line of the same head (``raw[head]``), the
    error-only reading, the information ceiling and ``target`` (e.g. half the raw-flux Ridge) drawn across. With
    columns ``spectra_to_raw_ridge`` and ``hours_to_raw_ridge`` (``study.reach_table``), the Ridge panel extends each
    curve that has not reached the raw-flux Ridge by a dotted line to where its trend would, with that training
    time written beside it (``study.HORIZON`` times the spectra seen at most)."""
    heads = list(raw)
    fig, axes = plt.subplots(1, len(heads), figsize=(6.5 * len(heads), 4.8), squeeze=False, sharey=True)
    for ax, head in zip(axes[0], heads):
        for name, part in table.groupby("cell", sort=False):
            part = part.sort_values("spectra_seen")
            no_error = part["input_sigma"].iloc[0] == "false"
            line, = ax.plot(part["spectra_seen"], part[f"latent_r2_{head}"], "o--" if no_error else "o-", label=name)
            if head == "ridge" and "spectra_to_raw_ridge" in part:
                _extrapolate(ax, part.iloc[-1], raw["ridge"], line.get_color())
        lines = [(raw[head], "C7", "-", f"raw noisy flux + {head}"), (error_only, "C3", ":", "error only (A1)"),
                 (ceiling, "k", "--", "information ceiling"), (target, "C7", ":", "target: half raw-flux Ridge")]
        for value, colour, style, text in lines:
            if value is not None and np.isfinite(value):
                ax.axhline(value, color=colour, ls=style, lw=1.2, label=f"{text} {value:.2f}")
        seen = table["spectra_seen"]
        linthresh = seen[seen > 0].min() if (seen > 0).any() else 1
        ax.set_xscale("symlog", linthresh=linthresh)  # 0: untrained
        ax.set_xlim(left=-0.5 * linthresh)
        ax.set_xlabel("training spectra seen by the teacher (0: untrained)")
        ax.set_ylabel("latent -> log g, test R^2 (best layer x pooling on val)")
        ax.set_title(f"teacher latent, {head} head")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _extrapolate(ax, last: pd.Series, target: float, colour):
    """Dotted line from a curve's last point to (spectra_to_raw_ridge, target), labelled with the spectra and training
    hours that would take; a note at the last point when the trend does not rise or is too flat to get there."""
    seen, reach, slope = last["spectra_seen"], last["spectra_to_raw_ridge"], last["ridge_r2_per_decade"]
    if seen <= 0 or reach <= seen:
        return
    if not np.isfinite(reach):
        note = ("trend does not rise" if not slope > 0 else
                f"trend {slope:+.3f} R^2 per decade: raw Ridge beyond {study.HORIZON:,}x")
        ax.annotate(note, (seen, last["latent_r2_ridge"]), fontsize=6, color=colour, xytext=(4, -8),
                    textcoords="offset points")
        return
    ax.plot([seen, reach], [last["latent_r2_ridge"], target], ":", color=colour, lw=1)
    ax.annotate(f"raw Ridge at ~{reach:.1e} spectra, ~{last['hours_to_raw_ridge']:.2g} h training", (reach, target),
                fontsize=6, color=colour, xytext=(-4, 4), textcoords="offset points", ha="right")
