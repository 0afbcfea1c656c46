"""The noiseless spectrum model F(labels): a deterministic function of
(T_eff, log_g, M_H, a_M, C_M, mag), so spectra can be regenerated from their
parameters and differentiated (e.g. for a Fisher-information ceiling).

Physics (docs/simulator.md): blackbody continuum scaled to the AB magnitude;
strong lines with Voigt profiles whose EW follows empirical trends and whose
damping width follows a pressure law; a seeded forest of weak metal lines; TiO
and CN bands; residual flux ``1 - D (1 - exp(-tau))`` for lines (D = 0.9, or
falling with gravity for the strong lines) and ``exp(-tau)`` for bands, all
multiplied; computed on an oversampled vacuum grid, convolved with the line
spread and binned to the 4096 PFS pixels. Flux unit: 1e-17 erg/s/cm^2/A.
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.special import voigt_profile

from . import lines
from .grid import N_PIXELS, air_to_vacuum, fine_wave, pixel_wave, resampling_matrix
from .noise import _ripple, ab_flux

LABELS = ("T_eff", "log_g", "M_H", "a_M", "C_M")
FOREST_DEPTH = 0.9  # maximum depth of a forest line
GAMMA_GRID = np.geomspace(1e-3, 30.0, 72)  # Lorentzian half widths tabulated (A)
STRENGTH_GRID = np.geomspace(1e-6, 1e5, 120)  # line strengths S tabulated (A)


@dataclass
class _StrongLine:
    """One strong line on the fine grid: its slice, profiles V(x; gamma_k) and EW(S, gamma_k) table."""

    group: lines.LineGroup
    weight: float
    lo: int
    hi: int
    profiles: np.ndarray  # (n_gamma, hi - lo), area-normalised (1/A)
    ew_table: np.ndarray  # (n_gamma, n_strength) EW (A) at unit depth, increasing along strength


PHYSICS = ("forest_gravity",)
"""Switches of the physics stored beside the labels of every simulated spectrum (see ``lines.forest_scale``)."""


def inputs(params) -> dict:
    """The model's inputs as float arrays: the five labels, ``mag`` and the physics switches present in ``params``
    (older datasets have none: the defaults apply)."""
    keys = LABELS + ("mag",) + tuple(k for k in PHYSICS if k in params)
    return {k: np.atleast_1d(np.asarray(params[k], dtype=float)) for k in keys}


class SpectrumModel:
    """Noiseless PFS red-arm spectra as a function of the labels.

    Parameters
    ----------
    oversample : fine samples per pixel (5 resolves the 0.07 A Doppler cores well
        enough for EWs: the sampled Gaussian's area is exact to <1e-4).
    """

    def __init__(self, oversample: int = 5):
        self.oversample = oversample
        self.fine = fine_wave(oversample)
        self.step = self.fine[1] - self.fine[0]
        self.wave = pixel_wave()

    # ----- fixed ingredients, built once ---------------------------------------------------
    @cached_property
    def resample(self) -> sparse.csr_matrix:
        return resampling_matrix(self.oversample).astype(np.float32)

    @cached_property
    def strong_lines(self) -> list:
        out = []
        for group in lines.LINE_GROUPS:
            for wave_air, weight in zip(group.wave_air, group.weights):
                centre = float(air_to_vacuum(wave_air))
                lo, hi = np.searchsorted(self.fine, [centre - group.window, centre + group.window])
                x = self.fine[lo:hi] - centre
                profiles = voigt_profile(x[None, :], group.doppler, GAMMA_GRID[:, None])
                absorbed = -np.expm1(-(STRENGTH_GRID[None, :, None] * profiles[:, None, :]).astype(np.float32))
                ew_table = absorbed.sum(-1) * self.step
                out.append(_StrongLine(group, weight, lo, hi, profiles, ew_table))
        return out

    @cached_property
    def forest(self) -> lines.Forest:
        return lines.make_forest()

    @cached_property
    def forest_profiles(self) -> sparse.csr_matrix:
        """(n_lines, n_fine) area-normalised Gaussian Doppler profiles of the forest lines."""
        doppler = 0.07
        centres = air_to_vacuum(self.forest.wave_air)
        reach = int(np.ceil(5 * doppler / self.step))
        first = np.searchsorted(self.fine, centres) - reach
        cols = first[:, None] + np.arange(2 * reach + 1)[None, :]
        valid = (cols >= 0) & (cols < self.fine.size)
        cols = np.clip(cols, 0, self.fine.size - 1)
        vals = np.exp(-0.5 * ((self.fine[cols] - centres[:, None]) / doppler) ** 2) / (doppler * np.sqrt(2 * np.pi))
        rows = np.broadcast_to(np.arange(centres.size)[:, None], cols.shape)
        return sparse.csr_matrix((vals[valid], (rows[valid], cols[valid])), shape=(centres.size, self.fine.size))

    @cached_property
    def band_shapes(self) -> np.ndarray:
        """(n_tio + n_cn + 1, n_fine) optical-depth shapes of the band heads and the CN forest."""
        shapes = []
        for k, (head, depth, length) in enumerate(lines.TIO_HEADS + lines.CN_HEADS):
            head = float(air_to_vacuum(head))
            dx = self.fine - head
            ripple = 1 + 0.5 * _ripple(self.fine, 100 + k)
            shapes.append(np.where(dx >= 0, depth * np.exp(-np.clip(dx, 0, None) / length) * ripple, 0.0))
        lo, hi, mean_tau = lines.CN_FOREST
        spikes = np.clip(_ripple(self.fine, 200, periods=(0.9, 1.3, 1.7, 2.3)), 0, None) ** 2
        inside = (self.fine >= air_to_vacuum(lo)) & (self.fine <= air_to_vacuum(hi))
        shapes.append(np.where(inside, mean_tau * spikes / spikes[inside].mean(), 0.0))
        return np.array(shapes)

    # ----- the model -------------------------------------------------------------------------
    def continuum(self, teff, mag) -> np.ndarray:
        """Blackbody f_lambda (n, n_fine) scaled so the median f_nu over the arm is AB ``mag``."""
        teff = np.asarray(teff, dtype=float)[:, None]
        x = 1.438777e8 / (self.fine[None, :] * teff)  # hc / (lambda k T), lambda in A
        b_lambda = self.fine[None, :] ** -5 / np.expm1(x)
        in_arm = (self.fine >= self.wave[0]) & (self.fine <= self.wave[-1])
        f_nu = b_lambda * self.fine**2  # up to a constant
        scale = ab_flux(np.asarray(mag, dtype=float), 1.0) / np.median(f_nu[:, in_arm], axis=1)
        return b_lambda * scale[:, None]

    def line_residual(self, p) -> np.ndarray:
        """Residual flux of the forest and the strong lines, (n, n_fine)."""
        strengths = self.forest.strength * lines.forest_scale(self.forest, p)
        tau = np.asarray((self.forest_profiles.T @ strengths.T).T)
        residual = 1 - FOREST_DEPTH * -np.expm1(-tau)
        for line in self.strong_lines:
            depth = lines.core_depth(p["log_g"], line.group.deeper_in_giants)[:, None]
            ew = line.weight * line.group.ew(p) / depth[:, 0]
            gamma = lines.damping_width(line.group.gamma_sun, p["T_eff"], p["log_g"], p["M_H"])
            residual[:, line.lo:line.hi] *= 1 - depth * -np.expm1(-self._strong_tau(line, ew, gamma))
        return residual

    @staticmethod
    def _strong_tau(line: _StrongLine, ew, gamma) -> np.ndarray:
        """tau = S V(x; gamma) with S solved so the line alone has equivalent width ``ew`` at unit depth."""
        u = np.interp(np.log(gamma), np.log(GAMMA_GRID), np.arange(GAMMA_GRID.size))
        k = np.clip(u.astype(int), 0, GAMMA_GRID.size - 2)
        w = (u - k)[:, None]
        curve = (1 - w) * line.ew_table[k] + w * line.ew_table[k + 1]  # EW vs S, per star
        j = np.clip((curve < ew[:, None]).sum(1) - 1, 0, STRENGTH_GRID.size - 2)
        rows = np.arange(ew.size)
        e0, e1 = curve[rows, j], curve[rows, j + 1]
        frac = np.clip((ew - e0) / np.maximum(e1 - e0, 1e-30), 0.0, 1.0)
        log_s = np.log(STRENGTH_GRID[j]) + frac * np.log(STRENGTH_GRID[j + 1] / STRENGTH_GRID[j])
        profile = (1 - w) * line.profiles[k] + w * line.profiles[k + 1]
        return np.exp(log_s)[:, None] * profile

    def fine_flux(self, p) -> np.ndarray:
        """Noiseless flux on the fine grid, before the line spread (n, n_fine)."""
        residual = self.line_residual(p)
        bands = np.array([lines.tio_strength(p)] * len(lines.TIO_HEADS)
                         + [lines.cn_strength(p)] * (len(lines.CN_HEADS) + 1)).T
        return self.continuum(p["T_eff"], p["mag"]) * residual * np.exp(-bands @ self.band_shapes)

    def flux(self, params) -> np.ndarray:
        """Noiseless pixel flux (n, 4096), float32, 1e-17 erg/s/cm^2/A.

        ``params``: a DataFrame or mapping with the five labels and ``mag`` (arrays of length n).
        """
        fine = self.fine_flux(inputs(params)).astype(np.float32)
        out = (self.resample @ fine.T).T
        assert out.shape[1] == N_PIXELS
        return np.ascontiguousarray(out, dtype=np.float32)
