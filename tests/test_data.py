"""The pfsspec HDF5 layer: exact layout round trips, cleaning, bad input, reproducible noise."""
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from distill import data
from distill.errors import DistillError

N, P = 6, 50


def write_plain(path, flux=None, error=None, wave=None, params=None, drop=None):
    """Write a split the way the user's own tools do: plain pandas then plain h5py."""
    rng = np.random.default_rng(0)
    flux = rng.uniform(1, 2, (N, P)) if flux is None else flux
    error = rng.uniform(0.1, 0.2, (N, P)) if error is None else error
    wave = np.linspace(7100, 8850, P) if wave is None else wave
    if params is None:
        params = pd.DataFrame({c: rng.uniform(0, 1, N) for c in data.LABELS} | {"snr": np.ones(N),
                                                                                "extra": np.arange(N)})
    params.to_hdf(path, key="dataset/params", mode="w", format="table")
    with h5py.File(path, "a") as f:
        arrays = {"spectrumdataset/wave": wave, "dataset/arrays/flux/value": flux, "dataset/arrays/error/value": error}
        for key, value in arrays.items():
            if key != drop:
                f.create_dataset(key, data=value)
    return flux, error, wave, params


def test_plain_file_is_read_by_the_project(tmp_path):
    flux, error, wave, params = write_plain(tmp_path / "d.h5")
    f = data.SpectrumFile(tmp_path / "d.h5")
    got_flux, got_error = f.read()
    np.testing.assert_allclose(got_flux, flux, rtol=1e-6)
    np.testing.assert_allclose(got_error, error, rtol=1e-6)
    np.testing.assert_array_equal(f.wave, wave)
    np.testing.assert_allclose(f.label_array(), params[list(data.LABELS)].to_numpy(), rtol=1e-6)
    assert "extra" in f.params.columns and len(f) == N


def test_project_file_is_read_by_plain_tools(tiny_data):
    path = tiny_data / "train" / "dataset.h5"
    with h5py.File(path, "r") as f:
        assert f["spectrumdataset/wave"].shape == (4096,)
        flux = f["dataset/arrays/flux/value"][:5]
        error = f["dataset/arrays/error/value"][:5]
    params = pd.read_hdf(path, "dataset/params")
    for column in ("T_eff", "log_g", "M_H", "a_M", "C_M", "mag", "snr", "redshift", "random_seed"):
        assert column in params.columns
    assert len(params) == 96 and flux.shape == error.shape == (5, 4096)
    ours_flux, ours_error = data.SpectrumFile(path).read(0, 5)
    np.testing.assert_array_equal(ours_flux, flux)
    np.testing.assert_array_equal(ours_error, error)


def test_batches_cover_the_file_in_order(tiny_data):
    f = data.SpectrumFile(tiny_data / "val" / "dataset.h5")
    whole, _ = f.read()
    pieces = [(start, flux) for start, flux, _ in f.batches(batch_size=10)]
    assert [s for s, _ in pieces] == [0, 10, 20, 30]
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), whole)


def test_cleaning_clips_flux_and_fills_edge_nans(tmp_path):
    flux = np.ones((N, P))
    flux[0, 3] = -0.5
    error = np.full((N, P), 0.1)
    error[1, :3] = np.nan
    error[1, 3] = 0.3
    error[2, -2:] = np.nan
    error[2, -3] = 0.7
    write_plain(tmp_path / "d.h5", flux=flux, error=error)
    got_flux, got_error = data.SpectrumFile(tmp_path / "d.h5").read()
    assert got_flux[0, 3] == 0.0
    np.testing.assert_allclose(got_error[1, :4], 0.3, rtol=1e-6)
    np.testing.assert_allclose(got_error[2, -3:], 0.7, rtol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"),
    ("no_flux", "missing 'dataset/arrays/flux/value'"),
    ("shape", "shapes disagree"),
    ("wave", "strictly increasing"),
    ("label", "lacks label column(s) log_g"),
    ("inner_nan", "non-finite error inside the array at row 2, pixel 20"),
    ("nan_flux", "non-finite flux at row 4"),
    ("zero_error", "non-positive error"),
    ("not_hdf5", "not a readable HDF5 file"),
    ("nan_label", "column log_g has 2 NaN or infinite value(s) (or non-numbers), the first in row 1"),
    ("text_label", "column T_eff has 1 NaN or infinite value(s) (or non-numbers), the first in row 4"),
    ("no_rows", "'dataset/params' has 0 rows but the flux has 6"),
])
def test_bad_input_gets_one_clear_line(tmp_path, case, message):
    path = tmp_path / "d.h5"
    rng = np.random.default_rng(1)
    error = rng.uniform(0.1, 0.2, (N, P))
    flux = rng.uniform(1, 2, (N, P))
    if case == "no_flux":
        write_plain(path, drop="dataset/arrays/flux/value")
    elif case == "shape":
        write_plain(path, error=error[:, :-1])
    elif case == "wave":
        write_plain(path, wave=np.linspace(8850, 7100, P))
    elif case == "label":
        write_plain(path, params=pd.DataFrame({c: np.ones(N) for c in data.LABELS if c != "log_g"}))
    elif case == "inner_nan":
        error[2, 20] = np.nan
        write_plain(path, error=error)
    elif case == "nan_flux":
        flux[4, 7] = np.inf
        write_plain(path, flux=flux)
    elif case == "zero_error":
        error[3, 5] = 0.0
        write_plain(path, error=error)
    elif case == "not_hdf5":
        path.write_text("not hdf5")
    elif case in ("nan_label", "text_label", "no_rows"):
        params = pd.DataFrame({c: rng.uniform(0, 1, N) for c in data.LABELS})
        if case == "nan_label":
            params.loc[[1, 3], "log_g"] = [np.nan, -np.inf]
        elif case == "text_label":
            params["T_eff"] = ["5000", "5100", "5200", "5300", "hot", "5500"]
        write_plain(path, params=params)
        if case == "no_rows":  # pandas writes no empty table: the fixed format keeps it
            with h5py.File(path, "a") as f:
                del f["dataset/params"]
            params.iloc[:0].to_hdf(path, key="dataset/params", mode="a", format="fixed")
    with pytest.raises(DistillError) as info:
        data.SpectrumFile(path).read()
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_open_dataset_needs_all_splits(tmp_path):
    (tmp_path / "train").mkdir()
    write_plain(tmp_path / "train" / "dataset.h5")
    with pytest.raises(DistillError, match="val/dataset.h5: file not found"):
        data.open_dataset(tmp_path)
    with pytest.raises(DistillError, match="dataset directory not found"):
        data.open_dataset(tmp_path / "nope")


