"""The Subaru PFS medium-resolution red-arm grid and its line-spread function.

4096 pixels, linear in vacuum wavelength, 7100-8850 A, pixel centres at
``7100 + (i + 0.5) * 1750 / 4096`` A (0.4272 A per pixel). The spectrograph's
resolution R ~ 5000 is modelled as a Gaussian line-spread function of constant
velocity width (25.5 km/s sigma, FWHM ~1.6 A at 8000 A). Spectra are computed on
an oversampled grid and mapped to pixels by one sparse matrix that convolves with
the line spread and integrates over each pixel.
"""
from functools import cache

import numpy as np
from scipy import sparse
from scipy.special import ndtr

N_PIXELS = 4096
WAVE_MIN, WAVE_MAX = 7100.0, 8850.0  # vacuum A
PIXEL_WIDTH = (WAVE_MAX - WAVE_MIN) / N_PIXELS  # A
LSF_SIGMA_KMS = 25.5
C_KMS = 299792.458
AIR_TO_VACUUM = 1.000274  # lambda_vac = lambda_air * 1.000274 in this range


def pixel_wave() -> np.ndarray:
    """Vacuum wavelengths of the pixel centres (A), shape (4096,)."""
    return WAVE_MIN + (np.arange(N_PIXELS) + 0.5) * PIXEL_WIDTH


def air_to_vacuum(wave_air):
    """Air to vacuum wavelength (A), a constant factor good to ~0.05 A over the arm."""
    return np.asarray(wave_air, dtype=float) * AIR_TO_VACUUM


def lsf_sigma(wave) -> np.ndarray:
    """Gaussian line-spread sigma (A) at vacuum wavelength ``wave`` (A)."""
    return np.asarray(wave) * LSF_SIGMA_KMS / C_KMS


@cache
def fine_wave(oversample: int = 5, margin: float = 6.0) -> np.ndarray:
    """Oversampled vacuum grid (A) covering the arm plus ``margin`` A for the line spread."""
    step = PIXEL_WIDTH / oversample
    n_margin = int(np.ceil(margin / step))
    j = np.arange(-n_margin, N_PIXELS * oversample + n_margin)
    return WAVE_MIN + (j + 0.5) * step


@cache
def resampling_matrix(oversample: int = 5, margin: float = 6.0) -> sparse.csr_matrix:
    """Sparse (4096, n_fine) matrix: convolve with the line spread, average over each pixel.

    Row i holds the weights of fine samples in pixel i, each the integral of the
    sample's Gaussian line-spread over the pixel; rows are normalised to 1 so a flat
    spectrum stays flat at the edges.
    """
    fine = fine_wave(oversample, margin)
    edges = WAVE_MIN + np.arange(N_PIXELS + 1) * PIXEL_WIDTH
    sigma = lsf_sigma(fine)
    reach = 5 * sigma.max() + PIXEL_WIDTH
    rows, cols, vals = [], [], []
    for i in range(N_PIXELS):
        lo, hi = np.searchsorted(fine, [edges[i] - reach, edges[i + 1] + reach])
        x, s = fine[lo:hi], sigma[lo:hi]
        w = ndtr((edges[i + 1] - x) / s) - ndtr((edges[i] - x) / s)
        keep = w > 1e-7
        rows.append(np.full(keep.sum(), i))
        cols.append(np.arange(lo, hi)[keep])
        vals.append(w[keep] / w[keep].sum())
    shape = (N_PIXELS, fine.size)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
