"""Physics invariants of the built-in simulator (docs/simulator.md)."""
import numpy as np
import pandas as pd
import pytest

from distill.ceiling import check_simulated
from distill.data import open_dataset
from distill.errors import DistillError
from distill.simulator import lines, noise
from distill.simulator.dataset import simulate_dataset
from distill.simulator.grid import AIR_TO_VACUUM, pixel_wave
from distill.simulator.model import SpectrumModel
from distill.simulator.sample import parse_mag, sample_labels


@pytest.fixture(scope="module")
def model():
    return SpectrumModel()


def stars(**columns):
    n = max(len(v) if np.ndim(v) else 1 for v in columns.values())
    base = dict(T_eff=4500.0, log_g=4.0, M_H=0.0, a_M=0.0, C_M=0.0, mag=21.5)
    return pd.DataFrame({k: np.broadcast_to(columns.get(k, v), n) for k, v in base.items()})


def normalised(model, params):
    """Flux divided by the line-free continuum, both through the line spread."""
    continuum = (model.resample @ model.continuum(params["T_eff"], params["mag"]).astype(np.float32).T).T
    return model.flux(params) / continuum


def equivalent_width(model, params, centre_air, half_width):
    wave = pixel_wave()
    sel = np.abs(wave - centre_air * AIR_TO_VACUUM) < half_width
    return ((1 - normalised(model, params)[:, sel]) * (wave[1] - wave[0])).sum(1)


def test_model_is_deterministic_and_row_independent(model):
    p = stars(T_eff=[4000.0, 5000.0, 5900.0], log_g=[1.5, 3.0, 4.8])
    full = model.flux(p)
    np.testing.assert_array_equal(full, model.flux(p))
    np.testing.assert_allclose(model.flux(p.iloc[[1]])[0], full[1], rtol=1e-5)
    assert full.shape == (3, 4096) and full.dtype == np.float32 and (full > 0).all()


def test_na_lines_deepen_with_gravity_in_cool_stars(model):
    """The Na I 8183/8195 profiles as rendered: EW (A) rises steeply with gravity at 4000 K."""
    p = stars(T_eff=4000.0, log_g=[1.5, 3.0, 4.8])
    labels = {k: p[k].to_numpy() for k in p.columns}
    ew = 0.0
    for line in (sl for sl in model.strong_lines if sl.group.name == "Na I"):
        depth = lines.core_depth(labels["log_g"], True)[:, None]
        gamma = lines.damping_width(line.group.gamma_sun, labels["T_eff"], labels["log_g"], labels["M_H"])
        tau = model._strong_tau(line, line.weight * line.group.ew(labels) / depth[:, 0], gamma)
        ew = ew + (depth * -np.expm1(-tau)).sum(1) * model.step
    assert ew[0] < ew[1] < ew[2]
    assert ew[2] > 2.5 * ew[0] and ew[2] > 1.5  # cool dwarfs >> giants; early M/K dwarfs 1.5-4 A (docs/simulator.md)
    whole = equivalent_width(model, p, 8189.0, 14.0)  # and the whole window, forest included, follows
    assert whole[0] < whole[2]


def test_ca_triplet_wings_are_broader_in_dwarfs(model):
    """Metal-poor stars (same EW target, weak forest): the dwarf's wings are broader, the giant's core deeper."""
    ratio = normalised(model, stars(T_eff=4800.0, log_g=[1.5, 4.8], M_H=-2.0))
    offset = np.abs(pixel_wave() - 8542.09 * AIR_TO_VACUUM)
    wing, core = (offset > 2) & (offset < 12), offset < 1
    giant, dwarf = 1 - ratio
    assert dwarf[wing].sum() > 1.3 * giant[wing].sum()
    assert giant[core].mean() > dwarf[core].mean() + 0.05


def test_paschen_appears_only_in_hot_stars(model):
    ew = equivalent_width(model, stars(T_eff=[4500.0, 5000.0, 6000.0], M_H=-2.5, a_M=0.0), 8750.47, 6.0)
    assert ew[2] > 0.1
    assert ew[0] < 0.2 * ew[2] and ew[1] < 0.2 * ew[2]


def test_tio_only_in_cool_stars(model):
    cool, warm = normalised(model, stars(T_eff=[3750.0, 4600.0]))
    band = (pixel_wave() > 7130) & (pixel_wave() < 7200)
    assert 1 - cool[band].mean() > 0.15
    assert 1 - warm[band].mean() < 0.5 * (1 - cool[band].mean())


