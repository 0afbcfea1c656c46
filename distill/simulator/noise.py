"""Per-pixel error of a PFS red-arm spectrum from an exposure-time noise model.

After the PFS exposure-time calculator at AB = 21.5, seeing 1.0", no moon, 900 s
exposures (docs/simulator.md): object counts 29 -> 22 e- per pixel per exposure
over the arm (scaled by 10^(-0.4 (mag - 21.5)) and by the flux shape), telluric
absorption on the object, sky continuum 70-95 e- plus OH emission lines,
detector + stray light 90 e^2 (read noise 4 e- rms included), and a
sky-subtraction floor. For N exposures

    variance = N (C_obj + sky + 90) + (0.01 N max3(sky))^2
    sigma    = sqrt(variance) / (N * conversion)          [flux units]

The error is computed from the clean flux, so it leaks the spectrum, as in the
real data. ``leak=False`` computes the object term from a flat f_nu spectrum of
the same magnitude instead, removing every label dependence.
"""
from functools import cache

import numpy as np
from scipy.special import ndtr

from .grid import PIXEL_WIDTH, WAVE_MAX, WAVE_MIN, lsf_sigma, pixel_wave

FLUX_UNIT = 1e-17  # erg s^-1 cm^-2 A^-1
DETECTOR_VARIANCE = 90.0  # e^2 per pixel per exposure
SKY_FLOOR = 0.01
OH_SEED = 8311
OH_STRONGEST = ((8401.6, 147), (8432.8, 143), (8829.7, 140), (8346.9, 90), (8467.8, 61), (8781.0, 56),
                (8839.1, 56), (8770.3, 51), (7916.3, 47), (8763.9, 47), (7967.1, 45))
"""Strongest OH lines: (vacuum A, peak / sky continuum)."""
TELLURIC_BANDS = ((7590.0, 7700.0, 0.24), (8100.0, 8350.0, 0.58), (7150.0, 7350.0, 0.79))
"""(start, end, minimum transmission): O2 A band and two H2O bands."""


def ab_flux(mag, wave):
    """f_lambda of a flat-f_nu source of AB magnitude ``mag`` at ``wave`` (A), in 1e-17 erg/s/cm^2/A."""
    f_nu = 10 ** (-0.4 * (np.asarray(mag, dtype=float) + 48.6))
    return f_nu * 2.99792458e18 / np.asarray(wave) ** 2 / FLUX_UNIT


def _ripple(wave, seed, periods=(1.1, 1.45, 1.9)):
    """A fixed pattern in [-1, 1] with 1-2 A periods (rotational / line structure)."""
    rng = np.random.default_rng(seed)
    r = sum(np.sin(2 * np.pi * wave / p + rng.uniform(0, 2 * np.pi)) for p in periods)
    return r / np.abs(r).max()


@cache
def telluric_transmission() -> np.ndarray:
    """Atmospheric transmission at each pixel (4096,), 1 outside the bands."""
    wave = pixel_wave()
    t = np.ones_like(wave)
    for k, (lo, hi, t_min) in enumerate(TELLURIC_BANDS):
        inside = (wave >= lo) & (wave <= hi)
        x = (wave[inside] - lo) / (hi - lo)
        envelope = np.sin(np.pi * x) ** 0.5
        structure = 0.75 + 0.25 * _ripple(wave[inside], OH_SEED + k)
        t[inside] *= 1 - (1 - t_min) * envelope * structure
    return t


def _oh_line_list():
    """The strongest OH lines plus a fixed, seeded set of weaker ones (vacuum A, peak/continuum)."""
    rng = np.random.default_rng(OH_SEED)
    ranges = ((7247.0, 8028.0, 80), (8284.0, 8541.0, 34), (8541.0, 8850.0, 10), (7100.0, 7247.0, 4))
    waves, peaks = [w for w, _ in OH_STRONGEST], [a for _, a in OH_STRONGEST]
    for lo, hi, n in ranges:
        waves += list(rng.uniform(lo, hi, n))
        peaks += list(10 ** rng.uniform(np.log10(1.5), np.log10(40.0), n))
    return np.array(waves), np.array(peaks)


@cache
def sky_counts() -> np.ndarray:
    """Sky counts per pixel per exposure (e-), continuum 70 -> 95 e- plus OH emission."""
    wave = pixel_wave()
    continuum = 70.0 + 25.0 * (wave - WAVE_MIN) / (WAVE_MAX - WAVE_MIN)
    continuum = continuum * telluric_transmission() ** 0.6  # ~35 e- inside the A band
    edges = WAVE_MIN + np.arange(wave.size + 1) * PIXEL_WIDTH
    oh = np.zeros_like(wave)
    for w0, peak in zip(*_oh_line_list()):
        s = lsf_sigma(w0)
        profile = ndtr((edges[1:] - w0) / s) - ndtr((edges[:-1] - w0) / s)
        oh += peak * profile / (ndtr(0.5 * PIXEL_WIDTH / s) - ndtr(-0.5 * PIXEL_WIDTH / s))
    return continuum * (1.0 + oh)


@cache
def counts_per_flux() -> np.ndarray:
    """Detected object electrons per exposure per unit flux (e- per 1e-17 erg/s/cm^2/A), (4096,)."""
    wave = pixel_wave()
    ab215 = 29.0 + (22.0 - 29.0) * (wave - WAVE_MIN) / (WAVE_MAX - WAVE_MIN)
    return ab215 * telluric_transmission() / ab_flux(21.5, wave)


def error_from_flux(flux, mag, n_exposures, leak=True) -> np.ndarray:
    """Per-pixel 1-sigma error (flux units) of spectra ``flux`` (n, 4096) at AB magnitude ``mag`` (n,).

    ``leak=True``: the object term comes from the clean flux itself (as in the real
    noise model). ``leak=False``: from a flat f_nu spectrum of the same magnitude.
    """
    flux = np.asarray(flux, dtype=np.float64)
    k = counts_per_flux()
    if leak:
        c_obj = k * np.clip(flux, 0.0, None)
    else:
        c_obj = k * ab_flux(np.asarray(mag, dtype=float)[:, None], pixel_wave())
    sky = sky_counts()
    sky_max3 = np.maximum.reduce([sky, np.roll(sky, 1), np.roll(sky, -1)])
    variance = n_exposures * (c_obj + sky + DETECTOR_VARIANCE) + (SKY_FLOOR * n_exposures * sky_max3) ** 2
    return (np.sqrt(variance) / (n_exposures * k)).astype(np.float32)
