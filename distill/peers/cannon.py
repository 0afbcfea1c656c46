"""The Cannon (Ness et al. 2015, ApJ 808, 16): a data-driven model of every pixel, quadratic in the labels.

Training: for each pixel p, ``f_np = theta_p . q(l_n)`` with ``q = [1, l_i, l_i l_j (i <= j)]`` of the labels
standardised on the training set (21 terms for five labels), fitted by least squares from sufficient statistics
(Q^T Q, Q^T F, sum F^2) gathered block by block, so memory does not grow with the training set. The per-pixel
variance ``s_p^2`` is the training spectra's mean squared residual: noise and model misfit together (Ness et al.'s
intrinsic scatter with the noise folded in).

Test: each spectrum's labels minimise ``sum_p (f_p - theta_p . q(l))^2 / s_p^2``, a per-spectrum nonlinear least
squares with an analytic Jacobian, started from the best of a bank of training labels. With a label ``box`` (the
peer's: the simulator's box) the minimisation is bounded to it (scipy ``least_squares``, trust-region reflective;
Branch, Coleman & Li 1999, SIAM J. Sci. Comput. 21, 1), so no label leaves the box, and a label whose bound is active
at the minimum is flagged ``at_edge``: where the unbounded minimum lies outside the box (Ness et al. 2015 leave the
step unbounded, and a label outside the training set's range is an extrapolation of the quadratic model; the bounded
step puts it on the edge instead). Without a box the step is the unbounded Levenberg-Marquardt of Ness et al. With
``prior`` the training labels' Gaussian (their mean and variance: a unit normal in standardised labels) regularises
the step, a maximum a posteriori fit.

The weights are the same for every spectrum, so this Cannon reads the flux alone and never sees the stored sigma
(Ness et al. weight by ``1 / (sigma_np^2 + s_p^2)``, which would).

Spectra are divided by their mean flux first (``normalise``): a pseudo-continuum that removes the magnitude.
"""
import numpy as np
from scipy.optimize import least_squares


def normalise(flux: np.ndarray) -> np.ndarray:
    """Each spectrum divided by its mean flux (float64)."""
    flux = np.asarray(flux, dtype=np.float64)
    mean = flux.mean(axis=1, keepdims=True)
    return flux / np.where(mean > 0, mean, 1.0)


