"""Atomic lines, molecular bands and the weak-line forest of the PFS red arm.

Wavelengths are in air (A), as in ``docs/simulator.md``; the model converts
them to vacuum. Each strong line takes its equivalent width (EW, A) from an
empirical trend in the stellar labels and its damping width from a pressure law;
the line strength that gives that EW for that width is solved in ``model.py``.
So the EW carries the empirical trends and the profile shape carries gravity.

Labels: ``T_eff`` (K), ``log_g`` (dex, cgs), ``M_H``, ``a_M``, ``C_M`` (dex).
Solar reference: T_eff 5777 K, log g 4.44.
"""
from dataclasses import dataclass

import numpy as np

T_SUN, LOGG_SUN = 5777.0, 4.44
GRAVITY_EXPONENT = 0.3
"""Damping width ~ g^0.3: the value docs/simulator.md reports as bringing log g, [M/H] and
T_eff difficulty close to the real data (0.6 made log g too easy, [M/H] too hard)."""


def theta(teff):
    """Excitation temperature term 5040/T_eff - 5040/5777 (1/eV)."""
    return 5040.0 / teff - 5040.0 / T_SUN


def damping_width(gamma_sun, teff, logg, m_h):
    """Lorentzian half width (A): gamma_sun * 10^(0.3 (log g - 4.44) - 0.25 [M/H]) * (T_eff/5777)^-2.

    Higher gravity and lower metallicity (higher gas pressure) broaden the wings.
    """
    return gamma_sun * 10.0 ** (GRAVITY_EXPONENT * (logg - LOGG_SUN) - 0.25 * m_h) * (teff / T_SUN) ** -2


def _cool_dwarf_boost(teff, logg, scale):
    """Growth of damping-dominated lines (Na I, K I) towards cool dwarfs; suppressed in giants."""
    rise = np.exp((T_SUN - teff) / scale)
    dwarfness = np.clip((logg - 1.5) / 2.5, 0.15, 1.0)
    return np.where(teff < T_SUN, 1 + (rise - 1) * dwarfness, rise)


def _saturating(x):
    """Abundance response of a strong line: linear below solar, half the slope above."""
    return np.where(x < 0, x, 0.5 * x)


def ew_ca_triplet_sum(p):
    """Ca II 8498+8542+8662 EW (A): Sun 7.7, ~+2 A/dex in [Ca/H] flattening above solar,
    peak at 4000-5000 K, giants stronger than dwarfs at [M/H] > -0.5 (K giants 8-9 A)."""
    ca_h = p["M_H"] + p["a_M"]
    metal_rich = np.clip((p["M_H"] + 1.0) / 0.5, 0.0, 1.0)
    temp = 0.8 * (((T_SUN - 4500) / 1000) ** 2 - ((p["T_eff"] - 4500) / 1000) ** 2)
    ew = 7.7 + 2.0 * _saturating(ca_h) - 0.4 * (p["log_g"] - LOGG_SUN) * metal_rich + temp
    return np.maximum(ew, 0.3)


def ew_na_sum(p):
    """Na I 8183+8195 EW (A): Sun 0.5, K dwarfs 1-1.5, early M dwarfs 2-4, giants <= 1."""
    return 0.5 * 10 ** (0.6 * p["M_H"]) * _cool_dwarf_boost(p["T_eff"], p["log_g"], 1100.0)


def ew_k(p):
    """K I 7699 EW (A): Sun 0.17, cool dwarfs 0.5-1.5."""
    return 0.17 * 10 ** (0.6 * p["M_H"]) * _cool_dwarf_boost(p["T_eff"], p["log_g"], 1000.0)


def ew_mg(p):
    """Mg I 8807 EW (A): Sun 0.5, K dwarfs 0.8-1.0, giants 0.5-0.7."""
    cool = 1 + 0.6 * np.clip((T_SUN - p["T_eff"]) / 1500, -0.5, 1.0)
    gravity = 10 ** (0.06 * (p["log_g"] - LOGG_SUN))
    return 0.5 * 10 ** (0.5 * (p["M_H"] + p["a_M"])) * cool * gravity


def ew_paschen(p):
    """Paschen P12 EW (A): only above ~5500 K, rising steeply to ~0.25 A at 6000 K."""
    return 0.25 * 10 ** ((p["T_eff"] - 6000.0) / 400.0)


def ew_fe1(p):
    """Fe I line EW for unit base strength: stronger when cooler, weak gravity dependence."""
    return 10 ** (0.7 * p["M_H"]) * (T_SUN / p["T_eff"]) ** 2 * 10 ** (0.03 * (p["log_g"] - LOGG_SUN))


def ew_fe2(p):
    """Fe II EW for unit base strength: ~g^(-1/3), stronger in hotter stars."""
    return 10 ** (0.7 * p["M_H"]) * 10 ** (-(p["log_g"] - LOGG_SUN) / 3) * (p["T_eff"] / T_SUN) ** 2


