"""Poolings derived from stored summaries equal direct pooling; probes find planted signals, not noise."""
import numpy as np
import pandas as pd
import pytest

from distill import heads, probe
from distill.errors import DistillError
from distill.features import pooling

LENGTHS = (16, 32, 4096)


@pytest.mark.parametrize("length", LENGTHS)
def test_every_pooling_matches_a_direct_numpy_computation(length):
    maps = np.random.default_rng(length).normal(size=(5, 3, length)).astype(np.float64)
    seg, mx = pooling.summarise(maps)
    for name in pooling.valid_poolings(length):
        if name == "attention":
            continue
        expected = {
            "global_mean": maps.mean(-1),
            "mean_max": np.concatenate([maps.mean(-1), maps.max(-1)], 1),
        }.get(name)
        if expected is None:
            k = int(name.split("K")[1])
            expected = np.stack([maps[:, :, i * length // k:(i + 1) * length // k].mean(-1) for i in range(k)],
                                -1).reshape(5, 3 * k)
        np.testing.assert_allclose(pooling.pool(seg, mx, name), expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(pooling.pool_map(maps, name), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("segments", [16, 64, 256])
def test_finer_stored_segments_give_the_same_coarse_poolings_and_the_fine_ones(segments):
    maps = np.random.default_rng(segments).normal(size=(4, 3, 1024))
    seg, mx = pooling.summarise(maps, segments)
    assert seg.shape == (4, 3, segments)
    for name in pooling.valid_poolings(1024, segments):
        if name != "attention":
            np.testing.assert_allclose(pooling.pool(seg, mx, name), pooling.pool_map(maps, name), rtol=1e-10,
                                       atol=1e-12)
    assert f"seg_mean_K{segments}" in pooling.valid_poolings(1024, segments)
    assert "seg_mean_K32" not in pooling.valid_poolings(1024, 16)


def test_a_pooling_finer_than_the_store_names_the_extract_setting():
    with pytest.raises(DistillError, match="up to 16 for enc_1 \\(finer K: extract -P segments=64\\)"):
        pooling.check_pooling("seg_mean_K64", 4096, "enc_1")
    pooling.check_pooling("seg_mean_K64", 4096, "enc_1", segments=256)
    manifest = {"layers": {"enc_1": {"length": 4096, "segments": 256}, "enc_last": {"length": 16, "segments": 16}}}
    assert probe.unstored(manifest, "enc_1", "seg_mean_K256") is None
    assert "larger than the length 16 of enc_last" in probe.unstored(manifest, "enc_1+enc_last", "seg_mean_K256")


def test_pooling_errors_are_clear():
    with pytest.raises(DistillError, match="K=32 is larger than the length 16 of enc_last"):
        pooling.check_pooling("seg_mean_K32", 16, "enc_last")
    with pytest.raises(DistillError, match="unknown pooling 'median'"):
        pooling.check_pooling("median", 16)
    with pytest.raises(DistillError, match="power of two"):
        pooling.check_pooling("seg_mean_K3", 4096)
    with pytest.raises(DistillError, match="K must be at least 1"):
        pooling.check_pooling("seg_mean_K0", 16)


def planted(n=600, d=40, noise=0.05, seed=0, signal=True):
    rng = np.random.default_rng(seed)
    xs, ys = {}, {}
    w = rng.normal(size=d)
    for split, size in (("train", n), ("val", n // 3), ("test", n // 3)):
        x = rng.normal(size=(size, d)).astype(np.float32)
        target = x @ w + noise * rng.normal(size=size) if signal else rng.normal(size=size)
        xs[split], ys[split] = x, pd.DataFrame({"log_g": target})
    return probe.FeatureSet(xs, ys, "planted")


@pytest.mark.parametrize("head", heads.HEADS)
def test_probe_recovers_a_planted_linear_signal(head):
    result = probe.fit_label(planted(), "log_g", head, n_estimators=300 if head == "lightgbm" else 50)
    floor = {"lightgbm": 0.6, "mlp": 0.9}.get(head, 0.99)
    assert result.scores["test_r2_log_g"] > floor
    assert set(result.scores) == {f"{s}_{m}_log_g" for s in ("train", "val", "test")
                                  for m in ("r2", "mae", "rmse")} | {
        "test_r2_log_g_lo", "test_r2_log_g_hi", "test_mae_log_g_lo", "test_mae_log_g_hi", "test_n_outliers_log_g"}
    assert result.scores["test_r2_log_g_lo"] < result.scores["test_r2_log_g"] < result.scores["test_r2_log_g_hi"]


@pytest.mark.parametrize("head", ["ridge", "lightgbm"])
def test_probe_finds_nothing_in_pure_noise(head):
    """No skill on noise: test R^2 <= ~0 (a flexible head may go slightly negative by overfitting)."""
    result = probe.fit_label(planted(n=3000, signal=False), "log_g", head)
    assert -0.1 < result.scores["test_r2_log_g"] < 0.02


@pytest.mark.parametrize("n", [500, 40])  # more rows than features (primal), fewer (dual)
def test_gram_ridge_equals_scaler_plus_ridge(n):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs = planted(n=n, d=60, noise=1.0)
    x, y = fs.x["train"].astype(np.float64), fs.y["train"]["log_g"]
    x[:, 3] = 2.0  # a constant column, as StandardScaler handles it
    reference = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(x, y)
    ours = heads.GramRidge(alpha=0.5, batch_size=64).fit(x, y)
    test = fs.x["test"].astype(np.float64)
    np.testing.assert_allclose(ours.predict(test), reference.predict(test), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [500, 40])  # primal and dual
def test_ridge_alpha_on_validation_is_the_best_fixed_alpha_on_validation(n):
    """One eigendecomposition serves every alpha: the choice and the fit equal scaler + Ridge at each alpha."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs = planted(n=n, d=60, noise=3.0)
    y = {s: fs.y[s]["log_g"].to_numpy() for s in ("train", "val")}
    ours = heads.fit(heads.make_pipeline("ridge", alpha=heads.ON_VAL), fs.x["train"], y["train"], fs.x["val"],
                     y["val"]).named_steps["head"]
    references = {a: make_pipeline(StandardScaler(), Ridge(alpha=a)).fit(fs.x["train"].astype(np.float64), y["train"])
                  for a in heads.RIDGE_ALPHAS}
    val = {a: r2_score(y["val"], m.predict(fs.x["val"])) for a, m in references.items()}
    assert ours.alpha_ == max(val, key=val.get)
    assert len({round(v, 6) for v in val.values()}) > 1  # the choice matters
    np.testing.assert_allclose(ours.predict(fs.x["test"]), references[ours.alpha_].predict(fs.x["test"]),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(DistillError, match="no validation split"):
        heads.GramRidge(heads.ON_VAL).fit(fs.x["train"], y["train"])


@pytest.mark.parametrize("n", [500, 40])  # primal and dual
@pytest.mark.parametrize("alpha", [0.5, heads.ON_VAL])
def test_gram_ridge_with_k_targets_equals_k_separate_fits(n, alpha):
    """Targets sharing one decomposition each get their own fit and, on validation, their own alpha."""
    fs = planted(n=n, d=60, noise=3.0)
    y = fs.y["train"]["log_g"].to_numpy()
    rng = np.random.default_rng(0)
    targets = np.stack([y, rng.permutation(y), y + rng.normal(scale=5.0, size=len(y))], axis=1)
    y_val = fs.y["val"]["log_g"].to_numpy()
    joint = heads.GramRidge(alpha).fit(fs.x["train"], targets, fs.x["val"], y_val)
    single = [heads.GramRidge(alpha).fit(fs.x["train"], t, fs.x["val"], y_val) for t in targets.T]
    np.testing.assert_allclose(joint.predict(fs.x["test"]), np.stack([m.predict(fs.x["test"]) for m in single], 1),
                               rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(joint.alpha_, [m.alpha_ for m in single])
    if alpha == heads.ON_VAL:
        assert len(set(joint.alpha_)) > 1  # the permuted column is best with another penalty than the true one


def test_standardisation_and_pca_see_training_rows_only():
    """Changing validation and test rows must not change the fitted model."""
    fs = planted()
    first = probe.fit_label(fs, "log_g", "ridge", pca=16).model
    shifted = probe.FeatureSet({**fs.x, "val": fs.x["val"] * 50 + 3, "test": fs.x["test"] * 50 + 3}, fs.y, fs.name)
    second = probe.fit_label(shifted, "log_g", "ridge", pca=16).model
    np.testing.assert_array_equal(first.named_steps["scale"].mean_, second.named_steps["scale"].mean_)
    np.testing.assert_array_equal(first.named_steps["pca"].components_, second.named_steps["pca"].components_)
    np.testing.assert_array_equal(first.named_steps["head"].coef_, second.named_steps["head"].coef_)
    np.testing.assert_allclose(first.named_steps["scale"].mean_, fs.x["train"].mean(0), rtol=1e-5, atol=1e-6)
    plain = [probe.fit_label(f, "log_g", "ridge").model.named_steps["head"] for f in (fs, shifted)]  # GramRidge
    np.testing.assert_array_equal(plain[0].mean_, plain[1].mean_)
    np.testing.assert_array_equal(plain[0].coef_, plain[1].coef_)


def test_training_subset_is_reproducible_and_bounded():
    fs = planted()
    a, b = probe.subset_train(fs, 100, seed=3), probe.subset_train(fs, 100, seed=3)
    np.testing.assert_array_equal(a.x["train"], b.x["train"])
    assert len(a.y["train"]) == 100 and len(a.y["test"]) == len(fs.y["test"])
    with pytest.raises(DistillError, match="larger than the training set"):
        probe.subset_train(fs, 10_000)


def test_attention_pooling_learns_where_to_look():
    """Only position 5 of 16 carries the label: attention must find it and put its weight there."""
    rng = np.random.default_rng(0)
    maps = {s: rng.normal(size=(n, 4, 16)).astype(np.float32) for s, n in (("train", 800), ("val", 200), ("test", 200))}
    ys = {s: pd.DataFrame({"log_g": m[:, 0, 5] * 2.0}) for s, m in maps.items()}
    result = probe.fit_label(probe.FeatureSet(maps, ys, "maps"), "log_g", "ridge", pooling_name="attention")
    standardised = (maps["test"] - result.model.mu_) / result.model.sd_
    weights = result.model.net_.weights(__import__("torch").as_tensor(standardised))
    assert int(weights.mean(0).argmax()) == 5
    assert result.scores["test_r2_log_g"] > 0.5