class Cannon:
    """Fit with ``fit(labels, read)``, then ``predict(flux)``; ``labels`` (N, L) in label units. ``box``: (lo (L,),
    hi (L,)) in label units that bounds the test step, or None for the unbounded step; ``prior``: regularise the test
    step by the training labels' Gaussian."""

    def __init__(self, bank: int = 512, block: int = 4096, seed: int = 42, box: tuple | None = None,
                 prior: bool = False):
        self.bank_size, self.block, self.seed, self.prior = bank, block, seed, prior
        self.box = None if box is None else tuple(np.asarray(b, dtype=np.float64) for b in box)

    def _terms(self, n_labels: int):
        self.i, self.j = np.triu_indices(n_labels)

    def design(self, scaled: np.ndarray) -> np.ndarray:
        """q(l) of standardised labels, (n, L) -> (n, 1 + L + L (L + 1) / 2)."""
        return np.concatenate([np.ones((len(scaled), 1)), scaled, scaled[:, self.i] * scaled[:, self.j]], axis=1)

    def design_jacobian(self, scaled: np.ndarray) -> np.ndarray:
        """dq/dl of one standardised label vector, (T, L)."""
        n_labels = scaled.size
        out = np.zeros((1 + n_labels + self.i.size, n_labels))
        out[1:1 + n_labels] = np.eye(n_labels)
        rows = 1 + n_labels + np.arange(self.i.size)
        np.add.at(out, (rows, self.i), scaled[self.j])
        np.add.at(out, (rows, self.j), scaled[self.i])
        return out

    def fit(self, labels: np.ndarray, read) -> "Cannon":
        """``read(start, stop) -> flux (n, P)`` of the training rows, already normalised."""
        labels = np.asarray(labels, dtype=np.float64)
        self._terms(labels.shape[1])
        self.mean, self.std = labels.mean(0), labels.std(0) + 1e-12
        scaled = (labels - self.mean) / self.std
        qtq = qtf = f2 = None
        for lo in range(0, len(labels), self.block):
            f = np.asarray(read(lo, min(lo + self.block, len(labels))), dtype=np.float64)
            q = self.design(scaled[lo:lo + len(f)])
            qtq, qtf, f2 = (q.T @ q, q.T @ f, (f * f).sum(0)) if qtq is None else \
                (qtq + q.T @ q, qtf + q.T @ f, f2 + (f * f).sum(0))
        if len(labels) < qtq.shape[0]:
            raise ValueError(f"The Cannon needs at least {qtq.shape[0]} training spectra, got {len(labels)}")
        self.theta = np.linalg.solve(qtq + 1e-10 * np.trace(qtq) / len(qtq) * np.eye(len(qtq)), qtf)  # (T, P)
        resid2 = f2 - 2 * (self.theta * qtf).sum(0) + (self.theta * (qtq @ self.theta)).sum(0)
        self.scatter2 = np.maximum(resid2 / len(labels), 1e-12 * max(float(f2.mean()) / len(labels), 1e-300))
        pick = np.random.default_rng(self.seed).permutation(len(labels))[:self.bank_size]
        self.bank = scaled[pick]
        self.bank_flux = self.design(self.bank) @ self.theta
        return self

    def model(self, labels: np.ndarray) -> np.ndarray:
        """The fitted model's spectra of labels (n, L) in label units."""
        return self.design((np.asarray(labels, dtype=np.float64) - self.mean) / self.std) @ self.theta

    def predict(self, flux: np.ndarray) -> np.ndarray:
        """Labels (n, L) of normalised spectra (n, P)."""
        return self.test_step(flux)[0]

    def scaled_box(self) -> tuple:
        """The box in standardised labels: (lo, hi), each (L,); unbounded (+-inf) without a box."""
        if self.box is None:
            return np.full(self.mean.size, -np.inf), np.full(self.mean.size, np.inf)
        return (self.box[0] - self.mean) / self.std, (self.box[1] - self.mean) / self.std

    def starts(self, flux: np.ndarray) -> np.ndarray:
        """The bank label (standardised) of least weighted residual for each spectrum, inside the box: (n, L)."""
        w = 1.0 / self.scatter2
        chi2 = (flux**2 * w).sum(1)[:, None] - 2 * (flux * w) @ self.bank_flux.T + (self.bank_flux**2 * w).sum(1)
        return np.clip(self.bank[np.argmin(chi2, axis=1)], *self.scaled_box())

    def test_step(self, flux: np.ndarray) -> tuple:
        """(labels (n, L) in label units, at_edge (n, L) bool: the box's bound is active) of normalised spectra."""
        flux = np.asarray(flux, dtype=np.float64)
        out, edge = np.empty((len(flux), self.mean.size)), np.zeros((len(flux), self.mean.size), bool)
        for k, (f, start) in enumerate(zip(flux, self.starts(flux))):
            fit = self.fit_one(f, start)
            out[k], edge[k] = fit.x, fit.active_mask != 0
        return out * self.std + self.mean, edge

    def fit_one(self, f: np.ndarray, start: np.ndarray):
        """scipy's ``OptimizeResult`` of one spectrum's test step from ``start``, in standardised labels."""
        root_w, eye = np.sqrt(1.0 / self.scatter2), np.eye(self.mean.size) * self.prior
        return least_squares(lambda x: np.r_[(self.design(x[None])[0] @ self.theta - f) * root_w, eye @ x], start,
                             jac=lambda x: np.r_[(self.theta.T @ self.design_jacobian(x)) * root_w[:, None], eye],
                             bounds=self.scaled_box(), method="lm" if self.box is None else "trf",
                             xtol=1e-12, ftol=1e-12)