def ew_ti1(p):
    """Ti I EW at unit base strength 4000 K: only below ~4500 K, very Teff sensitive."""
    return 10 ** (0.7 * (p["M_H"] + p["a_M"])) * np.exp(-(p["T_eff"] - 4000.0) / 300.0)


def ew_ca1(p):
    """Ca I EW for unit base strength: alpha element, stronger when cooler."""
    return 10 ** (0.7 * (p["M_H"] + p["a_M"])) * (T_SUN / p["T_eff"]) ** 1.5


def ew_si1(p):
    """Si I EW for unit base strength: alpha element, stronger when hotter."""
    return 10 ** (0.7 * (p["M_H"] + p["a_M"])) * (p["T_eff"] / T_SUN) ** 2


def ew_o1(p):
    """O I 777 nm triplet EW for unit base strength: only above 5000 K, stronger at low log g."""
    hot = np.clip((p["T_eff"] - 5000.0) / (T_SUN - 5000.0), 0.0, None) ** 1.5
    return 10 ** (0.5 * (p["M_H"] + p["a_M"])) * hot * 10 ** (-0.2 * (p["log_g"] - LOGG_SUN))


@dataclass(frozen=True)
class LineGroup:
    """Lines sharing an EW trend and a profile: EW of line i = weights[i] * ew(labels)."""

    name: str
    wave_air: tuple
    weights: tuple
    ew: object
    gamma_sun: float  # Lorentzian half width at solar labels (A)
    doppler: float = 0.07  # Gaussian core sigma: thermal + 2 km/s microturbulence (A)
    window: float = 8.0  # half width of the rendered profile (A)
    deeper_in_giants: bool = False  # central depth falls with gravity (see ``core_depth``)


def core_depth(logg, deeper_in_giants: bool):
    """Maximum depth of a line: 0.9, or for the strong gravity-sensitive lines 0.9 at log g 1
    falling to 0.7 at log g 5 (giants have deeper cores; at fixed EW, narrower wings)."""
    logg = np.asarray(logg, dtype=float)
    return 0.9 - 0.05 * (logg - 1.0) if deeper_in_giants else np.full_like(logg, 0.9)


LINE_GROUPS = (
    LineGroup("Ca II", (8498.02, 8542.09, 8662.14), (1.4 / 7.7, 3.7 / 7.7, 2.6 / 7.7), ew_ca_triplet_sum, 0.10,
              window=40.0, deeper_in_giants=True),
    LineGroup("Na I", (8183.26, 8194.82), (0.4, 0.6), ew_na_sum, 0.04, window=15.0, deeper_in_giants=True),
    LineGroup("K I", (7664.90, 7698.96), (1.4, 1.0), ew_k, 0.03, window=12.0, deeper_in_giants=True),
    LineGroup("Mg I", (8806.76, 8717.8, 8736.0), (1.0, 0.3, 0.4), ew_mg, 0.06, window=15.0, deeper_in_giants=True),
    LineGroup("H I Paschen", (8750.47, 8665.02, 8598.39, 8545.38, 8502.48, 8467.25, 8437.95),
              (1.0, 0.85, 0.72, 0.61, 0.52, 0.44, 0.38), ew_paschen, 0.5, doppler=0.2, window=30.0),
    LineGroup("Fe I", (7511.02, 7748.27, 7937.13, 7945.85, 8085.17, 8327.05, 8387.77, 8468.41,
                       8514.07, 8611.80, 8621.60, 8674.75, 8688.62, 8824.22),
              (0.25, 0.2, 0.22, 0.25, 0.12, 0.3, 0.3, 0.28, 0.2, 0.18, 0.15, 0.2, 0.35, 0.3), ew_fe1, 0.03),
    LineGroup("Fe II", (7462.41, 7515.83, 7711.72), (0.04, 0.03, 0.06), ew_fe2, 0.02),
    LineGroup("Ti I", (8377.86, 8382.53, 8412.36, 8426.50, 8434.96, 8435.65),
              (0.15, 0.12, 0.18, 0.2, 0.25, 0.22), ew_ti1, 0.02),
    LineGroup("Ca I", (7148.15, 7202.20, 7326.15), (0.15, 0.1, 0.18), ew_ca1, 0.03),
    LineGroup("Si I", (7405.77, 7415.95, 7423.50, 7932.35, 7944.00, 8728.01, 8742.45, 8752.01),
              (0.09, 0.08, 0.1, 0.08, 0.1, 0.06, 0.07, 0.08), ew_si1, 0.02),
    LineGroup("O I", (7771.94, 7774.17, 7775.39), (0.07, 0.06, 0.05), ew_o1, 0.02),
)


