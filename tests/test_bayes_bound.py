"""The Ziv-Zakai bound on a toy with a closed form: one label, uniform on its box, read through Gaussian noise of
known Fisher information J, where the best reader's error (the posterior mean's) is known exactly."""
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.stats import norm, truncnorm

from distill import bayes_bound
from distill.simulator.sample import RANGES

LO, HI = RANGES["log_g"]
T = HI - LO


def toy(j, n=2000):
    """n spectra evenly over the box, each with Fisher information j (dex^-2)."""
    params = pd.DataFrame({"log_g": LO + (np.arange(n) + 0.5) * T / n})
    return np.full((n, 1, 1), j), params


def zzb(j):
    info, params = toy(j)
    return bayes_bound.ziv_zakai(info, params, "log_g", ["log_g"])


def closed_form_zzb(j):
    return quad(lambda h: h * (1 - h / T) * norm.sf(h * np.sqrt(j) / 2), 0, T)[0]


def mmse(j):
    """E[Var(x | y)] for x ~ U[LO, HI], y = x + N(0, 1/j): the posterior is a normal truncated to the box."""
    s = 1 / np.sqrt(j)

    def density_times_var(y):
        a, b = (LO - y) / s, (HI - y) / s
        p_y = (norm.cdf(b) - norm.cdf(a)) / T
        return p_y * truncnorm.var(a, b, loc=y, scale=s)
    return quad(density_times_var, LO - 8 * s, HI + 8 * s, limit=200)[0]


@pytest.mark.parametrize("j", [0.3, 3.0, 30.0, 300.0])
def test_the_bound_is_the_closed_form_and_below_the_best_readers_error(j):
    bound = zzb(j)
    assert bound == pytest.approx(closed_form_zzb(j), rel=0.02)
    assert bound <= mmse(j) * 1.001  # a lower bound on the best reader's error
    assert bound >= 0.5 * mmse(j)  # and not a vacuous one


def test_the_limits_are_the_prior_variance_and_the_cramer_rao_bound():
    assert zzb(0.0) == pytest.approx(T ** 2 / 12, rel=0.01)  # no information: the prior's variance
    assert zzb(1e4) == pytest.approx(1e-4, rel=0.05)  # rich information: 1 / J


def test_a_degenerate_label_is_bounded_along_its_degeneracy():
    """Two labels the data only see as a sum: the bound on one is near its prior variance, which fixing the other
    label (the e_k direction alone) would miss."""
    n = 3000
    rng = np.random.default_rng(0)
    params = pd.DataFrame({"log_g": rng.uniform(LO, HI, n), "M_H": rng.uniform(*RANGES["M_H"], n)})
    info = np.broadcast_to(1e4 * np.ones((2, 2)), (n, 2, 2))
    both = bayes_bound.ziv_zakai(info, params, "log_g", ["log_g", "M_H"])
    fixed = bayes_bound.ziv_zakai(info, params, "log_g", ["log_g", "M_H"], directions=np.array([[1.0, 0.0]]))
    assert fixed < 1e-3 < both
    assert bayes_bound.bound_r2(info, params, "log_g", ["log_g", "M_H"]) < 0.95
