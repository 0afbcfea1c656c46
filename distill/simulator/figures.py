"""Figures that show what the simulator makes: gravity in the lines, the error's leak, the S/N."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .model import SpectrumModel  # noqa: E402
from .noise import error_from_flux  # noqa: E402

CA_TRIPLET = (8475.0, 8680.0)  # vacuum A


def _stars(teff, mag):
    return pd.DataFrame({"T_eff": [teff, teff], "log_g": [4.7, 1.5], "M_H": [0.0, 0.0], "a_M": [0.0, 0.0],
                         "C_M": [0.0, 0.0], "mag": [mag, mag]})


def dwarf_and_giant(model: SpectrumModel, n_exposures=20, teff=4500.0, mag=21.5, seed=42):
    """A dwarf (log g 4.7) and a giant (log g 1.5) at the same T_eff: whole arm and the Ca II triplet."""
    stars = _stars(teff, mag)
    flux = model.flux(stars)
    error = error_from_flux(flux, stars["mag"].to_numpy(), n_exposures)
    noisy = flux + error * np.random.default_rng(seed).standard_normal(flux.shape).astype(np.float32)
    fig, axes = plt.subplots(3, 1, figsize=(12, 9))
    zoom = (model.wave > CA_TRIPLET[0]) & (model.wave < CA_TRIPLET[1])
    for k, (name, colour) in enumerate((("dwarf, log g 4.7", "C0"), ("giant, log g 1.5", "C3"))):
        norm = np.median(flux[k])
        axes[0].plot(model.wave, flux[k] / norm + 0.4 * k, lw=0.5, color=colour, label=name)
        axes[1].plot(model.wave[zoom], flux[k][zoom] / norm, lw=1.2, color=colour, label=name)
        axes[2].plot(model.wave[zoom], noisy[k][zoom] / norm, lw=0.6, color=colour, alpha=0.8,
                     label=f"{name}, noise 1.0")
    axes[0].set_title(f"Noiseless spectra at T_eff = {teff:.0f} K, [M/H] = 0, mag {mag} (giant offset by 0.4)")
    axes[1].set_title("Ca II triplet: dwarfs have broader damping wings")
    axes[2].set_title("The same with noise (noise_level 1.0): the signal a model must find")
    for ax in axes:
        ax.set_xlabel("vacuum wavelength (A)")
        ax.set_ylabel("flux / median")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def error_vs_flux(model: SpectrumModel, n_exposures=20, teff=4200.0, mag=21.5):
    """One star's error with the leak on and off, and error against flux: the error carries the lines."""
    star = _stars(teff, mag).iloc[[0]]
    flux = model.flux(star)
    leak = error_from_flux(flux, star["mag"].to_numpy(), n_exposures)[0]
    flat = error_from_flux(flux, star["mag"].to_numpy(), n_exposures, leak=False)[0]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    axes[0].plot(model.wave, flux[0], lw=0.5, color="k", label="clean flux")
    axes[0].plot(model.wave, leak, lw=0.5, color="C1", label="error (leak on)")
    axes[0].plot(model.wave, flat, lw=0.5, color="C2", alpha=0.7, label="error (leak off)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("vacuum wavelength (A)")
    axes[0].set_ylabel("1e-17 erg/s/cm^2/A")
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"T_eff {teff:.0f} K dwarf, mag {mag}: sky lines and tellurics dominate the error")
    quiet = leak < np.percentile(leak, 50)  # pixels free of sky lines
    axes[1].scatter(flux[0][quiet], leak[quiet], s=2, color="C1", label="leak on")
    axes[1].scatter(flux[0][quiet], flat[quiet], s=2, color="C2", label="leak off")
    axes[1].set_xlabel("clean flux")
    axes[1].set_ylabel("error")
    axes[1].set_title("quiet pixels: error grows with flux only with the leak")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def snr_distribution(snr_by_split: dict):
    """Histogram of the per-spectrum median S/N (noise_level 1.0) per split."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for split, snr in snr_by_split.items():
        ax.hist(snr, bins=40, histtype="step", density=True, label=f"{split} (median {np.median(snr):.1f})")
    ax.set_xlabel("median per-pixel S/N at noise_level 1.0")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    return fig