# Molecular band heads (air A). Red-degraded: tau = D * exp(-(lambda - head) / L) * (1 + 0.5 ripple).
TIO_HEADS = ((7088.0, 0.45, 110.0), (7126.0, 0.40, 120.0), (7589.0, 0.15, 80.0), (7666.0, 0.22, 90.0),
             (7672.0, 0.12, 90.0), (8432.0, 0.10, 70.0), (8442.0, 0.07, 70.0), (8452.0, 0.06, 70.0))
"""(head, optical depth at 3750 K and solar abundances, decay length L in A)."""
CN_HEADS = ((7875.0, 0.05, 150.0), (8060.0, 0.05, 150.0), (8280.0, 0.04, 150.0))
"""(head, optical depth in a solar-metallicity 4500 K giant of log g 1.5, decay length in A)."""
CN_FOREST = (7850.0, 8850.0, 0.015)
"""Weak CN line forest: (start, end, mean optical depth) at the same reference star."""


def tio_strength(p):
    """TiO depth scale: e-fold per 250 K below 3750 K reference, ~[M/H]+[alpha/M], weaker at high [C/M]."""
    return np.exp(-(p["T_eff"] - 3750.0) / 250.0) * 10 ** (p["M_H"] + p["a_M"]) * 10 ** (-0.15 * p["C_M"])


def cn_strength(p):
    """CN depth scale ~10^([C/M] + 2[M/H]) (capped), strongest in cool giants (4000-5000 K, low log g)."""
    abundance = np.minimum(10 ** (p["C_M"] + 2 * p["M_H"]), 10.0)
    temp = np.exp(-(((p["T_eff"] - 4500.0) / 700.0) ** 2))
    gravity = 10 ** (-0.25 * (p["log_g"] - 1.5))
    return abundance * temp * gravity


# The weak-line forest: fixed, seeded line list; strengths scale with abundance, excitation and gravity.
FOREST_SEED = 20240611
FOREST_SIZE = 3000
FOREST_MEDIAN_TAU = 0.25
"""Median line-centre optical depth of forest lines in the Sun (before the line spread); with the
0.6 dex spread of strengths, typical depths of a few per cent after the line spread, as for weak
Fe I lines at R ~ 5000. Calibration history (bench/calibrate_simulator.py, 32k, noise 1.0, Ridge):
2,000 lines at 0.1 and 0.45 dex gave [M/H] R^2 0.93; at 0.25: 0.94; 3,000 lines at 0.25 and
0.6 dex: 0.956, with log g 0.57 (real data 0.47)."""


@dataclass(frozen=True)
class Forest:
    """Weak metal lines: air wavelength (A), base strength (A), excitation (eV), element class."""

    wave_air: np.ndarray
    strength: np.ndarray
    excitation: np.ndarray
    alpha: np.ndarray  # bool: O/Mg/Si/Ca/Ti line, scales with [M/H] + [alpha/M]
    ionised: np.ndarray  # bool: ionised species, ~g^(-1/3), stronger in hotter stars


def make_forest(size=FOREST_SIZE, seed=FOREST_SEED, doppler=0.07) -> Forest:
    """The fixed forest: uniform positions, log-normal strengths, 30% alpha, 15% ionised."""
    rng = np.random.default_rng(seed)
    centre_tau = FOREST_MEDIAN_TAU * 10 ** rng.normal(0.0, 0.6, size)
    return Forest(
        wave_air=np.sort(rng.uniform(7080.0, 8870.0, size)),
        strength=centre_tau * doppler * np.sqrt(2 * np.pi),
        excitation=rng.uniform(0.0, 5.0, size),
        alpha=rng.random(size) < 0.30,
        ionised=rng.random(size) < 0.15,
    )


def forest_scale(forest: Forest, p) -> np.ndarray:
    """Per-star, per-line strength factor (n_stars, n_lines), 1 for every line in the Sun.

    Neutral lines: 10^((1.5 - chi) theta) (stronger when cooler unless highly excited);
    ionised lines: 10^(-(chi + 1) theta) * g^(-f/3), f = ``p["forest_gravity"]`` (1 when absent: weak lines of
    the dominant ionisation stage under H- opacity, Gray 2005, ch. 16; 0: a forest without gravity signal);
    abundance 10^[X/H] (optically thin).
    """
    th = theta(p["T_eff"])[:, None]
    m_h, a_m = p["M_H"][:, None], p["a_M"][:, None]
    abundance = m_h + np.where(forest.alpha, a_m, 0.0)
    neutral = (1.5 - forest.excitation) * th
    gravity = np.reshape(np.asarray(p.get("forest_gravity", 1.0), dtype=float), (-1, 1))
    ionised = -(forest.excitation + 1.0) * th - gravity * (p["log_g"][:, None] - LOGG_SUN) / 3
    return 10 ** (abundance + np.where(forest.ionised, ionised, neutral))
