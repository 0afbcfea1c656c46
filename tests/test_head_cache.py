"""The head cache: a hit returns what a fresh fit returns, and any change to features, labels or settings misses."""
import numpy as np
import pandas as pd
import pytest

from distill import head_cache, probe


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "heads"))
    return tmp_path / "heads"


def planted(seed=0) -> probe.FeatureSet:
    rng = np.random.default_rng(seed)
    x = {s: rng.normal(size=(n, 12)).astype(np.float32) for s, n in (("train", 200), ("val", 50), ("test", 80))}
    y = {s: pd.DataFrame({"log_g": v[:, 0] + 0.3 * rng.normal(size=len(v))}) for s, v in x.items()}
    return probe.FeatureSet(x, y, "raw")


def test_a_hit_equals_a_fresh_fit(cache, monkeypatch):
    fs, params = planted(), {"alpha": 0.1, "seed": 42}
    fresh = head_cache.fit_heads(fs, ["log_g"], ["ridge", "lightgbm"], params)
    assert len(list(cache.glob("*.npz"))) == 2
    monkeypatch.setattr(probe, "fit_label", lambda *a, **k: pytest.fail("refitted a cached head"))
    again = head_cache.fit_heads(fs, ["log_g"], ["ridge", "lightgbm"], params)
    for key, result in fresh.items():
        assert again[key].scores == result.scores and again[key].model is None
        np.testing.assert_array_equal(again[key].predictions["test"], result.predictions["test"])


@pytest.mark.parametrize("change", ["features", "labels", "settings"])
def test_any_change_misses(cache, change):
    fs, params = planted(), {"alpha": 0.1, "seed": 42}
    head_cache.fit_heads(fs, ["log_g"], ["ridge"], params)
    if change == "features":
        fs.x["test"][0, 0] += 1.0
    elif change == "labels":
        fs.y["train"].loc[0, "log_g"] += 1.0
    else:
        params = params | {"alpha": 1.0}
    head_cache.fit_heads(fs, ["log_g"], ["ridge"], params)
    assert len(list(cache.glob("*.npz"))) == 2


def test_an_unreadable_entry_is_fitted_again(cache):
    fs = planted()
    first = head_cache.fit_heads(fs, ["log_g"], ["ridge"], {"alpha": 0.1})
    (path,) = cache.glob("*.npz")
    path.write_bytes(b"not a zip file")
    again = head_cache.fit_heads(fs, ["log_g"], ["ridge"], {"alpha": 0.1})
    assert again["log_g", "ridge"].model is not None
    assert again["log_g", "ridge"].scores == first["log_g", "ridge"].scores