def test_metallicity_strengthens_the_forest(model):
    poor, rich = normalised(model, stars(M_H=[-2.0, 0.5]))
    assert (1 - rich).mean() > 3 * (1 - poor).mean()


def test_forest_gravity_switch_removes_the_ionised_lines_gravity_term(model):
    forest, giant, dwarf = model.forest, dict(stars(log_g=[1.0]).iloc[0]), dict(stars(log_g=[4.0]).iloc[0])
    as_arrays = lambda p, f: {k: np.atleast_1d(v) for k, v in p.items()} | {"forest_gravity": f}  # noqa: E731
    ratio = [lines.forest_scale(forest, as_arrays(giant, f)) / lines.forest_scale(forest, as_arrays(dwarf, f))
             for f in (1.0, 0.0)]
    assert np.allclose(ratio[0][0, forest.ionised], 10 ** (3.0 / 3))  # 3 dex lower log g: 10x stronger
    assert np.allclose(ratio[1], 1.0) and np.allclose(ratio[0][0, ~forest.ionised], 1.0)
    on, off = (normalised(model, stars(log_g=[1.0, 4.0]).assign(forest_gravity=f)) for f in (1.0, 0.0))
    assert np.abs(on[0] - on[1]).sum() > np.abs(off[0] - off[1]).sum()  # less gravity signal without the term


def test_the_ceiling_uses_the_physics_the_spectra_were_made_with(tmp_path):
    simulate_dataset(tmp_path / "off", dict(train=2, val=1, test=4), workers=1, forest_gravity=False)
    test = open_dataset(tmp_path / "off")["test"]
    assert (test.params["forest_gravity"] == 0).all()
    check_simulated(test)  # the model of the stored labels and switch reproduces the stored flux
    with pytest.raises(DistillError, match="not the built-in simulator's model"):
        test.params = test.params.assign(forest_gravity=1.0)  # the planted defect: the switch forgotten
        check_simulated(test)


def test_error_grows_with_flux_and_leak_switch_removes_it(model):
    flux = model.flux(stars(T_eff=[4000.0, 5800.0]))
    mag = np.array([21.5, 21.5])
    leak = noise.error_from_flux(flux, mag, 20)
    assert (noise.error_from_flux(2 * flux, mag, 20) > leak).all()
    flat = noise.error_from_flux(flux, mag, 20, leak=False)
    np.testing.assert_array_equal(flat[0], flat[1])  # same magnitude, any spectrum: the same error
    assert not np.allclose(leak[0], leak[1])


def test_sky_has_the_calculators_oh_statistics():
    wave = pixel_wave()
    continuum = (70 + 25 * (wave - 7100) / 1750) * noise.telluric_transmission() ** 0.6
    ratio = noise.sky_counts() / continuum
    assert 0.13 < (ratio > 3).mean() < 0.19
    assert 0.045 < (ratio > 10).mean() < 0.075
    assert noise.telluric_transmission().min() == pytest.approx(0.24, abs=0.03)


def test_tiny_dataset_has_reference_snr(tiny_data):
    params = pd.read_hdf(tiny_data / "train" / "dataset.h5", "dataset/params")
    assert 5.5 < params["snr"].median() < 8.5


def test_labels_are_redrawn_from_their_own_seed():
    a = sample_labels(5, [1, 0])
    b = sample_labels(5, [1, 0])
    pd.testing.assert_frame_equal(a, b)
    one = sample_labels(1, [9, 9])
    assert one["T_eff"].between(3750, 6000).all() and a["log_g"].between(1, 5).all()
    plaus = sample_labels(200, [2, 0], prior="plausible")
    giants = plaus[plaus["log_g"] < 3.5]
    assert (giants["T_eff"] <= 4000 + 400 * giants["log_g"]).all()


def test_parse_mag():
    assert parse_mag("21.5") == (21.5, 21.5)
    assert parse_mag("20.5-22.5") == (20.5, 22.5)
    with pytest.raises(DistillError):
        parse_mag("bright")
    with pytest.raises(DistillError):
        parse_mag("22.5-20.5")


def test_simulation_is_atomic_and_refuses_to_overwrite(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(DistillError, match="not empty"):
        simulate_dataset(tmp_path / "full", dict(train=2, val=1, test=1), workers=1)
    with pytest.raises(DistillError, match=">= 1"):
        simulate_dataset(tmp_path / "bad", dict(train=0, val=1, test=1), workers=1)
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