def test_fixed_noise_is_reproducible_and_independent_of_batching():
    a = data.noise_draw("test", range(0, 8), 100)
    b = np.concatenate([data.noise_draw("test", range(0, 3), 100), data.noise_draw("test", range(3, 8), 100)])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, data.noise_draw("val", range(0, 8), 100))
    assert not np.allclose(a, data.noise_draw("test", range(0, 8), 100, seed=43))
    assert abs(a.std() - 1) < 0.05


def test_add_noise_scales_with_level_and_error():
    flux, error = np.ones((2, 3), np.float32), np.full((2, 3), 0.5, np.float32)
    z = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(data.add_noise(flux, error, 0.2, z), 1.1)
    np.testing.assert_array_equal(data.add_noise(flux, error, 0.0, z), flux)
    fresh = [data.add_noise(flux, error, 1.0, rng=np.random.default_rng(s)) for s in (1, 2)]
    assert not np.allclose(*fresh)


def test_digest_changes_with_content(tmp_path):
    write_plain(tmp_path / "a.h5")
    first = data.file_digest(tmp_path / "a.h5")
    assert first == data.file_digest(tmp_path / "a.h5")
    write_plain(tmp_path / "a.h5", flux=np.full((N, P), 3.0))
    assert data.file_digest(tmp_path / "a.h5") != first


def damage_chunk_index(path, key=data.FLUX_KEY):
    """Overwrite the signature of the chunk index of ``key`` (an HDF5 v1 B-tree node of raw-data chunks: ``TREE``,
    type 1), so the file still opens and reading that array fails."""
    raw = path.read_bytes()
    for node in (m.start() for m in re.finditer(b"TREE\x01", raw)):
        path.write_bytes(raw[:node] + b"XXXX" + raw[node + 4:])
        try:
            data.SpectrumFile(path)
        except DistillError:  # an index the opening reads (the params table's)
            continue
        with h5py.File(path, "r") as f:
            try:
                f[key][:1]
            except OSError:
                return path
    path.write_bytes(raw)
    raise AssertionError(f"{path}: no chunk index of {key} found")


def test_a_damaged_chunk_index_is_one_line_naming_file_and_array(tmp_path):
    path = tmp_path / "d.h5"
    rng = np.random.default_rng(2)
    params = pd.DataFrame({c: rng.uniform(0, 1, N) for c in data.LABELS})
    data.write_split(path, np.linspace(7100, 8850, P), params, [(rng.uniform(1, 2, (N, P)),
                                                                 rng.uniform(0.1, 0.2, (N, P)))], P)
    spectra = data.SpectrumFile(damage_chunk_index(path))
    with pytest.raises(DistillError) as info:
        spectra.read(0, 4)
    text = str(info.value)
    assert text.startswith(f"{path}: cannot read '{data.FLUX_KEY}' rows 0:4 (") and "damaged" in text
    assert "\n" not in text


def test_a_training_split_too_small_is_refused_alike(tmp_path):
    for split in data.SPLITS:
        (tmp_path / split).mkdir()
        write_plain(tmp_path / split / "dataset.h5")
    data.open_dataset(tmp_path)
    data.check_train_size(data.MIN_TRAIN, "n_train=2")
    with pytest.raises(DistillError, match="n_train=1: a training split of 1 spectrum is too small for a head"):
        data.check_train_size(1, "n_train=1")
