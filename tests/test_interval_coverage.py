"""How often the R^2 interval covers the population R^2, by error distribution: the table the intervals module's
docstring summarises. n = 1,000 test rows, as in the study; BCa against the plain percentile interval."""
import numpy as np

from distill import intervals

N, REPS, NOISE = 1000, 600, 0.5
ERRORS = {"gaussian": None, "t(3)": 3.0, "t(2.5)": 2.5}  # Student-t degrees of freedom


def draw(rng, df):
    """Labels (sd 1) and predictions whose errors have sd NOISE (Gaussian or Student-t scaled to that sd)."""
    y = rng.normal(size=N)
    e = rng.normal(size=N) if df is None else rng.standard_t(df, size=N) / np.sqrt(df / (df - 2))
    return y, y + NOISE * e


def percentile(y, p):
    samples = intervals._r2_each(y, p, intervals.resamples(N))
    return np.nanpercentile(samples, [2.5, 97.5])


def coverage(df) -> dict:
    truth, hits = 1 - NOISE ** 2, {"percentile": 0, "bca": 0}
    rng = np.random.default_rng(7)
    for _ in range(REPS):
        y, p = draw(rng, df)
        lo, hi = percentile(y, p)
        hits["percentile"] += lo <= truth <= hi
        ci = intervals.r2(y, p)
        hits["bca"] += ci.lo <= truth <= ci.hi
    return {k: v / REPS for k, v in hits.items()}


def test_coverage_table_gaussian_at_its_level_heavy_tails_below():
    table = {name: coverage(df) for name, df in ERRORS.items()}
    for name, row in table.items():
        print(f"{name:>9}: percentile {row['percentile']:.1%}  BCa {row['bca']:.1%}")
    tolerance = 2.5 * np.sqrt(0.95 * 0.05 / REPS)  # 2.5 standard errors of a coverage fraction
    assert abs(table["gaussian"]["bca"] - 0.95) < max(tolerance, 0.02)
    assert table["t(2.5)"]["bca"] < 0.90  # heavy tails: no bootstrap of R^2 holds its level
    assert table["t(3)"]["bca"] >= table["t(3)"]["percentile"] - 0.02


def test_bca_moves_with_skew_where_percentile_does_not():
    """A skewed statistic near its bound: BCa shifts the interval, so it is not the percentile interval."""
    rng = np.random.default_rng(3)
    y, p = draw(rng, 3.0)
    ci = intervals.r2(y, p)
    assert not np.allclose([ci.lo, ci.hi], percentile(y, p))


def test_mae_interval_and_outlier_count():
    rng = np.random.default_rng(5)
    y = rng.normal(size=N)
    p = y + 0.5 * rng.normal(size=N)
    p[:4] += 10.0  # four spectra off by 10 dex
    assert intervals.n_outliers(y, p) == 4
    ci = intervals.mae(y, p)
    assert ci.lo < ci.value < ci.hi
    assert abs(ci.value - (0.5 * np.sqrt(2 / np.pi) + 0.04)) < 0.05


def test_every_headline_r2_comes_with_mae_outliers_and_the_method_tag(mlflow_store):
    import mlflow

    from distill import metrics, tracking
    rng = np.random.default_rng(6)
    y = {s: rng.normal(size=200) for s in ("train", "val", "test")}
    pred = {s: v + 0.3 * rng.normal(size=200) for s, v in y.items()}
    pred["test"][0] += 5.0
    scores = metrics.split_scores(y, pred, "log_g")
    assert scores["test_mae_log_g_lo"] < scores["test_mae_log_g"] < scores["test_mae_log_g_hi"]
    assert scores["test_n_outliers_log_g"] == 1
    with tracking.tracked_run("probe") as run:
        pass
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["interval_method"] == "bca"
